"""Applying a revocation batch to a Delta Gold table with one MERGE, retried on conflicts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from cleanjoin._retry import retry_conflicts
from cleanjoin._spark import functions_for, resolve_session
from cleanjoin._sql import quote_identifier
from cleanjoin._table import TableRef
from cleanjoin._typing import DataFrame, SparkSession
from cleanjoin.audit import AuditLog, check_parameters
from cleanjoin.revocation._conf import session_confs
from cleanjoin.revocation._gold import check_gold, gold_location, latest_version
from cleanjoin.revocation._list import SPARK_HINT, Checked, read_revocations, validate
from cleanjoin.revocation._options import RevocationMode, check_options

_TXN_APP_ID = "spark.databricks.delta.write.txnAppId"
_TXN_VERSION = "spark.databricks.delta.write.txnVersion"
_USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"
_MARKER_PREFIX = "cleanjoin:revocation_batch:"
_FLAG_SOURCE_COLUMN = "__cleanjoin_flag_value"


@dataclass(frozen=True)
class RevocationResult:
    """What one :func:`apply_revocations` call (or one streaming batch) did.

    Attributes:
        table: the Gold table's path, or its name when it was given by name.
        mode: ``"delete"`` or ``"flag"``.
        batch_rows: rows in the revocation batch (duplicates included).
        distinct_tokens: distinct revoked tokens in the batch.
        rows_deleted: Gold rows deleted (from the commit's ``operationMetrics``).
        rows_flagged: Gold rows whose flag was flipped.
        version_before: the table version before the batch.
        version: the version the batch committed, or ``None`` when nothing was committed
            (no Gold row matched, an empty batch, or an already-applied replay).
        replayed: True when Delta skipped the write because this (app id, batch id) was
            already applied (idempotent write).
        attempts: MERGE attempts made (> 1 when a concurrent writer conflicted).
        batch_id: the streaming batch id, if any.
        app_id: the idempotent-write application id, if any.
    """

    table: str
    mode: str
    batch_rows: int
    distinct_tokens: int
    rows_deleted: int = 0
    rows_flagged: int = 0
    version_before: int | None = None
    version: int | None = None
    replayed: bool = False
    attempts: int = 0
    batch_id: int | None = None
    app_id: str | None = None

    @property
    def committed(self) -> bool:
        """True when the batch wrote a new table version."""
        return self.version is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description (no tokens).

        Example:
            >>> RevocationResult(table="/t", mode="delete", batch_rows=2, distinct_tokens=1,
            ...                  rows_deleted=1, version_before=0, version=1).to_dict()["rows_deleted"]
            1
        """
        return {
            "table": self.table,
            "mode": self.mode,
            "batch_rows": self.batch_rows,
            "distinct_tokens": self.distinct_tokens,
            "rows_deleted": self.rows_deleted,
            "rows_flagged": self.rows_flagged,
            "version_before": self.version_before,
            "version": self.version,
            "committed": self.committed,
            "replayed": self.replayed,
            "attempts": self.attempts,
            "batch_id": self.batch_id,
            "app_id": self.app_id,
        }


def _merge_sql(
    gold: TableRef, view: str, token_column: str, mode: RevocationMode, flag_column: str
) -> str:
    target = gold.sql
    on = f"g.{quote_identifier(token_column)} = r.token"
    if mode is RevocationMode.DELETE:
        action = "WHEN MATCHED THEN DELETE"
    else:
        flag = f"g.{quote_identifier(flag_column)}"
        value = f"r.{_FLAG_SOURCE_COLUMN}"
        action = f"WHEN MATCHED AND NOT ({flag} <=> {value}) THEN UPDATE SET {flag} = {value}"
    return f"MERGE INTO {target} AS g USING {quote_identifier(view)} AS r ON {on} {action}"


def _find_commit(spark: SparkSession, gold: TableRef, marker: str, after: int) -> Any | None:
    """The history row of the commit carrying ``marker`` (newest first search)."""
    fn = functions_for(spark)
    history = spark.sql(f"DESCRIBE HISTORY {gold.sql} LIMIT 200")
    rows = (
        history.where(
            (fn.col("version") > fn.lit(after)) & (fn.col("userMetadata") == fn.lit(marker))
        )
        .select("version", "operationMetrics")
        .collect()
    )
    return rows[0] if rows else None


def apply_batch(
    gold: TableRef,
    session: SparkSession,
    revocations: DataFrame,
    *,
    token_column: str,
    mode: RevocationMode,
    flag_column: str,
    flag_value: str | bool | int,
    audit: AuditLog | None,
    max_attempts: int,
    backoff_seconds: float,
    txn: tuple[str, int] | None,
    call: str,
) -> RevocationResult:
    """Validate a batch and MERGE it into the Gold table; ``txn`` keys an idempotent write.

    Shared by :func:`apply_revocations` and the streaming :class:`RevocationBatchWriter`;
    appends one ``"revocation_batch"`` audit entry when ``audit`` is given.
    """
    checked = validate(revocations, call)
    flag_type = check_gold(session, gold, token_column, mode, flag_column, flag_value, call)
    version_before = latest_version(session, gold, call)
    app_id, batch_id = txn if txn is not None else (None, None)
    base = RevocationResult(
        table=gold.name,
        mode=mode.value,
        batch_rows=checked.rows,
        distinct_tokens=checked.distinct,
        version_before=version_before,
        batch_id=batch_id,
        app_id=app_id,
    )
    if audit is not None:  # refuse an entry the audit log would reject before writing
        _batch_entry(base, token_column, gold)
    if checked.rows == 0:
        result = base
    else:
        result = _merge(
            session,
            gold,
            checked,
            base,
            token_column=token_column,
            mode=mode,
            flag_column=flag_column,
            flag_value=flag_value,
            flag_type=flag_type,
            txn=txn,
            max_attempts=max_attempts,
            backoff_seconds=backoff_seconds,
        )
    if audit is not None:
        parameters, output = _batch_entry(result, token_column, gold)
        audit.append("revocation_batch", parameters, output=output, spark=session)
    return result


def _batch_entry(
    result: RevocationResult, token_column: str, gold: TableRef
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The audit parameters and output of a batch, checked by the audit log's rules."""
    parameters = {
        "mode": result.mode,
        "token_column": token_column,
        "batch_id": result.batch_id,
        "app_id": result.app_id,
        "batch_rows": result.batch_rows,
        "distinct_tokens": result.distinct_tokens,
        "rows_deleted": result.rows_deleted,
        "rows_flagged": result.rows_flagged,
        "version_before": result.version_before,
        "version": result.version,
        "replayed": result.replayed,
        "attempts": result.attempts,
    }
    output = {
        **gold.identity(),
        "version": result.version if result.committed else result.version_before,
    }
    return check_parameters(parameters), check_parameters(output, where="output")


def _merge(
    session: SparkSession,
    gold: TableRef,
    checked: Checked,
    base: RevocationResult,
    *,
    token_column: str,
    mode: RevocationMode,
    flag_column: str,
    flag_value: str | bool | int,
    flag_type: str | None,
    txn: tuple[str, int] | None,
    max_attempts: int,
    backoff_seconds: float,
) -> RevocationResult:
    source = checked.tokens
    if mode is RevocationMode.FLAG:
        fn = functions_for(source)
        source = source.withColumn(
            _FLAG_SOURCE_COLUMN, fn.lit(flag_value).cast(flag_type or "string")
        )
    view = f"cleanjoin_revocations_{uuid.uuid4().hex}"
    marker = f"{_MARKER_PREFIX}{uuid.uuid4().hex}"
    statement = _merge_sql(gold, view, token_column, mode, flag_column)
    settings = {_USER_METADATA: marker}
    if txn is not None:
        settings[_TXN_APP_ID] = txn[0]
        settings[_TXN_VERSION] = str(txn[1])

    def attempt() -> list[Any]:
        with session_confs(session, settings):
            return list(session.sql(statement).collect())

    source.createOrReplaceTempView(view)
    try:
        rows, attempts = retry_conflicts(attempt, max_attempts=max_attempts, backoff_seconds=backoff_seconds)
    finally:
        session.catalog.dropTempView(view)
    if not rows:  # Delta returns no row when it skips an already-applied (app id, version)
        return _replace(base, replayed=True, attempts=attempts)
    affected = int(rows[0]["num_affected_rows"] or 0)
    if affected == 0:  # nothing matched: Delta commits nothing
        return _replace(base, attempts=attempts)
    commit = _find_commit(session, gold, marker, base.version_before or -1)
    if commit is None:
        # the MERGE reported changes but its commit is not in the history we read: report
        # the statement's own counts and the newest version
        return _replace(
            base,
            rows_deleted=int(rows[0]["num_deleted_rows"] or 0),
            rows_flagged=int(rows[0]["num_updated_rows"] or 0),
            version=latest_version(session, gold, "apply_revocations"),
            attempts=attempts,
        )
    metrics = dict(commit["operationMetrics"] or {})
    return _replace(
        base,
        rows_deleted=int(metrics.get("numTargetRowsDeleted", 0)),
        rows_flagged=int(metrics.get("numTargetRowsUpdated", 0)),
        version=int(commit["version"]),
        attempts=attempts,
    )


def _replace(result: RevocationResult, **changes: Any) -> RevocationResult:
    from dataclasses import replace

    return replace(result, **changes)


def apply_revocations(
    gold: Any,
    revocations: DataFrame | str,
    *,
    token_column: str,
    mode: RevocationMode | str = "delete",
    flag_column: str = "sharing_consent_flag",
    flag_value: str | bool | int = "REVOKED",
    audit: AuditLog | None = None,
    spark: SparkSession | None = None,
    max_attempts: int = 8,
    backoff_seconds: float = 0.5,
) -> RevocationResult:
    """MERGE a revocation batch into a Delta Gold table, once.

    The batch is validated first (bad input raises and changes nothing), de-duplicated
    (MERGE rejects several source rows per target row), then applied with one ``MERGE
    INTO``: matching rows are deleted (``mode="delete"``) or get ``flag_column`` set to
    ``flag_value`` (``mode="flag"``). A conflict with a concurrent writer
    (``ConcurrentAppendException``, ``ConcurrentDeleteReadException``, ...) is retried
    with exponential backoff; re-applying a revocation is harmless.

    Args:
        gold: the Gold table: a Delta path, a table name (``catalog.schema.table`` or
            ``schema.table``) or a ``delta.tables.DeltaTable`` (classic).
        revocations: a revocation list (DataFrame, Delta path or table name).
        token_column: the Gold column holding the revoked tokens.
        mode: ``"delete"`` or ``"flag"``.
        flag_column: the column set in ``"flag"`` mode.
        flag_value: the value it is set to.
        audit: an audit log; one ``"revocation_batch"`` entry is appended.
        spark: the session (defaults to the revocations' or the table's session).
        max_attempts: MERGE attempts before a conflict is raised.
        backoff_seconds: the first retry's wait (doubles each retry, with jitter).

    Returns:
        A :class:`RevocationResult` with the counts from the commit's operation metrics
        and the new version (``None`` when no Gold row matched).

    Raises:
        RevocationInputError: wrong revocation schema, null or malformed tokens.
        ColumnNotFoundError: ``token_column`` / ``flag_column`` not in the Gold table.
        InvalidArgumentError: bad options, a malformed table name, or no Delta table at
            ``gold``.

    Example:
        >>> result = apply_revocations("/gold/fraud_signals", revoked,  # doctest: +SKIP
        ...                            token_column="card_number_token")
        >>> result.rows_deleted, result.version  # doctest: +SKIP
        (3, 12)
    """
    call = "apply_revocations"
    parsed = check_options(
        token_column, mode, flag_column, flag_value, max_attempts, backoff_seconds, call
    )
    target, gold_session = gold_location(gold, call)
    if isinstance(revocations, str):
        session = resolve_session(call, spark, gold_session, hint=SPARK_HINT)
        frame = read_revocations(revocations, session, call)
    else:
        # the MERGE must run in the session that owns the batch (its temp view lives there)
        frame = read_revocations(revocations, None, call)
        session = frame.sparkSession
    return apply_batch(
        target,
        session,
        frame,
        token_column=token_column,
        mode=parsed,
        flag_column=flag_column,
        flag_value=flag_value,
        audit=audit,
        max_attempts=max_attempts,
        backoff_seconds=backoff_seconds,
        txn=None,
        call=call,
    )
