"""Guarded join-and-aggregate: the safe clean-room query is the only one you can write.

``GuardedJoin`` is a staged, immutable builder (like Tumult Analytics' ``QueryBuilder``
and Delta's ``DeltaMergeBuilder``); every step returns a new object of the next stage's
type, so a query without a grouping, aggregates or a minimum cohort cannot be run:

=====================  ====================================================  =============
stage                  methods                                               next stage
=====================  ====================================================  =============
``GuardedJoin``        ``group_by(*columns, grouping_sets=None)``            ``GroupedJoin``
``GroupedJoin``        ``agg(*aggregates)``; ``rollup()``                    ``AggregatedJoin``
``AggregatedJoin``     ``min_cohort(n)``; ``privacy_unit(c)``, ``with_dp()``  ``ReadyJoin``
``ReadyJoin``          ``run()``; ``min_cohort``, ``privacy_unit``, ``with_dp``  ``GuardedResult``
=====================  ====================================================  =============

Rules enforced:

* Inner join on a token column (``on="card_number_token"`` or a pair ``(left, right)``);
  null keys never join. The join column and every ``*_token`` column never appear in
  the output and cannot be grouped on or aggregated (:class:`~cleanjoin.errors.NotAllowedError`).
* A non-key column present on both sides is ambiguous:
  :class:`~cleanjoin.errors.SchemaMismatchError` asks to rename it on one side.
* Only :mod:`cleanjoin.agg` aggregates (count, count_distinct, sum, mean, variance,
  stddev with optional clamping bounds); raw Columns and SQL strings are refused.
* **The minimum cohort counts distinct privacy units** (default: the join token; see
  :meth:`ReadyJoin.privacy_unit`), not rows. Smaller groups are removed; the report
  says how many, never which.
* Join explosion guard: a join key with more than ``max_rows_per_key`` rows on one side
  stops the run with :class:`~cleanjoin.errors.JoinExplosionError` naming the side and
  the limit (never the key). It runs inside the query itself and never lets the join
  multiply rows: the right side's rows per key are counted before the join (a window on
  the key, in the right side's own computation); while every right key is unique, the
  left side's bound is observed in the query's own scan and confirmed exactly only when
  it exceeds the limit; a repeated right key re-runs the query with both sides checked
  before the join (the algorithm, with its measurements: :mod:`cleanjoin.guard._explosion`).
* Consent policies (:class:`cleanjoin.consent.ConsentPolicy`) are applied to their side
  before the join; revoked tokens (:func:`cleanjoin.revocation.load_revocations`) are
  anti-joined out of both sides. The report counts the rows each excluded, measured
  with Spark observations in the same job.
* Margins (``group_by(a, b).rollup()``, ``group_by(a, b, grouping_sets=[...])``): one
  table over several grouping sets with the marker column ``grouping_id``; every cell of
  every set obeys the minimum cohort, and cells are suppressed as well so that no
  suppressed cell can be recomputed from released cells and margins
  (``docs/disclosure-margins.md``); not with ``with_dp`` yet.
* ``with_dp(...)`` releases through :func:`cleanjoin.dp.dp_aggregate`; with a
  :class:`cleanjoin.budget.BudgetLedger` the budget is checked before any Spark job and
  charged before the DP computation, and a known ``release_id`` replays the stored
  release without charge or compute.

The released result is computed by one aggregation job (distinct units and every
aggregate per group), then materialized once (``localCheckpoint`` on classic Spark,
collect + ``createDataFrame`` on Spark Connect, where observations are not filled by a
checkpoint), so reviews and writes never recompute the join.

Example:
    >>> from cleanjoin import agg
    >>> from cleanjoin.guard import GuardedJoin
    >>> result = (
    ...     GuardedJoin(provider_df, consumer_df, on="card_number_token")  # doctest: +SKIP
    ...     .group_by("merchant_category_code", "account_age_band")  # doctest: +SKIP
    ...     .agg(agg.count().alias("record_count"),  # doctest: +SKIP
    ...          agg.mean("confirmed_fraud_flag", bounds=(0, 1)).alias("outcome_rate"))  # doctest: +SKIP
    ...     .min_cohort(100)  # doctest: +SKIP
    ...     .run()  # doctest: +SKIP
    ... )  # doctest: +SKIP
    >>> print(result.report)  # doctest: +SKIP
"""

from __future__ import annotations

from cleanjoin.guard._builder import AggregatedJoin, GroupedJoin, GuardedJoin, ReadyJoin
from cleanjoin.guard._query import DEFAULT_MAX_ROWS_PER_KEY, QUERY_FORMAT
from cleanjoin.guard._result import GuardedResult, GuardReport, ReplayedRelease

__all__ = [
    "DEFAULT_MAX_ROWS_PER_KEY",
    "QUERY_FORMAT",
    "AggregatedJoin",
    "GroupedJoin",
    "GuardReport",
    "GuardedJoin",
    "GuardedResult",
    "ReadyJoin",
    "ReplayedRelease",
]
