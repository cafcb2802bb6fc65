"""Side tables of the flow: data-sharing agreements per region and opt-outs (revocations)."""

from __future__ import annotations

from typing import cast

from cleanjoin._spark import functions_for
from cleanjoin._typing import DataFrame, SparkSession
from cleanjoin.synth._checks import check_count, check_rate, check_seed
from cleanjoin.synth._pan import with_pan
from cleanjoin.synth._seeded import choose, uniform

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
    return cast("DataFrame", spark.createDataFrame(
        list(_AGREEMENTS), "region string, agreement_status string, partner string"
    ))


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
    check_count(owner, "cards", cards, minimum=1)
    check_rate(owner, "fraction", fraction)
    check_rate(owner, "duplicates", duplicates)
    check_seed(owner, seed)
    F = functions_for(spark)
    card = F.col("id")
    seconds = F.floor(uniform(F, seed, "revoked-at", card) * F.lit(181 * 86_400))
    base = spark.range(cards).where(uniform(F, seed, "opt-out", card) < F.lit(fraction))
    base = with_pan(base, F, "id", seed, "_pan")

    def requests(rows: DataFrame, revoked_from: int) -> DataFrame:
        return rows.select(
            F.col("_pan").alias("card_number"),
            F.timestamp_seconds(F.lit(revoked_from) + seconds).alias("revoked_at"),
            choose(F, uniform(F, seed, "reason", card), _REASONS).alias("reason_code"),
            choose(F, uniform(F, seed, "source", card), _SOURCES).alias("source"),
        )

    first = requests(base, _REVOKED_FROM)
    if duplicates <= 0.0:
        return first
    again = base.where(uniform(F, seed, "opt-out-again", card) < F.lit(duplicates))
    return first.unionByName(requests(again, _REVOKED_FROM + 3_600))
