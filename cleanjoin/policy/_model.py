"""The parts of a collaboration policy: frozen data, validated by :mod:`._load`.

Each part mirrors one section of the ``cleanjoin.policy/v1`` document (see
``docs/policy.md``); :mod:`._canonical` turns them back into the canonical dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from cleanjoin.consent import (
    DEFAULT_CONSENT_COLUMN,
    DEFAULT_CONSENT_VALUES,
    DEFAULT_REGION_COLUMN,
    ConsentPolicy,
)

if TYPE_CHECKING:
    from cleanjoin._typing import SparkSession

__all__ = [
    "BOUNDED_AGGREGATES",
    "MEASURE_AGGREGATES",
    "AgreementsPolicy",
    "BudgetPolicy",
    "DPPolicy",
    "DominancePolicy",
    "MeasurePolicy",
    "PartyConsent",
    "PartyPolicy",
]

MEASURE_AGGREGATES = ("count_distinct", "mean", "stddev", "sum", "variance")
"""The aggregates a measure may allow (``count`` needs no measure: it is always allowed)."""

BOUNDED_AGGREGATES = frozenset({"mean", "stddev", "sum", "variance"})
"""The aggregates that clamp values: a measure allowing one of them must fix ``bounds``."""


@dataclass(frozen=True)
class MeasurePolicy:
    """One column a party allows to be aggregated.

    Attributes:
        aggregates: the allowed aggregate kinds (sorted), from :data:`MEASURE_AGGREGATES`.
        bounds: the owner's clamping bounds ``(lower, upper)``; required when a bounded
            aggregate (sum, mean, variance, stddev) is allowed. A query may ask for tighter
            bounds, never wider ones; without bounds it gets these.
    """

    aggregates: tuple[str, ...]
    bounds: tuple[float, float] | None = None


@dataclass(frozen=True)
class AgreementsPolicy:
    """Partner agreements that decide a party's allowed regions (see
    :meth:`cleanjoin.consent.ConsentPolicy.from_agreements`).

    Attributes:
        table: the agreements Delta table, a path or a table name.
        region_column: the region column of the agreements table (``None``: the consent's
            ``region_column``).
        status_column: the agreement status column.
        active_value: the status that means the agreement is in force.
    """

    table: str
    region_column: str | None = None
    status_column: str = "agreement_status"
    active_value: str = "ACTIVE"


@dataclass(frozen=True)
class PartyConsent:
    """A party's consent rules: the policy form of :class:`~cleanjoin.consent.ConsentPolicy`.

    Attributes:
        consent_column: the consent flag column, or ``None`` for no flag rule.
        allowed_values: the flag values that allow sharing.
        region_column: the data-residency region column, or ``None`` for no region rule.
        allowed_regions: the regions allowed (sorted), or ``None`` when ``agreements``
            decides them (or there is no region rule).
        agreements: the partner agreements that decide the regions, or ``None``.
    """

    consent_column: str | None = DEFAULT_CONSENT_COLUMN
    allowed_values: tuple[str | int | bool, ...] = DEFAULT_CONSENT_VALUES
    region_column: str | None = None
    allowed_regions: tuple[str, ...] | None = None
    agreements: AgreementsPolicy | None = None

    def to_consent_policy(
        self, side: Literal["left", "right"], spark: SparkSession | None = None
    ) -> ConsentPolicy:
        """The :class:`~cleanjoin.consent.ConsentPolicy` for ``side`` (reads the agreements
        table, if any, with ``spark``)."""
        if self.agreements is not None:
            agreements = self.agreements
            return ConsentPolicy.from_agreements(
                agreements.table,
                side=side,
                region_column=self.region_column or DEFAULT_REGION_COLUMN,
                agreement_region_column=agreements.region_column,
                status_column=agreements.status_column,
                active_value=agreements.active_value,
                consent_column=self.consent_column,
                allowed_values=self.allowed_values,
                spark=spark,
            )
        return ConsentPolicy(
            side=side,
            consent_column=self.consent_column,
            allowed_values=self.allowed_values,
            region_column=self.region_column,
            allowed_regions=(
                None if self.allowed_regions is None else frozenset(self.allowed_regions)
            ),
        )


@dataclass(frozen=True)
class PartyPolicy:
    """What one party brings and allows.

    Attributes:
        name: the party's name (a key of ``parties``).
        table: its input Delta table, a path or a table name.
        join_column: its token column to join on.
        dimensions: the columns a query may group on (sorted).
        measures: the columns a query may aggregate, each with its rules.
        consent: its consent rules, or ``None``.
        revoked: its revocation list (a Delta table, path or name), or ``None``.
        person_column: the column that identifies one person in its table, or ``None``.
    """

    name: str
    table: str
    join_column: str
    dimensions: tuple[str, ...] = ()
    measures: Mapping[str, MeasurePolicy] = field(default_factory=dict)
    consent: PartyConsent | None = None
    revoked: str | None = None
    person_column: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "measures", MappingProxyType(dict(self.measures)))


@dataclass(frozen=True)
class DPPolicy:
    """The differential-privacy rules.

    Attributes:
        required: every release must use DP (``with_dp``).
        max_epsilon: the largest ε of one release.
        max_delta: the largest δ of one release.
        public_groups: the only public groups a query may name (each a mapping of group
            column to value); empty: none.
    """

    required: bool = False
    max_epsilon: float = 1.0
    max_delta: float = 1e-6
    public_groups: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        groups = tuple(MappingProxyType(dict(g)) for g in self.public_groups)
        object.__setattr__(self, "public_groups", groups)


@dataclass(frozen=True)
class BudgetPolicy:
    """The collaboration's privacy budget.

    Attributes:
        ledger: the budget ledger's Delta table, a path or a table name.
        total_epsilon: the total ε of the collaboration.
        total_delta: the total δ of the collaboration.
    """

    ledger: str
    total_epsilon: float
    total_delta: float


@dataclass(frozen=True)
class DominancePolicy:
    """The (n, k) dominance rule: no ``n`` units may hold more than ``k`` of a group's total.

    Attributes:
        n: the number of largest contributors considered.
        k: the largest share they may hold, in ``(0, 1]``.
    """

    n: int = 2
    k: float = 0.85
