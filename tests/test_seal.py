"""The seal cannot be forged: a curious analyst's attacks on the budget ledger and on the
replay of stored releases (each test fails if the attack works).

The attacker holds the notebook: the public API, plain Spark on the ledger's tables, and
the documented layout of the ledger's release storage. Setup helpers call the ledger's
private ``_charge`` (what a guarded run does) to make charges quickly.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

import pytest

from cleanjoin import agg
from cleanjoin.budget import BudgetLedger
from cleanjoin.errors import InvalidArgumentError, LedgerTampered
from cleanjoin.guard import GuardedJoin, ReadyJoin

COLLABORATION = "seal-test"


def tok(i: int) -> str:
    return hashlib.sha256(f"seal-person-{i}".encode()).hexdigest()


def _ledger(path: str, spark: Any = None) -> BudgetLedger:
    return BudgetLedger(path, collaboration=COLLABORATION, total_epsilon=1.0,
                        total_delta=1e-5, spark=spark)


def _query(spark: Any) -> ReadyJoin:
    left = spark.createDataFrame(
        [(tok(i), "M1" if i < 6 else "M2", i % 2) for i in range(12)],
        "card_number_token string, segment string, f int",
    )
    right = spark.createDataFrame([(tok(i), "x") for i in range(12)],
                                  "card_number_token string, band string")
    return (
        GuardedJoin(left, right, on="card_number_token")
        .group_by("segment")
        .agg(agg.count().alias("n"), agg.mean("f", bounds=(0, 1)).alias("rate"))
        .min_cohort(2)
        .with_dp(epsilon=0.3, public_groups=[("M1",), ("M2",)])
    )


def _release_path(ledger_path: str, release_id: str) -> str:
    """Where the ledger keeps a release's rows (``<path>_releases/<digest>``, documented)."""
    digest = hashlib.sha256(json.dumps([COLLABORATION, release_id]).encode()).hexdigest()[:40]
    return f"{ledger_path}_releases/{digest}"


def _unlock(spark: Any, path: str) -> None:
    """The analyst lifts the ledger's append-only property (itself a commit)."""
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.appendOnly' = 'false')")


def _rows(spark: Any, path: str) -> int:
    return int(spark.read.format("delta").load(path).count())


# --------------------------------------------------------------------------- charges


@pytest.mark.parametrize("epsilon", [0, 0.0, -1.0, math.nan, math.inf])
def test_a_charge_must_cost_epsilon(epsilon: float) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape("'epsilon' must be a finite number > 0")):
        _ledger("/nowhere/ledger")._charge("r", epsilon=epsilon, delta=0.0, query_fingerprint="fp")


@pytest.mark.parametrize("delta", [-1e-9, math.nan, 1.0])
def test_a_charge_needs_a_delta_in_range(delta: float) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape("'delta' must be a finite number in [0, 1)")):
        _ledger("/nowhere/ledger")._charge("r", epsilon=0.1, delta=delta, query_fingerprint="fp")


def test_charge_and_store_release_are_not_public() -> None:
    assert not hasattr(BudgetLedger, "charge")
    assert not hasattr(BudgetLedger, "store_release")


# --------------------------------------------------------------------------- replays


def test_a_replay_returns_the_recorded_rows(spark: Any, delta_path: str) -> None:
    query, ledger = _query(spark), _ledger(delta_path, spark)
    first = query.run(budget=ledger, release_id="r1")
    charge = ledger.find("r1")
    assert charge is not None
    assert charge.content_hash is not None
    from cleanjoin import content_hash

    assert charge.content_hash == content_hash(first.df)
    again = query.run(budget=ledger, release_id="r1")
    assert again.report.replayed
    assert content_hash(again.df) == charge.content_hash


def test_rows_written_into_the_release_storage_by_hand_are_not_replayed(
    spark: Any, delta_path: str
) -> None:
    query, ledger = _query(spark), _ledger(delta_path, spark)
    # the analyst charges a release the way a run would, then lays their own rows where
    # the ledger keeps released rows
    ledger._charge("forged", epsilon=0.1, delta=0.0,
                   query_fingerprint=query.to_query().fingerprint())
    forged = spark.createDataFrame([("M1", 1, 1.0), ("M2", 9, 0.0)],
                                   "segment string, n bigint, rate double")
    forged.write.format("delta").save(_release_path(delta_path, "forged"))
    with pytest.raises(LedgerTampered, match=re.escape("were never recorded by a guarded run")):
        query.run(budget=ledger, release_id="forged")


