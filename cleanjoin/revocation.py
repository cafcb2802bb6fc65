"""Revocations: opt-outs leave clean-room compute on the next run, exactly once.

A *revocation list* is a Delta table (or DataFrame) of revoked tokens with the columns
``token`` (64 lowercase hex characters, a cleanjoin token), ``revoked_at`` (timestamp),
``reason_code`` and ``source`` (strings). It is used in three places:

* **Query time** — ``GuardedJoin(..., revoked=revocations)`` anti-joins the tokens
  returned by :func:`load_revocations`, so a revocation takes effect on the next run even
  before any table is rewritten.
* **Gold table maintenance** — :func:`apply_revocations` MERGEs a batch into a Delta Gold
  table: it deletes the matching rows (or flips a consent flag), after validating and
  de-duplicating the batch, retrying when a concurrent writer conflicts.
* **Streaming** — :func:`start_revocation_stream` applies each micro-batch of any
  streaming source with Delta's idempotent-write mechanism (``txnAppId`` / ``txnVersion``
  keyed by the streaming query's id and the batch id), so a batch replayed after a crash
  is applied once.

:func:`purge` then removes revoked rows from old table versions too (``REORG ... APPLY
(PURGE)`` where deletion vectors are on, then ``VACUUM``); see ``docs/revocation.md`` for
the trade-off against reproducing past releases.

Every batch and every purge appends an audit entry (``"revocation_batch"``, ``"purge"``)
when an audit log is given. No error, log line, result or audit entry contains a token.

Example:
    >>> from cleanjoin.revocation import REVOCATION_COLUMNS, is_token
    >>> REVOCATION_COLUMNS
    ('token', 'revoked_at', 'reason_code', 'source')
    >>> is_token("ab" * 32), is_token("AB" * 32)
    (True, False)
    >>> revoked = revocations_from_tokens(optouts, token_column="card_number_token",  # doctest: +SKIP
    ...                                   reason_code="OPT_OUT", source="issuer-portal")
    >>> apply_revocations("/gold/fraud_signals", revoked,  # doctest: +SKIP
    ...                   token_column="card_number_token").rows_deleted
    3
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from cleanjoin._delta import CONFLICT_ERRORS, is_conflict, quote_path
from cleanjoin._spark import functions_for
from cleanjoin._typing import DataFrame, SparkSession
from cleanjoin.audit import AuditLog, check_parameters
from cleanjoin.errors import (
    ColumnNotFoundError,
    InvalidArgumentError,
    RevocationInputError,
    SchemaMismatchError,
)

__all__ = [
    "CONFLICT_ERRORS",
    "REVOCATION_COLUMNS",
    "TOKEN_PATTERN",
    "PurgeResult",
    "RevocationBatchWriter",
    "RevocationMode",
    "RevocationResult",
    "apply_revocations",
    "is_conflict",
    "is_token",
    "load_revocations",
    "purge",
    "revocation_schema",
    "revocations_from_tokens",
    "start_revocation_stream",
]

REVOCATION_COLUMNS = ("token", "revoked_at", "reason_code", "source")
"""The columns of a revocation list, in order."""

TOKEN_PATTERN = "^[0-9a-f]{64}$"
"""The shape of a cleanjoin token: 64 lowercase hex characters (HMAC-SHA256)."""

# Retry back-off jitter only (de-synchronizes conflicting Delta writers); never noise:
# DP noise comes from pipeline_dp / PyDP alone (cleanjoin.dp).
_JITTER = secrets.SystemRandom()
_TOKEN_RE = re.compile(TOKEN_PATTERN)

"""Delta conflict errors (class names and error classes) that a retry resolves."""

_TXN_APP_ID = "spark.databricks.delta.write.txnAppId"
_TXN_VERSION = "spark.databricks.delta.write.txnVersion"
_USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"
_RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
_MARKER_PREFIX = "cleanjoin:revocation_batch:"
_FLAG_SOURCE_COLUMN = "__cleanjoin_flag_value"

_T = TypeVar("_T")


class RevocationMode(Enum):
    """What :func:`apply_revocations` does with a Gold row whose token is revoked.

    ``RevocationMode.parse("delete")`` accepts the string alias.
    """

    DELETE = "delete"
    FLAG = "flag"

    @classmethod
    def parse(cls, value: RevocationMode | str) -> RevocationMode:
        """Accept a ``RevocationMode`` or its string alias, with a precise error otherwise.

        Example:
            >>> RevocationMode.parse("FLAG")
            <RevocationMode.FLAG: 'flag'>
            >>> RevocationMode.parse("drop")
            Traceback (most recent call last):
            ...
            cleanjoin.errors.InvalidArgumentError: Unknown revocation mode "drop". Available options are "delete", "flag".
        """
        if isinstance(value, RevocationMode):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            options = ", ".join(f'"{m.value}"' for m in cls)
            raise InvalidArgumentError(
                f'Unknown revocation mode "{value}". Available options are {options}.'
            ) from None


@dataclass(frozen=True)
class RevocationResult:
    """What one :func:`apply_revocations` call (or one streaming batch) did.

    Attributes:
        table: the Gold table's path.
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


