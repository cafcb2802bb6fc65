"""The Spark side: per group, exact aggregates of contribution-bounded, clamped rows.

Everything here runs in the JVM (no Python UDF); the result still holds unprotected
values and is only read by :mod:`cleanjoin.dp._noise`.
"""

from __future__ import annotations

import functools
import operator
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, cast

from cleanjoin._spark import functions_for, window_for
from cleanjoin._sql import quote_identifier
from cleanjoin._typing import Column, DataFrame
from cleanjoin.agg import AggKind
from cleanjoin.dp._params import DPParams
from cleanjoin.dp._plan import _P, _UNITS, _VALUE_KINDS, _Plan
from cleanjoin.errors import InternalError, InvalidArgumentError, SchemaMismatchError


def _public_frame(joined: DataFrame, group_by: Sequence[str], public: Any) -> DataFrame:
    """``public_groups`` as a DataFrame with the group columns typed like ``joined``."""
    from pyspark.sql.types import StructType

    fn = functions_for(joined)
    fields = [joined.schema[g] for g in group_by]
    if hasattr(public, "columns") and hasattr(public, "schema"):
        missing = [g for g in group_by if g not in public.columns]
        if missing:
            raise SchemaMismatchError(
                f"dp_aggregate(): 'public_groups' lacks the group column(s) {missing}"
            )
        return cast("DataFrame", public.select(
            *[_col(fn, f.name).cast(f.dataType).alias(f.name) for f in fields]
        ).dropDuplicates())
    if isinstance(public, (str, bytes)) or not isinstance(public, Sequence):
        raise InvalidArgumentError(
            "dp_aggregate(): 'public_groups' must be a DataFrame or a list of dicts or tuples"
        )
    rows: list[tuple[Any, ...]] = []
    for item in public:
        if isinstance(item, Mapping):
            if set(item) != set(group_by):
                raise SchemaMismatchError(
                    f"dp_aggregate(): each public group must have exactly the keys "
                    f"{list(group_by)}, got {sorted(map(str, item))}"
                )
            rows.append(tuple(item[g] for g in group_by))
        elif isinstance(item, tuple | list):
            if len(item) != len(group_by):
                raise SchemaMismatchError(
                    f"dp_aggregate(): each public group must have {len(group_by)} value(s), "
                    f"got {len(item)}"
                )
            rows.append(tuple(item))
        elif len(group_by) == 1:
            rows.append((item,))
        else:
            raise InvalidArgumentError(
                "dp_aggregate(): 'public_groups' items must be dicts or tuples"
            )
    spark = joined.sparkSession
    try:
        frame = spark.createDataFrame(rows, schema=StructType(fields))
    except (TypeError, ValueError) as exc:
        raise SchemaMismatchError(
            "dp_aggregate(): 'public_groups' values do not match the types of the group columns "
            f"({type(exc).__name__})"
        ) from None
    return frame.dropDuplicates()


def _col(fn: Any, name: str) -> Column:
    return cast("Column", fn.col(quote_identifier(name)))


