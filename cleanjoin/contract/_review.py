"""Reading a guarded result against a contract: the verdict and the checks behind it.

:func:`review_reasons` checks a result's schema and run (columns, types, minimum cohort,
differential privacy) and has :func:`~cleanjoin.contract._scan.scan_values` read its
values; :func:`draft_columns` proposes a contract's columns from a result. Neither
echoes a row value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cleanjoin._typing import DataFrame
from cleanjoin.contract._columns import GROUPING_COLUMN, ColumnRole, ContractColumn, normalize_type
from cleanjoin.contract._scan import scan_values
from cleanjoin.errors import InvalidArgumentError


class _Report(Protocol):
    min_cohort: int


class Reviewable(Protocol):
    """What :meth:`OutputContract.review` needs: ``.df`` and ``.report`` (a guard result)."""

    @property
    def df(self) -> DataFrame: ...

    @property
    def report(self) -> Any: ...


@dataclass(frozen=True)
class Review:
    """The verdict of :meth:`OutputContract.review`.

    Attributes:
        approved: True when the result complies with the contract.
        reasons: every reason for a rejection (empty when approved); column names,
            types, counts and thresholds only, never a row value.
        contract_fingerprint: the :meth:`OutputContract.fingerprint` reviewed against.

    Example:
        >>> Review(approved=False, reasons=("column 'x' is not allowed by the contract",),
        ...        contract_fingerprint="0" * 64).approved
        False
    """

    approved: bool
    reasons: tuple[str, ...]
    contract_fingerprint: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "reasons", tuple(self.reasons))
        if self.approved and self.reasons:
            raise InvalidArgumentError("Review: an approved review cannot have reasons")
        if not self.approved and not self.reasons:
            raise InvalidArgumentError("Review: a rejected review needs at least one reason")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {
            "approved": self.approved,
            "reasons": list(self.reasons),
            "contract_fingerprint": self.contract_fingerprint,
        }

    def __str__(self) -> str:
        head = "approved" if self.approved else f"rejected ({len(self.reasons)} reason(s))"
        lines = [f"Contract review {self.contract_fingerprint[:12]}: {head}"]
        lines += [f"  - {reason}" for reason in self.reasons]
        return "\n".join(lines)


def review_reasons(
    result: Reviewable, *, columns: Sequence[ContractColumn], min_cohort: int, dp_required: bool
) -> list[str]:
    """Every reason ``result`` does not comply with a contract of these fields (may run one job)."""
    df = result.df
    report = result.report
    reasons: list[str] = []
    fields = {f.name: f for f in df.schema.fields}
    expected = {c.name: c for c in columns}

    for name in fields:
        if name not in expected:
            reasons.append(f"column {name!r} is not allowed by the contract")
    for name in expected:
        if name not in fields:
            reasons.append(f"column {name!r} required by the contract is missing")
    for name, col in expected.items():
        if name in fields:
            actual = normalize_type(fields[name].dataType.simpleString())
            if actual != col.type:
                reasons.append(
                    f"column {name!r} has type {actual}, the contract expects {col.type}"
                )

    run_min = getattr(report, "min_cohort", None)
    if not isinstance(run_min, int):
        reasons.append("the result's report does not state the minimum cohort it enforced")
    elif run_min < min_cohort:
        reasons.append(
            f"the run's minimum cohort {run_min} is lower than the contract's {min_cohort}"
        )
    if dp_required and not dp_used(report):
        reasons.append("the contract requires differential privacy, and the run did not use it")

    from pyspark.sql.types import NumericType

    cohort_cols = [
        n for n, c in expected.items()
        if c.role is ColumnRole.COHORT_COUNT and n in fields
        and isinstance(fields[n].dataType, NumericType)
    ]
    dimensions = {n for n, c in expected.items() if c.role is ColumnRole.DIMENSION}
    reasons += scan_values(
        df,
        cohort_columns=cohort_cols,
        dimensions={n for n in fields if n in dimensions or n not in expected},
        min_cohort=min_cohort,
    )
    return reasons


def draft_columns(
    result: Reviewable, *, roles: Mapping[str, ColumnRole | str] | None
) -> tuple[ContractColumn, ...]:
    """The columns of a contract drafted from ``result`` (see ``OutputContract.from_result``)."""
    report = result.report
    group_by = set(getattr(report, "group_by", ()) or ())
    kinds = {
        str(a.get("name")): str(a.get("kind"))
        for a in (getattr(report, "aggregates", ()) or ())
        if isinstance(a, Mapping)
    }
    overrides = dict(roles or {})
    columns = []
    for fld in result.df.schema.fields:
        if fld.name in overrides:
            role: ColumnRole | str = overrides.pop(fld.name)
        elif fld.name in group_by:
            role = ColumnRole.DIMENSION
        elif kinds.get(fld.name) == "count" and not dp_used(report):
            # a DP count is noisy: it can fall below the threshold by chance, so it is
            # a measure, not a cohort count
            role = ColumnRole.COHORT_COUNT
        elif fld.name in kinds:
            role = ColumnRole.MEASURE
        elif fld.name == GROUPING_COLUMN:  # the margin marker of a release with margins
            role = ColumnRole.GROUPING
        else:
            role = ColumnRole.DIMENSION
        columns.append(ContractColumn(fld.name, fld.dataType.simpleString(), role))
    if overrides:
        raise InvalidArgumentError(
            f"OutputContract.from_result: 'roles' names columns not in the result: "
            f"{sorted(overrides)}"
        )
    return tuple(columns)


def dp_used(report: Any) -> bool:
    """Whether the run behind ``report`` used differential privacy."""
    used = getattr(report, "dp_used", None)
    if isinstance(used, bool):
        return used
    return getattr(report, "dp", None) is not None

