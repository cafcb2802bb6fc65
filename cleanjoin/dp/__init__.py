"""Differential privacy on DataFrames, with pipeline_dp's mechanisms.

:func:`dp_aggregate` releases grouped aggregates of already-joined rows with the
guarantees of pipeline_dp's ``DPEngine.aggregate`` — contribution bounding per privacy
unit, private partition selection (or public groups), calibrated Laplace or Gaussian
noise, the budget split by pipeline_dp's ``NaiveBudgetAccountant`` — but DataFrame
native, so it runs on classic Spark and on Spark Connect alike:

1. **Contribution bounding** with window functions: each privacy unit keeps at most
   ``max_contributions_per_partition`` rows in a group and at most
   ``max_partitions_contributed`` groups, chosen by a salted hash that is fresh per
   call; values are clamped to each aggregate's ``bounds``.
2. **Aggregation** in the JVM: privacy units, rows, clamped sums, and for ``mean`` and
   ``variance`` pipeline_dp's *normalized* sums (``sum(x - midpoint)``).
3. **One** ``mapInPandas`` step over the small per-group table: private partition
   selection (pipeline_dp's ``create_partition_selection_strategy`` with ``min_cohort``
   as ``pre_threshold``) and noise from ``pipeline_dp.dp_computations`` mechanisms
   (secure noise from PyDP). Mechanisms are built inside the executor function.

The noisy rows are materialized once (collected and turned back into a local
DataFrame), so reading the result twice never draws fresh noise.

Example:
    >>> from cleanjoin.dp import DPParams
    >>> p = DPParams(epsilon=1.0, delta=1e-6, max_partitions_contributed=3, noise="Gaussian")
    >>> (p.noise.value, p.partition_selection.value)
    ('gaussian', 'truncated_geometric')
    >>> DPParams(epsilon=1.0, noise="foo")
    Traceback (most recent call last):
    ...
    cleanjoin.errors.InvalidArgumentError: Unknown mechanism "foo". Available options are "laplace", "gaussian".
"""

from __future__ import annotations

from cleanjoin.dp._aggregate import dp_aggregate
from cleanjoin.dp._params import DPParams, NoiseKind, PartitionSelection
from cleanjoin.dp._report import (
    AggregateNoise,
    DPReport,
    MechanismReport,
    PartitionSelectionReport,
)

__all__ = [
    "AggregateNoise",
    "DPParams",
    "DPReport",
    "MechanismReport",
    "NoiseKind",
    "PartitionSelection",
    "PartitionSelectionReport",
    "dp_aggregate",
]
