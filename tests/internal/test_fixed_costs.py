"""The flow's fixed costs, cut without weakening a check (issue #22).

* An audit writer's cached head stands in for a read of the table only while the table's
  newest commit is still the one that writer made: a commit by another writer, or a row
  appended by hand with plain Spark, sends it back to the table.
* ``TableRef.commit_once`` says at which version its commit landed (from the newest
  commit, in the common case) and that a skipped write did not land.
* ``write_delta`` finds its commit's version, in the newest commit or further back.
* A run's released rows are hashed once for its audit entry and its write's seal.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from cleanjoin import agg
from cleanjoin._table import Commit, TableRef
from cleanjoin.audit import AuditLog
from cleanjoin.errors import InternalError


def _tok(i: int) -> str:
    return hashlib.sha256(f"fixed-cost-{i}".encode()).hexdigest()


class _Reads:
    """Counts the audit log's reads of its table's head (``AuditLog._read_head``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = AuditLog._read_head
        self.calls = 0

        def counted(log: AuditLog, spark: Any) -> Any:
            self.calls += 1
            return original(log, spark)

        monkeypatch.setattr(AuditLog, "_read_head", counted)


def test_the_cached_head_is_used_only_while_its_commit_is_the_newest(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "audit")
    log = AuditLog(path, spark=spark, actor="a")
    first = log.append("tokenize", {"n": 1})
    reads = _Reads(monkeypatch)
    assert log.commit_metadata() == {"audit_log": path, "audit_seq": 0,
                                     "audit_head": first.entry_hash}
    assert log.head() == first.entry_hash
    assert reads.calls == 0  # this writer's own commit is the newest: no read of the table

    # another writer appends: the cached head is stale and the table is read
    other = AuditLog(path, spark=spark, actor="b").append("tokenize", {"n": 2})
    calls = reads.calls
    assert log.commit_metadata() == {"audit_log": path, "audit_seq": 1,
                                     "audit_head": other.entry_hash}
    assert reads.calls == calls + 1
    assert log.head() == other.entry_hash


def test_a_row_appended_by_hand_is_read_not_hidden_by_the_cache(
    spark: Any, tmp_path: Path
) -> None:
    """A forged row (plain Spark, a copy of a real one under the next seq) is what the
    table's head says; the chain does not verify, with or without a cache."""
    path = str(tmp_path / "audit")
    log = AuditLog(path, spark=spark, actor="a")
    log.append("tokenize", {"n": 1})
    forged = spark.read.format("delta").load(path).selectExpr(
        "format_version", "CAST(1 AS BIGINT) AS seq", "time", "actor", "action",
        "parameters", "inputs", "output", "prev_hash", "entry_hash",
    )
    forged.write.format("delta").mode("append").save(path)
    assert log.commit_metadata()["audit_seq"] == 1  # not the cached seq 0
    assert not log.verify().ok  # the forged row breaks the chain
    log.append("purge", {})  # its cached seq 0 says seq 1 is next (as before the cache)
    assert not log.verify().ok


def test_commit_once_says_where_it_landed_and_when_it_was_skipped(
    spark: Any, tmp_path: Path
) -> None:
    path = str(tmp_path / "t")
    spark.sql(f"CREATE TABLE delta.`{path}` (n BIGINT) USING DELTA").collect()
    ref = TableRef.parse(path, arg="path", call="test")

    def once(version: int, marker: str) -> Commit:
        return ref.commit_once(
            spark.createDataFrame([(version,)], "n BIGINT"), app_id="cj-test",
            version=version, marker=marker, landed=lambda: pytest.fail("history was read"),
        )

    assert once(0, "m0") == Commit(landed=True, version=1)
    assert once(1, "m1") == Commit(landed=True, version=2)
    assert once(1, "again") == Commit(landed=False, version=None)  # version 1 was taken
    assert ref.latest_commit(spark) == (2, "m1")
    assert ref.append_once(
        spark.createDataFrame([(5,)], "n BIGINT"), app_id="cj-test", version=5, marker="m5",
        landed=lambda: False,
    ) is True
    assert spark.read.format("delta").load(path).count() == 3


def test_written_version_is_found_in_the_newest_commit_or_further_back(
    spark: Any, tmp_path: Path
) -> None:
    from cleanjoin.guard._write import _written_version

    path = str(tmp_path / "t")
    df = spark.createDataFrame([(1,)], "n BIGINT")
    for meta in ("first", "second"):
        df.write.format("delta").mode("append").option("userMetadata", meta).save(path)
    ref = TableRef.parse(path, arg="path", call="test")
    assert _written_version(spark, ref, "second") == 1
    assert _written_version(spark, ref, "first") == 0  # another commit came after it
    with pytest.raises(InternalError, match=re.escape("not found in the table history")):
        _written_version(spark, ref, "never")


def test_released_rows_are_hashed_once_for_the_entry_and_the_seal(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cleanjoin.audit as audit_mod
    from cleanjoin.contract import OutputContract
    from cleanjoin.guard import GuardedJoin

    left = spark.createDataFrame([(_tok(i), "M1" if i < 6 else "M2") for i in range(12)],
                                 "card_number_token string, segment string")
    right = spark.createDataFrame([(_tok(i),) for i in range(12)], "card_number_token string")
    original = audit_mod.content_hash
    hashed: list[str] = []

    def counted(df: Any) -> str:
        hashed.append(original(df))
        return hashed[-1]

    monkeypatch.setattr(audit_mod, "content_hash", counted)
    log = AuditLog(str(tmp_path / "audit"), spark=spark, actor="a")
    result = (
        GuardedJoin(left, right, on="card_number_token").group_by("segment")
        .agg(agg.count().alias("n")).min_cohort(3).run(audit=log)
    )
    out = str(tmp_path / "out")
    version = result.write_delta(out, contract=OutputContract.from_result(result), audit=log)
    assert len(hashed) == 1
    assert hashed[0] == original(result.df)
    run, review, write = log.entries()
    assert [run.action, review.action, write.action] == [
        "guarded_run", "contract_review", "delta_write"]
    assert run.output is not None
    assert write.output is not None
    assert run.output["content_hash"] == write.output["content_hash"] == hashed[0]
    seal = spark.sql(f"DESCRIBE HISTORY delta.`{out}` LIMIT 1").collect()[0]
    meta = json.loads(seal["userMetadata"])
    assert (int(seal["version"]), meta["content_hash"]) == (version, hashed[0])
    assert meta["audit_seq"] == review.seq  # the head after the review, as before
    # a second write of the same result reuses the hash too
    result.write_delta(str(tmp_path / "out2"), contract=OutputContract.from_result(result))
    assert len(hashed) == 1