def _bounded_group_table(
    joined: DataFrame,
    *,
    unit: str,
    group_by: Sequence[str],
    plan: _Plan,
    params: DPParams,
    public: DataFrame | None,
    salt: int | None = None,
) -> DataFrame:
    """Per group, the exact aggregates of contribution-bounded, clamped rows (no noise).

    Columns: the group columns, ``__cj_units`` (privacy units), and per aggregate ``i``
    its quantities ``__cj_<i>_<quantity>``. Internal: it holds unprotected values.
    """
    fn = functions_for(joined)
    win = window_for(joined)
    salt = secrets.randbits(62) if salt is None else salt
    g_cols = [_col(fn, g) for g in group_by]
    unit_col = _col(fn, unit)
    value_names = sorted(
        {ap.agg.column for ap in plan.aggs if ap.agg.kind in _VALUE_KINDS and ap.agg.column}
    )
    keep = [unit, *group_by, *[v for v in value_names if v not in (unit, *group_by)]]
    rows = joined.select(*[_col(fn, c) for c in keep]).where(unit_col.isNotNull())

    pg = [f"{_P}pg{i}" for i in range(len(group_by))]
    if public is not None and group_by:
        pub = public.select(*[_col(fn, g).alias(p) for g, p in zip(group_by, pg, strict=True)])
        rows = rows.join(pub, on=_null_safe(fn, group_by, pg), how="left_semi")

    # Contribution bounding, pipeline_dp's SamplingCrossAndPerPartitionContributionBounder:
    # a salted hash (fresh per call) picks the rows kept per (unit, group) and the groups
    # kept per unit. Deterministic within the call, so a re-evaluated plan agrees.
    row_hash = fn.xxhash64(fn.lit(salt), unit_col, *g_cols, *[_col(fn, v) for v in value_names])
    group_hash = fn.xxhash64(fn.lit(salt + 1), unit_col, *g_cols)
    gh, rh = fn.col(f"{_P}gh"), fn.col(f"{_P}rh")
    # One shuffle (by unit) and ONE sort, by (unit, group hash, group, row hash), serve
    # both windows: each window's partition + order keys are a prefix of that sort, so
    # Spark adds no exchange or sort for them (measured, 1M rows: ~0.7 s less than
    # letting each window sort).
    ordered = (
        rows.withColumn(f"{_P}gh", group_hash)
        .withColumn(f"{_P}rh", row_hash)
        .repartition(unit_col)
        .sortWithinPartitions(unit_col, gh, *g_cols, rh)
    )
    by_unit = win.partitionBy(unit_col).orderBy(gh, *g_cols)
    by_unit_group = win.partitionBy(unit_col, gh, *g_cols).orderBy(rh)
    bounded = (
        ordered.withColumn(f"{_P}gr", fn.dense_rank().over(by_unit))
        .withColumn(f"{_P}rn", fn.row_number().over(by_unit_group))
        .where(
            (fn.col(f"{_P}rn") <= params.max_contributions_per_partition)
            & (fn.col(f"{_P}gr") <= params.max_partitions_contributed)
        )
    )

    # Every quantity is a sum over kept rows (clamping is per row), so the per-group
    # table aggregates the kept rows directly: no (unit, group) aggregation over the long
    # unit keys. A unit counts once per group: on its first kept row (rn = 1).
    first = fn.col(f"{_P}rn") == 1
    per_group_aggs = [fn.sum(fn.when(first, 1).otherwise(0)).cast("long").alias(_UNITS)]
    outputs: list[str] = []
    for ap in plan.aggs:
        a = ap.agg
        for m in ap.mechs:
            name = ap.column(m.quantity)
            if a.kind is AggKind.COUNT:
                expr = fn.count(fn.lit(1))
            elif a.kind is AggKind.COUNT_DISTINCT:
                expr = fn.sum(fn.when(first, 1).otherwise(0)).cast("long")  # privacy units
            else:
                lo, hi = ap.bounds
                mid = lo + (hi - lo) / 2
                half = (hi - lo) / 2
                x = _col(fn, a.column or "")
                clamped = fn.when(x.isNull(), fn.lit(None)).otherwise(
                    fn.least(fn.greatest(x.cast("double"), fn.lit(lo)), fn.lit(hi))
                )
                if m.quantity == "count":
                    expr = fn.count(x)
                elif m.quantity == "sum":
                    expr = fn.sum(clamped)
                elif m.quantity == "normalized_sum":
                    expr = fn.sum(clamped - fn.lit(mid))
                else:
                    expr = fn.sum(fn.pow(clamped - fn.lit(mid), 2) - fn.lit(half * half / 2))
            per_group_aggs.append(expr.alias(name))
            outputs.append(name)
    per_group = bounded.groupBy(*g_cols).agg(*per_group_aggs)

    if public is not None and group_by:
        pub = public.select(*[_col(fn, g).alias(p) for g, p in zip(group_by, pg, strict=True)])
        per_group = pub.join(per_group, on=_null_safe(fn, group_by, pg), how="left").select(
            *[fn.col(p).alias(g) for g, p in zip(group_by, pg, strict=True)],
            *[fn.col(c) for c in (_UNITS, *outputs)],
        )
    # Empty public groups (and the one global group of an empty input) count zero.
    return per_group.select(
        *g_cols,
        *[fn.coalesce(fn.col(c), fn.lit(0)).alias(c) for c in (_UNITS, *outputs)],
    )


def _null_safe(fn: Any, group_by: Sequence[str], pg: Sequence[str]) -> Column:
    conditions = [_col(fn, g).eqNullSafe(fn.col(p)) for g, p in zip(group_by, pg, strict=True)]
    if not conditions:
        raise InternalError("dp: public groups joined on no group column")
    return functools.reduce(operator.and_, conditions)
