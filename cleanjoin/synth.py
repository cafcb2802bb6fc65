"""Deterministic synthetic data for the fraud-signal collaboration.

Two parties share card-level fraud signals through a clean room:

* the **provider** (a card network) holds :func:`transaction_signals`, one row per
  transaction with merchant category, velocity and confirmed-fraud outcome;
* the **consumer** (an issuer) holds :func:`account_behavior`, one row per account.

Everything is built with Spark expressions from ``spark.range``: no row passes through
the driver, no Python UDF runs, so 10M rows per party cost what Spark's own expressions
cost. Every random choice is a *seeded uniform* ``xxhash64(seed, salt, id) / 2**53``, so
the same arguments give the same DataFrame, row for row, in classic Spark and in Spark
Connect, whatever the partitioning.

**Card universe.** Card ``i`` (``i = 0, 1, 2, ...``) has one PAN, fixed by ``seed``: a
brand (Visa 16, Mastercard 16, Amex 15, Discover 16, JCB 16, UnionPay 19, Diners 14
digits), an issuer prefix of that brand, middle digits ``(i * C + offset(seed)) mod 10**k``
(a bijection, so distinct cards have distinct PANs) and a valid Luhn check digit. Card-level
attributes (region, consent, latent risk) are functions of ``(seed, i)`` too, so both
parties agree on them. The provider sees cards ``0 .. cards-1``; the consumer's accounts
take exactly ``round(overlap * cards)`` of those (chosen pseudo-randomly) and the rest are
cards ``>= cards`` that the provider never sees.

**Dirt.** Identifier columns get realistic dirt at the rates of a :class:`Dirt`: each
value gets at most one kind, picked by cumulative thresholds on a seeded uniform, so a
kind's rate is exactly a Bernoulli rate and measurable. ``with_truth=True`` adds the
clean value and the dirt kind of each row (ground truth for tests; never share those).

Example:
    >>> luhn_valid("4111111111111111"), luhn_valid("4111111111111112")
    (True, False)
    >>> Dirt().pan_rate <= 0.08 and Dirt.none().pan_rate == 0.0
    True
    >>> from cleanjoin import local_spark  # doctest: +SKIP
    >>> spark = local_spark()  # doctest: +SKIP
    >>> provider = transaction_signals(spark, rows=300_000, cards=50_000, seed=7)  # doctest: +SKIP
    >>> consumer = account_behavior(spark, cards=50_000, overlap=0.6, seed=7)  # doctest: +SKIP
"""


from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from types import ModuleType
from typing import Any

from cleanjoin._spark import functions_for
from cleanjoin._typing import Column, DataFrame, SparkSession
from cleanjoin.errors import InvalidArgumentError

__all__ = [
    "ACCOUNT_AGE_BANDS",
    "AMOUNT_BANDS",
    "BRANDS",
    "BRAND_LENGTHS",
    "CONSENT_VALUES",
    "CONSUMER_COLUMNS",
    "CONSUMER_SCHEMA",
    "EMAIL_DIRT_KINDS",
    "MERCHANT_CATEGORY_CODES",
    "PAN_DIRT_KINDS",
    "PROVIDER_COLUMNS",
    "PROVIDER_SCHEMA",
    "REGIONS",
    "Dirt",
    "Skew",
    "account_behavior",
    "card_numbers",
    "luhn_valid",
    "opt_outs",
    "partner_agreements",
    "transaction_signals",
]

PROVIDER_SCHEMA = (
    "card_number string, merchant_category_code string, txn_count_1h int, "
    "txn_amount_band string, cross_border_flag int, network_velocity_score double, "
    "confirmed_fraud_flag int, sharing_consent_flag string, data_residency_region string"
)
"""DDL of :func:`transaction_signals` (column order and types)."""

CONSUMER_SCHEMA = (
    "card_number string, account_age_band string, chargeback_rate_90d double, "
    "prior_fraud_flag int, email string"
)
"""DDL of :func:`account_behavior` (column order and types)."""

PROVIDER_COLUMNS = tuple(part.split()[0] for part in PROVIDER_SCHEMA.split(", "))
CONSUMER_COLUMNS = tuple(part.split()[0] for part in CONSUMER_SCHEMA.split(", "))

# (code, share of transactions, typical amount in USD, fraud risk weight, cross-border boost)
_MCC: tuple[tuple[str, float, float, float, float], ...] = (
    ("5411", 0.18, 45.0, 0.0, 0.0),  # grocery stores
    ("5812", 0.13, 40.0, 0.1, 0.01),  # restaurants
    ("5541", 0.09, 50.0, 0.2, 0.0),  # service stations
    ("6011", 0.08, 120.0, 0.8, 0.03),  # ATM cash
    ("5999", 0.08, 60.0, 0.7, 0.02),  # miscellaneous retail
    ("5311", 0.07, 80.0, 0.2, 0.0),  # department stores
    ("5912", 0.06, 25.0, 0.0, 0.0),  # drug stores
    ("5732", 0.06, 400.0, 1.1, 0.02),  # electronics
    ("4111", 0.05, 8.0, 0.0, 0.01),  # commuter transport
    ("5814", 0.05, 12.0, 0.0, 0.0),  # fast food
    ("4121", 0.04, 25.0, 0.3, 0.04),  # taxis and rideshare
    ("4829", 0.04, 300.0, 1.6, 0.10),  # money transfer
    ("7995", 0.03, 150.0, 1.4, 0.08),  # gambling
    ("7011", 0.02, 350.0, 0.4, 0.30),  # hotels
    ("4511", 0.02, 500.0, 0.6, 0.35),  # airlines
)
MERCHANT_CATEGORY_CODES = tuple(code for code, *_ in _MCC)
"""The 15 merchant category codes :func:`transaction_signals` draws from (skewed shares)."""

AMOUNT_BANDS = ("0-50", "50-200", "200-1000", "1000+")
"""Values of ``txn_amount_band``, low to high."""

