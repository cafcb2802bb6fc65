"""``dp_aggregate``: validate, plan, bound, add noise, materialize, report."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from cleanjoin._typing import DataFrame
from cleanjoin.agg import AggKind, Aggregate
from cleanjoin.dp._noise import _apply_noise
from cleanjoin.dp._params import DPParams
from cleanjoin.dp._plan import Quantity, _mechanism, _Plan, _plan
from cleanjoin.dp._report import AggregateNoise, DPReport, MechanismReport, PartitionSelectionReport
from cleanjoin.dp._table import _bounded_group_table, _public_frame
from cleanjoin.dp._validate import validate_dp_query


def dp_aggregate(
    joined: DataFrame,
    *,
    unit: str,
    group_by: Sequence[str],
    aggregates: Sequence[Aggregate],
    params: DPParams,
    min_cohort: int,
    public_groups: DataFrame | Sequence[Mapping[str, Any]] | Sequence[tuple[Any, ...]] | None = None,
) -> tuple[DataFrame, DPReport]:
    """Release grouped aggregates of ``joined`` with (ε, δ)-differential privacy.

    Args:
        joined: joined, consent- and revocation-filtered rows with the ``unit`` column.
        unit: the privacy-unit column (one person); rows with a null unit are ignored.
        group_by: group columns.
        aggregates: from :mod:`cleanjoin.agg`. ``sum``/``mean``/``variance``/``stddev``
            need ``bounds``; ``count_distinct`` only of the unit column.
        params: the DP parameters.
        min_cohort: pipeline_dp's ``pre_threshold``: with private partition selection, a
            group with fewer (bounded) privacy units is never released. Public groups
            are all released (noisy values; no threshold applies to them).
        public_groups: the groups to release, as a DataFrame with the group columns or
            a list of dicts/tuples. Skips partition selection; groups absent from the
            data are released with noisy zero counts; other groups are dropped.

    Returns:
        The released rows (group columns, then each aggregate's ``output_name``; counts
        are non-negative integers, means clamped to their bounds) materialized once, and
        a :class:`DPReport`.

    Example:
        >>> from cleanjoin import agg  # doctest: +SKIP
        >>> df, report = dp_aggregate(joined, unit="card_token", group_by=["mcc"],  # doctest: +SKIP
        ...     aggregates=[agg.count().alias("n")], params=DPParams(epsilon=1.0, delta=1e-6),  # doctest: +SKIP
        ...     min_cohort=20)  # doctest: +SKIP
    """
    validate_dp_query(joined, unit=unit, group_by=group_by, aggregates=aggregates,
                      params=params, min_cohort=min_cohort, public_groups=public_groups)
    public = None
    if public_groups is not None and group_by:
        public = _public_frame(joined, group_by, public_groups)
    # Without group columns the one global group is public by construction.
    is_public = public_groups is not None or not group_by
    plan = _plan(aggregates, params, private_selection=not is_public, min_cohort=min_cohort)
    table = _bounded_group_table(joined, unit=unit, group_by=group_by, plan=plan,
                                 params=params, public=public)
    released = _apply_noise(table, plan, group_by)
    rows = released.collect()
    spark = joined.sparkSession
    result = spark.createDataFrame(rows, schema=released.schema)
    return result, _build_report(plan, params, public=is_public, released=len(rows))


def _build_report(plan: _Plan, params: DPParams, *, public: bool, released: int) -> DPReport:
    items = []
    primary: dict[AggKind, Quantity] = {
        AggKind.COUNT: "count",
        AggKind.COUNT_DISTINCT: "privacy_unit_count",
        AggKind.SUM: "sum",
        AggKind.MEAN: "normalized_sum",
        AggKind.VARIANCE: "normalized_sum_of_squares",
        AggKind.STDDEV: "normalized_sum_of_squares",
    }
    for ap in plan.aggs:
        mreports = []
        for m in ap.mechs:
            mech = _mechanism(m)
            mreports.append(
                MechanismReport(m.quantity, m.epsilon, m.delta, m.noise.value, float(mech.std),
                                float(mech.sensitivity))
            )
        main = next((r for r in mreports if r.quantity == primary[ap.agg.kind]), None)
        items.append(
            AggregateNoise(
                name=ap.agg.output_name,
                kind=ap.agg.kind.value,
                column=ap.agg.column,
                bounds=ap.agg.bounds,
                epsilon=math.fsum(r.epsilon for r in mreports),
                delta=math.fsum(r.delta for r in mreports),
                noise=params.noise_kind.value,
                stddev=main.stddev if main is not None else 0.0,
                mechanisms=tuple(mreports),
            )
        )
    sel = None
    if plan.selection is not None:
        s = plan.selection
        sel = PartitionSelectionReport(s.strategy.value, s.epsilon, s.delta, s.max_partitions,
                                       s.pre_threshold)
    return DPReport(
        epsilon=params.epsilon,
        delta=params.delta,
        noise=params.noise_kind.value,
        max_partitions_contributed=params.max_partitions_contributed,
        max_contributions_per_partition=params.max_contributions_per_partition,
        aggregates=tuple(items),
        partition_selection=sel,
        public_groups=public,
        groups_released=released,
    )
