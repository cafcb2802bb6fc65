"""Execution of a guarded query (:meth:`cleanjoin.guard.ReadyJoin.run`).

One run: a release id already in the budget ledger replays its stored rows; otherwise
the budget is checked before any Spark job, the plan is built (explosion check "fast"
first), the budget charged, and the aggregation run. A failure of the explosion check
moves the run along its modes — fast → bucket (the right side repeats a key) → exact
(a bucket exceeds the limit) — and re-runs it (:mod:`cleanjoin.guard._explosion`).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from cleanjoin._ledgerrelease import ThresholdRelease, record_threshold
from cleanjoin._typing import DataFrame, SparkSession
from cleanjoin.errors import (
    ConfigurationError,
    InternalError,
    InvalidArgumentError,
    LedgerTampered,
)
from cleanjoin.guard._dominance import SENSITIVE
from cleanjoin.guard._dominance import active as dominance_active
from cleanjoin.guard._explosion import bound_exceeded, explosion_error, not_unique
from cleanjoin.guard._join import _Plan, build_plan, check_bound_after, check_explosion_now
from cleanjoin.guard._margins import GROUPING_COLUMN, Refine
from cleanjoin.guard._margins import release as release_margins
from cleanjoin.guard._observe import metric_int, observed
from cleanjoin.guard._plan import UNITS, aggregate, grouped_cells
from cleanjoin.guard._provenance import check_inputs
from cleanjoin.guard._query import Query
from cleanjoin.guard._refine import RefinementGuard, earlier_releases, scope_fingerprint
from cleanjoin.guard._result import GuardedResult, GuardReport, ReplayedRelease, seal
from cleanjoin.guard._write import audit_run

if TYPE_CHECKING:
    from cleanjoin.audit import AuditLog
    from cleanjoin.budget import BudgetLedger
    from cleanjoin.dp import DPReport

__all__ = ["execute"]

_Groups = tuple[int, int | None, int | None, int | None, int]
_Counts = tuple[dict[str, int] | None, dict[str, int] | None, dict[str, int], int | None]


def execute(
    query: Query,
    *,
    audit: AuditLog | None,
    budget: BudgetLedger | None,
    release_id: str | None,
    refinement_guard: bool = True,
) -> GuardedResult:
    """Run a guarded query (see :meth:`cleanjoin.guard.ReadyJoin.run`).

    A threshold query with ``budget`` and ``release_id`` is a recorded threshold release:
    replayed if the ledger holds it, else checked against the earlier recorded releases
    (with ``refinement_guard``, see :mod:`cleanjoin.guard._refine`) and recorded."""
    started = time.monotonic()
    spark = query.left.sparkSession
    fingerprint = query.fingerprint()
    common: dict[str, Any] = {
        "run_id": str(uuid.uuid4()),
        "group_by": query.group_columns,
        "aggregates": tuple(a.describe() for a in query.aggregates),
        "min_cohort": query.threshold,
        "privacy_unit": query.unit or query.keys[0],
        "max_rows_per_key": query.max_rows_per_key,
        "query_fingerprint": fingerprint,
        "release_id": release_id,
        "policy": query.policy,
    }
    recording = budget is not None and release_id is not None and query.dp is None
    thresholds: list[ThresholdRelease] = []
    if budget is not None and release_id is not None:
        entries = budget._entries(spark)  # one verified read for the lookups below
        thresholds = budget._thresholds_of(entries)
        record = next((r for r in thresholds if r.release_id == release_id), None)
        if recording and record is not None:
            result, digest = _replay_threshold(
                query, budget, release_id, record, spark, common, started, audit
            )
            audit_run(audit, query, result, spark, content_hash=digest)
            return result
        charge = next((c for c in budget._charges_of(entries) if c.release_id == release_id), None)
        if charge is not None:
            result, digest = _replay(
                query, budget, release_id, charge, spark, common, started, audit
            )
            audit_run(audit, query, result, spark, content_hash=digest)
            return result

    check_inputs(query)  # key provenance, quasi-identifiers: refused before the run
    tokens = None
    if query.revoked is not None:
        from cleanjoin.revocation import load_revocations

        tokens = load_revocations(query.revoked, spark=spark)
    dp_spec = query.dp
    charging = budget is not None and release_id is not None and dp_spec is not None
    if charging and budget is not None and dp_spec is not None:
        # an overspend is refused before any work; a join that would explode is refused
        # before the charge, so it costs no budget
        budget.check_available(
            epsilon=dp_spec.params.epsilon, delta=dp_spec.params.delta, spark=spark
        )
        check_explosion_now(query, tokens)
    # explosion check: "fast" first; a repeated key on the right side re-runs the query
    # with both sides' bound in the plan, a bound over the limit with the exact check
    mode = None if charging or query.max_rows_per_key is None else "fast"
    plan = build_plan(query, tokens, mode=mode)
    if dp_spec is not None:
        from cleanjoin.dp._validate import validate_dp_query

        validate_dp_query(
            plan.joined, unit=plan.unit, group_by=query.group_columns,
            aggregates=query.aggregates, params=dp_spec.params, min_cohort=query.threshold,
            public_groups=dp_spec.public_groups,
        )
    charged = None
    if charging and budget is not None and release_id is not None and dp_spec is not None:
        budget._charge(
            release_id, epsilon=dp_spec.params.epsilon, delta=dp_spec.params.delta,
            query_fingerprint=fingerprint, spark=spark, audit=audit,
        )
        charged = {"epsilon": dp_spec.params.epsilon, "delta": dp_spec.params.delta}

    refine: RefinementGuard | None = None
    scope = scope_fingerprint(query)
    if recording and refinement_guard and budget is not None and release_id is not None:
        earlier = earlier_releases(query, budget, release_id, scope, thresholds)
        if earlier:
            refine = RefinementGuard(query, tokens, earlier)
    # margins: no released margin cell minus its released sub-cells isolates a few people
    within = None if query.grouping_sets is None or dp_spec is not None else (
        refine if refine is not None else RefinementGuard(query, tokens, ())).within
    plan, df, counts, dp_report = _release(query, tokens, plan, mode, refine, within)
    released, suppressed, secondary, dominated, refined = counts
    check_bound_after(plan, query, tokens)  # before anything is stored or returned
    stored_hash: str | None = None
    if recording and budget is not None and release_id is not None:
        stored_hash = record_threshold(
            budget, release_id, df, query_fingerprint=fingerprint, scope=scope,
            group_by=query.group_columns, grouping_sets=query.grouping_sets,
            checked=frozenset(r.release_id for r in thresholds) if refinement_guard else None,
        )
    elif budget is not None and release_id is not None:
        stored_hash = budget._store_release(release_id, df)
    consent, revoked, null_key_n, tokens_n = _counts(plan)
    null_key: dict[str, int] | None = null_key_n
    if query.policy is not None and dp_spec is not None:
        # a DP release under a collaboration policy reports no exact counts of rows or
        # people: they would be a side channel around the noise
        consent = revoked = null_key = tokens_n = None
    report = GuardReport(
        **common,
        groups_released=released,
        groups_suppressed=suppressed,
        groups_suppressed_secondary=secondary,
        groups_suppressed_dominance=dominated,
        groups_suppressed_refinement=refined if recording and refinement_guard else None,
        rows_excluded_by_consent=consent,
        rows_excluded_by_revocation=revoked,
        rows_without_join_key=null_key,
        revoked_tokens_applied=tokens_n,
        dp=dp_report,
        budget_charged=charged,
        seconds=time.monotonic() - started,
    )
    result = seal(GuardedResult(df, report))
    audit_run(audit, query, result, spark, content_hash=stored_hash)
    return result


def _next_mode(mode: str | None, exc: BaseException) -> str | None:
    """The explosion check's next mode after a failed attempt, or ``None`` (final)."""
    if mode == "fast" and not_unique(exc):
        # the right side repeats a key: the join may multiply rows, so the left side
        # must be checked before the join too
        return "bucket"
    if mode == "bucket" and bound_exceeded(exc):
        # some bucket holds more rows than the limit: decide with the exact check
        return "exact"
    return None


