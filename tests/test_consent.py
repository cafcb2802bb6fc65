"""Tests of cleanjoin.consent: the frozen, validated consent policy and its Spark filter."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from cleanjoin.consent import ConsentPolicy
from cleanjoin.errors import ColumnNotFoundError, InvalidArgumentError

ROWS = [
    (1, "CONSORTIUM_ELIGIBLE", "EU"),
    (2, "CONSORTIUM_ELIGIBLE", "US"),
    (3, "NOT_ELIGIBLE", "EU"),
    (4, None, "EU"),
    (5, "CONSORTIUM_ELIGIBLE", None),
    (6, "CONSORTIUM_ELIGIBLE", "UK"),
]
SCHEMA = "id int, sharing_consent_flag string, data_residency_region string"


def _policy(**changes: Any) -> ConsentPolicy:
    settings: dict[str, Any] = {
        "side": "left",
        "consent_column": "sharing_consent_flag",
        "allowed_values": ("CONSORTIUM_ELIGIBLE",),
        "region_column": "data_residency_region",
        "allowed_regions": frozenset({"EU", "UK"}),
    }
    settings.update(changes)
    return ConsentPolicy(**settings)


# ---------------------------------------------------------------- pure validation


def test_policy_is_frozen_and_normalizes_collections() -> None:
    policy = _policy(
        allowed_values=["CONSORTIUM_ELIGIBLE", "CONSORTIUM_ELIGIBLE"],
        allowed_regions=["EU", "UK", "EU"],
    )
    assert policy.allowed_values == ("CONSORTIUM_ELIGIBLE",)
    assert policy.allowed_regions == frozenset({"EU", "UK"})
    assert policy.columns == ("sharing_consent_flag", "data_residency_region")
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.side = "right"  # type: ignore[misc]


def test_to_dict_round_trip() -> None:
    policy = _policy(side="right")
    data = policy.to_dict()
    assert data == {
        "side": "right",
        "consent_column": "sharing_consent_flag",
        "allowed_values": ["CONSORTIUM_ELIGIBLE"],
        "region_column": "data_residency_region",
        "allowed_regions": ["EU", "UK"],
    }
    assert ConsentPolicy.from_dict(data) == policy


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"side": "middle"},
            'Unknown side "middle" in ConsentPolicy. Available options are "left", "right".',
        ),
        (
            {"consent_column": None, "region_column": None, "allowed_regions": None},
            "ConsentPolicy needs at least one rule",
        ),
        ({"allowed_values": ()}, "'allowed_values' in ConsentPolicy must not be empty"),
        ({"allowed_values": "CONSORTIUM_ELIGIBLE"}, "not a single value"),
        ({"allowed_values": (1.5,)}, "must hold str, int or bool values, got float"),
        ({"allowed_regions": None}, "'allowed_regions' in ConsentPolicy is required"),
        ({"allowed_regions": "EU"}, "not a single value"),
        ({"allowed_regions": {""}}, "must hold non-empty strings"),
        ({"region_column": None}, "'allowed_regions' in ConsentPolicy needs 'region_column'"),
        (
            {"consent_column": ""},
            "'consent_column' in ConsentPolicy must be a non-empty column name",
        ),
    ],
)
def test_invalid_policies_are_rejected(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        _policy(**changes)


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape("unknown keys ['extra']")):
        ConsentPolicy.from_dict({"side": "left", "extra": 1})


def test_region_only_and_flag_only_policies() -> None:
    region_only = ConsentPolicy(
        side="left",
        consent_column=None,
        region_column="data_residency_region",
        allowed_regions={"EU"},
    )
    assert region_only.allowed_values == ()
    assert region_only.columns == ("data_residency_region",)
    flag_only = ConsentPolicy(side="right")
    assert flag_only.columns == ("sharing_consent_flag",)
    assert flag_only.allowed_values == ("CONSORTIUM_ELIGIBLE",)


# ---------------------------------------------------------------- Spark


def _ids(df: Any) -> list[int]:
    return sorted(row["id"] for row in df.collect())


def test_condition_filters_and_nulls_are_not_shared(spark: Any) -> None:
    df = spark.createDataFrame(ROWS, SCHEMA)
    policy = _policy()
    assert _ids(policy.apply(df)) == [1, 6]
    flags = {
        row["id"]: row["ok"] for row in df.select("id", policy.condition(df).alias("ok")).collect()
    }
    assert flags == {1: True, 2: False, 3: False, 4: False, 5: False, 6: True}  # never null


def test_missing_column_is_named(spark: Any) -> None:
    df = spark.createDataFrame([(1, "CONSORTIUM_ELIGIBLE")], "id int, sharing_consent_flag string")
    with pytest.raises(
        ColumnNotFoundError, match=re.escape("column 'data_residency_region' not found")
    ):
        _policy().condition(df)


def test_from_agreements_collects_active_regions(spark: Any) -> None:
    agreements = spark.createDataFrame(
        [
            ("p1", "EU", "ACTIVE"),
            ("p2", "UK", "ACTIVE"),
            ("p3", "US", "SUSPENDED"),
            ("p4", None, "ACTIVE"),
            ("p5", "BR", None),
            ("p6", "EU", "ACTIVE"),
        ],
        "partner string, region string, agreement_status string",
    )
    policy = ConsentPolicy.from_agreements(
        agreements, side="left", agreement_region_column="region"
    )
    assert policy.allowed_regions == frozenset({"EU", "UK"})
    assert policy.region_column == "data_residency_region"
    df = spark.createDataFrame(ROWS, SCHEMA)
    assert _ids(policy.apply(df)) == [1, 6]


def test_from_agreements_all_suspended_shares_nothing(spark_classic: Any) -> None:
    agreements = spark_classic.createDataFrame(
        [("EU", "SUSPENDED")], "data_residency_region string, agreement_status string"
    )
    policy = ConsentPolicy.from_agreements(agreements, side="right", consent_column=None)
    assert policy.allowed_regions == frozenset()
    assert policy.apply(spark_classic.createDataFrame(ROWS, SCHEMA)).count() == 0


def test_from_agreements_missing_status_column(spark_classic: Any) -> None:
    agreements = spark_classic.createDataFrame([("EU",)], "data_residency_region string")
    with pytest.raises(ColumnNotFoundError, match=re.escape("column 'agreement_status' not found")):
        ConsentPolicy.from_agreements(agreements, side="left")


def test_boolean_consent_flag(spark_classic: Any) -> None:
    df = spark_classic.createDataFrame(
        [(1, True), (2, False), (3, None)], "id int, consent boolean"
    )
    policy = ConsentPolicy(side="left", consent_column="consent", allowed_values=(True,))
    assert _ids(policy.apply(df)) == [1]
