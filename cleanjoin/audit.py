"""A tamper-evident, hash-chained audit log stored as a Delta table.

Every cleanjoin action that matters (tokenize, guarded run, contract review, Delta write,
budget charge, revocation batch, purge) can append one entry to an :class:`AuditLog`.
Each entry carries the SHA-256 of the previous one, so editing, removing, inserting or
reordering any entry breaks the chain; the latest ``entry_hash`` (the *head*) is also
written into each output table's Delta commit metadata, so a partner holding an output
holds a checkpoint of the log. ``cleanjoin audit export`` writes the log as JSONL and
``cleanjoin audit verify`` checks it with the Python standard library only (the
algorithm is in ``docs/audit-format.md``).

Appends are safe under concurrent writers: an entry is added with an insert-only
``MERGE`` keyed on ``seq`` (compare-and-append), and a writer that loses the race
re-reads the head and retries, so the chain never forks and no entry is lost.

Entries never hold keys, raw identifiers or tokens: parameters must be JSON values, and a
defensive scan refuses strings shaped like card numbers, emails, tokens or key material.

Example:
    >>> log = AuditLog("/tmp/audit")  # doctest: +SKIP
    >>> e = log.append("tokenize", {"rows": 10}, spark=spark)  # doctest: +SKIP
    >>> log.head(spark=spark) == e.entry_hash  # doctest: +SKIP
    True
    >>> check_parameters({"rows": 10, "pan": "4111 1111 1111 1111"})
    Traceback (most recent call last):
    ...
    cleanjoin.errors.InvalidArgumentError: AuditLog.append: parameters['pan'] looks like a card number (a Luhn-valid run of 12-19 digits); audit entries never hold raw identifiers, tokens or keys
"""

from __future__ import annotations

import argparse
import datetime as _dt
import getpass
import json
import math
import os
import re
import secrets
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from cleanjoin._auditverify import (
    FORMAT_VERSION,
    GENESIS_HASH,
    VerifyResult,
    canonical_json,
    compute_entry_hash,
    content_hash_rows,
    make_entry,
    verify_entries,
    verify_file,
)
from cleanjoin._delta import is_conflict, is_missing, quote_path
from cleanjoin._typing import DataFrame, SparkSession
from cleanjoin.errors import AuditChainError, InternalError, InvalidArgumentError

__all__ = [
    "ACTIONS",
    "GENESIS_HASH",
    "AuditEntry",
    "AuditLog",
    "VerifyResult",
    "check_parameters",
    "content_hash",
    "delta_identity",
    "head_from_commit",
    "register_cli",
    "verify_file",
]

ACTIONS = (
    "tokenize",
    "guarded_run",
    "contract_review",
    "delta_write",
    "budget_charge",
    "revocation_batch",
    "purge",
)
"""The actions cleanjoin itself logs. Other actions are accepted if they are snake_case."""

# Retry back-off jitter only (de-synchronizes conflicting Delta writers); never noise:
# DP noise comes from pipeline_dp / PyDP alone (cleanjoin.dp).
_JITTER = secrets.SystemRandom()
_ACTION_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

# Keys whose values may be 64-hex digests: the hash/fingerprint of something public.
_DIGEST_KEY_SUFFIXES = ("hash", "fingerprint", "check_value")

_SCHEMA = (
    "format_version INT, seq BIGINT, time STRING, actor STRING, action STRING, "
    "parameters STRING, inputs STRING, output STRING, prev_hash STRING, entry_hash STRING"
)

# --------------------------------------------------------------------------- privacy scan

