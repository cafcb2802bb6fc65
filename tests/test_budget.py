"""Tests of cleanjoin.budget: the privacy-budget ledger (Delta table of charges)."""

from __future__ import annotations

import dataclasses
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from chispa import assert_df_equality

from cleanjoin._delta import is_conflict
from cleanjoin.budget import BudgetLedger, Charge
from cleanjoin.errors import BudgetExceeded, ConfigurationError, InvalidArgumentError


def _ledger(path: str, spark: Any = None, **kw: Any) -> BudgetLedger:
    opts: dict[str, Any] = {"collaboration": "fraud", "total_epsilon": 1.0, "total_delta": 1e-5}
    opts.update(kw)
    return BudgetLedger(path, spark=spark, **opts)


# ---------------------------------------------------------------- pure


def test_ledger_arguments_are_validated() -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape("'total_epsilon' must be a finite")):
        BudgetLedger("/x", collaboration="c", total_epsilon=0.0, total_delta=0.0)
    with pytest.raises(
        InvalidArgumentError, match=re.escape("'total_delta' must be a number in [0, 1)")
    ):
        BudgetLedger("/x", collaboration="c", total_epsilon=1.0, total_delta=1.0)
    with pytest.raises(
        InvalidArgumentError, match=re.escape("'collaboration' must be a non-empty")
    ):
        BudgetLedger("/x", collaboration="", total_epsilon=1.0, total_delta=0.0)
    assert _ledger("/x/").path == "/x"


def test_charge_is_frozen() -> None:
    from datetime import datetime, timezone

    c = Charge("c", "r", 0.1, 0.0, datetime(2026, 1, 1, tzinfo=timezone.utc), "fp", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.epsilon = 2.0  # type: ignore[misc]


def test_conflict_detection_matches_delta_errors() -> None:
    class ConcurrentAppendException(Exception):  # noqa: N818 - Delta's class name
        pass

    assert is_conflict(ConcurrentAppendException("x"))
    assert is_conflict(RuntimeError("[DELTA_CONCURRENT_APPEND.WITHOUT_HINT] wrapped by Connect"))
    assert not is_conflict(ValueError("unrelated"))


# ---------------------------------------------------------------- Spark, both modes


def test_charges_overspend_and_replay(spark: Any, delta_path: str) -> None:
    ledger = _ledger(delta_path, spark)
    assert ledger.remaining() == (1.0, 1e-5)
    c1 = ledger._charge("r1", epsilon=0.6, delta=5e-6, query_fingerprint="fp1")
    assert (c1.seq, c1.release_id, c1.epsilon) == (1, "r1", 0.6)
    assert c1.charged_at.tzinfo is not None
    with pytest.raises(
        BudgetExceeded,
        match=re.escape("Requested: ε=0.5, δ=0. Remaining: ε=0.4, δ=5e-06"),
    ):
        ledger._charge("r2", epsilon=0.5, delta=0.0, query_fingerprint="fp2")
    with pytest.raises(InvalidArgumentError, match=re.escape("release id 'r1' is already charged")):
        ledger._charge("r1", epsilon=0.1, delta=0.0, query_fingerprint="fp1")
    eps, delta = ledger.remaining()
    assert eps == pytest.approx(0.4)
    assert delta == pytest.approx(5e-6)

    # Stored release: replay returns the same rows, charges nothing.
    rows = spark.createDataFrame([("a", 10), ("b", 12)], "g string, n long")
    ledger._store_release("r1", rows)
    with pytest.raises(InvalidArgumentError, match=re.escape("is already stored")):
        ledger._store_release("r1", rows)
    with pytest.raises(InvalidArgumentError, match=re.escape("was never charged")):
        ledger._store_release("r9", rows)
    assert ledger.load_release("r9") is None
    replay = _ledger(delta_path, spark).load_release("r1")
    assert replay is not None
    assert_df_equality(replay, rows, ignore_row_order=True)
    found = ledger.find("r1")
    assert found is not None
    assert found.seq == 1
    assert found.query_fingerprint == "fp1"
    assert [c.release_id for c in ledger.charges()] == ["r1"]


def test_other_collaborations_and_totals(spark_classic: Any, delta_path: str) -> None:
    a = _ledger(delta_path, spark_classic)
    b = _ledger(delta_path, spark_classic, collaboration="other")
    a._charge("r1", epsilon=1.0, delta=0.0, query_fingerprint="fp")
    assert b.remaining() == (1.0, 1e-5)  # collaborations do not share budget
    bigger = _ledger(delta_path, spark_classic, total_epsilon=100.0)
    with pytest.raises(ConfigurationError, match=re.escape("Totals cannot be changed")):
        bigger._charge("r2", epsilon=1.0, delta=0.0, query_fingerprint="fp")


def test_charges_persist_across_sessions(
    spark_classic: Any, spark_connect: Any, tmp_path: Path
) -> None:
    path = str(tmp_path / "ledger")
    _ledger(path, spark_classic)._charge("r1", epsilon=0.25, delta=0.0, query_fingerprint="fp")
    other = _ledger(path, spark_connect)  # a new object on another session
    assert other.remaining()[0] == pytest.approx(0.75)
    other._charge("r2", epsilon=0.25, delta=0.0, query_fingerprint="fp")
    assert [c.seq for c in _ledger(path, spark_classic).charges()] == [1, 2]


def test_concurrent_charges_never_overspend(spark_classic: Any, delta_path: str) -> None:
    # Total ε=1.0; 4 threads each try two charges of 0.3 → at most 3 may succeed.
    ledger = _ledger(delta_path, spark_classic)
    ledger.remaining()
    outcomes: list[str] = []
    errors: list[BaseException] = []  # any other error of any thread fails the test
    lock = threading.Lock()

    def worker(k: int) -> None:
        for j in range(2):
            try:
                BudgetLedger(
                    delta_path,
                    collaboration="fraud",
                    total_epsilon=1.0,
                    total_delta=1e-5,
                    spark=spark_classic,
                )._charge(f"t{k}-{j}", epsilon=0.3, delta=0.0, query_fingerprint="fp")
                result = "ok"
            except BudgetExceeded:
                result = "refused"
            except BaseException as exc:  # reported below
                with lock:
                    errors.append(exc)
                return
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    assert len(outcomes) == 8
    charges = ledger.charges()
    assert outcomes.count("ok") == 3 == len(charges)
    assert sorted(c.seq for c in charges) == [1, 2, 3]
    assert sum(c.epsilon for c in charges) <= 1.0 + 1e-12
