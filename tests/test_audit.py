from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cleanjoin._auditverify import (
    ENTRY_FIELDS,
    GENESIS_HASH,
    canonical_json,
    compute_entry_hash,
    content_hash_rows,
    make_entry,
    verify_file,
)
from cleanjoin.audit import AuditEntry, AuditLog, check_parameters, content_hash, delta_identity
from cleanjoin.cli import main
from cleanjoin.errors import AuditChainError, InvalidArgumentError

DOC = Path(__file__).resolve().parents[1] / "docs" / "audit-format.md"
REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- helpers


def _chain(n: int) -> list[dict[str, Any]]:
    entries, prev = [], GENESIS_HASH
    for seq in range(n):
        e = make_entry(
            seq,
            prev,
            time=f"2026-11-26T00:00:{seq:02d}.000000Z",
            actor="analyst",
            action="guarded_run" if seq % 2 else "tokenize",
            parameters={"min_cohort": 100, "groups": ["mcc", "age_band"], "eps": 0.5, "note": "é"},
            inputs=[{"path": "/data/provider", "version": seq}],
            output={"path": "/data/out", "version": seq, "content_hash": "ab" * 32},
        )
        entries.append(e)
        prev = e["entry_hash"]
    return entries


def _write(path: Path, lines: list[str]) -> Path:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.writelines(line + "\n" for line in lines)
    return path


def _lines(n: int = 6) -> list[str]:
    return [canonical_json(e) for e in _chain(n)]


def _doc_verify() -> Callable[..., tuple[bool, int | None, str]]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Verification algorithm", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    assert len(code.group(1).strip().splitlines()) <= 25
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOC), "exec"), namespace)
    verify: Callable[..., tuple[bool, int | None, str]] = namespace["verify"]
    return verify


def _both(path: Path, head: str | None = None) -> tuple[bool, int | None]:
    """Verify with the library and with the algorithm printed in the doc; they must agree."""
    result = verify_file(path, head=head)
    ok, bad, _ = _doc_verify()(str(path), head)
    assert (result.ok, result.first_bad_seq) == (ok, bad)
    return result.ok, result.first_bad_seq


# --------------------------------------------------------------------------- verification (stdlib)


def test_intact_chain_verifies_with_library_doc_and_cli(tmp_path: Path) -> None:
    lines = _lines()
    path = _write(tmp_path / "a.jsonl", lines)
    head = json.loads(lines[-1])["entry_hash"]
    assert _both(path) == (True, None)
    assert _both(path, head) == (True, None)
    assert _both(path, json.loads(lines[2])["entry_hash"]) == (True, None)  # older checkpoint
    assert verify_file(path).entries == 6
    assert verify_file(path).head == head
    assert main(["audit", "verify", str(path)]) == 0
    assert main(["audit", "verify", str(path), "--head", head]) == 0


def test_empty_export_is_valid_without_head_and_truncated_with_one(tmp_path: Path) -> None:
    path = _write(tmp_path / "e.jsonl", [])
    assert _both(path) == (True, None)
    assert _both(path, "0" * 64) == (False, 0)


def test_every_single_byte_flip_is_detected_at_its_seq(tmp_path: Path) -> None:
    lines = _lines(4)
    target = tmp_path / "flip.jsonl"
    verify_doc = _doc_verify()
    for seq in (0, 2, 3):
        raw = lines[seq].encode("utf-8")
        for pos in range(len(raw)):
            flipped = bytearray(raw)
            flipped[pos] ^= 0x01
            body = [*lines[:seq], flipped.decode("utf-8", errors="replace"), *lines[seq + 1 :]]
            _write(target, body)
            result = verify_file(target)
            assert (result.ok, result.first_bad_seq) == (False, seq), (seq, pos, result)
            assert verify_doc(str(target))[:2] == (False, seq), (seq, pos)


@pytest.mark.parametrize("field", sorted(ENTRY_FIELDS))
def test_editing_any_field_is_detected(tmp_path: Path, field: str) -> None:
    entries = _chain(5)
    edited = dict(entries[3])
    edited[field] = {"x": 1} if field != "parameters" else {"min_cohort": 1}
    lines = [canonical_json(e) for e in entries[:3]] + [canonical_json(edited)]
    lines += [canonical_json(e) for e in entries[4:]]
    assert _both(_write(tmp_path / "f.jsonl", lines)) == (False, 3)


def test_recomputed_hash_of_an_edited_entry_breaks_the_next_link(tmp_path: Path) -> None:
    entries = _chain(5)
    forged = dict(entries[2], actor="someone else")
    forged["entry_hash"] = compute_entry_hash(forged)
    lines = [canonical_json(e) for e in ([*entries[:2], forged, *entries[3:]])]
    assert _both(_write(tmp_path / "r.jsonl", lines)) == (False, 3)


