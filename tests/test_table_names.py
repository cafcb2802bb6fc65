"""Tables given by name (``catalog.schema.table`` / ``schema.table``), in both modes.

Unity Catalog workspaces name tables; these tests use Delta tables of the session
catalog (``spark_catalog.default.cj_<what>_<unique>``), one set per test, dropped at the
end. Each test shares its tables between several checks: a Spark query costs far more
than an assertion.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cleanjoin import agg
from cleanjoin.audit import AuditLog, delta_identity, head_from_commit, verify_file
from cleanjoin.budget import BudgetLedger
from cleanjoin.consent import ConsentPolicy
from cleanjoin.contract import ContractColumn, OutputContract
from cleanjoin.errors import BudgetExceeded, ColumnNotFoundError, InvalidArgumentError
from cleanjoin.guard import GuardedJoin
from cleanjoin.revocation import (
    RevocationBatchWriter,
    apply_revocations,
    load_revocations,
    purge,
    revocation_schema,
    start_revocation_stream,
)

GOLD_SCHEMA = "card_number_token string, sharing_consent_flag string, amount int"
WHEN = datetime(2026, 1, 5, 12, 0, 0)


def tok(i: int) -> str:
    return hashlib.sha256(f"card-{i}".encode()).hexdigest()


@pytest.fixture
def new_name(spark: Any) -> Iterator[Callable[[str], str]]:
    """``new_name("audit")`` → ``spark_catalog.default.cj_audit_<unique>``; every table
    made from such a name (and its ``_release_`` siblings) is dropped at the end."""
    unique = uuid.uuid4().hex[:10]
    made: list[str] = []

    def make(what: str) -> str:
        made.append(f"cj_{what}_{unique}")
        return f"spark_catalog.default.{made[-1]}"

    yield make
    for row in spark.sql(f"SHOW TABLES IN spark_catalog.default LIKE 'cj_*_{unique}*'").collect():
        spark.sql(f"DROP TABLE IF EXISTS spark_catalog.default.`{row['tableName']}`").collect()


def _properties(spark: Any, table: str) -> dict[str, str]:
    return {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {table}").collect()}


def _version(spark: Any, table: str) -> int:
    return int(spark.sql(f"DESCRIBE HISTORY {table} LIMIT 1").collect()[0]["version"])


def _cards(spark: Any, table: str) -> set[str]:
    return {r[0] for r in spark.read.table(table).select("card_number_token").collect()}


def test_audit_log_by_name(spark: Any, new_name: Callable[[str], str], tmp_path: Path) -> None:
    name = new_name("audit")
    errors: list[BaseException] = []

    def writer(actor: str) -> None:  # two writers race to create the table, then to append
        log = AuditLog(name, actor=actor)
        for i in range(2):
            try:
                log.append("budget_charge", {"writer": actor, "i": i}, spark=spark)
            except BaseException as exc:  # reported below
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{n}",)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []

    log = AuditLog(name, spark=spark, actor="tests")
    assert log.path == name
    assert log.table == "`spark_catalog`.`default`.`" + name.rsplit(".", 1)[1] + "`"
    last = log.append("purge", {"retention_hours": 0})
    assert last.seq == 4
    result = log.verify()
    assert result.ok, result
    assert result.entries == 5
    got = sorted((e.parameters["writer"], e.parameters["i"]) for e in log.entries()[:4])
    assert got == sorted((f"w{n}", i) for n in range(2) for i in range(2))
    assert log.commit_metadata() == {
        "audit_log": name, "audit_seq": 4, "audit_head": last.entry_hash,
    }
    assert _properties(spark, log.table)["delta.appendOnly"] == "true"

    # the same table by its two-part name, backquoted: the same chain
    short = AuditLog("default.`" + name.rsplit(".", 1)[1] + "`", spark=spark)
    assert short.head() == last.entry_hash
    out = tmp_path / "audit.jsonl"
    assert short.export(out) == 5
    assert verify_file(out, head=last.entry_hash).ok

    # an absent table is an empty log, not an error
    absent = AuditLog(new_name("absent"), spark=spark)
    assert absent.head() is None
    assert absent.entries() == []


def test_ledger_by_name(spark: Any, new_name: Callable[[str], str]) -> None:
    name = new_name("ledger")

    def ledger() -> BudgetLedger:
        return BudgetLedger(
            name, collaboration="fraud", total_epsilon=1.0, total_delta=1e-5, spark=spark
        )

    audit = AuditLog(new_name("ledger_audit"), spark=spark, actor="tests")
    first = ledger()._charge("r1", epsilon=0.4, delta=0.0, query_fingerprint="fp", audit=audit)
    assert first.seq == 1
    assert ledger().path == name
    assert ledger().table.startswith("`spark_catalog`.`default`.`cj_ledger_")
    (entry,) = audit.entries()
    assert entry.parameters["ledger"] == name

    released = spark.createDataFrame([("a", 12)], "segment string, n bigint")
    ledger()._store_release("r1", released)
    with pytest.raises(InvalidArgumentError, match=re.escape("release id 'r1' is already stored")):
        ledger()._store_release("r1", released)
    replay = ledger().load_release("r1")
    assert replay is not None
    assert [tuple(r) for r in replay.collect()] == [("a", 12)]
    assert ledger().load_release("r9") is None
    with pytest.raises(InvalidArgumentError, match=re.escape("release id 'r1' is already charged")):
        ledger()._charge("r1", epsilon=0.1, delta=0.0, query_fingerprint="fp")

    # three concurrent charges of 0.25 with 0.6 left: exactly two fit
    outcomes: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        try:
            ledger()._charge(f"c{k}", epsilon=0.25, delta=0.0, query_fingerprint="fp")
            result = "ok"
        except BudgetExceeded:
            result = "refused"
        except BaseException as exc:  # reported below
            with lock:
                errors.append(exc)
            return
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(outcomes) == ["ok", "ok", "refused"]
    assert ledger().remaining() == (pytest.approx(0.1), pytest.approx(1e-5))
    assert [c.seq for c in ledger().charges()] == [1, 2, 3]
    with pytest.raises(BudgetExceeded, match=re.escape("Requested: ε=0.2, δ=0. Remaining: ε=0.1")):
        ledger()._charge("r2", epsilon=0.2, delta=0.0, query_fingerprint="fp")


def test_revocations_and_purge_on_named_tables(
    spark: Any, new_name: Callable[[str], str], tmp_path: Path
) -> None:
    gold, revocations = new_name("gold"), new_name("revocations")
    audit = AuditLog(new_name("rev_audit"), spark=spark, actor="tests")
    rows = [(tok(c), "CONSORTIUM_ELIGIBLE", c) for c in range(6) for _ in range(2)]
    spark.sql(
        f"CREATE TABLE {gold} ({GOLD_SCHEMA}) USING DELTA "
        "TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')"
    ).collect()
    spark.createDataFrame(rows, GOLD_SCHEMA).coalesce(1).write.format("delta").mode(
        "append"
    ).saveAsTable(gold)  # version 1
    listed = [(tok(i), WHEN, "OPT_OUT", "issuer-portal") for i in (1, 1, 2)]
    spark.createDataFrame(listed, revocation_schema()).write.format("delta").saveAsTable(
        revocations
    )
    assert sorted(r[0] for r in load_revocations(revocations, spark=spark).collect()) == sorted(
        [tok(1), tok(2)]
    )

    flags = apply_revocations(
        gold, revocations, token_column="card_number_token", mode="flag", spark=spark
    )
    assert (flags.table, flags.rows_flagged, flags.version) == (gold, 4, 2)
    revoked = spark.read.table(gold).where("sharing_consent_flag = 'REVOKED'")
    assert {r[0] for r in revoked.select("card_number_token").collect()} == {tok(1), tok(2)}
    deleted = apply_revocations(
        gold, revocations, token_column="card_number_token", audit=audit, spark=spark
    )
    assert (deleted.rows_deleted, deleted.version) == (4, 3)
    assert _cards(spark, gold) == {tok(c) for c in range(6)} - {tok(1), tok(2)}

    # one streaming batch applied with an idempotent (app id, batch id), then replayed
    writer = RevocationBatchWriter(
        gold=gold, checkpoint=str(tmp_path / "chk"), token_column="card_number_token",
        audit=audit, app_id="cj-test",
    )
    batch = spark.createDataFrame([(tok(3), WHEN, "OPT_OUT", "issuer-portal")], revocation_schema())
    applied = writer(batch, 0)
    assert (applied.rows_deleted, applied.version) == (2, 4)
    replay = writer(batch.union(batch), 0)
    assert (replay.replayed, replay.version) == (True, None)
    assert _version(spark, gold) == 4
    # a stream into the named table checks its columns before it starts
    with pytest.raises(ColumnNotFoundError, match=re.escape(f"in the Gold table '{gold}'")):
        start_revocation_stream(
            spark.readStream.table(revocations), gold, str(tmp_path / "stream"),
            token_column="no_such_column",
        )

    result = purge(gold, retention_hours=0, audit=audit, spark=spark)
    assert result.reorg
    assert (result.table, result.version_before) == (gold, 4)
    assert result.version_after > 4
    outputs = [(e.action, e.output) for e in audit.entries()]
    assert outputs == [
        ("revocation_batch", {"table": gold, "version": 3}),
        ("revocation_batch", {"table": gold, "version": 4}),
        ("revocation_batch", {"table": gold, "version": 4}),
        ("purge", {"table": gold, "version": result.version_after}),
    ]
    assert audit.verify().ok


def test_consent_and_write_delta_by_name(spark: Any, new_name: Callable[[str], str]) -> None:
    from cleanjoin._spark import functions_for

    agreements, target = new_name("agreements"), new_name("segments")
    audit = AuditLog(new_name("write_audit"), spark=spark, actor="tests")
    spark.createDataFrame(
        [("EU", "ACTIVE"), ("US", "SUSPENDED")], "data_residency_region string, agreement_status string"
    ).write.format("delta").saveAsTable(agreements)
    policy = ConsentPolicy.from_agreements(
        agreements, side="left", consent_column=None, spark=spark
    )
    assert policy.allowed_regions == frozenset({"EU"})
    with pytest.raises(InvalidArgumentError, match=re.escape("no readable agreements table")):
        ConsentPolicy.from_agreements(new_name("none"), side="left", spark=spark)

    fn = functions_for(spark)
    token = fn.sha2(fn.concat(fn.lit("p-"), fn.col("id").cast("string")), 256)
    left = spark.range(80).select(
        token.alias("card_number_token"),
        fn.when(fn.col("id") % 2 == 0, "EU").otherwise("US").alias("data_residency_region"),
        fn.when(fn.col("id") % 4 < 2, "a").otherwise("b").alias("segment"),
    )
    right = spark.range(80).select(token.alias("card_number_token"))
    result = (
        GuardedJoin(left, right, on="card_number_token", consent=policy)
        .group_by("segment")
        .agg(agg.count().alias("n"))
        .min_cohort(10)
        .run()
    )
    contract = OutputContract(
        columns=(ContractColumn("segment", "string", "dimension"),
                 ContractColumn("n", "bigint", "cohort_count")),
        min_cohort=10,
        name="segments",
    )
    assert result.write_delta(target, contract=contract, audit=audit) == 0
    assert sorted(tuple(r) for r in spark.read.table(target).collect()) == [("a", 20), ("b", 20)]
    head = head_from_commit(spark, target)
    review, _ = audit.entries()
    assert head == review.entry_hash  # the head when the commit was made: before its write entry
    assert audit.verify(head=head).ok
    meta = json.loads(spark.sql(f"DESCRIBE HISTORY {target} LIMIT 1").collect()[0]["userMetadata"])
    assert meta["audit_log"] == audit.path
    assert result.write_delta(target, contract=contract, audit=audit, mode="append") == 1
    assert head_from_commit(spark, target, version=0) == head
    assert delta_identity(spark, target) == {"table": target, "version": 1}
    writes = [e for e in audit.entries() if e.action == "delta_write"]
    assert [(e.parameters["table"], e.output["version"]) for e in writes] == [  # type: ignore[index]
        (target, 0),
        (target, 1),
    ]
    # overwriting the existing table replaces its rows in one commit (Delta 3.3: at its location)
    assert result.write_delta(target, contract=contract, mode="overwrite") == 2
    assert sorted(tuple(r) for r in spark.read.table(target).collect()) == [("a", 20), ("b", 20)]
    with pytest.raises(InvalidArgumentError, match=re.escape("got a one-part name")):
        result.write_delta("segments", contract=contract)
