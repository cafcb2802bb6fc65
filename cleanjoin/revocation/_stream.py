"""Revocations from a Structured Streaming source, applied once per micro-batch."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from cleanjoin._table import TableRef
from cleanjoin._typing import DataFrame, SparkSession
from cleanjoin.audit import AuditLog
from cleanjoin.errors import InvalidArgumentError
from cleanjoin.revocation._gold import check_gold, gold_location
from cleanjoin.revocation._list import check_schema
from cleanjoin.revocation._merge import RevocationResult, apply_batch
from cleanjoin.revocation._options import RevocationMode, check_options


@dataclass(frozen=True)
class RevocationBatchWriter:
    """The ``foreachBatch`` function of :func:`start_revocation_stream` (picklable).

    Calling it with ``(batch_df, batch_id)`` validates, de-duplicates and applies the
    batch with Delta's idempotent writes keyed by ``(app_id, batch_id)``: a batch id that
    was already applied is skipped by Delta and adds no commit. ``app_id`` defaults to
    the streaming query's id, read from the checkpoint's ``metadata`` file (stable across
    restarts of the query, new for a new checkpoint).

    Attributes:
        gold: the Gold table's path or table name.
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
        TableRef.parse(self.gold, arg="gold", call="RevocationBatchWriter")
        check_options(
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
        return apply_batch(
            TableRef.parse(self.gold, arg="gold", call="RevocationBatchWriter"),
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
        gold: the Gold table (a Delta path, a table name ``catalog.schema.table`` /
            ``schema.table``, or a ``delta.tables.DeltaTable``).
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
    parsed = check_options(token_column, mode, flag_column, flag_value, 1, 0.0, call)
    if not getattr(source, "isStreaming", False):
        raise InvalidArgumentError(
            f"'source' in {call} must be a streaming DataFrame (spark.readStream...); "
            "use apply_revocations for a batch"
        )
    if not isinstance(checkpoint, str) or not checkpoint:
        raise InvalidArgumentError(f"'checkpoint' in {call} must be a non-empty path")
    check_schema(source, call)
    target, _ = gold_location(gold, call)
    session = source.sparkSession
    check_gold(session, target, token_column, parsed, flag_column, flag_value, call)
    writer_fn = RevocationBatchWriter(
        gold=target.given,
        checkpoint=checkpoint,
        token_column=token_column,
        mode=parsed.value,
        flag_column=flag_column,
        flag_value=flag_value,
        audit=audit,
        app_id=app_id,
    )
    batch_fn = cast("Callable[[DataFrame, int], None]", writer_fn)  # its result is ignored
    writer = source.writeStream.foreachBatch(batch_fn).option("checkpointLocation", checkpoint)
    if trigger:
        writer = writer.trigger(**dict(trigger))
    if query_name:
        writer = writer.queryName(query_name)
    return writer.start()
