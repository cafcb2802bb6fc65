"""The audit log itself: hash-chained entries in an append-only Delta table.

Appends are safe under concurrent writers: an entry is added with one idempotent blind
append keyed on ``seq`` (Delta's ``txnAppId``/``txnVersion``: a compare-and-append), and a
writer that loses the race re-reads the head and retries, so the chain never forks and no
entry is lost. A writer keeps the head it appended last, so an append costs one small
commit and one read of the newest commit, not a ``MERGE`` over the table.

The head a writer keeps also stands in for a read of the table (the output checkpoint of
:meth:`AuditLog.commit_metadata`, :meth:`AuditLog.head`) while it is provably current: the
table's newest commit is still the one this writer made (same version, same
``userMetadata``, which names the entry's seq and hash). Any later commit, by another
writer or by hand, changes that, and the head is then read from the table.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cleanjoin._auditverify import (
    FORMAT_VERSION,
    GENESIS_HASH,
    VerifyResult,
    canonical_json,
    compute_entry_hash,
    make_entry,
    verify_entries,
)
from cleanjoin._compat import UTC
from cleanjoin._delta import is_conflict, is_missing
from cleanjoin._retry import backoff
from cleanjoin._spark import resolve_session
from cleanjoin._table import TableRef
from cleanjoin._typing import SparkSession
from cleanjoin.audit._scan import check_parameters
from cleanjoin.errors import AuditChainError, InvalidArgumentError

__all__ = ["ACTIONS", "AuditEntry", "AuditLog"]

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

_ACTION_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_APP_ID = "cleanjoin-audit"  # the Delta transaction id of appends (its version is the seq)

_SCHEMA = (
    "format_version INT, seq BIGINT, time STRING, actor STRING, action STRING, "
    "parameters STRING, inputs STRING, output STRING, prev_hash STRING, entry_hash STRING"
)


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
    return _dt.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    """An append-only, hash-chained audit log stored as a Delta table (a path or a name).

    The table (created on the first append, with ``delta.appendOnly = true``) has one
    row per entry: ``format_version, seq, time, actor, action, parameters, inputs,
    output, prev_hash, entry_hash``; ``parameters``, ``inputs`` and ``output`` are
    canonical JSON strings, so verification never depends on Spark types. ``seq``
    starts at 0. See ``docs/audit-format.md``.

    Args:
        path: the Delta table: a path (``/Volumes/...``, ``s3://...``) or a table name
            (``catalog.schema.table`` or ``schema.table``; parts may be backquoted). A
            missing table is created with ``CREATE TABLE IF NOT EXISTS``.
        spark: default session (callers usually pass ``spark=df.sparkSession`` per call).
        actor: who is acting; defaults to ``$CLEANJOIN_ACTOR``, the Databricks user when
            running on Databricks, else the operating-system user.
        max_attempts: how many times an append retries after losing a race.

    Example:
        >>> log = AuditLog("/tmp/audit", actor="analyst@provider")  # doctest: +SKIP
        >>> log.append("guarded_run", {"min_cohort": 100}, spark=spark).seq  # doctest: +SKIP
        0
        >>> AuditLog("main.clean_room.audit_log").table
        '`main`.`clean_room`.`audit_log`'
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
        self._ref = TableRef.parse(path, arg="path", call="AuditLog")
        self._spark = spark
        self._actor = actor
        self._max_attempts = max_attempts
        self._cached_head: tuple[int, str] | None = None
        # the table's (version, userMetadata) of the commit that wrote _cached_head, when
        # known: while it is the newest commit, _cached_head is the table's head
        self._cached_commit: tuple[int, str] | None = None
        self._last_commit: tuple[int, str] | None = None  # of the last won append

    def __repr__(self) -> str:
        return f"AuditLog({self._path!r})"

    @property
    def path(self) -> str:
        """The table as given: a path or a table name."""
        return self._path

    @property
    def table(self) -> str:
        """The table in SQL: ``delta.`path``` or the backquoted ``catalog.schema.table``."""
        return self._ref.sql

    # ------------------------------------------------------------------ helpers
    def _session(self, spark: SparkSession | None, method: str) -> SparkSession:
        return resolve_session(
            f"AuditLog.{method}", spark, self._spark, active=False,
            hint="pass spark=df.sparkSession (or AuditLog(path, spark=...))",
        )

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
                f"SELECT seq, entry_hash FROM {self._ref.sql} ORDER BY seq DESC LIMIT 1"
            ).collect()
        except Exception as exc:
            if is_missing(exc):
                return None
            raise
        if not rows:
            return None
        return int(rows[0]["seq"]), str(rows[0]["entry_hash"])

    def _current_head(self, spark: SparkSession) -> tuple[int, str] | None:
        """The table's head: the one this writer appended last while its commit is still
        the newest (one read of the newest commit), else read from the table."""
        head, commit = self._cached_head, self._cached_commit
        if head is not None and commit is not None:
            try:
                if self._ref.latest_commit(spark) == commit:
                    return head
            except Exception as exc:
                if not is_missing(exc):
                    raise
                return None
        return self._read_head(spark)

    def _create(self, spark: SparkSession) -> bool:
        """Create the table if needed. False when another writer is creating it right now."""
        try:
            spark.sql(
                f"CREATE TABLE IF NOT EXISTS {self._ref.sql} ({_SCHEMA}) USING DELTA "
                "TBLPROPERTIES ('delta.appendOnly' = 'true', "
                f"'cleanjoin.audit.format_version' = '{FORMAT_VERSION}')"
            ).collect()
        except Exception as exc:
            if not is_conflict(exc):
                raise
            return False
        return True

    def _compare_and_append(self, spark: SparkSession, entry: Mapping[str, Any]) -> bool:
        """Append ``entry`` unless its seq is taken. True when this call appended it.

        One idempotent blind append keyed on ``seq`` (see :meth:`TableRef.append_once`):
        a writer whose seq another writer took commits nothing, one that races it gets a
        Delta conflict; either way the caller re-reads the head and retries.
        """
        self._last_commit = None
        seq = int(entry["seq"])
        row = (
            int(entry["format_version"]), seq, entry["time"], entry["actor"], entry["action"],
            canonical_json(entry["parameters"]), canonical_json(entry["inputs"]),
            canonical_json(entry["output"]), entry["prev_hash"], entry["entry_hash"],
        )
        marker = canonical_json(
            {"cleanjoin": "audit_append", "seq": seq, "entry_hash": entry["entry_hash"]}
        )
        done = self._ref.commit_once(
            spark.createDataFrame([row], _SCHEMA), app_id=_APP_ID, version=seq, marker=marker,
            landed=lambda: self._hash_at(spark, seq) == entry["entry_hash"],
        )
        self._last_commit = None if done.version is None else (done.version, marker)
        return done.landed

    def _hash_at(self, spark: SparkSession, seq: int) -> str | None:
        rows = spark.sql(
            f"SELECT entry_hash FROM {self._ref.sql} WHERE seq = {int(seq)}"
        ).collect()
        return None if not rows else str(rows[0]["entry_hash"])

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
        if head is None:
            # a blind append would create a missing table without its properties
            head = self._read_head(session)
            if head is None:
                self._create(session)
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
                        time.sleep(backoff(attempt + 1))
                    head = self._read_head(session)
                    continue
                if not is_conflict(exc):
                    raise
                won = False
            if won:
                self._cached_head = (seq, entry["entry_hash"])
                self._cached_commit = self._last_commit
                return AuditEntry.from_dict(entry)
            head = self._read_head(session)
            time.sleep(backoff(attempt + 1))
        raise AuditChainError(
            f"AuditLog.append: gave up after {self._max_attempts} attempts; other writers kept "
            "appending first. Retry later."
        )

    def head(self, *, spark: SparkSession | None = None) -> str | None:
        """The ``entry_hash`` of the last entry, or ``None`` for an empty (or absent) log."""
        found = self._current_head(self._session(spark, "head"))
        return None if found is None else found[1]

    def commit_metadata(self, *, spark: SparkSession | None = None) -> dict[str, Any]:
        """The audit checkpoint to put into an output table's Delta commit metadata.

        Returns ``{"audit_log": path or name, "audit_seq": int | None, "audit_head": str | None}``
        (the current head: the one this writer appended last, while its commit is still
        the table's newest, else read from the table). The guard serializes it into
        ``userMetadata``.

        Example:
            >>> AuditLog("/tmp/a").commit_metadata(spark=spark)  # doctest: +SKIP
            {'audit_log': '/tmp/a', 'audit_seq': 3, 'audit_head': '5f1c...'}
        """
        found = self._current_head(self._session(spark, "commit_metadata"))
        return {
            "audit_log": self._ref.name,
            "audit_seq": None if found is None else found[0],
            "audit_head": None if found is None else found[1],
        }

    def _dicts(self, spark: SparkSession) -> list[dict[str, Any]]:
        try:
            rows = self._ref.read(spark).orderBy("seq").collect()
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
