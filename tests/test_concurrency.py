"""Concurrent writers that really collide, in a deterministic order.

A hook wraps the compare-and-append step of one writer (A): on its first call it lets a
second writer (B, another object on the same table) commit first, then runs A's own
MERGE. A's MERGE then finds its sequence number taken and inserts nothing, so A must
re-read and retry. The tests assert that the retry ran and that the final state is the
one of two serialized writers. No threads: the interleaving is fixed, so nothing is
flaky.

Internals used (all in the ``hooks`` fixture, to re-point after a refactor):
``cleanjoin.budget.BudgetLedger._insert``, ``cleanjoin.budget._MAX_ATTEMPTS``,
``cleanjoin.audit.AuditLog._compare_and_append``, ``cleanjoin.revocation._merge.session_confs``.

Revocations retry only on Delta's own conflict errors, so their test makes a real one:
the revocation batch's token column goes through a Python UDF that, once armed (by the
hook on the statement that runs the MERGE), blocks on the executor until another
writer's commit file appears. A's MERGE has read its snapshot, B commits a delete, A's
commit fails with Delta's conflict error and A's retry succeeds.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from cleanjoin.audit import AuditLog
from cleanjoin.budget import BudgetLedger, LedgerConflictError


class Hooks:
    """One place for every internal this module patches."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import cleanjoin.audit as audit_mod
        import cleanjoin.budget as budget_mod

        self._mp = monkeypatch
        self.budget = budget_mod
        self.audit = audit_mod

    def before_ledger_insert(self, hook: Callable[[int], None]) -> list[bool]:
        """Call ``hook(n)`` before the n-th ledger insert (0-based); returns each insert's
        result (True = this attempt inserted its row)."""
        original = self.budget.BudgetLedger._insert
        results: list[bool] = []

        def wrapped(ledger: Any, *args: Any, **kwargs: Any) -> bool:
            n = len(results)
            results.append(False)  # placeholder: nested inserts append after us
            hook(n)
            ok = original(ledger, *args, **kwargs)
            results[n] = ok
            return ok

        self._mp.setattr(self.budget.BudgetLedger, "_insert", wrapped)
        return results

    def ledger_attempts(self, n: int) -> None:
        self._mp.setattr(self.budget, "_MAX_ATTEMPTS", n)

    def before_audit_append(self, hook: Callable[[int], None]) -> list[bool]:
        original = self.audit.AuditLog._compare_and_append
        results: list[bool] = []

        def wrapped(log: Any, spark: Any, entry: Any) -> bool:
            n = len(results)
            results.append(False)
            hook(n)
            ok = original(log, spark, entry)
            results[n] = ok
            return ok

        self._mp.setattr(self.audit.AuditLog, "_compare_and_append", wrapped)
        return results

    def on_revocation_statement(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` as each revocation MERGE statement is about to run."""
        import contextlib

        import cleanjoin.revocation._merge as revocation_mod

        original = revocation_mod.session_confs

        @contextlib.contextmanager
        def wrapped(spark: Any, settings: Any) -> Any:
            with original(spark, settings):
                hook()
                yield

        self._mp.setattr(revocation_mod, "session_confs", wrapped)


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> Hooks:
    return Hooks(monkeypatch)


def _ledger(path: str, spark: Any) -> BudgetLedger:
    return BudgetLedger(path, collaboration="c", total_epsilon=1.0, total_delta=1e-5, spark=spark)


def test_ledger_retries_after_another_charge_wins_the_race(
    spark: Any, delta_path: str, hooks: Hooks
) -> None:
    a, b = _ledger(delta_path, spark), _ledger(delta_path, spark)
    b.remaining()

    def b_first(n: int) -> None:
        if n == 0:  # between A's read (seq 1 free) and A's MERGE
            b._charge("b", epsilon=0.6, delta=0.0, query_fingerprint="fp-b")

    inserts = hooks.before_ledger_insert(b_first)
    charge = a._charge("a", epsilon=0.3, delta=0.0, query_fingerprint="fp-a")
    # A's first MERGE (seq 1) lost to B's; A re-read, re-checked and took seq 2.
    assert inserts == [False, True, True]  # A lost, B won (nested), A's retry won
    assert charge.seq == 2
    assert [(c.release_id, c.seq) for c in a.charges()] == [("b", 1), ("a", 2)]
    assert a.remaining()[0] == pytest.approx(0.1)


def test_ledger_retry_rechecks_the_budget(spark_classic: Any, delta_path: str, hooks: Hooks) -> None:
    """After losing the race, the retry sees B's spend and refuses an overspend."""
    from cleanjoin.errors import BudgetExceeded

    a, b = _ledger(delta_path, spark_classic), _ledger(delta_path, spark_classic)
    b.remaining()

    def b_first(n: int) -> None:
        if n == 0:
            b._charge("b", epsilon=0.8, delta=0.0, query_fingerprint="fp-b")

    inserts = hooks.before_ledger_insert(b_first)
    with pytest.raises(BudgetExceeded, match=re.escape("Requested: ε=0.5, δ=0. Remaining: ε=0.2")):
        a._charge("a", epsilon=0.5, delta=0.0, query_fingerprint="fp-a")
    assert inserts == [False, True]
    assert [c.release_id for c in a.charges()] == ["b"]


def test_ledger_gives_up_with_ledger_conflict_error(
    spark_classic: Any, delta_path: str, hooks: Hooks
) -> None:
    a, b = _ledger(delta_path, spark_classic), _ledger(delta_path, spark_classic)
    b.remaining()
    hooks.ledger_attempts(2)
    outer: list[int] = []

    def always_b_first(n: int) -> None:
        if n in (0, 2):  # before each of A's two attempts (1 and 3 are B's own inserts)
            outer.append(n)
            b._charge(f"b{n}", epsilon=0.1, delta=0.0, query_fingerprint="fp-b")

    inserts = hooks.before_ledger_insert(always_b_first)
    with pytest.raises(LedgerConflictError, match=re.escape(
            "BudgetLedger: gave up after 2 concurrent-charge conflicts in "
            "collaboration 'c'; nothing was charged")):
        a._charge("a", epsilon=0.1, delta=0.0, query_fingerprint="fp-a")
    assert outer == [0, 2]
    assert inserts == [False, True, False, True]
    assert a.find("a") is None
    assert [c.release_id for c in a.charges()] == ["b0", "b2"]


def test_audit_append_retries_after_another_writer_wins(
    spark: Any, tmp_path: Path, hooks: Hooks
) -> None:
    path = str(tmp_path / "audit")
    a = AuditLog(path, spark=spark, actor="a")
    b = AuditLog(path, spark=spark, actor="b")
    first = a.append("tokenize", {"n": 1})
    assert first.seq == 0
    won_by_b: list[Any] = []

    def b_first(n: int) -> None:
        if n == 0:  # A's cached head says seq 1 is next; B takes it first
            won_by_b.append(b.append("tokenize", {"n": 2}))

    results = hooks.before_audit_append(b_first)
    entry = a.append("tokenize", {"n": 3})
    # Call 0 (A, seq 1 from its cached head) lost: inside it, B — with no cached head —
    # read the head first (a writer's first append does: a blind append must not create
    # the table) and won seq 1 (call 1); A's write of seq 1 was then skipped by Delta, so A
    # re-read and took seq 2 (call 2).
    assert results == [False, True, True]
    assert won_by_b[0].seq == 1
    assert entry.seq == 2
    assert entry.prev_hash == won_by_b[0].entry_hash
    assert [e.seq for e in a.entries()] == [0, 1, 2]
    assert a.verify().ok


def test_is_conflict_recognises_a_real_delta_conflict(spark: Any, tmp_path: Path) -> None:
    """A MERGE whose source blocks (a Python UDF waiting on the file system) until a blind
    INSERT has committed the next version fails with Delta's own conflict error, which
    ``is_conflict`` recognises in both modes (classic: ``delta.exceptions``; Connect: a
    wrapped gRPC error)."""
    import threading

    from cleanjoin._delta import is_conflict, quote_path
    from cleanjoin._spark import functions_for

    fn = functions_for(spark)
    table = str(tmp_path / "t")
    spark.sql(f"CREATE TABLE {quote_path(table)} (k BIGINT) USING DELTA").collect()
    spark.sql(f"INSERT INTO {quote_path(table)} VALUES (0)").collect()  # version 1
    entered = str(tmp_path / "entered")
    next_commit = str(Path(table) / "_delta_log" / f"{2:020d}.json")

    def gate(k):  # type: ignore[no-untyped-def]  # runs on the executor (no hints: a plain UDF)
        import os
        import time

        open(entered, "w").close()
        deadline = time.time() + 120
        while not os.path.exists(next_commit) and time.time() < deadline:
            time.sleep(0.05)
        return k

    # the type as an object: a string is parsed through the classic JVM, absent in a
    # Connect-only process (CLEANJOIN_TEST_MODES=connect)
    from pyspark.sql.types import LongType

    source = spark.range(1).select(fn.udf(gate, LongType())(fn.col("id") + 10).alias("k"))
    view = f"cj_conflict_{abs(hash(table))}"
    source.createOrReplaceTempView(view)
    errors: list[BaseException] = []

    def writer_a() -> None:
        try:
            spark.sql(f"MERGE INTO {quote_path(table)} t USING {view} s ON t.k = s.k "
                      "WHEN NOT MATCHED THEN INSERT *").collect()
        except BaseException as exc:  # the conflict under test, checked below
            errors.append(exc)

    thread = threading.Thread(target=writer_a)
    thread.start()
    import time

    deadline = time.time() + 120
    while not Path(entered).exists() and time.time() < deadline:
        time.sleep(0.05)
    assert Path(entered).exists(), "writer A's MERGE never evaluated its source"
    spark.sql(f"INSERT INTO {quote_path(table)} VALUES (5)").collect()  # B commits version 2
    thread.join(timeout=180)
    assert not thread.is_alive()
    assert len(errors) == 1, "writer A's MERGE committed despite the concurrent append"
    assert is_conflict(errors[0]), repr(errors[0])[:500]
    assert not is_conflict(ValueError("ConcurrentAppend is not the name"))
    rows = sorted(r["k"] for r in spark.read.format("delta").load(table).collect())
    assert rows == [0, 5]


def test_revocation_retries_a_real_delta_conflict(
    spark_classic: Any, tmp_path: Path, hooks: Hooks
) -> None:
    """Writer A's MERGE blocks after reading its snapshot until writer B (another
    session) has committed a delete; A's commit conflicts, ``apply_revocations`` retries
    (``attempts == 2``) and the table ends with both batches applied."""
    import threading
    import time

    from cleanjoin._spark import functions_for
    from cleanjoin.revocation import apply_revocations, revocation_schema

    def tok(i: int) -> str:
        return hashlib.sha256(f"card-{i}".encode()).hexdigest()

    spark = spark_classic
    gold = str(tmp_path / "gold")
    spark.createDataFrame(
        [(tok(c), f"m{c}") for c in range(6)], "card_number_token string, mcc string"
    ).coalesce(1).write.format("delta").save(gold)  # version 0
    armed, entered = str(tmp_path / "armed"), str(tmp_path / "entered")
    b_commit = str(Path(gold) / "_delta_log" / f"{1:020d}.json")

    def gate(token):  # type: ignore[no-untyped-def]  # executor side: blocks A's first MERGE only
        import os
        import time

        if os.path.exists(armed) and not os.path.exists(entered):
            open(entered, "w").close()
            deadline = time.time() + 120
            while not os.path.exists(b_commit) and time.time() < deadline:
                time.sleep(0.05)
        return token

    fn = functions_for(spark)
    schema = revocation_schema()
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    base_a = spark.createDataFrame([(tok(1), when, "OPT_OUT", "portal")], schema)
    batch_a = base_a.select(*[
        fn.udf(gate, "string")(fn.col(c)).alias(c) if c == "token" else fn.col(c)
        for c in base_a.columns
    ])
    other = spark.newSession()
    batch_b = other.createDataFrame([(tok(2), when, "OPT_OUT", "portal")], schema)
    statements: list[int] = []

    def arm() -> None:
        statements.append(1)
        if len(statements) == 1:
            Path(armed).touch()

    hooks.on_revocation_statement(arm)
    results: list[Any] = []
    errors: list[BaseException] = []

    def writer_a() -> None:
        try:
            results.append(apply_revocations(gold, batch_a, token_column="card_number_token",
                                             backoff_seconds=0.05, max_attempts=4))
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=writer_a)
    thread.start()
    deadline = time.time() + 180
    while not Path(entered).exists() and time.time() < deadline and thread.is_alive():
        time.sleep(0.05)
    assert Path(entered).exists(), f"writer A's MERGE never evaluated its source: {errors}"
    b = apply_revocations(gold, batch_b, token_column="card_number_token")  # B: version 1
    thread.join(timeout=300)
    assert not thread.is_alive()
    assert not errors, errors
    (a,) = results
    assert b.version == 1
    assert b.rows_deleted == 1
    assert a.attempts == 2, a  # the first MERGE conflicted with B's commit and was retried
    assert (a.version, a.rows_deleted) == (2, 1)
    left = {r[0] for r in spark.read.format("delta").load(gold).collect()}
    assert left == {tok(c) for c in (0, 3, 4, 5)}
