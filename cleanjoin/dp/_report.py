"""What a differentially private release did: :class:`DPReport` and its parts.

Plain frozen result types; they import nothing else of :mod:`cleanjoin.dp`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cleanjoin._serialize import report_dict
from cleanjoin.errors import InvalidArgumentError


@dataclass(frozen=True)
class MechanismReport:
    """One noisy quantity computed for an aggregate.

    Attributes:
        quantity: ``"count"`` (rows, or non-null values for mean/variance),
            ``"privacy_unit_count"``, ``"sum"`` (clamped), ``"normalized_sum"``
            (``sum(x - midpoint)``) or ``"normalized_sum_of_squares"``
            (``sum((x - midpoint)² - half_range²/2)``).
        epsilon: ε given to this mechanism by pipeline_dp's accountant.
        delta: δ given to this mechanism (0 for Laplace).
        noise: ``"laplace"`` or ``"gaussian"``.
        stddev: standard deviation of the noise added (``mechanism.std``).
        sensitivity: L1 (Laplace) or L2 (Gaussian) sensitivity used.
    """

    quantity: str
    epsilon: float
    delta: float
    noise: str
    stddev: float
    sensitivity: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return report_dict(self)


@dataclass(frozen=True)
class AggregateNoise:
    """What was done to release one aggregate.

    Attributes:
        name: output column.
        kind: ``count``, ``count_distinct``, ``sum``, ``mean``, ``variance`` or ``stddev``.
        column: input column (``None`` for ``count``).
        bounds: clamping bounds used (``None`` for counts).
        epsilon: ε spent on this aggregate (sum over its mechanisms).
        delta: δ spent on this aggregate.
        noise: noise kind.
        stddev: standard deviation of the noise on the *primary* quantity: the released
            value itself for ``count``/``count_distinct``/``sum``; the normalized sum for
            ``mean`` (the mean's error is about ``stddev / count``); the normalized sum
            of squares for ``variance``/``stddev``. 0 when no noise is needed (bounds of
            zero width). Every quantity is listed in ``mechanisms``.
        mechanisms: each noisy quantity, its budget and its noise.
    """

    name: str
    kind: str
    column: str | None
    bounds: tuple[float, float] | None
    epsilon: float
    delta: float
    noise: str
    stddev: float
    mechanisms: tuple[MechanismReport, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return report_dict(self)


@dataclass(frozen=True)
class PartitionSelectionReport:
    """Private partition selection used (absent when groups were public).

    Attributes:
        strategy: pipeline_dp strategy name.
        epsilon: ε given to partition selection.
        delta: δ given to partition selection.
        max_partitions_contributed: the L0 bound the strategy was built with.
        pre_threshold: pipeline_dp's ``pre_threshold`` (= ``min_cohort``): groups with
            fewer (bounded) privacy units are never released.
    """

    strategy: str
    epsilon: float
    delta: float
    max_partitions_contributed: int
    pre_threshold: int | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return report_dict(self)


@dataclass(frozen=True)
class DPReport:
    """What a differentially private release did. Never says which groups were dropped.

    Attributes:
        epsilon: total ε of the release (``DPParams.epsilon``).
        delta: total δ of the release (``DPParams.delta``).
        noise: noise kind.
        max_partitions_contributed: contribution bound across groups.
        max_contributions_per_partition: contribution bound within a group.
        aggregates: per aggregate: ε, δ, noise, standard deviation, bounds.
        partition_selection: the private selection used, or ``None`` with public groups.
        public_groups: whether the groups were public (all public groups are released).
        groups_released: number of released groups.
    """

    epsilon: float
    delta: float
    noise: str
    max_partitions_contributed: int
    max_contributions_per_partition: int
    aggregates: tuple[AggregateNoise, ...]
    partition_selection: PartitionSelectionReport | None
    public_groups: bool
    groups_released: int
    engine: str = field(default="cleanjoin.dp (pipeline_dp mechanisms, PyDP secure noise)")

    def aggregate(self, name: str) -> AggregateNoise:
        """The report of the aggregate whose output column is ``name``."""
        for item in self.aggregates:
            if item.name == name:
                return item
        raise InvalidArgumentError(f"DPReport.aggregate(): no aggregate named {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return report_dict(self)

    def __getitem__(self, key: str) -> Any:
        """``report[key]`` is ``report.to_dict()[key]``.

        ``GuardReport.dp`` used to be that dict; code written against it keeps working.

        Example:
            >>> from cleanjoin.dp import DPReport
            >>> r = DPReport(0.6, 0.0, "laplace", 1, 1, (), None, True, 0)
            >>> r["epsilon"], r.epsilon
            (0.6, 0.6)
        """
        return self.to_dict()[key]

    def __str__(self) -> str:
        lines = [
            f"Differentially private release: ε={self.epsilon:g}, δ={self.delta:g}, "
            f"{self.noise} noise",
            f"  contribution bounds: {self.max_partitions_contributed} group(s) per unit, "
            f"{self.max_contributions_per_partition} row(s) per group",
        ]
        for a in self.aggregates:
            bounds = f", bounds={list(a.bounds)}" if a.bounds is not None else ""
            lines.append(
                f"  {a.name} ({a.kind}{bounds}): ε={a.epsilon:.4g}, δ={a.delta:.4g}, "
                f"noise stddev={a.stddev:.4g}"
            )
        if self.partition_selection is not None:
            ps = self.partition_selection
            lines.append(
                f"  partition selection: {ps.strategy}, ε={ps.epsilon:.4g}, δ={ps.delta:.4g}, "
                f"pre_threshold={ps.pre_threshold}"
            )
        else:
            lines.append("  groups: public (no partition selection)")
        lines.append(f"  groups released: {self.groups_released}")
        return "\n".join(lines)