def _release(
    query: Query,
    tokens: DataFrame | None,
    plan: _Plan,
    mode: str | None,
    refine: RefinementGuard | None = None,
    within: Refine | None = None,
) -> tuple[_Plan, DataFrame, _Groups, DPReport | None]:
    """The released rows, re-running the plan in the next explosion mode when an attempt
    fails on the check: the plan that ran, the rows, the group counts (released,
    suppressed — ``None`` with DP —, suppressed as complements with margins — ``None``
    without —, suppressed by the dominance and p % rules — ``None`` without them —,
    suppressed by the refinement guard), and the DP report.

    With ``refine`` a plain ``group_by`` runs as a release with one grouping set (its
    cells collected, as with margins) and the marker column is dropped."""
    dp_spec = query.dp
    for _attempt in range(3):
        try:
            if dp_spec is None and (query.grouping_sets is not None or refine is not None):
                rules = dominance_active(query)
                plain = query.grouping_sets is None
                cells_query = replace(query, grouping_sets=(query.group_columns,)) if plain else query
                df, released, primary, secondary, dominated, refined = release_margins(
                    grouped_cells(plan, cells_query), cells_query, UNITS,
                    SENSITIVE if rules else None, refine, within,
                )
                if plain:
                    df = df.drop(GROUPING_COLUMN)
                groups = (released, primary, None if plain else secondary,
                          dominated if rules else None, refined)
                return plan, df, groups, None
            if dp_spec is None:
                df, released, suppressed, dominated_n = aggregate(plan, query)
                return plan, df, (released, suppressed, None, dominated_n, 0), None
            from cleanjoin.dp import dp_aggregate

            df, dp_report = dp_aggregate(
                plan.joined, unit=plan.unit, group_by=query.group_columns,
                aggregates=query.aggregates, params=dp_spec.params,
                min_cohort=query.threshold, public_groups=dp_spec.public_groups,
            )
            return plan, df, (int(dp_report.groups_released), None, None, None, 0), dp_report
        except Exception as exc:
            mode = _next_mode(mode, exc)
            if mode is not None:
                plan = build_plan(query, tokens, mode=mode)
                continue
            error = explosion_error(exc, query.max_rows_per_key)
            if error is not None:
                raise error from None
            raise
    raise InternalError("GuardedJoin: the explosion check did not settle")  # pragma: no cover


