"""DP parameters: the noise kind, the partition selection strategy, :class:`DPParams`.

Choices are enums that also accept string aliases, validated once when the parameters
are built.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from cleanjoin._choice import parse_choice
from cleanjoin._compat import StrEnum, require_pipeline_dp
from cleanjoin.errors import ConfigurationError, InvalidArgumentError


class NoiseKind(StrEnum):
    """The noise distribution. ``NoiseKind.parse("Gaussian")`` accepts string aliases."""

    LAPLACE = "laplace"
    GAUSSIAN = "gaussian"

    @classmethod
    def parse(cls, value: NoiseKind | str) -> NoiseKind:
        """Accept a ``NoiseKind`` or an alias (case-insensitive; ``"normal"`` = Gaussian)."""
        aliases = {"laplacian": cls.LAPLACE, "normal": cls.GAUSSIAN, "gauss": cls.GAUSSIAN}
        return parse_choice(cls, value, what="mechanism", text=str(value).strip().lower(),
                            aliases=aliases)


class PartitionSelection(StrEnum):
    """pipeline_dp's private partition selection strategies.

    ``"truncated_geometric"`` (pipeline_dp's default, the optimal one for one unit per
    group), ``"laplace_thresholding"`` and ``"gaussian_thresholding"``; the aliases
    ``"geometric"``, ``"laplace"`` and ``"gaussian"`` are accepted.
    """

    TRUNCATED_GEOMETRIC = "truncated_geometric"
    LAPLACE_THRESHOLDING = "laplace_thresholding"
    GAUSSIAN_THRESHOLDING = "gaussian_thresholding"

    @classmethod
    def parse(cls, value: PartitionSelection | str) -> PartitionSelection:
        """Accept a ``PartitionSelection``, an alias, or pipeline_dp's enum value text."""
        text = str(value).strip().lower().replace(" ", "_").replace("-", "_")
        aliases = {
            "geometric": cls.TRUNCATED_GEOMETRIC,
            "laplace": cls.LAPLACE_THRESHOLDING,
            "gaussian": cls.GAUSSIAN_THRESHOLDING,
        }
        return parse_choice(cls, value, what="partition selection", text=text, aliases=aliases)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class DPParams:
    """Differential-privacy parameters of one release.

    Attributes:
        epsilon: total ε of the release (finite, > 0), split by pipeline_dp's
            ``NaiveBudgetAccountant`` across every noisy quantity and partition selection.
        delta: total δ in ``[0, 1)``. Needed (> 0) by Gaussian noise and by private
            partition selection (that is, whenever ``public_groups`` is not given).
        max_partitions_contributed: groups one privacy unit may contribute to (≥ 1).
        max_contributions_per_partition: rows one privacy unit may contribute to a
            group (≥ 1).
        noise: ``"laplace"`` or ``"gaussian"`` (a :class:`NoiseKind`; aliases accepted).
        partition_selection: pipeline_dp strategy used when groups are not public
            (a :class:`PartitionSelection`; default ``"truncated_geometric"``).

    Example:
        >>> DPParams(epsilon=1.0, noise="gaussian")
        Traceback (most recent call last):
        ...
        cleanjoin.errors.ConfigurationError: DPParams: Gaussian noise needs 'delta' > 0, got delta=0.0
    """

    epsilon: float
    delta: float = 0.0
    max_partitions_contributed: int = 1
    max_contributions_per_partition: int = 1
    noise: NoiseKind | str = NoiseKind.LAPLACE
    partition_selection: PartitionSelection | str = PartitionSelection.TRUNCATED_GEOMETRIC

    def __post_init__(self) -> None:
        require_pipeline_dp()
        eps = self.epsilon
        if not _is_real(eps) or not math.isfinite(eps) or eps <= 0:
            raise InvalidArgumentError(f"DPParams: 'epsilon' must be a finite number > 0, got {eps!r}")
        delta = self.delta
        if not _is_real(delta) or not math.isfinite(delta) or not 0 <= delta < 1:
            raise InvalidArgumentError(f"DPParams: 'delta' must be a number in [0, 1), got {delta!r}")
        for name in ("max_partitions_contributed", "max_contributions_per_partition"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise InvalidArgumentError(f"DPParams: {name!r} must be an integer >= 1, got {value!r}")
            object.__setattr__(self, name, int(value))
        object.__setattr__(self, "epsilon", float(eps))
        object.__setattr__(self, "delta", float(delta))
        object.__setattr__(self, "noise", NoiseKind.parse(self.noise))
        object.__setattr__(
            self, "partition_selection", PartitionSelection.parse(self.partition_selection)
        )
        if self.noise is NoiseKind.GAUSSIAN and self.delta == 0:
            raise ConfigurationError(
                f"DPParams: Gaussian noise needs 'delta' > 0, got delta={self.delta}"
            )

    @property
    def noise_kind(self) -> NoiseKind:
        """``noise`` as a :class:`NoiseKind`."""
        return NoiseKind.parse(self.noise)

    @property
    def selection(self) -> PartitionSelection:
        """``partition_selection`` as a :class:`PartitionSelection`."""
        return PartitionSelection.parse(self.partition_selection)

    def fingerprint_dict(self) -> dict[str, Any]:
        """The parameters as a JSON-friendly dict (for query fingerprints and audit entries).

        Example:
            >>> DPParams(epsilon=0.5, delta=1e-6).fingerprint_dict()["noise"]
            'laplace'
        """
        return {
            "epsilon": self.epsilon,
            "delta": self.delta,
            "max_partitions_contributed": self.max_partitions_contributed,
            "max_contributions_per_partition": self.max_contributions_per_partition,
            "noise": self.noise_kind.value,
            "partition_selection": self.selection.value,
        }