# (region, share of cards, cross-border base rate, share of cards not consortium-eligible)
_REGIONS: tuple[tuple[str, float, float, float], ...] = (
    ("US", 0.40, 0.03, 0.06),
    ("EU", 0.25, 0.12, 0.14),
    ("UK", 0.10, 0.08, 0.10),
    ("APAC", 0.15, 0.06, 0.08),
    ("LATAM", 0.07, 0.05, 0.08),
    ("MEA", 0.03, 0.07, 0.10),
)
REGIONS = tuple(region for region, *_ in _REGIONS)
"""Values of ``data_residency_region``."""

CONSENT_VALUES = ("CONSORTIUM_ELIGIBLE", "OPTED_OUT", "RESTRICTED")
"""Values of ``sharing_consent_flag``; only ``CONSORTIUM_ELIGIBLE`` may be shared."""

ACCOUNT_AGE_BANDS = ("<1y", "1-3y", "3-5y", "5y+")
"""Values of ``account_age_band``, young to old."""
_AGE_SHARES = (0.15, 0.30, 0.25, 0.30)

# (brand, share of cards, PAN length, issuer prefix ranges (first, count, weight))
_BRANDS: tuple[tuple[str, float, int, tuple[tuple[int, int, float], ...]], ...] = (
    ("visa", 0.48, 16, ((4, 1, 1.0),)),
    ("mastercard", 0.27, 16, ((51, 5, 0.8), (2221, 500, 0.2))),
    ("amex", 0.08, 15, ((34, 1, 0.5), (37, 1, 0.5))),
    ("discover", 0.04, 16, ((6011, 1, 0.5), (65, 1, 0.5))),
    ("jcb", 0.04, 16, ((3528, 62, 1.0),)),
    ("unionpay", 0.06, 19, ((62, 1, 1.0),)),
    ("diners", 0.03, 14, ((36, 1, 0.5), (38, 1, 0.5))),
)
BRANDS = tuple(brand for brand, *_ in _BRANDS)
"""Card brands of the universe; see :func:`card_numbers` for lengths and prefixes."""
BRAND_LENGTHS = {brand: length for brand, _, length, _ in _BRANDS}
"""PAN length of each brand."""

PAN_DIRT_KINDS = (
    "spaces",
    "tabs",
    "nbsp",
    "separators",
    "fullwidth",
    "zero_width",
    "leading_zeros",
    "empty",
    "null",
)
"""Dirt kinds applied to ``card_number``, in threshold order."""

EMAIL_DIRT_KINDS = ("spaces", "tabs", "nbsp", "zero_width", "email_case", "empty", "null")
"""Dirt kinds applied to ``email``, in threshold order."""

_TWO53 = 2**53
_MIX = 7_919_199_382_716_473  # odd, not a multiple of 5: coprime to 10**k
_ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\ufeff")
_FULLWIDTH = "".join(chr(0xFF10 + d) for d in range(10))
_FIRST_NAMES = (
    "maria", "james", "wei", "fatima", "olivia", "liam", "aarav", "sofia", "noah", "yuki",
    "amara", "lucas", "chloe", "mateo", "priya", "ethan", "zara", "hugo", "mei", "omar",
)  # fmt: skip
_LAST_NAMES = (
    "garcia", "smith", "chen", "khan", "mueller", "rossi", "kim", "silva", "nguyen", "patel",
    "cohen", "dubois", "novak", "tanaka", "okafor", "larsen", "haddad", "lopez", "murphy", "ivanova",
)  # fmt: skip
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")


