"""Tests of cleanjoin.synth: schema, counts, overlap, skew, dirt rates, PANs, determinism."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import unicodedata
from dataclasses import FrozenInstanceError
from typing import Any

import pandas as pd
import pytest
from chispa import assert_df_equality

from cleanjoin import synth
from cleanjoin.errors import InvalidArgumentError
from cleanjoin.synth import (
    CONSUMER_SCHEMA,
    EMAIL_DIRT_KINDS,
    PAN_DIRT_KINDS,
    PROVIDER_SCHEMA,
    Dirt,
    Skew,
    account_behavior,
    card_numbers,
    luhn_valid,
    opt_outs,
    partner_agreements,
    transaction_signals,
)

ROWS, CARDS, SEED = 20_000, 2_000, 11
HOT = Skew(hot_cards=5, hot_share=0.1)  # ~400 rows per hot card
DIRT_RATE = 0.04
ZERO_WIDTH = "\u200b\u200c\u200d\ufeff"
PREFIXES = {
    "visa": lambda p: p.startswith("4"),
    "mastercard": lambda p: 51 <= int(p[:2]) <= 55 or 2221 <= int(p[:4]) <= 2720,
    "amex": lambda p: p[:2] in ("34", "37"),
    "discover": lambda p: p.startswith(("6011", "65")),
    "jcb": lambda p: 3528 <= int(p[:4]) <= 3589,
    "unionpay": lambda p: p.startswith("62"),
    "diners": lambda p: p[:2] in ("36", "38"),
}


def ddl_types(ddl: str) -> list[tuple[str, str]]:
    return [tuple(part.split()) for part in ddl.split(", ")]  # type: ignore[misc]


def within_binomial(count: int, n: int, p: float, *, sigmas: float = 5.0) -> bool:
    """``count`` is a plausible Binomial(n, p) draw (5 standard deviations, +1 for p near 0)."""
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p)) + 1


def classify(value: Any, *, email: bool = False) -> str:
    """The dirt kind a value shows, judged from the value alone."""
    if value is None:
        return "null"
    if value == "":
        return "empty"
    if "\t" in value:
        return "tabs"
    if "\u00a0" in value:
        return "nbsp"
    if any(c in value for c in ZERO_WIDTH):
        return "zero_width"
    if any("\uff10" <= c <= "\uff19" for c in value):
        return "fullwidth"
    if value != value.strip(" "):
        return "spaces"
    if email:
        return "email_case" if value != value.lower() else "clean"
    if " " in value or "-" in value:
        return "separators"
    return "leading_zeros" if value.startswith("0") else "clean"


def normalize_pan(value: str) -> str:
    text = unicodedata.normalize("NFKC", value)
    text = "".join(c for c in text if c not in ZERO_WIDTH and not c.isspace() and c != "-")
    return text.lstrip("0")


def normalize_email(value: str) -> str:
    text = unicodedata.normalize("NFKC", value)
    return "".join(c for c in text if c not in ZERO_WIDTH).strip().lower()


@pytest.fixture(scope="module")
def provider(spark_classic: Any) -> pd.DataFrame:
    df = transaction_signals(
        spark_classic,
        rows=ROWS,
        cards=CARDS,
        seed=SEED,
        skew=HOT,
        dirt=Dirt.uniform(DIRT_RATE),
        with_truth=True,
    )
    return df.toPandas()


@pytest.fixture(scope="module")
def consumer(spark_classic: Any) -> pd.DataFrame:
    df = account_behavior(
        spark_classic,
        cards=3_000,
        overlap=0.5,
        seed=SEED,
        provider_cards=CARDS,
        dirt=Dirt.uniform(DIRT_RATE),
        with_truth=True,
    )
    return df.toPandas()


# ------------------------------------------------------------------ pure Python


def test_luhn_valid_known_numbers() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("378282246310005")  # Amex test number
    assert luhn_valid("30569309025904")  # Diners test number
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("4111-1111-1111-1111")
    assert not luhn_valid("")
    assert not luhn_valid("４１１１１１１１１１１１１１１１")


def test_dirt_defaults_and_validation() -> None:
    assert 0.04 <= Dirt().pan_rate <= 0.08
    assert Dirt.none().pan_rate == 0.0
    assert Dirt.none().email_rate == 0.0
    assert Dirt.uniform(0.1).rate("tabs") == 0.1
    with pytest.raises(FrozenInstanceError):
        Dirt().tabs = 0.5  # type: ignore[misc]
    with pytest.raises(
        InvalidArgumentError, match=re.escape("'nbsp' in Dirt must be between 0 and 1, got -0.1")
    ):
        Dirt(nbsp=-0.1)
    with pytest.raises(
        InvalidArgumentError, match=re.escape("Dirt rates for card_number add up to 1.8000")
    ):
        Dirt.uniform(0.2)
    with pytest.raises(InvalidArgumentError, match=re.escape('Unknown dirt kind "case"')):
        Dirt().rate("case")


def test_skew_validation() -> None:
    assert Skew.none() == Skew(hot_cards=0, hot_share=0.0)
    with pytest.raises(InvalidArgumentError, match=re.escape("'hot_share' in Skew must be 0")):
        Skew(hot_cards=0, hot_share=0.1)
    with pytest.raises(InvalidArgumentError, match=re.escape("'hot_cards' in Skew must be >= 0")):
        Skew(hot_cards=-1)


def test_generators_validate_before_touching_spark() -> None:
    with pytest.raises(
        InvalidArgumentError, match=re.escape("'rows' in transaction_signals must be >= 10")
    ):
        transaction_signals(None, rows=5, cards=10)
    with pytest.raises(InvalidArgumentError, match=re.escape("needs 500 of the 0 rows left")):
        transaction_signals(None, rows=5_000, cards=5_000, skew=Skew(hot_cards=5, hot_share=0.1))
    with pytest.raises(InvalidArgumentError, match=re.escape("'overlap' in account_behavior")):
        account_behavior(None, cards=10, overlap=1.5)
    with pytest.raises(InvalidArgumentError, match=re.escape("but provider_cards is 100")):
        account_behavior(None, cards=1_000, overlap=0.5, provider_cards=100)
    with pytest.raises(InvalidArgumentError, match=re.escape("'seed' in opt_outs must be an int")):
        opt_outs(None, cards=10, fraction=0.1, seed="7")  # type: ignore[arg-type]


def test_brand_table_is_consistent() -> None:
    shares = sum(branch[1] for branch in synth._PAN_BRANCHES)
    assert math.isclose(shares, 1.0)
    for _, _, length, first, count in synth._PAN_BRANCHES:
        assert len(str(first)) == len(str(first + count - 1))  # fixed prefix width per range
        assert length - len(str(first)) - 1 <= 16
    assert set(synth.BRAND_LENGTHS) == set(PREFIXES)


def test_import_cleanjoin_leaves_synth_unimported_until_used() -> None:
    probe = (
        "import cleanjoin, sys; print('cleanjoin.synth' in sys.modules); "
        "from cleanjoin import synth; print(synth is cleanjoin.synth, synth.luhn_valid('42'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.split() == ["False", "True", "True"]


# ------------------------------------------------------------------ Spark: schema and counts


def test_schemas_are_exactly_as_specified(spark_classic: Any) -> None:
    p = transaction_signals(spark_classic, rows=50, cards=10, skew=Skew.none())
    c = account_behavior(spark_classic, cards=10)
    assert [(n, t) for n, t in p.dtypes] == ddl_types(PROVIDER_SCHEMA)
    assert [(n, t) for n, t in c.dtypes] == ddl_types(CONSUMER_SCHEMA)
    assert tuple(p.columns) == synth.PROVIDER_COLUMNS
    assert tuple(c.columns) == synth.CONSUMER_COLUMNS


def test_provider_row_and_card_counts(provider: pd.DataFrame) -> None:
    assert len(provider) == ROWS
    assert provider["_card_id"].nunique() == CARDS
    assert provider["_clean_card_number"].nunique() == CARDS
    assert set(provider["_card_id"]) == set(range(CARDS))


def test_clean_provider_has_exactly_the_requested_distinct_card_numbers(spark_classic: Any) -> None:
    df = transaction_signals(
        spark_classic, rows=3_000, cards=700, seed=5, dirt=Dirt.none(), skew=Skew(3, 0.05)
    )
    assert df.count() == 3_000
    assert df.select("card_number").distinct().count() == 700
    assert df.where("card_number IS NULL OR card_number = ''").count() == 0


def test_value_ranges_and_per_card_attributes(provider: pd.DataFrame) -> None:
    assert set(provider["merchant_category_code"]) <= set(synth.MERCHANT_CATEGORY_CODES)
    assert set(provider["txn_amount_band"]) == set(synth.AMOUNT_BANDS)
    assert set(provider["cross_border_flag"]) == {0, 1}
    assert set(provider["confirmed_fraud_flag"]) == {0, 1}
    assert provider["txn_count_1h"].between(0, 50).all()
    assert provider["network_velocity_score"].between(0.0, 1.0).all()
    assert set(provider["sharing_consent_flag"]) == set(synth.CONSENT_VALUES)
    assert set(provider["data_residency_region"]) == set(synth.REGIONS)
    eligible = (provider["sharing_consent_flag"] == "CONSORTIUM_ELIGIBLE").mean()
    assert 0.8 < eligible < 0.97
    per_card = provider.groupby("_card_id")[
        ["sharing_consent_flag", "data_residency_region"]
    ].nunique()
    assert (per_card == 1).all().all()


def test_fraud_is_rare_and_differs_by_segment(provider: pd.DataFrame) -> None:
    rate = provider["confirmed_fraud_flag"].mean()
    assert 0.005 < rate < 0.04
    mcc = provider["merchant_category_code"]
    risky = provider[mcc.isin(["4829", "7995", "5732"])]["confirmed_fraud_flag"].mean()
    everyday = provider[mcc.isin(["5411", "5812", "5912", "5814", "4111"])][
        "confirmed_fraud_flag"
    ].mean()
    assert risky > 2 * everyday
    fast = provider[provider["network_velocity_score"] > 0.6]["confirmed_fraud_flag"].mean()
    slow = provider[provider["network_velocity_score"] < 0.3]["confirmed_fraud_flag"].mean()
    assert fast > 2 * slow


def test_hot_cards_have_hundreds_of_rows(provider: pd.DataFrame) -> None:
    per_card = provider["_card_id"].value_counts()
    expected = HOT.hot_share * ROWS / HOT.hot_cards  # 400
    top = per_card.iloc[: HOT.hot_cards]
    assert (top > expected / 2).all()
    assert (top >= 100).all()
    assert per_card.iloc[HOT.hot_cards] < 40  # the rest: ~Poisson(1 + 7.5 spare rows / card)


def test_clean_pans_are_luhn_valid_with_brand_lengths_and_prefixes(spark_classic: Any) -> None:
    cards = card_numbers(spark_classic, cards=3_000, seed=3).toPandas()
    assert cards["card_number"].nunique() == 3_000
    assert set(cards["brand"]) == set(PREFIXES)
    for brand, pan in zip(cards["brand"], cards["card_number"], strict=True):
        assert luhn_valid(pan)
        assert len(pan) == synth.BRAND_LENGTHS[brand]
        assert PREFIXES[brand](pan), brand
    assert (cards["brand"] == "visa").mean() > 0.35


def test_card_universe_is_shared_by_both_parties(
    provider: pd.DataFrame, consumer: pd.DataFrame
) -> None:
    pans = dict(zip(provider["_card_id"], provider["_clean_card_number"], strict=True))
    inside = consumer[consumer["_card_id"] < CARDS]
    assert all(
        pans[c] == pan
        for c, pan in zip(inside["_card_id"], inside["_clean_card_number"], strict=True)
    )
    assert consumer["_clean_card_number"].map(luhn_valid).all()


def test_overlap_is_exact(provider: pd.DataFrame, consumer: pd.DataFrame) -> None:
    assert len(consumer) == 3_000
    assert consumer["_card_id"].nunique() == 3_000
    assert consumer["_clean_card_number"].nunique() == 3_000
    shared = set(consumer["_clean_card_number"]) & set(provider["_clean_card_number"])
    assert len(shared) == round(0.5 * 3_000)


def test_default_overlap_with_equal_universes(spark_classic: Any) -> None:
    p = transaction_signals(
        spark_classic, rows=1_200, cards=1_000, seed=2, dirt=Dirt.none(), skew=Skew.none()
    )
    c = account_behavior(spark_classic, cards=1_000, overlap=0.6, seed=2, dirt=Dirt.none())
    matched = c.join(p.select("card_number").distinct(), "card_number").count()
    assert matched == 600


@pytest.mark.parametrize(("column", "kinds"), [("card_number", PAN_DIRT_KINDS)])
def test_provider_dirt_rates(provider: pd.DataFrame, column: str, kinds: tuple[str, ...]) -> None:
    labels = provider["_card_number_dirt"].value_counts()
    n = len(provider)
    for kind in kinds:
        assert within_binomial(int(labels.get(kind, 0)), n, DIRT_RATE), (kind, labels.get(kind, 0))
    assert within_binomial(int(labels["clean"]), n, 1 - DIRT_RATE * len(kinds))


def test_provider_dirt_shows_in_values_and_normalizes_back(provider: pd.DataFrame) -> None:
    seen = provider["card_number"].map(classify)
    assert (seen == provider["_card_number_dirt"]).all()
    recoverable = provider[~provider["_card_number_dirt"].isin(["empty", "null"])]
    normalized = recoverable["card_number"].map(normalize_pan)
    assert (normalized == recoverable["_clean_card_number"]).all()
    zeros = provider[provider["_card_number_dirt"] == "leading_zeros"]["card_number"]
    assert zeros.map(luhn_valid).all()  # the Luhn check cannot see the padding
    assert (zeros.str.len() >= 19).all()


def test_consumer_dirt_rates_values_and_normalization(consumer: pd.DataFrame) -> None:
    n = len(consumer)
    for column, kinds, is_email in (
        ("card_number", PAN_DIRT_KINDS, False),
        ("email", EMAIL_DIRT_KINDS, True),
    ):
        labels = consumer[f"_{column}_dirt"].value_counts()
        for kind in kinds:
            assert within_binomial(int(labels.get(kind, 0)), n, DIRT_RATE), (column, kind)
        seen = consumer[column].map(lambda v, e=is_email: classify(v, email=e))
        assert (seen == consumer[f"_{column}_dirt"]).all(), column
    ok = consumer[~consumer["_email_dirt"].isin(["empty", "null"])]
    assert (ok["email"].map(normalize_email) == ok["_clean_email"]).all()
    assert ok["_clean_email"].str.fullmatch(r"[a-z]+\.[a-z]+\d+@[a-z.]+").all()


def test_consumer_values(consumer: pd.DataFrame) -> None:
    assert set(consumer["account_age_band"]) == set(synth.ACCOUNT_AGE_BANDS)
    assert set(consumer["prior_fraud_flag"]) == {0, 1}
    assert consumer["prior_fraud_flag"].mean() < 0.1
    assert consumer["chargeback_rate_90d"].between(0.0, 1.0).all()


def test_clean_data_has_no_dirt(spark_classic: Any) -> None:
    c = account_behavior(
        spark_classic, cards=500, seed=4, dirt=Dirt.none(), with_truth=True
    ).toPandas()
    assert (c["card_number"] == c["_clean_card_number"]).all()
    assert (c["email"] == c["_clean_email"]).all()


def test_opt_outs_and_partner_agreements(spark_classic: Any) -> None:
    out = opt_outs(spark_classic, cards=4_000, fraction=0.1, seed=SEED, duplicates=0.5)
    assert out.dtypes == [
        ("card_number", "string"),
        ("revoked_at", "timestamp"),
        ("reason_code", "string"),
        ("source", "string"),
    ]
    rows = out.toPandas()
    universe = set(card_numbers(spark_classic, cards=4_000, seed=SEED).toPandas()["card_number"])
    assert set(rows["card_number"]) <= universe
    distinct = rows["card_number"].nunique()
    assert within_binomial(distinct, 4_000, 0.1)
    assert within_binomial(len(rows) - distinct, distinct, 0.5)
    assert rows["revoked_at"].min() >= pd.Timestamp("2026-01-01")
    agreements = partner_agreements(spark_classic).toPandas()
    assert list(agreements.columns) == ["region", "agreement_status", "partner"]
    assert set(agreements["region"]) == set(synth.REGIONS)
    assert set(agreements["agreement_status"]) == {"ACTIVE", "SUSPENDED"}


# ------------------------------------------------------------------ determinism, both modes


def test_same_seed_same_rows_other_seed_other_rows(spark: Any) -> None:
    def make(seed: int) -> Any:
        return transaction_signals(spark, rows=600, cards=100, seed=seed, skew=Skew(2, 0.1))

    assert_df_equality(make(3), make(3), ignore_row_order=True)
    a = {r[0] for r in make(3).select("card_number").collect()}
    b = {r[0] for r in make(4).select("card_number").collect()}
    assert len(a & b) < 5
    c1 = account_behavior(spark, cards=200, seed=3)
    assert_df_equality(c1, account_behavior(spark, cards=200, seed=3), ignore_row_order=True)


def test_identical_in_classic_and_connect(spark_classic: Any, spark_connect: Any) -> None:
    def rows(session: Any) -> pd.DataFrame:
        p = transaction_signals(
            session, rows=800, cards=150, seed=9, skew=Skew(2, 0.1), with_truth=True
        )
        frame = p.toPandas()
        return frame.sort_values(list(frame.columns)).reset_index(drop=True)

    pd.testing.assert_frame_equal(rows(spark_classic), rows(spark_connect))
    classic = account_behavior(spark_classic, cards=300, seed=9).toPandas()
    connect = account_behavior(spark_connect, cards=300, seed=9).toPandas()
    pd.testing.assert_frame_equal(classic, connect)