@dataclass(frozen=True)
class PurgeResult:
    """What :func:`purge` did.

    Attributes:
        table: the Gold table's path.
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
        return {
            "table": self.table,
            "retention_hours": self.retention_hours,
            "reorg": self.reorg,
            "version_before": self.version_before,
            "version_after": self.version_after,
            "files_deleted": self.files_deleted,
        }


# --------------------------------------------------------------------------- helpers


def is_token(value: object) -> bool:
    """True when ``value`` has the shape of a cleanjoin token (64 lowercase hex characters).

    Example:
        >>> is_token("0" * 64), is_token("0" * 63), is_token(None)
        (True, False, False)
    """
    return isinstance(value, str) and _TOKEN_RE.match(value) is not None


def _retry(
    operation: Callable[[], _T],
    *,
    max_attempts: int,
    backoff_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[_T, int]:
    """Run ``operation``, retrying Delta conflicts with exponential backoff.

    Returns the result and the number of attempts made.
    """
    attempt = 1
    while True:
        try:
            return operation(), attempt
        except Exception as exc:
            if attempt >= max_attempts or not is_conflict(exc):
                raise
        # jitter de-synchronizes writers that conflicted with each other
        delay = backoff_seconds * (2 ** (attempt - 1)) * (1.0 + 0.5 * _JITTER.random())
        sleep(delay)
        attempt += 1


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _session_key(spark: SparkSession) -> str:
    session_id = getattr(spark, "session_id", None)
    return f"connect:{session_id}" if isinstance(session_id, str) else f"classic:{id(spark)}"


@contextmanager
def _session_confs(spark: SparkSession, settings: Mapping[str, str]) -> Iterator[None]:
    """Set session confs for one statement and restore them afterwards.

    Session confs are shared by every thread using the session, so statements that rely
    on them are serialized per session (other sessions and other processes still write
    concurrently, and their conflicts are retried).
    """
    key = _session_key(spark)
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        previous = {name: spark.conf.get(name, None) for name in settings}
        try:
            for name, value in settings.items():
                spark.conf.set(name, value)
            yield
        finally:
            for name, value in previous.items():
                if value is None:
                    spark.conf.unset(name)
                else:
                    spark.conf.set(name, value)


def _quote(column: str) -> str:
    return "`" + column.replace("`", "``") + "`"


def _resolve_session(call: str, spark: SparkSession | None, *frames: Any) -> SparkSession:
    if spark is not None:
        return spark
    for frame in frames:
        session = getattr(frame, "sparkSession", None)
        if session is not None:
            return session
    from pyspark.sql import SparkSession as ClassicSession

    active = ClassicSession.getActiveSession()
    if active is None:
        raise InvalidArgumentError(
            f"{call}: pass 'spark' (a SparkSession) to read a Delta table given by path"
        )
    return active


def _gold_location(gold: Any, call: str) -> tuple[str, SparkSession | None]:
    """The path of ``gold`` (a path or a ``delta.tables.DeltaTable``) and its session."""
    if isinstance(gold, str):
        if not gold:
            raise InvalidArgumentError(f"'gold' in {call} must be a non-empty path")
        return gold, None
    if hasattr(gold, "toDF") and hasattr(gold, "detail"):
        location = gold.detail().select("location").first()[0]
        return str(location), gold.toDF().sparkSession
    raise InvalidArgumentError(
        f"'gold' in {call} must be a Delta table path or a delta.tables.DeltaTable, "
        f"got {type(gold).__name__}"
    )


def _latest_version(spark: SparkSession, path: str, call: str) -> int:
    try:
        rows = (
            spark.sql(f"DESCRIBE HISTORY {quote_path(path)} LIMIT 1").select("version").collect()
        )
    except Exception as exc:
        if is_conflict(exc):
            raise
        raise InvalidArgumentError(f"{call}: no readable Delta table at '{path}'") from exc
    if not rows:
        raise InvalidArgumentError(f"{call}: no readable Delta table at '{path}'")
    return int(rows[0][0])


# --------------------------------------------------------------------------- the list


def revocation_schema() -> Any:
    """The schema of a revocation list (a ``pyspark.sql.types.StructType``).

    Example:
        >>> revocation_schema().simpleString()
        'struct<token:string,revoked_at:timestamp,reason_code:string,source:string>'
    """
    from pyspark.sql.types import StringType, StructField, StructType, TimestampType

    return StructType(
        [
            StructField("token", StringType(), True),
            StructField("revoked_at", TimestampType(), True),
            StructField("reason_code", StringType(), True),
            StructField("source", StringType(), True),
        ]
    )


_ACCEPTED_TYPES = {
    "token": ("string",),
    "revoked_at": ("timestamp", "timestamp_ntz"),
    "reason_code": ("string",),
    "source": ("string",),
}


def _check_schema(df: DataFrame, call: str) -> None:
    """Raise RevocationInputError naming missing or wrongly typed revocation columns."""
    types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    missing = [c for c in REVOCATION_COLUMNS if c not in types]
    wrong = [
        f"'{c}' is {types[c]} (expected {' or '.join(_ACCEPTED_TYPES[c])})"
        for c in REVOCATION_COLUMNS
        if c in types and types[c] not in _ACCEPTED_TYPES[c]
    ]
    problems = []
    if missing:
        problems.append("missing column(s) " + ", ".join(f"'{c}'" for c in missing))
    if wrong:
        problems.append("wrong type(s): " + "; ".join(wrong))
    if problems:
        raise RevocationInputError(
            f"{call}: the revocation list must have columns token string, revoked_at "
            f"timestamp, reason_code string, source string; {' and '.join(problems)}"
        )


@dataclass(frozen=True)
class _Checked:
    tokens: DataFrame  # one column `token`, distinct
    rows: int
    distinct: int


def _validate(revoked: DataFrame, call: str) -> _Checked:
    """Check schema, null tokens and token shape in one pass; never shows a value."""
    _check_schema(revoked, call)
    fn = functions_for(revoked)
    token = fn.col("token")
    stats = revoked.agg(
        fn.count(fn.lit(1)).alias("rows"),
        fn.sum(fn.when(token.isNull(), 1).otherwise(0)).alias("nulls"),
        fn.sum(fn.when(token.isNotNull() & ~token.rlike(TOKEN_PATTERN), 1).otherwise(0)).alias(
            "malformed"
        ),
        fn.count_distinct(token).alias("distinct"),
    ).collect()[0]
    rows = int(stats["rows"])
    nulls = int(stats["nulls"] or 0)
    malformed = int(stats["malformed"] or 0)
    if nulls:
        raise RevocationInputError(
            f"{call}: {nulls} of {rows} revocation rows have a null token; "
            "every revocation must name a token"
        )
    if malformed:
        raise RevocationInputError(
            f"{call}: {malformed} of {rows} revocation tokens are not cleanjoin tokens "
            "(64 lowercase hex characters); values are not shown. Tokenize opt-outs with "
            "cleanjoin.tokenize and build the list with revocations_from_tokens"
        )
    return _Checked(
        tokens=revoked.select("token").distinct(), rows=rows, distinct=int(stats["distinct"])
    )


def _read_revocations(revoked: DataFrame | str, spark: SparkSession | None, call: str) -> DataFrame:
    if isinstance(revoked, str):
        session = _resolve_session(call, spark)
        try:
            return session.read.format("delta").load(revoked)
        except Exception as exc:
            raise RevocationInputError(
                f"{call}: no readable Delta revocation table at '{revoked}'"
            ) from exc
    if not hasattr(revoked, "schema") or not hasattr(revoked, "sparkSession"):
        raise InvalidArgumentError(
            f"'revoked' in {call} must be a DataFrame or a Delta table path, "
            f"got {type(revoked).__name__}"
        )
    return revoked


def load_revocations(revoked: DataFrame | str, *, spark: SparkSession | None = None) -> DataFrame:
    """Validate a revocation list and return its distinct tokens.

    Args:
        revoked: a DataFrame with the revocation schema, or the path of a Delta table
            holding one. Extra columns are allowed and ignored.
        spark: the session to read a path with (defaults to the active session).

    Returns:
        A DataFrame with one column ``token``, one row per distinct revoked token.

    Raises:
        RevocationInputError: a column is missing or wrongly typed (the message names
            it), tokens are null (the message gives the count), or tokens are not
            64 lowercase hex characters (the count; values are never shown).

    Example:
        >>> tokens = load_revocations("/gold/revocations", spark=spark)  # doctest: +SKIP
        >>> tokens.columns  # doctest: +SKIP
        ['token']
    """
    call = "load_revocations"
    return _validate(_read_revocations(revoked, spark, call), call).tokens


def revocations_from_tokens(
    df: DataFrame,
    *,
    token_column: str,
    reason_code: str,
    source: str,
    revoked_at: datetime | None = None,
) -> DataFrame:
    """Build a revocation list from a DataFrame of tokenized opt-outs.

    Args:
        df: opt-outs, already tokenized (e.g. the output of ``cleanjoin.tokenize``).
        token_column: the token column of ``df`` (e.g. ``"card_number_token"``).
        reason_code: why the rows are revoked (e.g. ``"OPT_OUT"``, ``"AGREEMENT_SUSPENDED"``).
        source: who reported the revocation (e.g. ``"issuer-portal"``).
        revoked_at: when; defaults to the current timestamp at evaluation.

    Returns:
        A DataFrame with the revocation schema (token, revoked_at, reason_code, source).

    Raises:
        ColumnNotFoundError: ``token_column`` is not in ``df``.
        InvalidArgumentError: empty ``reason_code`` or ``source``.

    Example:
        >>> revocations_from_tokens(optouts, token_column="card_number_token",  # doctest: +SKIP
        ...                         reason_code="OPT_OUT", source="issuer-portal").columns
        ['token', 'revoked_at', 'reason_code', 'source']
    """
    call = "revocations_from_tokens"
    for name, value in (("reason_code", reason_code), ("source", source)):
        if not isinstance(value, str) or not value:
            raise InvalidArgumentError(f"'{name}' in {call} must be a non-empty string")
    if revoked_at is not None and not isinstance(revoked_at, datetime):
        raise InvalidArgumentError(
            f"'revoked_at' in {call} must be a datetime or None, got {type(revoked_at).__name__}"
        )
    if token_column not in df.columns:
        raise ColumnNotFoundError(
            f"{call}: column '{token_column}' not found; the DataFrame has columns {list(df.columns)}"
        )
    fn = functions_for(df)
    when = (
        fn.lit(revoked_at).cast("timestamp") if revoked_at is not None else fn.current_timestamp()
    )
    return df.select(
        fn.col(_quote(token_column)).cast("string").alias("token"),
        when.alias("revoked_at"),
        fn.lit(reason_code).alias("reason_code"),
        fn.lit(source).alias("source"),
    )


# --------------------------------------------------------------------------- Gold MERGE


_INTEGRAL = ("tinyint", "smallint", "int", "bigint")


def _check_gold(
    spark: SparkSession,
    path: str,
    token_column: str,
    mode: RevocationMode,
    flag_column: str,
    flag_value: object,
    call: str,
) -> str | None:
    """Check the Gold table's columns; return the flag column's type in ``"flag"`` mode."""
    try:
        schema = spark.read.format("delta").load(path).schema
    except Exception as exc:
        raise InvalidArgumentError(f"{call}: no readable Delta table at '{path}'") from exc
    types = {f.name: f.dataType.simpleString() for f in schema.fields}
    needed = [token_column] + ([flag_column] if mode is RevocationMode.FLAG else [])
    missing = [c for c in needed if c not in types]
    if missing:
        names = ", ".join(f"'{c}'" for c in missing)
        raise ColumnNotFoundError(
            f"{call}: column {names} not found in the Gold table at '{path}'; "
            f"it has columns {sorted(types)}"
        )
    if types[token_column] != "string":
        raise SchemaMismatchError(
            f"{call}: Gold column '{token_column}' is {types[token_column]}; tokens are strings"
        )
    if mode is not RevocationMode.FLAG:
        return None
    flag_type = str(types[flag_column])
    fits = (
        (flag_type == "string" and isinstance(flag_value, str))
        or (flag_type == "boolean" and isinstance(flag_value, bool))
        or (
            flag_type in _INTEGRAL
            and isinstance(flag_value, int)
            and not isinstance(flag_value, bool)
        )
    )
    if not fits:
        raise SchemaMismatchError(
            f"{call}: Gold column '{flag_column}' is {flag_type}, but 'flag_value' is a "
            f"{type(flag_value).__name__}; give a value of the column's type"
        )
    return flag_type


def _merge_sql(
    path: str, view: str, token_column: str, mode: RevocationMode, flag_column: str
) -> str:
    target = quote_path(path)
    on = f"g.{_quote(token_column)} = r.token"
    if mode is RevocationMode.DELETE:
        action = "WHEN MATCHED THEN DELETE"
    else:
        flag = f"g.{_quote(flag_column)}"
        value = f"r.{_FLAG_SOURCE_COLUMN}"
        action = f"WHEN MATCHED AND NOT ({flag} <=> {value}) THEN UPDATE SET {flag} = {value}"
    return f"MERGE INTO {target} AS g USING {_quote(view)} AS r ON {on} {action}"


def _find_commit(spark: SparkSession, path: str, marker: str, after: int) -> Any | None:
    """The history row of the commit carrying ``marker`` (newest first search)."""
    fn = functions_for(spark)
    history = spark.sql(f"DESCRIBE HISTORY {quote_path(path)} LIMIT 200")
    rows = (
        history.where(
            (fn.col("version") > fn.lit(after)) & (fn.col("userMetadata") == fn.lit(marker))
        )
        .select("version", "operationMetrics")
        .collect()
    )
    return rows[0] if rows else None


def _apply(
    gold_path: str,
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
    checked = _validate(revocations, call)
    flag_type = _check_gold(session, gold_path, token_column, mode, flag_column, flag_value, call)
    version_before = _latest_version(session, gold_path, call)
    app_id, batch_id = txn if txn is not None else (None, None)
    base = RevocationResult(
        table=gold_path,
        mode=mode.value,
        batch_rows=checked.rows,
        distinct_tokens=checked.distinct,
        version_before=version_before,
        batch_id=batch_id,
        app_id=app_id,
    )
    if audit is not None:  # refuse an entry the audit log would reject before writing
        _batch_entry(base, token_column, gold_path)
    if checked.rows == 0:
        result = base
    else:
        result = _merge(
            session,
            gold_path,
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
        parameters, output = _batch_entry(result, token_column, gold_path)
        audit.append("revocation_batch", parameters, output=output, spark=session)
    return result


def _batch_entry(
    result: RevocationResult, token_column: str, gold_path: str
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
        "path": gold_path,
        "version": result.version if result.committed else result.version_before,
    }
    return check_parameters(parameters), check_parameters(output, where="output")


def _merge(
    session: SparkSession,
    gold_path: str,
    checked: _Checked,
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
    statement = _merge_sql(gold_path, view, token_column, mode, flag_column)
    settings = {_USER_METADATA: marker}
    if txn is not None:
        settings[_TXN_APP_ID] = txn[0]
        settings[_TXN_VERSION] = str(txn[1])

    def attempt() -> list[Any]:
        with _session_confs(session, settings):
            return list(session.sql(statement).collect())

    source.createOrReplaceTempView(view)
    try:
        rows, attempts = _retry(attempt, max_attempts=max_attempts, backoff_seconds=backoff_seconds)
    finally:
        session.catalog.dropTempView(view)
    if not rows:  # Delta returns no row when it skips an already-applied (app id, version)
        return _replace(base, replayed=True, attempts=attempts)
    affected = int(rows[0]["num_affected_rows"] or 0)
    if affected == 0:  # nothing matched: Delta commits nothing
        return _replace(base, attempts=attempts)
    commit = _find_commit(session, gold_path, marker, base.version_before or -1)
    if commit is None:
        # the MERGE reported changes but its commit is not in the history we read: report
        # the statement's own counts and the newest version
        return _replace(
            base,
            rows_deleted=int(rows[0]["num_deleted_rows"] or 0),
            rows_flagged=int(rows[0]["num_updated_rows"] or 0),
            version=_latest_version(session, gold_path, "apply_revocations"),
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


def _check_common(
    token_column: str,
    mode: RevocationMode | str,
    flag_column: str,
    flag_value: object,
    max_attempts: int,
    backoff_seconds: float,
    call: str,
) -> RevocationMode:
    if not isinstance(token_column, str) or not token_column:
        raise InvalidArgumentError(f"'token_column' in {call} must be a non-empty column name")
    parsed = RevocationMode.parse(mode)
    if parsed is RevocationMode.FLAG:
        if not isinstance(flag_column, str) or not flag_column:
            raise InvalidArgumentError(f"'flag_column' in {call} must be a non-empty column name")
        if not isinstance(flag_value, str | bool | int):
            raise InvalidArgumentError(
                f"'flag_value' in {call} must be a str, bool or int, got {type(flag_value).__name__}"
            )
    if not isinstance(max_attempts, int) or max_attempts < 1:
        raise InvalidArgumentError(
            f"'max_attempts' in {call} must be an int >= 1, got {max_attempts}"
        )
    if not backoff_seconds >= 0:
        raise InvalidArgumentError(
            f"'backoff_seconds' in {call} must be >= 0, got {backoff_seconds}"
        )
    return parsed


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
        gold: the Gold table: a Delta path or a ``delta.tables.DeltaTable`` (classic).
        revocations: a revocation list (DataFrame or Delta path).
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
        InvalidArgumentError: bad options, or no Delta table at ``gold``.

    Example:
        >>> result = apply_revocations("/gold/fraud_signals", revoked,  # doctest: +SKIP
        ...                            token_column="card_number_token")
        >>> result.rows_deleted, result.version  # doctest: +SKIP
        (3, 12)
    """
    call = "apply_revocations"
    parsed = _check_common(
        token_column, mode, flag_column, flag_value, max_attempts, backoff_seconds, call
    )
    path, gold_session = _gold_location(gold, call)
    if isinstance(revocations, str):
        session = _resolve_session(call, spark or gold_session)
        frame = _read_revocations(revocations, session, call)
    else:
        # the MERGE must run in the session that owns the batch (its temp view lives there)
        frame = _read_revocations(revocations, None, call)
        session = frame.sparkSession
    return _apply(
        path,
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


# --------------------------------------------------------------------------- streaming


@dataclass(frozen=True)
class RevocationBatchWriter:
    """The ``foreachBatch`` function of :func:`start_revocation_stream` (picklable).

    Calling it with ``(batch_df, batch_id)`` validates, de-duplicates and applies the
    batch with Delta's idempotent writes keyed by ``(app_id, batch_id)``: a batch id that
    was already applied is skipped by Delta and adds no commit. ``app_id`` defaults to
    the streaming query's id, read from the checkpoint's ``metadata`` file (stable across
    restarts of the query, new for a new checkpoint).

    Attributes:
        gold: the Gold table's path.
        checkpoint: the streaming checkpoint folder.
        token_column: the Gold column holding the tokens.
        mode: ``"delete"`` or ``"flag"``.
        flag_column: the column set in ``"flag"`` mode.
        flag_value: the value it is set to.
        audit: an audit log (or ``None``).
        app_id: a fixed idempotent-write application id (default: from the checkpoint).
        max_attempts: MERGE attempts before a conflict is raised.
        backoff_seconds: the first retry's wait.
    """

    gold: str
    checkpoint: str
    token_column: str
    mode: str = "delete"
    flag_column: str = "sharing_consent_flag"
    flag_value: str | bool | int = "REVOKED"
    audit: Any = None
    app_id: str | None = None
    max_attempts: int = 8
    backoff_seconds: float = 0.5
    _cache: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_common(
            self.token_column,
            self.mode,
            self.flag_column,
            self.flag_value,
            self.max_attempts,
            self.backoff_seconds,
            "RevocationBatchWriter",
        )

    def resolve_app_id(self, spark: SparkSession) -> str:
        """The idempotent-write application id (derived from the streaming query's id)."""
        if self.app_id is not None:
            return self.app_id
        if "app_id" not in self._cache:
            lines = spark.read.text(self.checkpoint.rstrip("/") + "/metadata").collect()
            query_id = json.loads("".join(row[0] for row in lines)).get("id")
            if not isinstance(query_id, str) or not query_id:
                raise InvalidArgumentError(
                    f"start_revocation_stream: no query id in the checkpoint at '{self.checkpoint}'"
                )
            self._cache["app_id"] = f"cleanjoin-revocation:{query_id}"
        return self._cache["app_id"]

    def __call__(self, batch_df: DataFrame, batch_id: int) -> RevocationResult:
        """Apply one micro-batch (idempotent per batch id)."""
        session = batch_df.sparkSession
        return _apply(
            self.gold,
            session,
            batch_df,
            token_column=self.token_column,
            mode=RevocationMode.parse(self.mode),
            flag_column=self.flag_column,
            flag_value=self.flag_value,
            audit=self.audit,
            max_attempts=self.max_attempts,
            backoff_seconds=self.backoff_seconds,
            txn=(self.resolve_app_id(session), int(batch_id)),
            call="start_revocation_stream",
        )


def start_revocation_stream(
    source: DataFrame,
    gold: Any,
    checkpoint: str,
    *,
    token_column: str,
    mode: RevocationMode | str = "delete",
    flag_column: str = "sharing_consent_flag",
    flag_value: str | bool | int = "REVOKED",
    audit: AuditLog | None = None,
    trigger: Mapping[str, Any] | None = None,
    query_name: str | None = None,
    app_id: str | None = None,
) -> Any:
    """Start a Structured Streaming query that applies revocations to a Gold table.

    Each micro-batch of ``source`` is validated, de-duplicated and MERGEd into ``gold``
    like :func:`apply_revocations`, with Delta's idempotent writes keyed by (the query's
    id, the batch id): a batch replayed after a crash, or re-run from the checkpoint, is
    applied once and adds no second commit.

    Args:
        source: a streaming DataFrame with the revocation schema (any streaming source:
            files, Kafka, a Delta table of revocations, ...).
        gold: the Gold table (a Delta path, or a ``delta.tables.DeltaTable``).
        checkpoint: the streaming checkpoint folder.
        token_column: the Gold column holding the tokens.
        mode: ``"delete"`` or ``"flag"`` (see :func:`apply_revocations`).
        flag_column: the column set in ``"flag"`` mode.
        flag_value: the value it is set to.
        audit: an audit log; one ``"revocation_batch"`` entry per non-empty batch.
        trigger: keyword arguments for ``DataStreamWriter.trigger``, e.g.
            ``{"availableNow": True}`` or ``{"processingTime": "30 seconds"}``.
        query_name: optional streaming query name.
        app_id: override the idempotent-write application id (default: derived from the
            query id stored in the checkpoint).

    Returns:
        The running ``StreamingQuery``.

    Raises:
        InvalidArgumentError: ``source`` is not streaming, or bad options.
        RevocationInputError: ``source`` lacks the revocation columns.

    Example:
        >>> source = spark.readStream.schema(revocation_schema()).json("/in/optouts")  # doctest: +SKIP
        >>> q = start_revocation_stream(source, "/gold/fraud_signals", "/chk/revocations",  # doctest: +SKIP
        ...                             token_column="card_number_token",
        ...                             trigger={"availableNow": True})
        >>> q.awaitTermination()  # doctest: +SKIP
    """
    call = "start_revocation_stream"
    parsed = _check_common(token_column, mode, flag_column, flag_value, 1, 0.0, call)
    if not getattr(source, "isStreaming", False):
        raise InvalidArgumentError(
            f"'source' in {call} must be a streaming DataFrame (spark.readStream...); "
            "use apply_revocations for a batch"
        )
    if not isinstance(checkpoint, str) or not checkpoint:
        raise InvalidArgumentError(f"'checkpoint' in {call} must be a non-empty path")
    _check_schema(source, call)
    path, _ = _gold_location(gold, call)
    session = source.sparkSession
    _check_gold(session, path, token_column, parsed, flag_column, flag_value, call)
    writer_fn = RevocationBatchWriter(
        gold=path,
        checkpoint=checkpoint,
        token_column=token_column,
        mode=parsed.value,
        flag_column=flag_column,
        flag_value=flag_value,
        audit=audit,
        app_id=app_id,
    )
    writer = source.writeStream.foreachBatch(writer_fn).option("checkpointLocation", checkpoint)
    if trigger:
        writer = writer.trigger(**dict(trigger))
    if query_name:
        writer = writer.queryName(query_name)
    return writer.start()


# --------------------------------------------------------------------------- purge


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
        gold: the table (a Delta path, or a ``delta.tables.DeltaTable``).
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
    path, gold_session = _gold_location(gold, call)
    session = _resolve_session(call, spark or gold_session)
    version_before = _latest_version(session, path, call)
    detail = session.sql(f"DESCRIBE DETAIL {quote_path(path)}").collect()[0]
    properties = dict(detail["properties"] or {})
    features = set(detail["tableFeatures"] or ())
    reorg = (
        properties.get("delta.enableDeletionVectors", "false").lower() == "true"
        or "deletionVectors" in features
    )
    if audit is not None:  # refuse an entry the audit log would reject before purging
        check_parameters({"path": path, "version": version_before}, where="output")
    table = quote_path(path)
    if reorg:
        session.sql(f"REORG TABLE {table} APPLY (PURGE)").collect()
    hours = f"{float(retention_hours):g}"
    # the caller chose the window explicitly: Delta's safety check is off for this call only
    with _session_confs(session, {_RETENTION_CHECK: "false"}):
        session.sql(f"VACUUM {table} RETAIN {hours} HOURS").collect()
    version_after = _latest_version(session, path, call)
    files_deleted = _vacuum_files_deleted(session, path, version_before)
    result = PurgeResult(
        table=path,
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
            output={"path": path, "version": version_after},
            spark=session,
        )
    return result


def _vacuum_files_deleted(spark: SparkSession, path: str, after: int) -> int | None:
    fn = functions_for(spark)
    rows = (
        spark.sql(f"DESCRIBE HISTORY {quote_path(path)} LIMIT 20")
        .where((fn.col("version") > fn.lit(after)) & (fn.col("operation") == fn.lit("VACUUM END")))
        .select("operationMetrics")
        .collect()
    )
    if not rows:
        return None
    metrics = dict(rows[0][0] or {})
    value = metrics.get("numDeletedFiles")
    return int(value) if value is not None else None
