"""The Python side: private partition selection and noise, in one ``mapInPandas``.

The executor function carries only picklable state and builds pipeline_dp's mechanisms
itself; post-processing of the noisy quantities costs no privacy.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

from cleanjoin._typing import DataFrame
from cleanjoin.agg import AggKind
from cleanjoin.dp._plan import _UNITS, Quantity, _mechanism, _Plan, _selector


def _noise_function(
    plan: _Plan, group_by: Sequence[str]
) -> Any:
    """The mapInPandas function: partition selection, then noise. Only picklable state."""
    aggs = [
        (ap.agg.output_name, ap.agg.kind, ap.agg.bounds,
         [(m, ap.column(m.quantity)) for m in ap.mechs])
        for ap in plan.aggs
    ]
    selection = plan.selection
    groups = list(group_by)

    def release(batches: Iterator[Any]) -> Iterator[Any]:
        import pandas as pd

        selector = _selector(selection) if selection is not None else None
        mechanisms: dict[tuple[str, str], Any] = {}
        for name, _kind, _bounds, mechs in aggs:
            for m, _colname in mechs:
                mechanisms[(name, m.quantity)] = _mechanism(m)

        for pdf in batches:
            if selector is not None:
                keep = [bool(selector.should_keep(int(n))) for n in pdf[_UNITS]]
                pdf = pdf[keep]
            out = pd.DataFrame({g: pdf[g].to_numpy() for g in groups})
            for name, kind, bounds, mechs in aggs:
                noisy: dict[Quantity, list[float]] = {}
                for m, colname in mechs:
                    mech = mechanisms[(name, m.quantity)]
                    noisy[m.quantity] = [float(mech.add_noise(float(v))) for v in pdf[colname]]
                out[name] = _finish(kind, bounds, noisy, len(pdf))
            yield out

    return release


def _finish(
    kind: AggKind, bounds: tuple[float, float] | None, noisy: dict[Quantity, list[float]], n: int
) -> list[Any]:
    """Post-processing of noisy quantities into the released values (no privacy cost)."""
    if kind in (AggKind.COUNT, AggKind.COUNT_DISTINCT):
        key: Quantity = "count" if kind is AggKind.COUNT else "privacy_unit_count"
        return [max(0, round(v)) for v in noisy[key]]
    lo, hi = bounds if bounds is not None else (0.0, 0.0)
    if kind is AggKind.SUM:
        return noisy.get("sum", [0.0] * n)
    mid = lo + (hi - lo) / 2
    half = (hi - lo) / 2
    if "normalized_sum" not in noisy:  # zero-width bounds: exact
        return [lo if kind is AggKind.MEAN else 0.0] * n
    out: list[Any] = []
    for i in range(n):
        denominator = max(1.0, noisy["count"][i])  # pipeline_dp's MeanMechanism
        mean_n = noisy["normalized_sum"][i] / denominator
        if kind is AggKind.MEAN:
            out.append(min(hi, max(lo, mid + mean_n)))
            continue
        mean_sq = half * half / 2 + noisy["normalized_sum_of_squares"][i] / denominator
        var = min(half * half, max(0.0, mean_sq - mean_n * mean_n))
        out.append(var if kind is AggKind.VARIANCE else math.sqrt(var))
    return out


def _apply_noise(table: DataFrame, plan: _Plan, group_by: Sequence[str]) -> DataFrame:
    from pyspark.sql.types import DoubleType, LongType, StructField, StructType

    fields = [table.schema[g] for g in group_by]
    for ap in plan.aggs:
        dtype = LongType() if ap.agg.kind in (AggKind.COUNT, AggKind.COUNT_DISTINCT) else DoubleType()
        fields.append(StructField(ap.agg.output_name, dtype, False))
    # One task: the per-group table is small, and each Python worker pays the import of
    # pipeline_dp once.
    return table.coalesce(1).mapInPandas(_noise_function(plan, group_by), StructType(fields))
