"""The consumer's table: account-level behavior, overlapping the provider's cards exactly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from cleanjoin._spark import functions_for
from cleanjoin._typing import Column, DataFrame, SparkSession
from cleanjoin.errors import InvalidArgumentError
from cleanjoin.synth._checks import check_count, check_rate, check_seed
from cleanjoin.synth._columns import (
    ACCOUNT_AGE_BANDS,
    AGE_SHARES,
    EMAIL_DOMAINS,
    FIRST_NAMES,
    LAST_NAMES,
)
from cleanjoin.synth._dirt import EMAIL_DIRT_KINDS, Dirt, dirt_kind, dirty, with_dirty_pan
from cleanjoin.synth._seeded import choose, seed_int, spark_range, uniform, with_uniforms


def account_behavior(
    spark: SparkSession, *, cards: int = 50_000, overlap: float = 0.6, seed: int = 7,
    dirt: Dirt | None = None, provider_cards: int | None = None, with_truth: bool = False,
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
    check_count(owner, "cards", cards, minimum=1)
    check_rate(owner, "overlap", overlap)
    check_seed(owner, seed)
    dirt = Dirt() if dirt is None else dirt
    universe = cards if provider_cards is None else provider_cards
    check_count(owner, "provider_cards", universe, minimum=1)
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
    shift = seed_int(seed, "overlap-shift", cards)
    rank = F.pmod(account * F.lit(multiplier) + F.lit(shift), F.lit(cards))
    card = F.when(rank < F.lit(matched), rank).otherwise(rank - F.lit(matched) + F.lit(universe))
    base = spark_range(spark, cards, partitions, owner).select(
        account.alias("_account"), card.cast("long").alias("_card")
    )
    card = F.col("_card")
    base = with_uniforms(
        base.select("*", uniform(F, seed, "risk", card).alias("_risk")),
        F,
        "_card",
        seed,
        ["age", "prior", "pan_dirt", "pan_v", "email_dirt", "email_v"],
    )
    risk = F.col("_risk")
    # riskier cards skew to younger accounts (band order is young to old)
    age_u = F.col("_u_age") * (F.lit(1.0) - F.lit(0.5) * F.pow(risk, 2))
    age = choose(F, age_u, list(zip(ACCOUNT_AGE_BANDS, AGE_SHARES, strict=True)))
    base = base.select("*", age.alias("account_age_band"))
    age = F.col("account_age_band")
    young = F.when(age == ACCOUNT_AGE_BANDS[0], F.lit(0.03)).otherwise(F.lit(0.0))
    prior_p = F.lit(0.008) + F.lit(0.08) * F.pow(risk, 3) + young
    prior = (F.col("_u_prior") < prior_p).cast("int")
    chargeback = F.round(
        F.lit(0.002) * uniform(F, seed, "chargeback-a", card)
        + F.lit(0.05) * F.pow(risk, 4) * uniform(F, seed, "chargeback-b", card),
        5,
    )

    def pick(names: Sequence[str], salt: str) -> Column:
        index = F.floor(uniform(F, seed, salt, card) * F.lit(len(names))) + 1
        return cast("Column", F.element_at(F.array(*[F.lit(n) for n in names]), index.cast("int")))

    base = base.select(
        "*",
        pick(FIRST_NAMES, "first").alias("_first"),
        pick(LAST_NAMES, "last").alias("_last"),
        pick(EMAIL_DOMAINS, "domain").alias("_domain"),
    )
    first, last, domain = F.col("_first"), F.col("_last"), F.col("_domain")
    number = card.cast("string")
    clean_email = F.concat(first, F.lit("."), last, number, F.lit("@"), domain)
    mixed_email = F.concat(
        F.initcap(first), F.lit("."), F.initcap(last), number, F.lit("@"), F.initcap(domain)
    )
    base = with_dirty_pan(base, F, card="_card", key="_card", seed=seed, dirt=dirt).select(
        "*",
        clean_email.alias("_clean_email"),
        dirt_kind(F, dirt, EMAIL_DIRT_KINDS, F.col("_u_email_dirt")).alias("_email_dirt"),
    )
    email = dirty(
        F,
        F.col("_clean_email"),
        F.col("_email_dirt"),
        F.col("_u_email_v"),
        uniform(F, seed, "email-dirt-char", card),
        mixed_case=mixed_email,
    )
    out = [
        F.col("_dirty_card_number").alias("card_number"),
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
