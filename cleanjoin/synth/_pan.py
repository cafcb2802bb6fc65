"""Card numbers: the brands and issuer prefixes of the card universe, one PAN per card
and seed (a bijection), with a valid Luhn check digit."""

from __future__ import annotations

from types import ModuleType
from typing import Any, cast

from cleanjoin._luhn import luhn_ok
from cleanjoin._spark import functions_for
from cleanjoin._typing import Column, DataFrame, SparkSession
from cleanjoin.synth._checks import check_count, check_seed
from cleanjoin.synth._seeded import cases, choose, seed_int, uniform

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

_MIX = 7_919_199_382_716_473  # odd, not a multiple of 5: coprime to 10**k


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
    return cast("Column", (F.lit(10) - total % 10) % 10)


def _mix16(F: ModuleType, card: Column, offset: int) -> Column:
    """``(card * _MIX + offset) mod 10**16`` in 64-bit arithmetic (``card < 9 * 10**9``)."""
    mix_hi, mix_lo = divmod(_MIX, 10**8)
    high = F.pmod(card * F.lit(mix_hi), F.lit(10**8)) * F.lit(10**8)
    return cast("Column", F.pmod(high + card * F.lit(mix_lo) + F.lit(offset), F.lit(10**16)))


# one branch per (brand, issuer prefix range): brand, share of cards, PAN length, first, count
_PAN_BRANCHES: tuple[tuple[str, float, int, int, int], ...] = tuple(
    (brand, share * weight / sum(w for *_, w in ranges), length, first, count)
    for brand, share, length, ranges in _BRANDS
    for first, count, weight in ranges
)


def _pan_branch(F: ModuleType, u: Column) -> Column:
    return choose(F, u, [(i, b[1]) for i, b in enumerate(_PAN_BRANCHES)]).cast("int")


def with_pan(df: DataFrame, F: ModuleType, card: str, seed: int, name: str) -> DataFrame:
    """``df`` plus a column ``name``: the clean PAN of universe card ``card`` (a bijection per seed).

    Built in stages (uniforms, 18-digit partial number, check digit) so that Spark does
    not collapse the projections and evaluate each hash once per use. The partial number is
    ``prefix * 10**k + (card * _MIX + offset) mod 10**k`` with ``k`` middle digits: distinct
    cards of one prefix get distinct middle digits, so distinct cards get distinct PANs.
    """
    card_col = F.col(card)
    offset = seed_int(seed, "pan-offset", 10**16)
    staged = df.select(
        "*",
        _pan_branch(F, uniform(F, seed, "brand", card_col)).alias("_pan_branch"),
        uniform(F, seed, "prefix", card_col).alias("_pan_pick"),
        _mix16(F, card_col, offset).alias("_pan_mix"),
    )
    branch, pick, mix = F.col("_pan_branch"), F.col("_pan_pick"), F.col("_pan_mix")
    branches = []
    for index, (_, _, length, first, count) in enumerate(_PAN_BRANCHES):
        k = length - len(str(first)) - 1
        prefix = F.lit(first) + F.floor(pick * F.lit(count))
        value = prefix.cast("long") * F.lit(10**k) + F.pmod(mix, F.lit(10**k))
        branches.append((branch == index, value))
    partial = cases(F, branches)
    staged = staged.select("*", partial.alias("_pan_partial"))
    pan = F.concat(
        F.col("_pan_partial").cast("string"), _luhn_digit(F, "_pan_partial").cast("string")
    )
    return staged.select("*", pan.alias(name)).drop(
        "_pan_branch", "_pan_pick", "_pan_mix", "_pan_partial"
    )


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
    check_count("card_numbers", "cards", cards, minimum=1)
    check_count("card_numbers", "start", start, minimum=0)
    check_seed("card_numbers", seed)
    F = functions_for(spark)
    card = F.col("id")
    base = spark.range(start, start + cards).select(
        card.alias("card_id"), _pan_branch(F, uniform(F, seed, "brand", card)).alias("_branch")
    )
    brand = cases(F, [(F.col("_branch") == i, F.lit(b[0])) for i, b in enumerate(_PAN_BRANCHES)])
    base = base.select("card_id", brand.alias("brand"))
    return with_pan(base, F, "card_id", seed, "card_number")


def luhn_valid(pan: str) -> bool:
    """True when ``pan`` is all ASCII digits (at least 2) and passes the Luhn check.

    Example:
        >>> luhn_valid("378282246310005"), luhn_valid("4111 1111 1111 1111"), luhn_valid("")
        (True, False, False)
    """
    return len(pan) >= 2 and all("0" <= c <= "9" for c in pan) and luhn_ok(pan)
