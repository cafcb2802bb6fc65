"""Tokenized rows written to Delta in one job, with the audit's statistics riding on it.

:func:`cleanjoin.tokens.write_tokens` builds the tokenized projection and hands it here.
The row count and the null-token count per output column are Spark *observations* on the
written plan (``DataFrame.observe``): the write job computes them, so the DataFrame is not
computed a second time for the audit and the table just written is not read back. Only
where a session cannot deliver observed metrics (Spark Connect 3.5) are the counts a job of
their own (:func:`cleanjoin._observe.observe_metrics`): over the written table, or over the
rows again when they were appended to a table that holds others.

The audit entry is the one :func:`cleanjoin.tokens.tokenize` records with ``audit=``
(:func:`audit_parameters` builds both), appended after the write succeeded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from cleanjoin._names import TOKEN_SUFFIX
from cleanjoin._observe import DeferredMetrics, observe_metrics, observed
from cleanjoin._spark import functions_for
from cleanjoin._sql import quote_identifier
from cleanjoin._table import TableRef
from cleanjoin._typing import DataFrame
from cleanjoin.errors import InvalidArgumentError
from cleanjoin.secret import Secret
from cleanjoin.spec import TokenSpec

if TYPE_CHECKING:
    from cleanjoin.audit import AuditLog

__all__ = ["WRITE_MODES", "TokenWrite", "WriteMode", "audit_parameters", "check_mode",
           "write_tokenized"]

WriteMode = Literal["overwrite", "append", "error"]
WRITE_MODES: tuple[WriteMode, ...] = ("overwrite", "append", "error")


@dataclass(frozen=True)
class TokenWrite:
    """What :func:`cleanjoin.tokens.write_tokens` wrote (counts only: no value, no token).

    Attributes:
        table: the Delta table as given (a path or a table name).
        columns: the written table's columns, in order.
        rows: rows written.
        null_tokens: output token column → rows whose token is null (null, empty or
            invalid identifier).
        audit_seq: ``seq`` of the ``"tokenize"`` audit entry, or ``None`` without audit.
    """

    table: str
    columns: tuple[str, ...]
    rows: int
    null_tokens: Mapping[str, int] = field(default_factory=dict)
    audit_seq: int | None = None


def check_mode(mode: object, call: str) -> WriteMode:
    """``mode`` when it is one of :data:`WRITE_MODES`; otherwise a precise error."""
    for allowed in WRITE_MODES:
        if mode == allowed:
            return allowed
    shown = repr(mode) if isinstance(mode, str) and len(mode) <= 20 else type(mode).__name__
    raise InvalidArgumentError(
        f"Unknown mode {shown} in {call}. Available options are "
        + ", ".join(f'"{m}"' for m in WRITE_MODES) + "."
    )


def audit_parameters(
    resolved: Sequence[tuple[str, TokenSpec]],
    secret: Secret,
    *,
    rows: int,
    null_tokens: Mapping[str, int],
) -> dict[str, Any]:
    """The parameters of a ``"tokenize"`` audit entry (spec fingerprints, key check value,
    columns, row count, null tokens per output column)."""
    return {
        "spec_version": resolved[0][1].version,
        "columns": [
            {
                "column": name,
                "output": name + TOKEN_SUFFIX,
                "preset": spec.name,
                "spec_version": spec.version,
                "spec_fingerprint": spec.fingerprint(),
            }
            for name, spec in resolved
        ],
        "key_check_value": secret.check_value(),
        "rows": rows,
        "null_tokens": dict(null_tokens),
    }


def _count_columns(F: Any, outputs: Sequence[str]) -> list[Any]:
    aggs = [F.count(F.lit(1)).alias("rows")]
    aggs += [
        F.count(F.when(F.col(quote_identifier(out)).isNull(), 1)).alias(f"n{i}")
        for i, out in enumerate(outputs)
    ]
    return aggs


def write_tokenized(
    tokenized: DataFrame,
    resolved: Sequence[tuple[str, TokenSpec]],
    *,
    secret: Secret,
    ref: TableRef,
    mode: WriteMode,
    audit: AuditLog | None,
) -> TokenWrite:
    """Write ``tokenized`` (validated already) to ``ref`` and record the audit entry."""
    F = functions_for(tokenized)
    outputs = [name + TOKEN_SUFFIX for name, _ in resolved]
    counts = _count_columns(F, outputs)
    spark = tokenized.sparkSession
    # without observations the counts are a job of their own: over the table written
    # when it holds only these rows, over the rows themselves when they were appended
    written = None if mode == "append" else (lambda: ref.read(spark))
    frame, observation = observe_metrics(tokenized, "tokens", *counts, written=written)
    ref.save(frame.write.format("delta").mode(mode))
    metrics = observed(observation)
    if metrics is None:  # the observation did not arrive: count as a stand-in would
        metrics = DeferredMetrics(tokenized, tuple(counts), written).get
    rows = int(metrics["rows"])
    nulls = {out: int(metrics[f"n{i}"]) for i, out in enumerate(outputs)}
    seq: int | None = None
    columns = tuple(tokenized.columns)
    if audit is not None:
        entry = audit.append(
            "tokenize",
            audit_parameters(resolved, secret, rows=rows, null_tokens=nulls),
            output={"columns": list(columns), "rows": rows},
            spark=spark,
        )
        seq = entry.seq
    return TokenWrite(table=ref.given, columns=columns, rows=rows, null_tokens=nulls,
                      audit_seq=seq)