@pytest.mark.parametrize("k", [0, 2, 4])
def test_removed_entry_is_detected_at_its_seq(tmp_path: Path, k: int) -> None:
    lines = _lines(6)
    head = json.loads(lines[-1])["entry_hash"]
    assert _both(_write(tmp_path / "d.jsonl", lines[:k] + lines[k + 1 :]), head) == (False, k)


@pytest.mark.parametrize(("i", "j"), [(0, 1), (1, 4), (4, 5)])
def test_swapped_entries_are_detected_at_the_first(tmp_path: Path, i: int, j: int) -> None:
    lines = _lines(6)
    lines[i], lines[j] = lines[j], lines[i]
    assert _both(_write(tmp_path / "s.jsonl", lines)) == (False, i)


def test_inserted_entries_are_detected(tmp_path: Path) -> None:
    lines = _lines(6)
    copy = [*lines[:3], lines[1], *lines[3:]]  # a replayed copy of an earlier entry
    assert _both(_write(tmp_path / "i1.jsonl", copy)) == (False, 3)
    forged = make_entry(
        3,
        json.loads(lines[2])["entry_hash"],
        time="2026-11-26T00:00:03.5Z",
        actor="x",
        action="purge",
        parameters={},
    )  # a well-formed entry claiming seq 3: caught where the genuine seq 3 repeats
    body = [*lines[:3], canonical_json(forged), *lines[3:]]
    assert _both(_write(tmp_path / "i2.jsonl", body)) == (False, 4)
    appended = [*lines, lines[0]]
    assert _both(_write(tmp_path / "i3.jsonl", appended)) == (False, 6)


@pytest.mark.parametrize("keep", [0, 3, 5])
def test_truncated_tail_is_detected_only_with_head(tmp_path: Path, keep: int) -> None:
    lines = _lines(6)
    head = json.loads(lines[-1])["entry_hash"]
    path = _write(tmp_path / "t.jsonl", lines[:keep])
    assert _both(path) == (True, None)
    assert _both(path, head) == (False, keep)
    assert main(["audit", "verify", str(path), "--head", head]) == 1


def test_non_canonical_and_crlf_exports_fail(tmp_path: Path) -> None:
    entries = _chain(3)
    pretty = [canonical_json(entries[0]), json.dumps(entries[1]), canonical_json(entries[2])]
    assert _both(_write(tmp_path / "p.jsonl", pretty)) == (False, 1)
    crlf = tmp_path / "c.jsonl"
    crlf.write_bytes(b"".join(canonical_json(e).encode() + b"\r\n" for e in entries))
    assert _both(crlf) == (False, 0)


def test_cli_verify_reports_first_bad_seq_and_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _lines(5)
    lines[2], lines[3] = lines[3], lines[2]
    path = _write(tmp_path / "bad.jsonl", lines)
    assert main(["audit", "verify", str(path)]) == 1
    assert "FAILED at seq 2:" in capsys.readouterr().err
    assert main(["audit", "verify", str(tmp_path / "missing.jsonl")]) == 2
    assert main(["audit", "verify", str(path), "--head", "xyz"]) == 2


def test_audit_entry_is_frozen_and_checks_its_hash() -> None:
    entry = AuditEntry.from_dict(_chain(1)[0])
    assert entry.seq == 0
    assert entry.prev_hash == GENESIS_HASH
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.seq = 3  # type: ignore[misc]
    bad = dict(_chain(1)[0], actor="mallory")
    with pytest.raises(AuditChainError, match=re.escape("entry_hash of seq 0 does not match")):
        AuditEntry.from_dict(bad)


# --------------------------------------------------------------------------- parameter checks


@pytest.mark.parametrize(
    ("value", "what"),
    [
        ("4111111111111111", "a card number"),
        ("card 4111-1111-1111-1111 seen", "a card number"),
        (4111111111111111, "a card number"),
        ("378282246310005", "a card number"),
        ("3782 822463 10005", "a card number"),
        ("0004111111111111111", "a card number"),
        ("Alice.Smith@Example.com", "an email address"),
        ("9f" * 32, "a token or key material"),
        ("DEADBEEF" * 4, "a token or key material"),
        ("q3Z8xK1vT0pL9sW2mN4bR7yU6hJ5gF3dS1aQ0wE8rT2=", "key material"),
    ],
)
def test_values_shaped_like_identifiers_tokens_or_keys_are_refused(value: Any, what: str) -> None:
    with pytest.raises(
        InvalidArgumentError, match=re.escape(f"parameters['x'] looks like {what}")
    ) as info:
        check_parameters({"x": value})
    assert str(value) not in str(info.value)
    with pytest.raises(InvalidArgumentError, match=re.escape("looks like")):
        check_parameters({"nested": [{"deep": value}]})