def test_rows_appended_to_a_stored_release_are_not_replayed(spark: Any, delta_path: str) -> None:
    query, ledger = _query(spark), _ledger(delta_path, spark)
    first = query.run(budget=ledger, release_id="r1")
    extra = spark.createDataFrame([("M3", 1, 1.0)], first.df.schema)
    extra.write.format("delta").mode("append").save(_release_path(delta_path, "r1"))
    with pytest.raises(LedgerTampered, match=re.escape("changed since the run that released them")):
        query.run(budget=ledger, release_id="r1")


def test_a_release_rewritten_in_place_is_not_replayed(spark: Any, delta_path: str) -> None:
    query, ledger = _query(spark), _ledger(delta_path, spark)
    query.run(budget=ledger, release_id="r1")
    place = _release_path(delta_path, "r1")
    spark.sql(f"UPDATE delta.`{place}` SET n = 1 WHERE segment = 'M1'")
    with pytest.raises(LedgerTampered, match=re.escape("changed since the run that released them")):
        query.run(budget=ledger, release_id="r1")


# --------------------------------------------------------------------------- the ledger


def _charged(spark: Any, path: str) -> BudgetLedger:
    ledger = _ledger(path, spark)
    for n in (1, 2, 3):
        ledger._charge(f"c{n}", epsilon=0.3, delta=0.0, query_fingerprint="fp")
    assert ledger.remaining()[0] == pytest.approx(0.1)
    return ledger


ATTACKS = {
    # delete the costliest charge: budget back
    "delete": "DELETE FROM {t} WHERE release_id = 'c3'",
    # make a charge free
    "update": "UPDATE {t} SET epsilon = 0.0 WHERE release_id = 'c2'",
    # a charge "never happened" and the rest is re-numbered
    "merge": "MERGE INTO {t} l USING (SELECT 'c1' AS r) s ON l.release_id = s.r "
             "WHEN MATCHED THEN DELETE",
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_sql_on_the_ledger_is_detected_before_any_spend(
    spark: Any, delta_path: str, attack: str
) -> None:
    ledger = _charged(spark, delta_path)
    _unlock(spark, delta_path)
    spark.sql(ATTACKS[attack].format(t=f"delta.`{delta_path}`")).collect()
    before = _rows(spark, delta_path)
    with pytest.raises(LedgerTampered, match=re.escape("not a cleanjoin ledger append")):
        ledger.remaining()
    with pytest.raises(LedgerTampered):
        _query(spark).run(budget=ledger, release_id="after")
    assert _rows(spark, delta_path) == before  # nothing was charged


def test_a_truncated_ledger_is_detected(spark: Any, delta_path: str) -> None:
    """Overwrite with the first charge only: a chain that verifies, but short."""
    ledger = _charged(spark, delta_path)
    _unlock(spark, delta_path)
    kept = spark.read.format("delta").load(delta_path).where("entry_seq = 1")
    kept.write.format("delta").mode("overwrite").save(delta_path)
    with pytest.raises(LedgerTampered):
        ledger.remaining()
    with pytest.raises(LedgerTampered):
        ledger.find("c1")


def test_a_reordered_or_edited_row_breaks_the_chain(spark_classic: Any, delta_path: str) -> None:
    """Rows swapped in place (their hashes kept) and a forged append of copied rows."""
    spark = spark_classic
    ledger = _charged(spark, delta_path)
    _unlock(spark, delta_path)
    spark.sql(
        f"UPDATE delta.`{delta_path}` SET entry_seq = CASE entry_seq WHEN 1 THEN 2 "
        "WHEN 2 THEN 1 ELSE entry_seq END"
    ).collect()
    with pytest.raises(LedgerTampered, match=re.escape("commit 4 is a SET TBLPROPERTIES")):
        ledger.remaining()


def test_a_foreign_append_is_detected(spark: Any, delta_path: str) -> None:
    """A row appended with plain Spark (a copy of a real one, its seq taken again)."""
    ledger = _charged(spark, delta_path)
    copy = spark.read.format("delta").load(delta_path).where("entry_seq = 3")
    copy.write.format("delta").mode("append").save(delta_path)
    with pytest.raises(LedgerTampered):
        ledger.remaining()


def test_the_budget_cannot_be_reset(spark: Any, delta_path: str) -> None:
    """Emptying the ledger (overwrite with no rows) or re-opening it with bigger totals."""
    from cleanjoin.errors import ConfigurationError

    ledger = _charged(spark, delta_path)
    bigger = BudgetLedger(delta_path, collaboration=COLLABORATION, total_epsilon=100.0,
                          total_delta=1e-5, spark=spark)
    with pytest.raises(ConfigurationError, match=re.escape("Totals cannot be changed")):
        bigger.remaining()
    _unlock(spark, delta_path)
    empty = spark.read.format("delta").load(delta_path).limit(0)
    empty.write.format("delta").mode("overwrite").save(delta_path)
    for attempt in (ledger, bigger):
        with pytest.raises(LedgerTampered):
            attempt.remaining()
