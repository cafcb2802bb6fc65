"""Purging revoked rows from a Delta table's old versions (REORG ... APPLY (PURGE), VACUUM)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cleanjoin._serialize import report_dict
from cleanjoin._spark import functions_for, resolve_session
from cleanjoin._table import TableRef
from cleanjoin._typing import SparkSession
from cleanjoin.audit import AuditLog, check_parameters
from cleanjoin.errors import InvalidArgumentError
from cleanjoin.revocation._conf import session_confs
from cleanjoin.revocation._gold import gold_location, latest_version
from cleanjoin.revocation._list import SPARK_HINT

_RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"


@dataclass(frozen=True)
class PurgeResult:
    """What :func:`purge` did.

    Attributes:
        table: the Gold table's path, or its name when it was given by name.
        retention_hours: the ``VACUUM ... RETAIN`` window.
        reorg: True when ``REORG TABLE ... APPLY (PURGE)`` ran (deletion vectors on).
        version_before: the table version before the purge.
        version_after: the table version after it (REORG and VACUUM add commits).
        files_deleted: data files VACUUM removed, when Delta reports it.
    """

    table: str
    retention_hours: float
    reorg: bool
    version_before: int
    version_after: int
    files_deleted: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description."""
        return report_dict(self)


def purge(
    gold: Any,
    *,
    retention_hours: float = 0,
    audit: AuditLog | None = None,
    spark: SparkSession | None = None,
) -> PurgeResult:
    """Remove deleted (revoked) rows from the old versions of a Delta table too.

    Runs ``REORG TABLE ... APPLY (PURGE)`` when the table has deletion vectors (deleted
    rows are otherwise only *marked* in files the current version still uses), then
    ``VACUUM ... RETAIN <retention_hours> HOURS``. Afterwards, versions older than the
    retention window can no longer be read: a past release can no longer be recomputed
    from the table (the audit log's content hashes still prove what was released).

    The retention is the caller's explicit choice, so Delta's safety check
    (``spark.databricks.delta.retentionDurationCheck.enabled``) is off for this call only
    and restored afterwards.
    Do not purge with a short retention while other jobs read or write the table.

    Args:
        gold: the table (a Delta path, a table name ``catalog.schema.table`` /
            ``schema.table``, or a ``delta.tables.DeltaTable``).
        retention_hours: keep files needed by versions newer than this many hours.
        audit: an audit log; one ``"purge"`` entry is appended.
        spark: the session (required for a path unless a session is active).

    Example:
        >>> purge("/gold/fraud_signals", retention_hours=0, spark=spark)  # doctest: +SKIP
    """
    call = "purge"
    if (
        isinstance(retention_hours, bool)
        or not isinstance(retention_hours, int | float)
        or not (retention_hours >= 0)
    ):
        raise InvalidArgumentError(f"'retention_hours' in {call} must be a number >= 0")
    target, gold_session = gold_location(gold, call)
    session = resolve_session(call, spark, gold_session, hint=SPARK_HINT)
    version_before = latest_version(session, target, call)
    table = target.sql
    detail = session.sql(f"DESCRIBE DETAIL {table}").collect()[0]
    properties = dict(detail["properties"] or {})
    features = set(detail["tableFeatures"] or ())
    reorg = (
        properties.get("delta.enableDeletionVectors", "false").lower() == "true"
        or "deletionVectors" in features
    )
    if audit is not None:  # refuse an entry the audit log would reject before purging
        check_parameters({**target.identity(), "version": version_before}, where="output")
    if reorg:
        session.sql(f"REORG TABLE {table} APPLY (PURGE)").collect()
    hours = f"{float(retention_hours):g}"
    # the caller chose the window explicitly: Delta's safety check is off for this call only
    with session_confs(session, {_RETENTION_CHECK: "false"}):
        session.sql(f"VACUUM {table} RETAIN {hours} HOURS").collect()
    version_after = latest_version(session, target, call)
    files_deleted = _vacuum_files_deleted(session, target, version_before)
    result = PurgeResult(
        table=target.name,
        retention_hours=float(retention_hours),
        reorg=reorg,
        version_before=version_before,
        version_after=version_after,
        files_deleted=files_deleted,
    )
    if audit is not None:
        audit.append(
            "purge",
            {
                "retention_hours": result.retention_hours,
                "reorg": result.reorg,
                "version_before": result.version_before,
                "version_after": result.version_after,
                "files_deleted": result.files_deleted,
            },
            output={**target.identity(), "version": version_after},
            spark=session,
        )
    return result


def _vacuum_files_deleted(spark: SparkSession, gold: TableRef, after: int) -> int | None:
    fn = functions_for(spark)
    rows = (
        spark.sql(f"DESCRIBE HISTORY {gold.sql} LIMIT 20")
        .where((fn.col("version") > fn.lit(after)) & (fn.col("operation") == fn.lit("VACUUM END")))
        .select("operationMetrics")
        .collect()
    )
    if not rows:
        return None
    metrics = dict(rows[0][0] or {})
    value = metrics.get("numDeletedFiles")
    return int(value) if value is not None else None
