"""What leaves a guarded run: its audit entry and the review-gated Delta write.

The released rows of a run are materialized, so their content hash is computed once: the
``guarded_run`` entry's hash is kept (per DataFrame, weakly) and the write's seal reuses it.
"""

from __future__ import annotations

import json
import uuid
import weakref
from typing import TYPE_CHECKING, Any, Protocol

from cleanjoin._spark import functions_for
from cleanjoin._table import TableRef
from cleanjoin._typing import DataFrame, SparkSession
from cleanjoin.contract import OutputContract
from cleanjoin.errors import ContractViolation, InternalError

if TYPE_CHECKING:
    from cleanjoin.audit import AuditLog
    from cleanjoin.guard._query import Query

__all__ = ["Released", "audit_run", "write_delta"]

# content hashes audit_run computed of a run's (materialized) released rows
_HASHED: weakref.WeakKeyDictionary[DataFrame, str] = weakref.WeakKeyDictionary()


class Released(Protocol):
    """What the writer reads of a released result (a ``GuardedResult``)."""

    @property
    def df(self) -> DataFrame: ...

    @property
    def report(self) -> Any: ...

    @property
    def run_id(self) -> str: ...

    @property
    def release_id(self) -> str | None: ...

    @property
    def policy(self) -> str | None: ...


def audit_run(
    audit: AuditLog | None,
    query: Query,
    result: Released,
    spark: SparkSession,
    *,
    content_hash: str | None = None,
) -> None:
    """Append the ``guarded_run`` entry of a run (or a replay) to ``audit``, if given.

    ``content_hash`` is the released rows' hash when the run already has it (a stored
    release); otherwise it is computed here."""
    if audit is None:
        return
    if content_hash is None:
        from cleanjoin.audit import content_hash as hash_of

        content_hash = hash_of(result.df)
        _HASHED[result.df] = content_hash  # materialized rows: write_delta's seal reuses it
    report = result.report.to_dict()
    parameters = {
        "run_id": report["run_id"],
        "release_id": report["release_id"],
        "query": query.describe(),
        "query_fingerprint": report["query_fingerprint"],
        "groups_released": report["groups_released"],
        "groups_suppressed": report["groups_suppressed"],
        "groups_suppressed_secondary": report["groups_suppressed_secondary"],
        "groups_suppressed_dominance": report["groups_suppressed_dominance"],
        "groups_suppressed_refinement": report["groups_suppressed_refinement"],
        "rows_excluded_by_consent": report["rows_excluded_by_consent"],
        "rows_excluded_by_revocation": report["rows_excluded_by_revocation"],
        "rows_without_join_key": report["rows_without_join_key"],
        "revoked_tokens_applied": report["revoked_tokens_applied"],
        "replayed": report["replayed"],
        "budget_charged": report["budget_charged"],
        "dp": report["dp"],
    }
    output = {
        "run_id": report["run_id"],
        "rows": report["groups_released"],
        "content_hash": content_hash,
    }
    audit.append("guarded_run", parameters, output=output, spark=spark)


def _written_version(spark: SparkSession, target: TableRef, metadata: str) -> int:
    """The version of the commit whose ``userMetadata`` is ``metadata`` (unique: it holds a
    fresh ``write_id``): the newest commit's, read alone, in the common case; else looked
    up in the whole history (another writer committed in between)."""
    newest = target.latest_commit(spark)
    if newest is not None and newest[1] == metadata:
        return newest[0]
    F = functions_for(spark)
    history = spark.sql(f"DESCRIBE HISTORY {target.sql}")
    rows = (
        history.filter(F.col("userMetadata") == F.lit(metadata))
        .agg(F.max("version").alias("v"))
        .collect()
    )
    if not rows or rows[0]["v"] is None:
        raise InternalError(
            "write_delta: the commit was written but not found in the table history"
        )
    return int(rows[0]["v"])


def write_delta(
    result: Released,
    target: TableRef,
    *,
    contract: OutputContract,
    mode: str,
    audit: AuditLog | None,
) -> int:
    """Review, then write (see :meth:`cleanjoin.guard.GuardedResult.write_delta`)."""
    df = result.df
    spark = df.sparkSession
    review = contract.review(result)
    fingerprint = review.contract_fingerprint
    if audit is not None:
        audit.append(
            "contract_review",
            {
                "run_id": result.run_id,
                "release_id": result.release_id,
                "contract_fingerprint": fingerprint,
                "contract_name": contract.name,
                "contract_version": contract.version,
                "approved": review.approved,
                "reasons": list(review.reasons),
            },
            spark=spark,
        )
    if not review.approved:
        reasons = "\n  - ".join(review.reasons)
        raise ContractViolation(
            f"write_delta: contract {contract.name or 'unnamed'!r} ({fingerprint[:12]}…) "
            f"rejected the result of run {result.run_id}; nothing was written. "
            f"{len(review.reasons)} reason(s):\n  - {reasons}",
            review.reasons,
        )
    from cleanjoin.audit import content_hash

    # the released rows are materialized: hashed once, by the run's audit entry or here
    digest = _HASHED.get(df) or content_hash(df)
    meta: dict[str, Any] = {
        "cleanjoin": "guarded_result",
        "policy_fingerprint": result.policy,
        "query_fingerprint": result.report.query_fingerprint,
        "content_hash": digest,
        "mode": mode,
        "audit_log": None,
        "audit_seq": None,
        "audit_head": None,
        "contract_fingerprint": fingerprint,
        "contract_name": contract.name,
        "contract_version": contract.version,
        "run_id": result.run_id,
        "release_id": result.release_id,
        "write_id": str(uuid.uuid4()),
    }
    if audit is not None:
        meta.update(audit.commit_metadata(spark=spark))
    text = json.dumps(meta, sort_keys=True, separators=(",", ":"))
    writer = df.write.format("delta").option("userMetadata", text)
    if mode == "overwrite":
        target.overwrite(writer, spark, user_metadata=text)
    else:
        target.save(writer.mode(mode))
    version = _written_version(spark, target, text)
    if audit is not None:
        place = target.identity()
        audit.append(
            "delta_write",
            {
                "run_id": result.run_id,
                "release_id": result.release_id,
                "contract_fingerprint": fingerprint,
                "mode": mode,
                **place,
                "version": version,
            },
            output={**place, "version": version, "content_hash": digest},
            spark=spark,
        )
    return version