_DIGIT_GROUPS = re.compile(r"(?<![0-9])[0-9]+(?:[ -][0-9]+)*(?![0-9])")
_HEX_RUN = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{32,}(?![0-9A-Fa-f])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_B64_RUN = re.compile(r"[A-Za-z0-9+/=_-]{40,}")
_DIGEST = re.compile(r"[0-9a-f]{64}")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _pan_candidates(text: str) -> list[str]:
    """Digit strings in ``text`` that could be a card number: a contiguous run of 12-19
    digits, or groups joined by single spaces/dashes as cards are printed (first and
    middle groups of 4+ digits, e.g. ``4111 1111 1111 1111``, ``3782-822463-10005``), which
    keeps dates such as ``2026-11-26`` out."""
    found: list[str] = []
    for match in _DIGIT_GROUPS.finditer(text):
        groups = re.split(r"[ -]", match.group())
        found += [g for g in groups if 12 <= len(g) <= 19]
        if len(groups) > 1 and all(len(g) >= 4 for g in groups[:-1]):
            joined = "".join(groups)
            if 12 <= len(joined) <= 19:
                found.append(joined)
    return found


def _class_changes(run: str) -> float:
    """Share of adjacent letters/digits that change class (upper, lower, digit): about
    0.62 for random base64, rarely above 0.3 for names, camelCase and paths."""
    kinds = ["u" if c.isupper() else "l" if c.islower() else "d" for c in run if c.isalnum()]
    return sum(a != b for a, b in pairwise(kinds)) / max(1, len(kinds))


def _shape_problem(text: str, *, digest_ok: bool) -> str:
    """What ``text`` looks like that must not be logged, or "" when it looks harmless."""
    if digest_ok and _DIGEST.fullmatch(text):
        return ""  # a SHA-256 hex digest under a *hash / *fingerprint key
    if any(_luhn_ok(d) for d in _pan_candidates(text)):
        return "a card number (a Luhn-valid run of 12-19 digits)"
    if _EMAIL.search(text):
        return "an email address"
    if _HEX_RUN.search(text):
        return "a token or key material (a run of 32 or more hex digits)"
    for match in _B64_RUN.finditer(text):
        if _class_changes(match.group()) >= 0.4:
            return "key material (a long base64-like run)"
    return ""


def _refuse(where: str, what: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"AuditLog.append: {where} looks like {what}; audit entries never hold raw "
        "identifiers, tokens or keys"
    )


