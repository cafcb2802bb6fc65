"""The paths cleanjoin takes on older Spark lines, forced on the running one.

The compatibility suites run them where they are needed (Spark Connect 3.5 drops observed
metrics; Delta 3.3 cannot ``saveAsTable`` in overwrite mode); here each switch of
:mod:`cleanjoin._compat` is turned off on the main pins, so the fallback is checked on
every run and must give the same answers as the path it stands in for.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

import pytest

from cleanjoin import agg
from cleanjoin.consent import ConsentPolicy
from cleanjoin.contract import ContractColumn, OutputContract
from cleanjoin.guard import GuardedJoin
from cleanjoin.revocation import revocation_schema


def _tok(i: int) -> str:
    return hashlib.sha256(f"person-{i}".encode()).hexdigest()


def _query(spark: Any, revoked: Any) -> Any:
    left = spark.createDataFrame(
        [(_tok(i), "M1" if i < 6 else "M2", "NONE" if i < 2 else "CONSORTIUM_ELIGIBLE")
         for i in range(10)] + [(None, "M1", "CONSORTIUM_ELIGIBLE")],
        "card_number_token string, merchant_category_code string, sharing_consent_flag string",
    )
    right = spark.createDataFrame([(_tok(i),) for i in range(10)], "card_number_token string")
    return (
        GuardedJoin(left, right, on="card_number_token", consent=[ConsentPolicy(side="left")],
                    revoked=revoked)
        .group_by("merchant_category_code")
        .agg(agg.count().alias("n"))
        .min_cohort(3)
    )


def test_counts_without_observations_equal_the_observed_ones(
    spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cleanjoin import _observe

    revoked = spark.createDataFrame(
        [(_tok(t), datetime(2026, 11, 1), "OPT_OUT", "test") for t in (2, 3, 999)],
        revocation_schema(),
    )
    observed = _query(spark, revoked).run()
    monkeypatch.setattr(_observe, "observation_class", lambda *, connect: None)  # as Connect 3.5
    deferred = _query(spark, revoked).run()
    assert sorted(tuple(r) for r in deferred.df.collect()) == [("M2", 4)]
    assert sorted(tuple(r) for r in observed.df.collect()) == [("M2", 4)]
    for report in (observed.report, deferred.report):
        assert report.groups_released == 1
        assert report.groups_suppressed == 1  # M1: 2 units
        assert report.rows_excluded_by_consent == {"left": 2}
        assert report.rows_excluded_by_revocation == {"left": 2, "right": 2}
        assert report.rows_without_join_key == {"left": 1, "right": 0}
        assert report.revoked_tokens_applied == 3


def test_token_counts_without_observations_are_counted_from_the_written_table(
    spark: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from cleanjoin import _observe
    from cleanjoin.secret import Secret
    from cleanjoin.tokens import write_tokens

    secret = Secret.from_bytes(bytes(range(11, 51)))
    rows = [("4111111111111111", 1), ("bad-pan", 2), (None, 3), ("5500000000000004", 4)]
    df = spark.createDataFrame(rows, "pan string, n int")
    observed = write_tokens(df, {"pan": "pan"}, str(tmp_path / "a"), secret=secret)
    monkeypatch.setattr(_observe, "observation_class", lambda *, connect: None)  # as Connect 3.5
    deferred = write_tokens(df, {"pan": "pan"}, str(tmp_path / "b"), secret=secret)
    for done in (observed, deferred):
        assert done.rows == 4
        assert dict(done.null_tokens) == {"pan_token": 2}
    # appended rows: the counts are of this write, not of the table (which holds 8 rows)
    again = write_tokens(df, {"pan": "pan"}, str(tmp_path / "b"), secret=secret, mode="append")
    assert (again.rows, dict(again.null_tokens)) == (4, {"pan_token": 2})
    assert spark.read.format("delta").load(str(tmp_path / "b")).count() == 8


def test_overwrite_by_name_at_the_location_replaces_rows_in_one_commit(
    spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cleanjoin import _table

    monkeypatch.setattr(_table, "overwrite_by_name", lambda: False)  # as Delta 3.3
    result = _query(spark, None).run()
    contract = OutputContract(
        columns=(ContractColumn("merchant_category_code", "string", "dimension"),
                 ContractColumn("n", "bigint", "cohort_count")),
        min_cohort=3,
    )
    target = f"spark_catalog.default.cj_overwrite_{uuid.uuid4().hex[:10]}"
    try:
        assert result.write_delta(target, contract=contract) == 0  # created (by an append)
        assert result.write_delta(target, contract=contract, mode="append") == 1
        assert result.write_delta(target, contract=contract) == 2  # overwritten at its location
        assert sorted(tuple(r) for r in spark.read.table(target).collect()) == [("M1", 4), ("M2", 4)]
        history = spark.sql(f"DESCRIBE HISTORY {target}").collect()
        assert len(history) == 3
        assert all(r["userMetadata"] for r in history)
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {target}").collect()
