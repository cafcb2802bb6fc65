"""Tests of cleanjoin.guard's private parts that need no Spark session: the typed report
of a replayed release, the rules on the inputs' schemas, the query description."""

from __future__ import annotations

import dataclasses
import json

import pytest
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from cleanjoin import agg
from cleanjoin.dp import DPParams
from cleanjoin.errors import (
    ColumnNotFoundError,
    InternalError,
    NotAllowedError,
    SchemaMismatchError,
)
from cleanjoin.guard import GuardReport, ReplayedRelease
from cleanjoin.guard._query import DPSpec, InputSchemas, Query
from cleanjoin.guard._rules import check_aggregates, check_inputs, check_output_column

SCHEMAS = InputSchemas(
    {"card_number_token": StringType(), "mcc": StringType(), "amount": IntegerType(),
     "nested": StructType([StructField("email_token", StringType())])},
    {"card_number_token": StringType(), "band": StringType()},
    ("card_number_token", "card_number_token"),
)


def _report(**kwargs: object) -> GuardReport:
    return GuardReport(
        run_id="r", group_by=("mcc",), aggregates=(), min_cohort=2, privacy_unit="u",
        groups_released=1, groups_suppressed=None, **kwargs,  # type: ignore[arg-type]
    )


def test_a_replayed_release_is_typed_and_serialized_once() -> None:
    params = DPParams(epsilon=0.5, delta=1e-6)
    replay = ReplayedRelease(0.5, 1e-6, params, [["M1"]])
    report = _report(replayed=True, replay=replay)
    with pytest.raises(dataclasses.FrozenInstanceError):
        replay.epsilon = 1.0  # type: ignore[misc]
    data = report.to_dict()["dp"]
    assert data == json.loads(json.dumps({**params.fingerprint_dict(), "public_groups": [["M1"]],
                                          "replayed": True}))
    assert data["partition_selection"] == "truncated_geometric"
    assert report.dp_used
    assert "differential privacy: ε=0.5, δ=1e-06, laplace noise" in str(report)
    assert "differential privacy: no" in str(_report())
    assert not _report().dp_used


def test_a_report_holds_a_dp_report_or_a_replay_never_both() -> None:
    params = DPParams(epsilon=0.5)
    with pytest.raises(InternalError):
        _report(dp=object(), replay=ReplayedRelease(0.5, 0.0, params))


def test_rules_read_the_frozen_schemas() -> None:
    assert SCHEMAS.side_of("mcc") == "left"
    assert SCHEMAS.side_of("card_number_token") == "both"
    assert SCHEMAS.side_of("nope") is None
    check_inputs(SCHEMAS)
    check_output_column(SCHEMAS, "call()", "mcc", "grouping on")
    with pytest.raises(NotAllowedError, match="join column"):
        check_output_column(SCHEMAS, "call()", "card_number_token", "grouping on")
    with pytest.raises(NotAllowedError, match=r"token field\(s\) \['email_token'\]"):
        check_output_column(SCHEMAS, "call()", "nested", "grouping on")
    with pytest.raises(ColumnNotFoundError, match="in neither input"):
        check_aggregates(SCHEMAS, ("mcc",), (agg.sum("missing"),))
    clash = InputSchemas({**SCHEMAS.left, "band": StringType()}, SCHEMAS.right, SCHEMAS.keys)
    with pytest.raises(SchemaMismatchError, match=r"columns \['band'\] are on both sides"):
        check_inputs(clash)


def test_the_query_description_is_frozen_and_fingerprinted() -> None:
    spec = DPSpec(DPParams(epsilon=1.0), public_groups=[("M1",)])
    query = Query(None, None, SCHEMAS, (), None, 10, ("mcc",), (agg.count(),), None, spec, 5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        query.threshold = 1  # type: ignore[misc]
    assert query.to_query() is query
    assert query.unit_column == "card_number_token"
    described = query.describe()
    assert described["dp"]["public_groups"] == [["M1"]]
    assert described["privacy_unit"] == "card_number_token"
    assert len(query.fingerprint()) == 64