def _scan(value: Any, where: str, *, digest_ok: bool = False) -> Any:
    """Validate one JSON value recursively; return it with tuples as lists."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        problem = _shape_problem(str(value), digest_ok=False)
        if problem:
            raise _refuse(where, problem)
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgumentError(
                f"AuditLog.append: {where} is not a finite number (NaN and infinities are not JSON)"
            )
        return value
    if isinstance(value, str):
        problem = _shape_problem(value, digest_ok=digest_ok)
        if problem:
            raise _refuse(where, problem)
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for i, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise InvalidArgumentError(
                    f"AuditLog.append: {where} has a key of type {type(key).__name__}; "
                    "JSON object keys must be strings"
                )
            if _shape_problem(key, digest_ok=False):
                raise _refuse(f"{where} key number {i}", _shape_problem(key, digest_ok=False))
            digest = key.lower().endswith(_DIGEST_KEY_SUFFIXES)
            out[key] = _scan(item, f"{where}[{key!r}]", digest_ok=digest)
        return out
    if isinstance(value, (list, tuple)):
        return [_scan(item, f"{where}[{i}]", digest_ok=digest_ok) for i, item in enumerate(value)]
    raise InvalidArgumentError(
        f"AuditLog.append: {where} has type {type(value).__name__}, which is not "
        "JSON-serializable (use str, int, float, bool, None, list or dict)"
    )


def check_parameters(parameters: Mapping[str, Any], *, where: str = "parameters") -> dict[str, Any]:
    """Validate audit parameters and return them as plain JSON (tuples become lists).

    Refuses values that are not JSON (sets, objects, NaN, non-string keys) and, as a
    last line of defence, strings or numbers shaped like a card number (a Luhn-valid run
    of 12-19 digits, contiguous or grouped as printed on cards: ``4111 1111 1111 1111``),
    an email address, a token or hex key (32+ hex digits) or base64 key material (a run
    of 40+ base64 characters whose letters and digits change class as often as random
    data does). A 64-hex digest is allowed only as the whole
    value of a key ending in ``hash``, ``fingerprint`` or ``check_value``. Error messages
    name the place, never the value.

    Raises:
        InvalidArgumentError: when a value is refused.

    Example:
        >>> check_parameters({"groups": ("a", "b"), "spec_fingerprint": "ab" * 32})["groups"]
        ['a', 'b']
    """
    if not isinstance(parameters, Mapping):
        raise InvalidArgumentError(
            f"AuditLog.append: '{where}' must be a mapping (a JSON object), "
            f"got {type(parameters).__name__}"
        )
    result: dict[str, Any] = _scan(parameters, where)
    return result


# --------------------------------------------------------------------------- entries


@dataclass(frozen=True)
class AuditEntry:
    """One verified entry of an audit log.

    Attributes:
        seq: position in the chain, starting at 0.
        time: UTC time of the append, ISO-8601 with microseconds and ``Z``.
        actor: who appended it.
        action: what was done (see :data:`ACTIONS`).
        parameters: JSON object describing the action (no keys, identifiers or tokens).
        inputs: identities of the inputs (e.g. ``{"path": ..., "version": ...}``).
        output: identity and ``content_hash`` of the output, or ``None``.
        prev_hash: ``entry_hash`` of entry ``seq - 1`` (64 zeros for seq 0).
        entry_hash: SHA-256 hex of the canonical JSON of all other fields.
        format_version: version of the entry format.
    """

    seq: int
    time: str
    actor: str
    action: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    inputs: tuple[Mapping[str, Any], ...] = ()
    output: Mapping[str, Any] | None = None
    prev_hash: str = GENESIS_HASH
    entry_hash: str = ""
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.seq, int) or isinstance(self.seq, bool) or self.seq < 0:
            raise InvalidArgumentError(f"AuditEntry: 'seq' must be an int >= 0, got {self.seq!r}")
        if compute_entry_hash(self.to_dict()) != self.entry_hash:
            raise AuditChainError(
                f"AuditEntry: entry_hash of seq {self.seq} does not match its content", self.seq
            )

    def to_dict(self) -> dict[str, Any]:
        """The entry as a plain JSON dict (the form that is hashed and exported)."""
        return {
            "format_version": self.format_version,
            "seq": self.seq,
            "time": self.time,
            "actor": self.actor,
            "action": self.action,
            "parameters": json.loads(canonical_json(dict(self.parameters))),
            "inputs": [json.loads(canonical_json(dict(i))) for i in self.inputs],
            "output": None if self.output is None else json.loads(canonical_json(dict(self.output))),
            "prev_hash": self.prev_hash,
            "entry_hash": self.entry_hash,
        }

    def to_json(self) -> str:
        """One canonical JSON line of the export."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditEntry:
        """Rebuild an entry from :meth:`to_dict` output (checks its hash)."""
        return cls(
            seq=data["seq"],
            time=data["time"],
            actor=data["actor"],
            action=data["action"],
            parameters=data["parameters"],
            inputs=tuple(data["inputs"]),
            output=data["output"],
            prev_hash=data["prev_hash"],
            entry_hash=data["entry_hash"],
            format_version=data["format_version"],
        )


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _row_to_dict(row: Any) -> dict[str, Any]:
    return {
        "format_version": int(row["format_version"]),
        "seq": int(row["seq"]),
        "time": row["time"],
        "actor": row["actor"],
        "action": row["action"],
        "parameters": json.loads(row["parameters"]),
        "inputs": json.loads(row["inputs"]),
        "output": json.loads(row["output"]),
        "prev_hash": row["prev_hash"],
        "entry_hash": row["entry_hash"],
    }