def test_digests_are_allowed_only_under_hash_or_fingerprint_keys() -> None:
    digest = "0a" * 32
    ok = {"spec_fingerprint": digest, "content_hash": digest, "key_check_value": "a1b2c3d4"}
    assert check_parameters(ok) == ok
    with pytest.raises(InvalidArgumentError, match=re.escape("parameters['release']")):
        check_parameters({"release": digest})
    with pytest.raises(InvalidArgumentError, match=re.escape("key number 0 looks like")) as info:
        check_parameters({digest: 1})  # a token used as a key is refused without echoing it
    assert digest not in str(info.value)


def test_harmless_values_pass() -> None:
    params = {
        "rows": 2_000_000,
        "eps": 0.5,
        "delta": 1e-6,
        "columns": ("card_number", "email"),
        "path": "/tmp/pytest-of-root/pytest-12/test_x0/gold",
        "release_id": "2026-11-weekly",
        "version": 12,
        "ok": True,
        "none": None,
        "order_id": 1234567890123,  # not Luhn-valid
    }
    assert check_parameters(params)["columns"] == ["card_number", "email"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"s": {1, 2}}, "parameters['s'] has type set, which is not JSON-serializable"),
        ({"f": float("nan")}, "parameters['f'] is not a finite number"),
        ({1: "a"}, "parameters has a key of type int"),
        (["a"], "'parameters' must be a mapping"),
    ],
)
def test_non_json_parameters_are_refused(params: Any, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        check_parameters(params)


def test_refused_append_writes_nothing(tmp_path: Path) -> None:
    log = AuditLog(str(tmp_path / "audit"), actor="a")
    with pytest.raises(InvalidArgumentError, match=re.escape("looks like a card number")):
        log.append("tokenize", {"sample": "4111111111111111"})
    with pytest.raises(InvalidArgumentError, match=re.escape("'action' must be a snake_case")):
        log.append("Drop Table", {})
    with pytest.raises(
        InvalidArgumentError, match=re.escape("inputs[0]['who'] looks like an email")
    ):
        log.append("tokenize", {}, inputs=[{"who": "a@b.example"}])
    with pytest.raises(InvalidArgumentError, match=re.escape("no SparkSession")):
        log.append("tokenize", {})
    assert not (tmp_path / "audit").exists()


def test_content_hash_rows_is_order_independent_and_typed() -> None:
    a = content_hash_rows(["g", "n", "r"], [("x", 1, 0.5), ("y", 2, None)])
    assert a == content_hash_rows(["r", "g", "n"], [(None, "y", 2), (0.5, "x", 1)])
    assert a != content_hash_rows(["g", "n", "r"], [("x", 1, 0.5), ("y", 2.0, None)])
    assert a != content_hash_rows(["g", "n", "q"], [("x", 1, 0.5), ("y", 2, None)])
    assert len(a) == 64


# --------------------------------------------------------------------------- Spark (both modes)


def test_append_head_export_and_verify(spark: Any, tmp_path: Path) -> None:
    path = str(tmp_path / "audit")
    log = AuditLog(path, actor="analyst")
    df = spark.createDataFrame([("a", 3, 0.25), ("b", 5, None)], "segment STRING, n BIGINT, rate DOUBLE")
    out = str(tmp_path / "out")
    df.write.format("delta").save(out)
    ident = delta_identity(spark, out)
    assert ident == {"path": out, "version": 0}
    with pytest.raises(InvalidArgumentError, match=re.escape("delta_identity: there is no Delta table")):
        delta_identity(spark, str(tmp_path / "missing"))
    chash = content_hash(df)
    assert chash == content_hash_rows(["segment", "n", "rate"], [("b", 5, None), ("a", 3, 0.25)])
    e0 = log.append("tokenize", {"rows": 2, "columns": ("card_number",)}, spark=spark)
    e1 = log.append(
        "delta_write", {"mode": "overwrite", "note": "naïve ü"}, inputs=[ident],
        output={**ident, "content_hash": chash}, spark=spark,
    )
    assert (e0.seq, e1.seq, e1.prev_hash) == (0, 1, e0.entry_hash)
    assert log.head(spark=spark) == e1.entry_hash
    assert log.commit_metadata(spark=spark) == {"audit_log": path, "audit_seq": 1, "audit_head": e1.entry_hash}
    export = tmp_path / "audit.jsonl"
    assert log.export(export, spark=spark) == 2
    assert _both(export, e1.entry_hash) == (True, None)
    assert json.loads(export.read_text(encoding="utf-8").splitlines()[1])["parameters"]["note"] == "naïve ü"


def test_concurrent_threads_never_fork_or_lose_entries(spark: Any, tmp_path: Path) -> None:
    path = str(tmp_path / "audit")
    errors: list[BaseException] = []
    per_writer = 5

    def writer(name: str) -> None:
        log = AuditLog(path, actor=name)  # each writer its own log object, no shared cache
        for i in range(per_writer):
            try:
                log.append("budget_charge", {"writer": name, "i": i}, spark=spark)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{n}",)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    log = AuditLog(path)
    result = log.verify(spark=spark)
    assert result.ok, result
    assert result.entries == 2 * per_writer
    got = sorted((e.parameters["writer"], e.parameters["i"]) for e in log.entries(spark=spark))
    assert got == sorted((f"w{n}", i) for n in range(2) for i in range(per_writer))


_CHILD = """
import sys
from pyspark.sql.connect.session import SparkSession
from cleanjoin.audit import AuditLog
spark = SparkSession.builder.remote(sys.argv[1]).getOrCreate()
log = AuditLog(sys.argv[2], actor=sys.argv[3])
for i in range(int(sys.argv[4])):
    log.append("revocation_batch", {"writer": sys.argv[3], "i": i}, spark=spark)
"""


def test_concurrent_processes_never_fork_or_lose_entries(
    connect_server: Any, spark_connect: Any, tmp_path: Path
) -> None:
    path = str(tmp_path / "audit")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, connect_server.url, path, f"p{n}", "5"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()[-2000:]
    log = AuditLog(path)
    assert log.verify(spark=spark_connect).entries == 10
    got = sorted(
        (e.parameters["writer"], e.parameters["i"]) for e in log.entries(spark=spark_connect)
    )
    assert got == sorted((f"p{n}", i) for n in range(2) for i in range(5))


def test_cli_export_then_verify(spark_classic: Any, tmp_path: Path) -> None:
    spark = spark_classic
    path = str(tmp_path / "audit")
    log = AuditLog(path, actor="analyst")
    assert log.head(spark=spark) is None
    assert log.commit_metadata(spark=spark) == {"audit_log": path, "audit_seq": None, "audit_head": None}
    assert log.entries(spark=spark) == []
    entries = [log.append("contract_review", {"verdict": v}, spark=spark) for v in ("ok", "no")]
    # A second AuditLog object on the same table continues the chain, and a stale cached
    # head is detected (MERGE inserts nothing) and re-read.
    entries.append(AuditLog(path, actor="other").append("purge", {}, spark=spark))
    entries.append(log.append("purge", {}, spark=spark))
    assert [e.seq for e in entries] == [0, 1, 2, 3]
    assert entries[3].prev_hash == entries[2].entry_hash
    assert [e.entry_hash for e in log.entries(spark=spark)] == [e.entry_hash for e in entries]
    assert log.verify(spark=spark, head=entries[1].entry_hash).ok
    out = tmp_path / "audit.jsonl"
    assert main(["audit", "export", path, "--out", str(out)]) == 0
    assert main(["audit", "verify", str(out), "--head", entries[-1].entry_hash]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    _write(out, lines[:1])
    assert main(["audit", "verify", str(out), "--head", entries[-1].entry_hash]) == 1
    # The table refuses edits: it is append-only.
    with pytest.raises(Exception, match=r"DELTA_CANNOT_MODIFY_APPEND_ONLY|append-only"):
        spark.sql(f"DELETE FROM delta.`{path}` WHERE seq = 0").collect()


def test_content_hash_recomputed_with_pandas_as_documented(spark_classic: Any, tmp_path: Path) -> None:
    df = spark_classic.createDataFrame(
        [("a", 3, 0.25, None), ("b", None, 0.5, "x")], "segment STRING, n BIGINT, rate DOUBLE, t STRING"
    )
    out = str(tmp_path / "out")
    df.write.format("delta").save(out)
    released = spark_classic.read.format("delta").load(out)
    pdf = released.toPandas()
    for f in released.schema.fields:  # integer columns with nulls come back as float
        if f.dataType.typeName() in ("byte", "short", "integer", "long"):
            pdf[f.name] = pdf[f.name].astype("Int64")
    pdf = pdf.astype(object).where(pdf.notna(), None)
    rows = [tuple(r) for r in pdf.itertuples(index=False)]
    assert content_hash_rows(list(pdf.columns), rows) == content_hash(df)