def _counts(plan: _Plan) -> _Counts:
    """Rows excluded by consent and by revocation, rows without a join key (per side),
    and revoked tokens applied, from the plan's observations."""
    consent: dict[str, int] = {}
    revoked: dict[str, int] = {}
    null_key: dict[str, int] = {}
    for side, info in plan.sides.items():
        m_in = plan.metrics(info.obs_in)
        rows = metric_int(m_in, "rows")
        consented = metric_int(m_in, "consented") if info.has_policy else rows
        keyed = metric_int(m_in, "keyed")
        excluded = None if rows is None or consented is None else rows - consented
        nulls = None if consented is None or keyed is None else consented - keyed
        if info.has_policy and excluded is not None:
            consent[side] = excluded
        if nulls is not None:
            null_key[side] = nulls
        if info.obs_kept is not None:
            kept = metric_int(observed(info.obs_kept), "rows")
            if rows is not None and kept is not None and excluded is not None and nulls is not None:
                revoked[side] = rows - excluded - nulls - kept
    any_policy = any(info.has_policy for info in plan.sides.values())
    any_tokens = plan.obs_tokens is not None
    tokens = metric_int(observed(plan.obs_tokens), "tokens") if any_tokens else None
    return (consent if any_policy else None, revoked if any_tokens else None, null_key, tokens)