class AuditLog:
    """An append-only, hash-chained audit log stored as a Delta table at ``path``.

    The table (created on the first append, with ``delta.appendOnly = true``) has one
    row per entry: ``format_version, seq, time, actor, action, parameters, inputs,
    output, prev_hash, entry_hash``; ``parameters``, ``inputs`` and ``output`` are
    canonical JSON strings, so verification never depends on Spark types. ``seq``
    starts at 0. See ``docs/audit-format.md``.

    Args:
        path: the Delta table's path.
        spark: default session (callers usually pass ``spark=df.sparkSession`` per call).
        actor: who is acting; defaults to ``$CLEANJOIN_ACTOR``, the Databricks user when
            running on Databricks, else the operating-system user.
        max_attempts: how many times an append retries after losing a race.

    Example:
        >>> log = AuditLog("/tmp/audit", actor="analyst@provider")  # doctest: +SKIP
        >>> log.append("guarded_run", {"min_cohort": 100}, spark=spark).seq  # doctest: +SKIP
        0
    """

    def __init__(
        self,
        path: str,
        *,
        spark: SparkSession | None = None,
        actor: str | None = None,
        max_attempts: int = 60,
    ) -> None:
        if not isinstance(path, str) or not path.strip():
            raise InvalidArgumentError("AuditLog: 'path' must be a non-empty string")
        if actor is not None and (not isinstance(actor, str) or not actor.strip()):
            raise InvalidArgumentError("AuditLog: 'actor' must be a non-empty string or None")
        if not isinstance(max_attempts, int) or max_attempts < 1:
            raise InvalidArgumentError("AuditLog: 'max_attempts' must be an int >= 1")
        self._path = path
        self._spark = spark
        self._actor = actor
        self._max_attempts = max_attempts
        self._cached_head: tuple[int, str] | None = None

    def __repr__(self) -> str:
        return f"AuditLog({self._path!r})"

    @property
    def path(self) -> str:
        """The Delta table path."""
        return self._path

    # ------------------------------------------------------------------ helpers
    def _session(self, spark: SparkSession | None, method: str) -> SparkSession:
        session = spark if spark is not None else self._spark
        if session is None:
            raise InvalidArgumentError(
                f"AuditLog.{method}: no SparkSession; pass spark=df.sparkSession "
                "(or AuditLog(path, spark=...))"
            )
        return session

    def _resolve_actor(self, spark: SparkSession) -> str:
        if self._actor is None:
            actor = os.environ.get("CLEANJOIN_ACTOR", "").strip()
            if not actor and os.environ.get("DATABRICKS_RUNTIME_VERSION"):
                try:
                    actor = str(spark.sql("SELECT current_user() AS u").collect()[0]["u"] or "")
                except Exception:  # fall back (best effort)
                    actor = ""
            if not actor:
                try:
                    actor = getpass.getuser()
                except Exception:  # fall back (best effort)
                    actor = "unknown"
            self._actor = actor
        return self._actor

    def _read_head(self, spark: SparkSession) -> tuple[int, str] | None:
        try:
            rows = spark.sql(
                f"SELECT seq, entry_hash FROM {quote_path(self._path)} ORDER BY seq DESC LIMIT 1"
            ).collect()
        except Exception as exc:
            if is_missing(exc):
                return None
            raise
        if not rows:
            return None
        return int(rows[0]["seq"]), str(rows[0]["entry_hash"])

    def _create(self, spark: SparkSession) -> bool:
        """Create the table if needed. False when another writer is creating it right now."""
        try:
            spark.sql(
                f"CREATE TABLE IF NOT EXISTS {quote_path(self._path)} ({_SCHEMA}) USING DELTA "
                "TBLPROPERTIES ('delta.appendOnly' = 'true', "
                f"'cleanjoin.audit.format_version' = '{FORMAT_VERSION}')"
            ).collect()
        except Exception as exc:
            if not is_conflict(exc):
                raise
            return False
        return True

    def _compare_and_append(self, spark: SparkSession, entry: Mapping[str, Any]) -> bool:
        """Insert ``entry`` unless its seq is taken. True when this call inserted it."""
        values = {
            "parameters": canonical_json(entry["parameters"]),
            "inputs": canonical_json(entry["inputs"]),
            "output": canonical_json(entry["output"]),
            **{k: entry[k] for k in ("time", "actor", "action", "prev_hash", "entry_hash")},
        }
        # Strings travel hex-encoded, so no value can ever be parsed as SQL.
        columns = ", ".join(
            f"decode(unhex('{str(v).encode('utf-8').hex()}'), 'UTF-8') AS {k}"
            for k, v in values.items()
        )
        result = spark.sql(
            f"MERGE INTO {quote_path(self._path)} t USING (SELECT "
            f"CAST({int(entry['format_version'])} AS INT) AS format_version, "
            f"CAST({int(entry['seq'])} AS BIGINT) AS seq, {columns}) s "
            "ON t.seq = s.seq WHEN NOT MATCHED THEN INSERT *"
        ).collect()
        inserted = int(rows_inserted(result))
        if inserted not in (0, 1):
            raise InternalError(f"AuditLog.append: MERGE inserted {inserted} rows, expected 0 or 1")
        return inserted == 1

    # ------------------------------------------------------------------ public API
    def append(
        self,
        action: str,
        parameters: Mapping[str, Any],
        *,
        inputs: Sequence[Mapping[str, Any]] = (),
        output: Mapping[str, Any] | None = None,
        spark: SparkSession | None = None,
    ) -> AuditEntry:
        """Append one entry and return it.

        Args:
            action: what was done, e.g. ``"tokenize"`` (snake_case; see :data:`ACTIONS`).
            parameters: a JSON object describing the action (checked by
                :func:`check_parameters`).
            inputs: identities of the inputs, e.g. ``delta_identity(spark, path)``.
            output: identity of the output plus ``content_hash``, or ``None``.
            spark: the session to use (``df.sparkSession``).

        Returns:
            The appended :class:`AuditEntry`.

        Raises:
            InvalidArgumentError: for a bad action or refused parameters (nothing written).
            AuditChainError: when the append lost the race ``max_attempts`` times.
        """
        if not isinstance(action, str) or not _ACTION_RE.match(action):
            raise InvalidArgumentError(
                "AuditLog.append: 'action' must be a snake_case name of at most 64 characters "
                f"such as {', '.join(repr(a) for a in ACTIONS[:3])}"
            )
        params = check_parameters(parameters)
        if isinstance(inputs, (str, bytes)) or not isinstance(inputs, Sequence):
            raise InvalidArgumentError("AuditLog.append: 'inputs' must be a sequence of mappings")
        ins = [check_parameters(i, where=f"inputs[{n}]") for n, i in enumerate(inputs)]
        out = None if output is None else check_parameters(output, where="output")
        session = self._session(spark, "append")
        actor = self._resolve_actor(session)
        head = self._cached_head
        creates = 0
        for attempt in range(self._max_attempts):
            if head is None and attempt > 0:
                head = self._read_head(session)
            seq, prev = (0, GENESIS_HASH) if head is None else (head[0] + 1, head[1])
            entry = make_entry(
                seq, prev, time=_now(), actor=actor, action=action, parameters=params,
                inputs=ins, output=out,
            )
            try:
                won = self._compare_and_append(session, entry)
            except Exception as exc:
                if is_missing(exc) and creates < 3:
                    if self._create(session):
                        creates += 1
                    else:  # another writer is creating the table: give it time
                        time.sleep(min(2.0, 0.05 * 2 ** min(attempt, 5)) * (0.5 + _JITTER.random()))
                    head = self._read_head(session)
                    continue
                if not is_conflict(exc):
                    raise
                won = False
            if won:
                self._cached_head = (seq, entry["entry_hash"])
                return AuditEntry.from_dict(entry)
            head = self._read_head(session)
            time.sleep(min(2.0, 0.05 * 2 ** min(attempt, 5)) * _JITTER.random())
        raise AuditChainError(
            f"AuditLog.append: gave up after {self._max_attempts} attempts; other writers kept "
            "appending first. Retry later."
        )

    def head(self, *, spark: SparkSession | None = None) -> str | None:
        """The ``entry_hash`` of the last entry, or ``None`` for an empty (or absent) log."""
        found = self._read_head(self._session(spark, "head"))
        return None if found is None else found[1]

    def commit_metadata(self, *, spark: SparkSession | None = None) -> dict[str, Any]:
        """The audit checkpoint to put into an output table's Delta commit metadata.

        Returns ``{"audit_log": path, "audit_seq": int | None, "audit_head": str | None}``
        (the current head). The guard serializes it into ``userMetadata``.

        Example:
            >>> AuditLog("/tmp/a").commit_metadata(spark=spark)  # doctest: +SKIP
            {'audit_log': '/tmp/a', 'audit_seq': 3, 'audit_head': '5f1c...'}
        """
        found = self._read_head(self._session(spark, "commit_metadata"))
        return {
            "audit_log": self._path,
            "audit_seq": None if found is None else found[0],
            "audit_head": None if found is None else found[1],
        }

    def _dicts(self, spark: SparkSession) -> list[dict[str, Any]]:
        try:
            rows = spark.read.format("delta").load(self._path).orderBy("seq").collect()
        except Exception as exc:
            if is_missing(exc):
                return []
            raise
        return [_row_to_dict(r) for r in rows]

    def entries(self, *, spark: SparkSession | None = None) -> list[AuditEntry]:
        """All entries in seq order (each one's hash checked; use :meth:`verify` for the chain)."""
        return [AuditEntry.from_dict(d) for d in self._dicts(self._session(spark, "entries"))]

    def verify(self, *, head: str | None = None, spark: SparkSession | None = None) -> VerifyResult:
        """Verify the stored chain (same rules as ``cleanjoin audit verify``)."""
        return verify_entries(self._dicts(self._session(spark, "verify")), head=head)

    def export(self, out_path: str | Path, *, spark: SparkSession | None = None) -> int:
        """Write the log as JSONL (one canonical entry per line, seq order); return the count.

        Raises:
            AuditChainError: when the stored chain does not verify (nothing is written).
        """
        dicts = self._dicts(self._session(spark, "export"))
        result = verify_entries(dicts)
        if not result.ok:
            raise AuditChainError(
                f"AuditLog.export: the stored log fails verification at seq "
                f"{result.first_bad_seq}: {result.reason}",
                result.first_bad_seq,
            )
        target = Path(out_path)
        tmp = target.with_name(target.name + ".tmp")
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            for d in dicts:
                handle.write(canonical_json(d) + "\n")
        os.replace(tmp, target)
        return len(dicts)


