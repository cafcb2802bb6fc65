"""The mechanism plan: which noisy quantities each aggregate needs, and their budget.

The split of (ε, δ) is pipeline_dp's ``NaiveBudgetAccountant``'s, as in
``DPEngine.aggregate``. The plan holds only picklable descriptions; the pipeline_dp
objects (:func:`_mechanism`, :func:`_selector`) are built from them where they are used,
on the executors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cleanjoin.agg import AggKind, Aggregate
from cleanjoin.dp._params import DPParams, NoiseKind, PartitionSelection
from cleanjoin.errors import InternalError

_P = "__cj_"  # prefix of internal column names
_UNITS = f"{_P}units"

#: A noisy quantity of an aggregate (see :class:`cleanjoin.dp.MechanismReport`).
Quantity = Literal[
    "count", "privacy_unit_count", "sum", "normalized_sum", "normalized_sum_of_squares"
]


@dataclass(frozen=True)
class _Mech:
    """A picklable description of one additive mechanism (built on the executor)."""

    quantity: Quantity
    noise: NoiseKind
    epsilon: float
    delta: float
    l0: int
    linf: float


@dataclass(frozen=True)
class _AggPlan:
    agg: Aggregate
    index: int
    mechs: tuple[_Mech, ...]

    @property
    def bounds(self) -> tuple[float, float]:
        if self.agg.bounds is None:
            raise InternalError("cleanjoin.dp: a value aggregate has no bounds after validation")
        return self.agg.bounds

    def column(self, quantity: Quantity) -> str:
        return f"{_P}{self.index}_{quantity}"


@dataclass(frozen=True)
class _Selection:
    strategy: PartitionSelection
    epsilon: float
    delta: float
    max_partitions: int
    pre_threshold: int | None


@dataclass(frozen=True)
class _Plan:
    aggs: tuple[_AggPlan, ...]
    selection: _Selection | None


_VALUE_KINDS = (AggKind.SUM, AggKind.MEAN, AggKind.VARIANCE, AggKind.STDDEV)


def _quantities(a: Aggregate, params: DPParams) -> list[tuple[Quantity, float]]:
    """The noisy quantities of one aggregate with their Linf sensitivity (per unit, per group)."""
    mcpp = params.max_contributions_per_partition
    if a.kind is AggKind.COUNT:
        return [("count", float(mcpp))]
    if a.kind is AggKind.COUNT_DISTINCT:
        return [("privacy_unit_count", 1.0)]
    lo, hi = a.bounds if a.bounds is not None else (0.0, 0.0)
    half = (hi - lo) / 2
    if a.kind is AggKind.SUM:
        top = max(abs(lo), abs(hi))
        return [("sum", top * mcpp)] if top > 0 else []
    if half == 0:
        return []  # every clamped value is the same: mean = lo, variance = 0, exactly
    out: list[tuple[Quantity, float]] = [("count", float(mcpp)), ("normalized_sum", half * mcpp)]
    if a.kind in (AggKind.VARIANCE, AggKind.STDDEV):
        out.append(("normalized_sum_of_squares", half * half / 2 * mcpp))
    return out


def _plan(
    aggregates: Sequence[Aggregate], params: DPParams, *, private_selection: bool, min_cohort: int
) -> _Plan:
    """Split (ε, δ) with pipeline_dp's NaiveBudgetAccountant, as DPEngine.aggregate does."""
    import pipeline_dp

    noise = params.noise_kind
    mtype = _mechanism_type(noise)
    accountant = pipeline_dp.NaiveBudgetAccountant(
        total_epsilon=params.epsilon, total_delta=params.delta
    )
    requested: list[tuple[int, Quantity, float, Any]] = []
    for i, a in enumerate(aggregates):
        for quantity, linf in _quantities(a, params):
            spec = accountant.request_budget(mtype, name=f"{a.output_name}:{quantity}")
            requested.append((i, quantity, linf, spec))
    selection_spec = None
    strategy = params.selection
    if private_selection:
        selection_spec = accountant.request_budget(
            _pipeline_strategy(strategy).mechanism_type, name="PartitionSelection"
        )
    if requested or selection_spec is not None:
        accountant.compute_budgets()
    plans = []
    for i, a in enumerate(aggregates):
        mechs = tuple(
            _Mech(q, noise, float(spec.eps), float(spec.delta or 0.0),
                  params.max_partitions_contributed, linf)
            for j, q, linf, spec in requested
            if j == i
        )
        plans.append(_AggPlan(a, i, mechs))
    selection = None
    if selection_spec is not None:
        selection = _Selection(
            strategy,
            float(selection_spec.eps),
            float(selection_spec.delta),
            params.max_partitions_contributed,
            min_cohort if min_cohort >= 1 else None,
        )
    return _Plan(tuple(plans), selection)


def _mechanism_type(noise: NoiseKind) -> Any:
    """pipeline_dp's ``MechanismType`` of ``noise``."""
    from pipeline_dp.aggregate_params import MechanismType

    return MechanismType.LAPLACE if noise is NoiseKind.LAPLACE else MechanismType.GAUSSIAN


def _pipeline_strategy(strategy: PartitionSelection) -> Any:
    """pipeline_dp's ``PartitionSelectionStrategy`` of ``strategy``."""
    import pipeline_dp

    pds = pipeline_dp.PartitionSelectionStrategy
    return {
        PartitionSelection.TRUNCATED_GEOMETRIC: pds.TRUNCATED_GEOMETRIC,
        PartitionSelection.LAPLACE_THRESHOLDING: pds.LAPLACE_THRESHOLDING,
        PartitionSelection.GAUSSIAN_THRESHOLDING: pds.GAUSSIAN_THRESHOLDING,
    }[strategy]


def _mechanism(m: _Mech) -> Any:
    """pipeline_dp's AdditiveMechanism for ``m`` (LaplaceMechanism or GaussianMechanism)."""
    from pipeline_dp import budget_accounting, dp_computations

    spec = budget_accounting.MechanismSpec(mechanism_type=_mechanism_type(m.noise), name=m.quantity)
    spec.set_eps_delta(m.epsilon, m.delta)
    return dp_computations.create_additive_mechanism(
        spec, dp_computations.Sensitivities(l0=m.l0, linf=m.linf)
    )


def _selector(s: _Selection) -> Any:
    from pipeline_dp import partition_selection

    return partition_selection.create_partition_selection_strategy(
        _pipeline_strategy(s.strategy), s.epsilon, s.delta, s.max_partitions, s.pre_threshold
    )