def _replay(
    query: Query,
    budget: BudgetLedger,
    release_id: str,
    charge: Any,
    spark: SparkSession,
    common: dict[str, Any],
    started: float,
    audit: AuditLog | None,
) -> tuple[GuardedResult, str]:
    """The stored rows of a release already charged (no charge, no compute), with their
    content hash: replayed only if it is the hash the original run recorded."""
    stored_fp = getattr(charge, "query_fingerprint", None)
    if stored_fp is not None and stored_fp != common["query_fingerprint"]:
        raise InvalidArgumentError(
            f"run(): release_id {release_id!r} was already spent on a different query "
            f"(fingerprint {str(stored_fp)[:12]}…, this query {common['query_fingerprint'][:12]}…); "
            "use a new release_id for a new query"
        )
    df = budget.load_release(release_id, spark=spark)
    if df is None:
        raise ConfigurationError(
            f"run(): release_id {release_id!r} was charged but its rows were not stored (the "
            "charging run did not finish); its budget is spent, use a new release_id"
        )
    digest = _check_stored(release_id, df, charge.content_hash, audit, spark)
    if query.dp is None:  # pragma: no cover - run() refuses a budget without DP
        raise InternalError("GuardedJoin: a release was replayed for a query without DP")
    replay = ReplayedRelease(
        float(charge.epsilon), float(charge.delta), query.dp.params, query.dp.described_groups()
    )
    report = GuardReport(
        **common,
        groups_released=int(df.count()),
        groups_suppressed=None,
        replayed=True,
        seconds=time.monotonic() - started,
        replay=replay,
    )
    return seal(GuardedResult(df, report)), digest


def _replay_threshold(
    query: Query,
    budget: BudgetLedger,
    release_id: str,
    record: ThresholdRelease,
    spark: SparkSession,
    common: dict[str, Any],
    started: float,
    audit: AuditLog | None,
) -> tuple[GuardedResult, str]:
    """The stored rows of a recorded threshold release (no compute), with their content
    hash: returned only for the same query and if the hash is the one recorded."""
    if record.query_fingerprint != common["query_fingerprint"]:
        raise InvalidArgumentError(
            f"run(): release_id {release_id!r} was already used by a different query "
            f"(fingerprint {record.query_fingerprint[:12]}…, this query "
            f"{common['query_fingerprint'][:12]}…); use a new release_id for a new query"
        )
    df = budget.load_release(release_id, spark=spark)
    if df is None:
        raise LedgerTampered(
            f"run(): the stored rows of threshold release {release_id!r} are missing; "
            "they are not replayed"
        )
    digest = _check_stored(release_id, df, record.content_hash, audit, spark)
    report = GuardReport(
        **common,
        groups_released=int(df.count()),
        groups_suppressed=None,
        replayed=True,
        seconds=time.monotonic() - started,
    )
    return seal(GuardedResult(df, report)), digest


def _check_stored(
    release_id: str,
    df: DataFrame,
    recorded: str | None,
    audit: AuditLog | None,
    spark: SparkSession,
) -> str:
    """The content hash of a stored release's rows, refused unless it is the one the
    charging run recorded in the ledger (and, with ``audit``, in its ``guarded_run`` entry)."""
    from cleanjoin.audit import content_hash

    where = f"run(): the stored rows of release_id {release_id!r}"
    if recorded is None:
        raise LedgerTampered(
            f"{where} were never recorded by a guarded run (no content hash in the ledger): "
            "rows written into the ledger's release storage by hand are not replayed"
        )
    digest = content_hash(df)
    if digest != recorded:
        raise LedgerTampered(
            f"{where} changed since the run that released them (content hash "
            f"{digest[:12]}…, recorded {recorded[:12]}…); they are not replayed"
        )
    if audit is not None:
        originals = [
            e for e in audit.entries(spark=spark)
            if e.action == "guarded_run" and e.parameters.get("release_id") == release_id
            and not e.parameters.get("replayed")
        ]
        if originals and any(
            (e.output or {}).get("content_hash") != recorded for e in originals
        ):
            raise LedgerTampered(
                f"{where} do not have the content hash that the audit log recorded for the "
                "run that released them; they are not replayed"
            )
    return digest