def rows_inserted(result: Sequence[Any]) -> int:
    """Rows inserted by a MERGE, from the rows ``spark.sql("MERGE ...").collect()`` returns."""
    if not result:
        raise InternalError("MERGE returned no metrics row")
    row = result[0]
    names = row.asDict() if hasattr(row, "asDict") else dict(row)
    if "num_inserted_rows" not in names:
        raise InternalError("MERGE metrics have no num_inserted_rows")
    return int(names["num_inserted_rows"])


# --------------------------------------------------------------------------- identities


def content_hash(df: DataFrame) -> str:
    """SHA-256 hex of the released rows of ``df`` in a canonical order.

    Collects ``df`` (released aggregates are small). Columns are sorted by name; each row
    becomes the canonical JSON object ``{column: value}``; the lines are sorted, so row
    order does not matter. See ``docs/audit-format.md`` to recompute it with pandas.

    Example:
        >>> content_hash(result.df)  # doctest: +SKIP
        '3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b'
    """
    columns = list(df.columns)
    return content_hash_rows(columns, (tuple(r) for r in df.collect()))


def delta_identity(spark: SparkSession, path: str) -> dict[str, Any]:
    """``{"path": path, "version": latest version}`` of the Delta table at ``path``.

    Example:
        >>> delta_identity(spark, "/tmp/gold")  # doctest: +SKIP
        {'path': '/tmp/gold', 'version': 4}
    """
    try:
        rows = spark.sql(f"DESCRIBE HISTORY {quote_path(path)} LIMIT 1").select("version").collect()
    except Exception as exc:
        if is_missing(exc) or "DELTA_TABLE_ONLY_OPERATION" in str(exc):
            raise InvalidArgumentError(f"delta_identity: there is no Delta table at {path!r}") from None
        raise
    if not rows:
        raise InvalidArgumentError(f"delta_identity: the table at {path!r} has no history")
    return {"path": path, "version": int(rows[0]["version"])}


