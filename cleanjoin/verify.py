"""Check, as the *other* party, that an output table is a sealed cleanjoin release.

``write_delta`` writes every guarded result as one Delta commit whose ``userMetadata``
carries the seal: the collaboration policy's fingerprint (``null`` without a policy), the
query fingerprint, the content hash of the written rows and, with an audit log, its head.
:func:`verify_output` reads it back and checks that

* the table's latest commit is such a cleanjoin write, of the whole table (``overwrite``
  or ``error`` mode: an ``append`` adds to rows the seal does not cover);
* it was made under the approved policy (a :class:`~cleanjoin.policy.CollaborationPolicy`
  or its fingerprint);
* the rows have the recorded content hash (a single-row ``UPDATE``, ``DELETE`` or
  ``INSERT`` after the write is a new commit, and changes the hash too);
* with ``audit=``, the audit log's chain verifies, holds the recorded head, and holds the
  ``delta_write`` entry of this commit with the same content hash.

The outcome is an :class:`OutputVerification`: a flag and the reasons, never a value.

Example:
    >>> OutputVerification(ok=False, table="/gold/x", version=3,
    ...                    reasons=("the rows do not have the recorded content hash",)).ok
    False
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cleanjoin._delta import is_missing
from cleanjoin._spark import resolve_session
from cleanjoin._table import TableRef
from cleanjoin._typing import SparkSession
from cleanjoin.errors import InvalidArgumentError
from cleanjoin.policy import CollaborationPolicy

if TYPE_CHECKING:
    from cleanjoin.audit import AuditLog

__all__ = ["OutputVerification", "verify_output"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_WHOLE_TABLE = ("overwrite", "error", "errorifexists")


@dataclass(frozen=True)
class OutputVerification:
    """The outcome of :func:`verify_output`.

    Attributes:
        ok: True when every check passed.
        table: the table as given (path or name).
        version: the table version checked (``None`` when it has no history).
        reasons: why it failed, one line per failed check (empty when ``ok``); never a value.
        policy_fingerprint: the policy fingerprint the commit records (``None``: absent).
        content_hash: the content hash of the rows as read now (``None``: not computed).
    """

    ok: bool
    table: str
    version: int | None
    reasons: tuple[str, ...] = ()
    policy_fingerprint: str | None = None
    content_hash: str | None = None

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        if self.ok:
            return (
                f"OK: {self.table} (version {self.version}) is a sealed cleanjoin output under "
                f"policy {str(self.policy_fingerprint)[:16]}…, unchanged since it was written"
            )
        lines = [f"FAILED: {self.table} (version {self.version}):"]
        lines += [f"  - {r}" for r in self.reasons]
        return "\n".join(lines)


def _expected_fingerprint(policy: Any) -> str:
    if isinstance(policy, CollaborationPolicy):
        return policy.fingerprint
    if isinstance(policy, str) and _HEX64.match(policy):
        return policy
    raise InvalidArgumentError(
        "'policy' in verify_output must be a CollaborationPolicy or its fingerprint (64 "
        f"lowercase hex digits), got {type(policy).__name__}"
    )


def verify_output(
    table: str,
    *,
    policy: CollaborationPolicy | str,
    audit: AuditLog | str | None = None,
    spark: SparkSession | None = None,
) -> OutputVerification:
    """Check that ``table`` was written by ``write_delta`` under ``policy`` and is unchanged.

    Args:
        table: the output table: a Delta path or a table name.
        policy: the approved :class:`~cleanjoin.policy.CollaborationPolicy`, or its
            fingerprint.
        audit: the collaboration's audit log (an ``AuditLog`` or its path/name), to check
            its chain and that it recorded this write.
        spark: the session (default: the active one).

    Returns:
        An :class:`OutputVerification`; ``ok`` is False with reasons when a check fails.

    Raises:
        InvalidArgumentError: bad arguments, or no Delta table at ``table``.

    Example:
        >>> verify_output("/gold/segments", policy=policy.fingerprint).ok  # doctest: +SKIP
        True
    """
    expected = _expected_fingerprint(policy)
    ref = TableRef.parse(table, arg="table", call="verify_output")
    session = resolve_session("verify_output", spark, hint="pass spark=")
    try:
        history = (
            session.sql(f"DESCRIBE HISTORY {ref.sql} LIMIT 1")
            .select("version", "operation", "userMetadata").collect()
        )
    except Exception as exc:
        if is_missing(exc) or "DELTA_TABLE_ONLY_OPERATION" in str(exc):
            raise InvalidArgumentError(f"verify_output: there is no Delta table {ref.describe}") from None
        raise
    if not history:
        return OutputVerification(False, table, None, ("the table has no commit history",))
    version, operation = int(history[0]["version"]), str(history[0]["operation"])
    meta = _seal_of(history[0]["userMetadata"])
    if meta is None:
        return OutputVerification(False, table, version, (
            f"the latest commit (version {version}, {operation}) is not a cleanjoin write: the "
            "table was changed after it was written, or never written by write_delta",
        ))
    reasons: list[str] = []
    recorded_policy = meta.get("policy_fingerprint")
    if recorded_policy is None:
        reasons.append("the write was not made under a collaboration policy")
    elif recorded_policy != expected:
        reasons.append(
            f"the write was made under policy {str(recorded_policy)[:16]}…, not the approved "
            f"{expected[:16]}…"
        )
    if meta.get("mode") not in _WHOLE_TABLE:
        reasons.append(
            f"the latest write used mode {meta.get('mode')!r}: only a table written whole "
            "(overwrite or error) can be verified"
        )
    from cleanjoin.audit import content_hash

    frame = session.sql(f"SELECT * FROM {ref.sql} VERSION AS OF {version}")
    digest = content_hash(frame)
    if digest != meta.get("content_hash"):
        reasons.append("the rows do not have the content hash recorded when they were written")
    if audit is not None:
        reasons += _audit_reasons(audit, meta, digest, ref, version, session)
    return OutputVerification(
        not reasons, table, version, tuple(reasons),
        recorded_policy if isinstance(recorded_policy, str) else None, digest,
    )


def _seal_of(text: Any) -> dict[str, Any] | None:
    """The seal of a commit's ``userMetadata``, or ``None`` when it is not one."""
    try:
        meta = json.loads(text or "null")
    except ValueError:
        return None
    if not isinstance(meta, dict) or meta.get("cleanjoin") != "guarded_result":
        return None
    if "content_hash" not in meta:
        return None  # a write from before seals
    return meta


def _audit_reasons(
    audit: AuditLog | str,
    meta: dict[str, Any],
    digest: str,
    ref: TableRef,
    version: int,
    spark: SparkSession,
) -> list[str]:
    """Why the audit log does not vouch for this write (empty: it does)."""
    from cleanjoin.audit import AuditLog

    log = audit if isinstance(audit, AuditLog) else AuditLog(audit)
    if meta.get("audit_head") is None:
        return ["the write recorded no audit head (it was written without an audit log)"]
    checked = log.verify(head=meta.get("audit_head"), spark=spark)
    if not checked.ok:
        return [f"the audit log does not verify at seq {checked.first_bad_seq}: {checked.reason}"]
    place = ref.identity()
    for entry in log.entries(spark=spark):
        out = entry.output or {}
        if (
            entry.action == "delta_write" and entry.parameters.get("run_id") == meta.get("run_id")
            and all(out.get(k) == v for k, v in place.items()) and out.get("version") == version
        ):
            if out.get("content_hash") != digest:
                return ["the audit log's delta_write entry of this commit has another content hash"]
            return []
    return ["the audit log holds no delta_write entry of this commit"]