def _check_rate(owner: str, name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InvalidArgumentError(
            f"'{name}' in {owner} must be a number, got {type(value).__name__}"
        )
    if not 0.0 <= value <= 1.0:
        raise InvalidArgumentError(f"'{name}' in {owner} must be between 0 and 1, got {value}")


def _check_count(owner: str, name: str, value: int, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(
            f"'{name}' in {owner} must be an int, got {type(value).__name__}"
        )
    if value < minimum:
        raise InvalidArgumentError(f"'{name}' in {owner} must be >= {minimum}, got {value}")


@dataclass(frozen=True)
class Dirt:
    """Rates of identifier dirt, per kind (each value gets at most one kind).

    A value's kind is chosen by cumulative thresholds on one seeded uniform, in the order
    of :data:`PAN_DIRT_KINDS` (for ``card_number``) or :data:`EMAIL_DIRT_KINDS` (for
    ``email``), so each kind appears with exactly its rate in expectation (binomial
    spread). Kinds that do not apply to a column are skipped for it. The defaults make
    about 5 % of card numbers and 6 % of emails dirty.

    Attributes:
        spaces: leading and/or trailing ASCII spaces (``" 4111..."``, ``"4111...  "``).
        tabs: a leading or trailing tab.
        nbsp: a leading or trailing non-breaking space (U+00A0), which ``trim`` keeps.
        separators: PAN only: a space or dash after every group of 4 digits
            (``"4111 1111 1111 1111"``, ``"4111-1111-1111-1111"``).
        fullwidth: PAN only: every digit as its full-width form (U+FF10..U+FF19), as typed
            with an East Asian input method.
        zero_width: one zero-width character (U+200B, U+200C, U+200D or U+FEFF) inserted at
            a random position.
        leading_zeros: PAN only: left-padded with zeros to 19 digits, as a fixed-width
            export of a PAN that went through a numeric type does (19-digit PANs get one
            ``0``). The Luhn check still passes (zeros add nothing to its sum): only the
            length tells. A normalizer may strip them because no issued PAN starts with 0.
        email_case: email only: all upper case, or mixed (``"Maria.Garcia12@Example.com"``).
        empty: the empty string.
        null: a null.

    Example:
        >>> d = Dirt(spaces=0.1, null=0.0)
        >>> round(d.pan_rate, 3), d.rate("email_case")
        (0.135, 0.04)
        >>> Dirt.none().email_rate
        0.0
        >>> Dirt(spaces=1.5)
        Traceback (most recent call last):
        ...
        cleanjoin.errors.InvalidArgumentError: 'spaces' in Dirt must be between 0 and 1, got 1.5
    """

    spaces: float = 0.012
    tabs: float = 0.004
    nbsp: float = 0.004
    separators: float = 0.012
    fullwidth: float = 0.004
    zero_width: float = 0.004
    leading_zeros: float = 0.004
    email_case: float = 0.04
    empty: float = 0.003
    null: float = 0.003

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_rate("Dirt", f.name, getattr(self, f.name))
        for label, total in (("card_number", self.pan_rate), ("email", self.email_rate)):
            if total > 1.0 + 1e-12:
                raise InvalidArgumentError(
                    f"Dirt rates for {label} add up to {total:.4f}; they must add up to at most 1"
                )

    @classmethod
    def none(cls) -> Dirt:
        """Clean data: every rate zero."""
        return cls(**{f.name: 0.0 for f in fields(cls)})

    @classmethod
    def uniform(cls, rate: float) -> Dirt:
        """Every kind at the same ``rate`` (handy for tests that measure rates)."""
        _check_rate("Dirt.uniform", "rate", rate)
        return cls(**{f.name: float(rate) for f in fields(cls)})

    def rate(self, kind: str) -> float:
        """The rate of one dirt kind, by name."""
        if kind not in {f.name for f in fields(self)}:
            options = ", ".join(f'"{f.name}"' for f in fields(self))
            raise InvalidArgumentError(
                f'Unknown dirt kind "{kind}". Available options are {options}.'
            )
        return float(getattr(self, kind))

    @property
    def pan_rate(self) -> float:
        """Share of ``card_number`` values that get some dirt."""
        return sum(self.rate(k) for k in PAN_DIRT_KINDS)

    @property
    def email_rate(self) -> float:
        """Share of ``email`` values that get some dirt."""
        return sum(self.rate(k) for k in EMAIL_DIRT_KINDS)


@dataclass(frozen=True)
class Skew:
    """A few "hot" cards with hundreds of transactions each.

    ``hot_share`` of all provider rows go to ``hot_cards`` cards (spread evenly over the
    card universe, offset by the seed), about ``hot_share * rows / hot_cards`` rows per
    hot card: 300 with the defaults and 300 000 rows. The other rows spread uniformly:
    every card gets one row, and the remaining ``rows - cards`` rows pick a card at random.

    Attributes:
        hot_cards: number of hot cards (0 for none).
        hot_share: share of all rows that belong to hot cards.

    Example:
        >>> Skew().hot_cards, Skew.none().hot_share
        (20, 0.0)
    """

    hot_cards: int = 20
    hot_share: float = 0.02

    def __post_init__(self) -> None:
        _check_count("Skew", "hot_cards", self.hot_cards, minimum=0)
        _check_rate("Skew", "hot_share", self.hot_share)
        if self.hot_share > 0 and self.hot_cards == 0:
            raise InvalidArgumentError("'hot_share' in Skew must be 0 when 'hot_cards' is 0")

    @classmethod
    def none(cls) -> Skew:
        """No hot cards."""
        return cls(hot_cards=0, hot_share=0.0)


# ---------------------------------------------------------------- expression helpers


def _seed_int(seed: int, salt: str, modulus: int) -> int:
    digest = hashlib.sha256(f"cleanjoin.synth:{seed}:{salt}".encode()).digest()
    return int.from_bytes(digest[:16], "big") % modulus


def _uniform(F: ModuleType, seed: int, salt: str, key: Column) -> Column:
    """A seeded uniform double in [0, 1) from ``(seed, salt, key)``."""
    hashed = F.xxhash64(F.lit(seed), F.lit(salt), key)
    return F.pmod(hashed, F.lit(_TWO53)).cast("double") / F.lit(float(_TWO53))


def _choose(F: ModuleType, u: Column, options: Sequence[tuple[Any, float]]) -> Column:
    """Pick an option by cumulative weights on uniform ``u`` (weights are normalized)."""
    total = sum(w for _, w in options)
    expr: Any = None
    cumulative = 0.0
    for value, weight in options[:-1]:
        cumulative += weight / total
        cond = u < F.lit(cumulative)
        expr = F.when(cond, F.lit(value)) if expr is None else expr.when(cond, F.lit(value))
    last = F.lit(options[-1][0])
    return last if expr is None else expr.otherwise(last)


def _luhn_pair(pair: int) -> int:
    """Luhn contribution of two digits ``pair = 10 * a + b`` where ``b`` is doubled."""
    a, b = divmod(pair, 10)
    return a + (b * 2 - 9 if b > 4 else b * 2)


_LUHN_PAIRS = tuple(_luhn_pair(p) for p in range(100))


def _luhn_digit(F: ModuleType, partial: str, max_length: int = 18) -> Column:
    """The Luhn check digit making ``partial || digit`` valid; ``partial`` names a long column.

    Works on two digits at a time with a 100-entry lookup table: short generated code.
    """
    table = F.expr(f"array({', '.join(map(str, _LUHN_PAIRS))})")  # one call, not 100
    total: Any = F.lit(0)
    for pair in range(0, max_length, 2):
        digits = F.expr(f"CAST(pmod(`{partial}` div {10**pair}, 100) AS INT)")
        total = total + F.element_at(table, digits + 1)
    return (F.lit(10) - total % 10) % 10


def _mix16(F: ModuleType, card: Column, offset: int) -> Column:
    """``(card * _MIX + offset) mod 10**16`` in 64-bit arithmetic (``card < 9 * 10**9``)."""
    mix_hi, mix_lo = divmod(_MIX, 10**8)
    high = F.pmod(card * F.lit(mix_hi), F.lit(10**8)) * F.lit(10**8)
    return F.pmod(high + card * F.lit(mix_lo) + F.lit(offset), F.lit(10**16))


# one branch per (brand, issuer prefix range): brand, share of cards, PAN length, first, count
_PAN_BRANCHES: tuple[tuple[str, float, int, int, int], ...] = tuple(
    (brand, share * weight / sum(w for *_, w in ranges), length, first, count)
    for brand, share, length, ranges in _BRANDS
    for first, count, weight in ranges
)


def _pan_branch(F: ModuleType, u: Column) -> Column:
    return _choose(F, u, [(i, b[1]) for i, b in enumerate(_PAN_BRANCHES)]).cast("int")


def _with_pan(df: DataFrame, F: ModuleType, card: str, seed: int, name: str) -> DataFrame:
    """``df`` plus a column ``name``: the clean PAN of universe card ``card`` (a bijection per seed).

    Built in stages (uniforms, 18-digit partial number, check digit) so that Spark does
    not collapse the projections and evaluate each hash once per use. The partial number is
    ``prefix * 10**k + (card * _MIX + offset) mod 10**k`` with ``k`` middle digits: distinct
    cards of one prefix get distinct middle digits, so distinct cards get distinct PANs.
    """
    card_col = F.col(card)
    offset = _seed_int(seed, "pan-offset", 10**16)
    staged = df.select(
        "*",
        _pan_branch(F, _uniform(F, seed, "brand", card_col)).alias("_pan_branch"),
        _uniform(F, seed, "prefix", card_col).alias("_pan_pick"),
        _mix16(F, card_col, offset).alias("_pan_mix"),
    )
    branch, pick, mix = F.col("_pan_branch"), F.col("_pan_pick"), F.col("_pan_mix")
    partial: Any = None
    for index, (_, _, length, first, count) in enumerate(_PAN_BRANCHES):
        k = length - len(str(first)) - 1
        prefix = F.lit(first) + F.floor(pick * F.lit(count))
        value = prefix.cast("long") * F.lit(10**k) + F.pmod(mix, F.lit(10**k))
        cond = branch == index
        partial = F.when(cond, value) if partial is None else partial.when(cond, value)
    staged = staged.select("*", partial.alias("_pan_partial"))
    pan = F.concat(
        F.col("_pan_partial").cast("string"), _luhn_digit(F, "_pan_partial").cast("string")
    )
    return staged.select("*", pan.alias(name)).drop(
        "_pan_branch", "_pan_pick", "_pan_mix", "_pan_partial"
    )


def _dirty(
    F: ModuleType,
    clean: Column,
    kind: Column,
    u: Column,
    u2: Column,
    *,
    mixed_case: Column | None = None,
) -> Column:
    """Apply the dirt ``kind`` (a string column) to ``clean``; ``u``/``u2`` pick variants."""
    one_third, two_thirds = 1.0 / 3.0, 2.0 / 3.0
    spaces = (
        F.when(u < one_third, F.concat(F.lit(" "), clean))
        .when(u < two_thirds, F.concat(clean, F.lit("  ")))
        .otherwise(F.concat(F.lit("  "), clean, F.lit(" ")))
    )
    tabs = F.when(u < 0.5, F.concat(F.lit("\t"), clean)).otherwise(F.concat(clean, F.lit("\t")))
    nbsp = F.when(u < 0.5, F.concat(F.lit("\u00a0"), clean)).otherwise(
        F.concat(clean, F.lit("\u00a0"))
    )
    separators = F.when(u < 0.5, F.regexp_replace(clean, r"(\d{4})(?=\d)", "$1 ")).otherwise(
        F.regexp_replace(clean, r"(\d{4})(?=\d)", "$1-")
    )
    zw_char = F.element_at(
        F.array(*[F.lit(c) for c in _ZERO_WIDTH]),
        (F.floor(u2 * F.lit(len(_ZERO_WIDTH))) + 1).cast("int"),
    )
    cut = F.floor(u * (F.length(clean) + 1)).cast("int")
    zero_width = F.concat(
        F.substring(clean, F.lit(1), cut),
        zw_char,
        F.substring(clean, cut + 1, F.length(clean)),
    )
    leading_zeros = F.when(F.length(clean) < 19, F.lpad(clean, 19, "0")).otherwise(
        F.concat(F.lit("0"), clean)
    )
    case = F.upper(clean)
    if mixed_case is not None:
        case = F.when(u < 0.5, F.upper(clean)).otherwise(mixed_case)
    return (
        F.when(kind == "spaces", spaces)
        .when(kind == "tabs", tabs)
        .when(kind == "nbsp", nbsp)
        .when(kind == "separators", separators)
        .when(kind == "fullwidth", F.translate(clean, "0123456789", _FULLWIDTH))
        .when(kind == "zero_width", zero_width)
        .when(kind == "leading_zeros", leading_zeros)
        .when(kind == "email_case", case)
        .when(kind == "empty", F.lit(""))
        .when(kind == "null", F.lit(None).cast("string"))
        .otherwise(clean)
    )


def _dirt_kind(F: ModuleType, dirt: Dirt, kinds: Sequence[str], u: Column) -> Column:
    options: list[tuple[Any, float]] = [(k, dirt.rate(k)) for k in kinds if dirt.rate(k) > 0]
    expr: Any = None
    cumulative = 0.0
    for value, rate in options:
        cumulative += rate
        cond = u < F.lit(cumulative)
        expr = F.when(cond, F.lit(value)) if expr is None else expr.when(cond, F.lit(value))
    return F.lit("clean") if expr is None else expr.otherwise(F.lit("clean"))


def _with_card_attributes(df: DataFrame, F: ModuleType, card: str, seed: int) -> DataFrame:
    """``df`` plus ``_region``, ``_consent`` and ``_risk``: card-level attributes both
    parties agree on (functions of ``(seed, card)``)."""
    card_col = F.col(card)
    staged = df.select(
        "*",
        _uniform(F, seed, "region", card_col).alias("_u_region"),
        _uniform(F, seed, "consent", card_col).alias("_u_consent"),
        _uniform(F, seed, "risk", card_col).alias("_risk"),
    )
    region = _choose(F, F.col("_u_region"), [(r, s) for r, s, _, _ in _REGIONS])
    staged = staged.select("*", region.alias("_region"))
    not_eligible: Any = None
    for name, _, _, share in _REGIONS:
        cond = F.col("_region") == name
        not_eligible = (
            F.when(cond, F.lit(share))
            if not_eligible is None
            else not_eligible.when(cond, F.lit(share))
        )
    consent_u = F.col("_u_consent")
    consent = (
        F.when(consent_u < not_eligible * 0.6, F.lit("OPTED_OUT"))
        .when(consent_u < not_eligible, F.lit("RESTRICTED"))
        .otherwise(F.lit("CONSORTIUM_ELIGIBLE"))
    )
    return staged.select("*", consent.alias("_consent")).drop("_u_region", "_u_consent")


def _with_uniforms(
    df: DataFrame, F: ModuleType, key: str, seed: int, salts: Sequence[str]
) -> DataFrame:
    """``df`` plus one staged uniform column ``_u_<salt>`` per salt (hash once, use often)."""
    return df.select(
        "*", *[_uniform(F, seed, salt, F.col(key)).alias(f"_u_{salt}") for salt in salts]
    )


def _validate_seed(owner: str, seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidArgumentError(f"'seed' in {owner} must be an int, got {type(seed).__name__}")


def _range(spark: SparkSession, n: int, partitions: int | None, owner: str) -> DataFrame:
    if partitions is None:
        return spark.range(n)
    _check_count(owner, "partitions", partitions, minimum=1)
    return spark.range(0, n, 1, partitions)


# ---------------------------------------------------------------- public generators


def card_numbers(
    spark: SparkSession, *, cards: int = 50_000, seed: int = 7, start: int = 0
) -> DataFrame:
    """The clean card universe: ``card_id`` (long), ``brand`` and ``card_number`` (string).

    Card ``i`` has the same PAN in :func:`transaction_signals`, :func:`account_behavior` and
    :func:`opt_outs` for the same ``seed``. Brands and lengths: Visa 16 (prefix 4),
    Mastercard 16 (51-55, 2221-2720), Amex 15 (34, 37), Discover 16 (6011, 65), JCB 16
    (3528-3589), UnionPay 19 (62), Diners 14 (36, 38); every PAN passes the Luhn check.

    Args:
        spark: a classic or Connect session.
        cards: how many cards, ids ``start .. start + cards - 1``.
        seed: the universe's seed.
        start: first card id.

    Example:
        >>> card_numbers(spark, cards=3).columns  # doctest: +SKIP
        ['card_id', 'brand', 'card_number']
    """
    _check_count("card_numbers", "cards", cards, minimum=1)
    _check_count("card_numbers", "start", start, minimum=0)
    _validate_seed("card_numbers", seed)
    F = functions_for(spark)
    card = F.col("id")
    base = spark.range(start, start + cards).select(
        card.alias("card_id"), _pan_branch(F, _uniform(F, seed, "brand", card)).alias("_branch")
    )
    brand: Any = None
    for index, (name, *_) in enumerate(_PAN_BRANCHES):
        cond = F.col("_branch") == index
        brand = F.when(cond, F.lit(name)) if brand is None else brand.when(cond, F.lit(name))
    base = base.select("card_id", brand.alias("brand"))
    return _with_pan(base, F, "card_id", seed, "card_number")


def transaction_signals(
    spark: SparkSession,
    *,
    rows: int = 300_000,
    cards: int = 50_000,
    seed: int = 7,
    skew: Skew | None = None,
    dirt: Dirt | None = None,
    with_truth: bool = False,
    partitions: int | None = None,
) -> DataFrame:
    """The provider's transaction-level fraud signals, one row per transaction.

    Columns (:data:`PROVIDER_SCHEMA`): ``card_number`` (string PAN, dirty at ``dirt``
    rates), ``merchant_category_code`` (4-digit MCC from :data:`MERCHANT_CATEGORY_CODES`,
    grocery most common), ``txn_count_1h`` (int 0..50, the card's transactions in the last
    hour), ``txn_amount_band`` (:data:`AMOUNT_BANDS`, depends on the MCC),
    ``cross_border_flag`` (int 0/1), ``network_velocity_score`` (double in [0, 1]),
    ``confirmed_fraud_flag`` (int 0/1, about 2 %, more likely with high velocity,
    cross-border, risky MCCs such as 4829/7995/5732 and large amounts, and for cards with
    a high latent risk, which the consumer's ``prior_fraud_flag`` also follows),
    ``sharing_consent_flag`` (:data:`CONSENT_VALUES`, ~90 % ``CONSORTIUM_ELIGIBLE``, per
    card) and ``data_residency_region`` (:data:`REGIONS`, per card).

    Every card ``0 .. cards-1`` has at least one row (so there are exactly ``cards``
    distinct clean PANs); the other ``rows - cards`` rows go to hot cards (``skew``) or to
    a uniformly random card.

    Args:
        spark: a classic or Connect session.
        rows: number of transactions (``>= cards``).
        cards: number of distinct cards.
        seed: seed of the card universe and of every random choice.
        skew: hot cards; default :class:`Skew()`, ``Skew.none()`` for none.
        dirt: identifier dirt; default :class:`Dirt()`, ``Dirt.none()`` for clean data.
        with_truth: also return ``_card_id``, ``_clean_card_number`` and
            ``_card_number_dirt`` (the dirt kind or ``"clean"``) — ground truth for tests.
        partitions: partitions of the underlying ``spark.range`` (default: Spark's).

    Raises:
        InvalidArgumentError: for a count, rate or seed out of range, or a skew that the
            ``rows - cards`` spare rows cannot hold.

    Example:
        >>> df = transaction_signals(spark, rows=1_000, cards=200, seed=1)  # doctest: +SKIP
        >>> df.count(), df.select("card_number").distinct().count() > 150  # doctest: +SKIP
        (1000, True)
    """
    owner = "transaction_signals"
    _check_count(owner, "cards", cards, minimum=1)
    _check_count(owner, "rows", rows, minimum=cards)
    _validate_seed(owner, seed)
    skew = Skew() if skew is None else skew
    dirt = Dirt() if dirt is None else dirt
    if skew.hot_cards > cards:
        raise InvalidArgumentError(
            f"'skew.hot_cards' in {owner} must be <= cards ({cards}), got {skew.hot_cards}"
        )
    spare = rows - cards
    hot_rows = skew.hot_share * rows
    if hot_rows > spare:
        raise InvalidArgumentError(
            f"{owner}: skew.hot_share={skew.hot_share} needs {hot_rows:.0f} of the "
            f"{spare} rows left after one row per card; lower hot_share or raise rows"
        )
    hot_p = hot_rows / spare if spare else 0.0
    F = functions_for(spark)
    rid = F.col("id")

    step = max(cards // max(skew.hot_cards, 1), 1)
    hot_offset = _seed_int(seed, "hot-offset", step)
    hot_k = F.floor(_uniform(F, seed, "hot-card", rid) * F.lit(max(skew.hot_cards, 1)))
    hot_card = F.pmod(F.lit(hot_offset) + hot_k * F.lit(step), F.lit(cards))
    random_card = F.floor(_uniform(F, seed, "card", rid) * F.lit(cards))
    hot_draw = (rid >= F.lit(cards)) & (_uniform(F, seed, "hot", rid) < F.lit(hot_p))
    card = F.when(rid < F.lit(cards), rid).when(hot_draw, hot_card).otherwise(random_card)
    base = _range(spark, rows, partitions, owner).select(
        rid.alias("_rid"), card.cast("long").alias("_card"), hot_draw.alias("_hot")
    )
    rid, card = F.col("_rid"), F.col("_card")
    base = _with_card_attributes(base, F, "_card", seed)
    base = _with_uniforms(
        base, F, "_rid", seed, ["mcc", "count", "cross", "velocity", "fraud", "pan_dirt", "pan_v"]
    )
    mcc = _choose(F, F.col("_u_mcc"), [(m[0], m[1]) for m in _MCC])
    base = base.select("*", mcc.alias("_mcc"))
    mcc, region, risk = F.col("_mcc"), F.col("_region"), F.col("_risk")

    def by_mcc(index: int) -> Column:
        expr: Any = None
        for entry in _MCC:
            cond, value = mcc == entry[0], F.lit(entry[index])
            expr = F.when(cond, value) if expr is None else expr.when(cond, value)
        return expr.otherwise(F.lit(0.0))

    region_cross: Any = None
    for name, _, cross, _ in _REGIONS:
        cond = region == name
        region_cross = (
            F.when(cond, F.lit(cross))
            if region_cross is None
            else region_cross.when(cond, F.lit(cross))
        )
    noise = (
        _uniform(F, seed, "amount-a", rid) + _uniform(F, seed, "amount-b", rid) - F.lit(1.0)
    ) * F.lit(2.2)
    base = base.select(
        "*",
        by_mcc(2).alias("_typical_amount"),
        by_mcc(3).alias("_mcc_risk"),
        (region_cross.otherwise(0.05) + by_mcc(4)).alias("_cross_p"),
        noise.alias("_amount_noise"),
    )
    scale = (
        F.lit(1.2) + F.lit(6.0) * F.pow(risk, 3) + F.when(F.col("_hot"), F.lit(8.0)).otherwise(0.0)
    )
    txn_count = F.least(F.floor(-F.log(F.lit(1.0) - F.col("_u_count")) * scale), F.lit(50))
    log_amount = F.log(F.col("_typical_amount")) + F.col("_amount_noise")
    base = base.select(
        "*",
        txn_count.cast("int").alias("txn_count_1h"),
        log_amount.alias("_log_amount"),
        (F.col("_u_cross") < F.col("_cross_p")).cast("int").alias("cross_border_flag"),
    )
    log_amount = F.col("_log_amount")
    amount_band = (
        F.when(log_amount < F.lit(math.log(50)), F.lit(AMOUNT_BANDS[0]))
        .when(log_amount < F.lit(math.log(200)), F.lit(AMOUNT_BANDS[1]))
        .when(log_amount < F.lit(math.log(1000)), F.lit(AMOUNT_BANDS[2]))
        .otherwise(F.lit(AMOUNT_BANDS[3]))
    )
    count = F.col("txn_count_1h")
    velocity_raw = (
        F.lit(0.6) * count / (count + F.lit(4.0))
        + F.lit(0.3) * risk
        + F.lit(0.1) * F.col("_u_velocity")
    )
    velocity = F.round(F.least(F.greatest(velocity_raw, F.lit(0.0)), F.lit(1.0)), 4)
    base = base.select(
        "*", amount_band.alias("txn_amount_band"), velocity.alias("network_velocity_score")
    )
    logit = (
        F.lit(-6.6)
        + F.lit(3.2) * F.col("network_velocity_score")
        + F.lit(1.1) * F.col("cross_border_flag")
        + F.col("_mcc_risk")
        + F.lit(2.5) * F.pow(risk, 4)
        + F.when(F.col("txn_amount_band") == AMOUNT_BANDS[3], F.lit(0.9)).otherwise(F.lit(0.0))
    )
    fraud_p = F.lit(1.0) / (F.lit(1.0) + F.exp(-logit))
    fraud = (F.col("_u_fraud") < fraud_p).cast("int")

    base = _with_pan(base, F, "_card", seed, "_clean_card_number")
    kind = _dirt_kind(F, dirt, PAN_DIRT_KINDS, F.col("_u_pan_dirt"))
    base = base.select("*", kind.alias("_card_number_dirt"))
    card_number = _dirty(
        F,
        F.col("_clean_card_number"),
        F.col("_card_number_dirt"),
        F.col("_u_pan_v"),
        _uniform(F, seed, "pan-dirt-char", rid),
    )
    out = [
        card_number.alias("card_number"),
        mcc.alias("merchant_category_code"),
        F.col("txn_count_1h"),
        F.col("txn_amount_band"),
        F.col("cross_border_flag"),
        F.col("network_velocity_score"),
        fraud.alias("confirmed_fraud_flag"),
        F.col("_consent").alias("sharing_consent_flag"),
        region.alias("data_residency_region"),
    ]
    if with_truth:
        out += [card.alias("_card_id"), F.col("_clean_card_number"), F.col("_card_number_dirt")]
    return base.select(*out)


def account_behavior(
    spark: SparkSession,
    *,
    cards: int = 50_000,
    overlap: float = 0.6,
    seed: int = 7,
    dirt: Dirt | None = None,
    provider_cards: int | None = None,
    with_truth: bool = False,
    partitions: int | None = None,
) -> DataFrame:
    """The consumer's account-level behavior, one row per account (``cards`` rows).

    Columns (:data:`CONSUMER_SCHEMA`): ``card_number`` (string PAN, dirty at ``dirt``
    rates), ``account_age_band`` (:data:`ACCOUNT_AGE_BANDS`), ``chargeback_rate_90d``
    (double in [0, 1]), ``prior_fraud_flag`` (int 0/1, a few %, higher for cards of high
    latent risk and young accounts), ``email`` (string, dirty at ``dirt`` rates).

    Exactly ``round(overlap * cards)`` accounts hold a card of the provider's universe
    (cards ``0 .. provider_cards - 1`` of :func:`transaction_signals` with the same
    ``seed``), chosen pseudo-randomly; the others hold cards the provider never sees. So
    the clean match rate is exact, not just expected; dirt lowers the *raw* match rate.

    Args:
        spark: a classic or Connect session.
        cards: number of accounts (distinct cards).
        overlap: fraction of accounts whose card the provider also has.
        seed: must equal the provider's seed for the parties to join.
        dirt: identifier dirt for ``card_number`` and ``email``.
        provider_cards: the provider's ``cards`` (default: ``cards``); the overlapping
            accounts must fit in it.
        with_truth: also return ``_card_id``, ``_clean_card_number``,
            ``_card_number_dirt``, ``_clean_email`` and ``_email_dirt``.
        partitions: partitions of the underlying ``spark.range``.

    Example:
        >>> consumer = account_behavior(spark, cards=1_000, overlap=0.5, seed=1)  # doctest: +SKIP
        >>> consumer.count()  # doctest: +SKIP
        1000
    """
    owner = "account_behavior"
    _check_count(owner, "cards", cards, minimum=1)
    _check_rate(owner, "overlap", overlap)
    _validate_seed(owner, seed)
    dirt = Dirt() if dirt is None else dirt
    universe = cards if provider_cards is None else provider_cards
    _check_count(owner, "provider_cards", universe, minimum=1)
    matched = round(overlap * cards)
    if matched > universe:
        raise InvalidArgumentError(
            f"{owner}: overlap={overlap} of {cards} accounts needs {matched} provider cards, "
            f"but provider_cards is {universe}"
        )
    F = functions_for(spark)
    account = F.col("id")
    # rank: a seeded bijection of 0..cards-1; accounts of rank < matched share provider cards
    multiplier = next(p for p in (1_000_000_007, 998_244_353, 2_147_483_647) if cards % p)
    shift = _seed_int(seed, "overlap-shift", cards)
    rank = F.pmod(account * F.lit(multiplier) + F.lit(shift), F.lit(cards))
    card = F.when(rank < F.lit(matched), rank).otherwise(rank - F.lit(matched) + F.lit(universe))
    base = _range(spark, cards, partitions, owner).select(
        account.alias("_account"), card.cast("long").alias("_card")
    )
    card = F.col("_card")
    base = _with_uniforms(
        base.select("*", _uniform(F, seed, "risk", card).alias("_risk")),
        F,
        "_card",
        seed,
        ["age", "prior", "pan_dirt", "pan_v", "email_dirt", "email_v"],
    )
    risk = F.col("_risk")
    # riskier cards skew to younger accounts (band order is young to old)
    age_u = F.col("_u_age") * (F.lit(1.0) - F.lit(0.5) * F.pow(risk, 2))
    age = _choose(F, age_u, list(zip(ACCOUNT_AGE_BANDS, _AGE_SHARES, strict=True)))
    base = base.select("*", age.alias("account_age_band"))
    age = F.col("account_age_band")
    young = F.when(age == ACCOUNT_AGE_BANDS[0], F.lit(0.03)).otherwise(F.lit(0.0))
    prior_p = F.lit(0.008) + F.lit(0.08) * F.pow(risk, 3) + young
    prior = (F.col("_u_prior") < prior_p).cast("int")
    chargeback = F.round(
        F.lit(0.002) * _uniform(F, seed, "chargeback-a", card)
        + F.lit(0.05) * F.pow(risk, 4) * _uniform(F, seed, "chargeback-b", card),
        5,
    )

    def pick(names: Sequence[str], salt: str) -> Column:
        index = F.floor(_uniform(F, seed, salt, card) * F.lit(len(names))) + 1
        return F.element_at(F.array(*[F.lit(n) for n in names]), index.cast("int"))

    base = base.select(
        "*",
        pick(_FIRST_NAMES, "first").alias("_first"),
        pick(_LAST_NAMES, "last").alias("_last"),
        pick(_EMAIL_DOMAINS, "domain").alias("_domain"),
    )
    first, last, domain = F.col("_first"), F.col("_last"), F.col("_domain")
    number = card.cast("string")
    clean_email = F.concat(first, F.lit("."), last, number, F.lit("@"), domain)
    mixed_email = F.concat(
        F.initcap(first), F.lit("."), F.initcap(last), number, F.lit("@"), F.initcap(domain)
    )
    base = _with_pan(base, F, "_card", seed, "_clean_card_number").select(
        "*",
        clean_email.alias("_clean_email"),
        _dirt_kind(F, dirt, PAN_DIRT_KINDS, F.col("_u_pan_dirt")).alias("_card_number_dirt"),
        _dirt_kind(F, dirt, EMAIL_DIRT_KINDS, F.col("_u_email_dirt")).alias("_email_dirt"),
    )
    card_number = _dirty(
        F,
        F.col("_clean_card_number"),
        F.col("_card_number_dirt"),
        F.col("_u_pan_v"),
        _uniform(F, seed, "pan-dirt-char", card),
    )
    email = _dirty(
        F,
        F.col("_clean_email"),
        F.col("_email_dirt"),
        F.col("_u_email_v"),
        _uniform(F, seed, "email-dirt-char", card),
        mixed_case=mixed_email,
    )
    out = [
        card_number.alias("card_number"),
        age,
        chargeback.alias("chargeback_rate_90d"),
        prior.alias("prior_fraud_flag"),
        email.alias("email"),
    ]
    if with_truth:
        out += [
            card.alias("_card_id"),
            F.col("_clean_card_number"),
            F.col("_card_number_dirt"),
            F.col("_clean_email"),
            F.col("_email_dirt"),
        ]
    return base.select(*out)


_AGREEMENTS = (
    ("US", "ACTIVE", "issuer-consortium-us"),
    ("EU", "ACTIVE", "issuer-consortium-eu"),
    ("UK", "ACTIVE", "issuer-consortium-uk"),
    ("APAC", "SUSPENDED", "issuer-consortium-apac"),
    ("LATAM", "ACTIVE", "issuer-consortium-latam"),
    ("MEA", "SUSPENDED", "issuer-consortium-mea"),
)


def partner_agreements(spark: SparkSession) -> DataFrame:
    """Data-sharing agreements per residency region: ``region``, ``agreement_status``, ``partner``.

    One row per region of :data:`REGIONS`; APAC and MEA are ``SUSPENDED``, the others
    ``ACTIVE`` — so a consent policy driven by this table drops about 18 % of the
    provider's cards.

    Example:
        >>> partner_agreements(spark).where("agreement_status = 'ACTIVE'").count()  # doctest: +SKIP
        4
    """
    return spark.createDataFrame(
        list(_AGREEMENTS), "region string, agreement_status string, partner string"
    )


_REASONS = (
    ("CUSTOMER_REQUEST", 0.6),
    ("ACCOUNT_CLOSED", 0.2),
    ("PARTNER_AGREEMENT_ENDED", 0.1),
    ("REGULATORY_REQUEST", 0.1),
)
_SOURCES = (("issuer_portal", 0.4), ("mobile_app", 0.3), ("call_center", 0.2), ("partner_api", 0.1))
_REVOKED_FROM = 1_767_225_600  # 2026-01-01T00:00:00Z


def opt_outs(
    spark: SparkSession,
    *,
    cards: int = 50_000,
    fraction: float = 0.01,
    seed: int = 7,
    duplicates: float = 0.0,
) -> DataFrame:
    """Opt-outs for a seeded subset of the provider's cards, with clean PANs.

    Columns: ``card_number`` (string, clean), ``revoked_at`` (timestamp in the first half of
    2026), ``reason_code`` and ``source`` (strings). Each card ``0 .. cards-1`` of the
    universe of ``seed`` opts out with probability ``fraction``; with ``duplicates > 0`` that
    share of opt-outs appears a second time an hour later (a repeated request), as real
    revocation feeds do. Tokenize ``card_number`` and rename it ``token`` to get a
    revocation batch.

    Example:
        >>> opt_outs(spark, cards=1_000, fraction=0.05, seed=7).columns  # doctest: +SKIP
        ['card_number', 'revoked_at', 'reason_code', 'source']
    """
    owner = "opt_outs"
    _check_count(owner, "cards", cards, minimum=1)
    _check_rate(owner, "fraction", fraction)
    _check_rate(owner, "duplicates", duplicates)
    _validate_seed(owner, seed)
    F = functions_for(spark)
    card = F.col("id")
    seconds = F.floor(_uniform(F, seed, "revoked-at", card) * F.lit(181 * 86_400))
    base = spark.range(cards).where(_uniform(F, seed, "opt-out", card) < F.lit(fraction))
    base = _with_pan(base, F, "id", seed, "_pan")
    first = base.select(
        F.col("_pan").alias("card_number"),
        F.timestamp_seconds(F.lit(_REVOKED_FROM) + seconds).alias("revoked_at"),
        _choose(F, _uniform(F, seed, "reason", card), _REASONS).alias("reason_code"),
        _choose(F, _uniform(F, seed, "source", card), _SOURCES).alias("source"),
    )
    if duplicates <= 0.0:
        return first
    again = base.where(_uniform(F, seed, "opt-out-again", card) < F.lit(duplicates)).select(
        F.col("_pan").alias("card_number"),
        F.timestamp_seconds(F.lit(_REVOKED_FROM + 3_600) + seconds).alias("revoked_at"),
        _choose(F, _uniform(F, seed, "reason", card), _REASONS).alias("reason_code"),
        _choose(F, _uniform(F, seed, "source", card), _SOURCES).alias("source"),
    )
    return first.unionByName(again)


def luhn_valid(pan: str) -> bool:
    """True when ``pan`` is all ASCII digits (at least 2) and passes the Luhn check.

    Example:
        >>> luhn_valid("378282246310005"), luhn_valid("4111 1111 1111 1111"), luhn_valid("")
        (True, False, False)
    """
    if len(pan) < 2 or not all("0" <= c <= "9" for c in pan):
        return False
    total = 0
    for position, char in enumerate(reversed(pan)):
        digit = ord(char) - 48
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0
