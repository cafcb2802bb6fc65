"""The provider's table: transaction-level fraud signals, with hot cards (:class:`Skew`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import cast

from cleanjoin._spark import functions_for
from cleanjoin._typing import Column, DataFrame, SparkSession
from cleanjoin.errors import InvalidArgumentError
from cleanjoin.synth._checks import check_count, check_rate, check_seed
from cleanjoin.synth._columns import AMOUNT_BANDS, MCC_TABLE, REGION_TABLE
from cleanjoin.synth._dirt import Dirt, with_dirty_pan
from cleanjoin.synth._seeded import cases, choose, seed_int, spark_range, uniform, with_uniforms


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
        check_count("Skew", "hot_cards", self.hot_cards, minimum=0)
        check_rate("Skew", "hot_share", self.hot_share)
        if self.hot_share > 0 and self.hot_cards == 0:
            raise InvalidArgumentError("'hot_share' in Skew must be 0 when 'hot_cards' is 0")

    @classmethod
    def none(cls) -> Skew:
        """No hot cards."""
        return cls(hot_cards=0, hot_share=0.0)


def _with_card_attributes(df: DataFrame, F: ModuleType, card: str, seed: int) -> DataFrame:
    """``df`` plus ``_region``, ``_consent`` and ``_risk``: card-level attributes both
    parties agree on (functions of ``(seed, card)``)."""
    card_col = F.col(card)
    staged = df.select(
        "*",
        uniform(F, seed, "region", card_col).alias("_u_region"),
        uniform(F, seed, "consent", card_col).alias("_u_consent"),
        uniform(F, seed, "risk", card_col).alias("_risk"),
    )
    region = choose(F, F.col("_u_region"), [(r, s) for r, s, _, _ in REGION_TABLE])
    staged = staged.select("*", region.alias("_region"))
    not_eligible = cases(
        F, [(F.col("_region") == r, F.lit(share)) for r, *_, share in REGION_TABLE]
    )
    consent_u = F.col("_u_consent")
    consent = (
        F.when(consent_u < not_eligible * 0.6, F.lit("OPTED_OUT"))
        .when(consent_u < not_eligible, F.lit("RESTRICTED"))
        .otherwise(F.lit("CONSORTIUM_ELIGIBLE"))
    )
    return staged.select("*", consent.alias("_consent")).drop("_u_region", "_u_consent")


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
    check_count(owner, "cards", cards, minimum=1)
    check_count(owner, "rows", rows, minimum=cards)
    check_seed(owner, seed)
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
    hot_offset = seed_int(seed, "hot-offset", step)
    hot_k = F.floor(uniform(F, seed, "hot-card", rid) * F.lit(max(skew.hot_cards, 1)))
    hot_card = F.pmod(F.lit(hot_offset) + hot_k * F.lit(step), F.lit(cards))
    random_card = F.floor(uniform(F, seed, "card", rid) * F.lit(cards))
    hot_draw = (rid >= F.lit(cards)) & (uniform(F, seed, "hot", rid) < F.lit(hot_p))
    card = F.when(rid < F.lit(cards), rid).when(hot_draw, hot_card).otherwise(random_card)
    base = spark_range(spark, rows, partitions, owner).select(
        rid.alias("_rid"), card.cast("long").alias("_card"), hot_draw.alias("_hot")
    )
    rid, card = F.col("_rid"), F.col("_card")
    base = _with_card_attributes(base, F, "_card", seed)
    base = with_uniforms(
        base, F, "_rid", seed, ["mcc", "count", "cross", "velocity", "fraud", "pan_dirt", "pan_v"]
    )
    mcc = choose(F, F.col("_u_mcc"), [(m[0], m[1]) for m in MCC_TABLE])
    base = base.select("*", mcc.alias("_mcc"))
    mcc, region, risk = F.col("_mcc"), F.col("_region"), F.col("_risk")

    def by_mcc(index: int) -> Column:
        expr = cases(F, [(mcc == entry[0], F.lit(entry[index])) for entry in MCC_TABLE])
        return cast("Column", expr.otherwise(F.lit(0.0)))

    region_cross = cases(F, [(region == r, F.lit(cross)) for r, _, cross, _ in REGION_TABLE])
    noise = (
        uniform(F, seed, "amount-a", rid) + uniform(F, seed, "amount-b", rid) - F.lit(1.0)
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

    base = with_dirty_pan(base, F, card="_card", key="_rid", seed=seed, dirt=dirt)
    out = [
        F.col("_dirty_card_number").alias("card_number"),
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