def head_from_commit(
    spark: SparkSession, path: str, *, version: int | None = None
) -> str | None:
    """The audit head recorded in a Delta table's commit ``userMetadata`` (JSON with
    ``audit_head``), at ``version`` or the latest commit; ``None`` when absent.

    Example:
        >>> head_from_commit(spark, "/tmp/gold")  # doctest: +SKIP
        '5f1c...'
    """
    history = spark.sql(f"DESCRIBE HISTORY {quote_path(path)}").select("version", "userMetadata")
    rows = history.orderBy("version", ascending=False).collect()
    for row in rows:
        if version is not None and int(row["version"]) != version:
            continue
        meta = row["userMetadata"]
        if not meta:
            return None
        try:
            data = json.loads(meta)
        except ValueError:
            return None
        found = _find_key(data, "audit_head")
        return found if isinstance(found, str) else None
    return None


def _find_key(data: Any, key: str) -> Any:
    if isinstance(data, Mapping):
        if key in data:
            return data[key]
        for value in data.values():
            found = _find_key(value, key)
            if found is not None:
                return found
    return None


# --------------------------------------------------------------------------- CLI


def _cli_export(args: argparse.Namespace) -> int:
    from cleanjoin.session import local_spark

    spark = local_spark(connect=bool(args.connect), app_name="cleanjoin-audit-export")
    count = AuditLog(args.path).export(args.out, spark=spark)
    print(f"exported {count} audit entries to {args.out}")
    return 0


def _cli_verify(args: argparse.Namespace) -> int:
    head = args.head
    if head is not None and (len(head) != 64 or not set(head) <= set("0123456789abcdef")):
        print("error: --head must be 64 lowercase hex digits (an entry_hash)", file=sys.stderr)
        return 2
    try:
        result = verify_file(args.file, head=head)
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    if result.ok:
        print(f"OK: {result.entries} entries verified; head {result.head}")
        return 0
    print(
        f"FAILED at seq {result.first_bad_seq}: {result.reason} "
        f"({result.first_bad_seq} entries before it verified)",
        file=sys.stderr,
    )
    return 1


def register_cli(subparsers: Any) -> None:
    """Add ``cleanjoin audit export`` and ``cleanjoin audit verify``."""
    audit = subparsers.add_parser("audit", help="export or verify a hash-chained audit log")
    verbs = audit.add_subparsers(dest="audit_command", required=True)
    export = verbs.add_parser("export", help="write an audit log (Delta table) as JSONL")
    export.add_argument("path", help="path of the audit log's Delta table")
    export.add_argument("--out", required=True, help="output .jsonl file")
    export.add_argument("--connect", action="store_true", help="use a local Spark Connect server")
    export.set_defaults(func=_cli_export)
    verify = verbs.add_parser(
        "verify", help="verify a JSONL export offline (Python standard library only)"
    )
    verify.add_argument("file", help="the .jsonl export")
    verify.add_argument("--head", default=None, help="checkpoint entry_hash that must be present")
    verify.set_defaults(func=_cli_verify)

