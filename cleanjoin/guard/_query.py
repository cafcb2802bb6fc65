"""The plain description of a guarded query: what the builder hands to the executor.

Frozen data only: the inputs, their schemas (read once, by ``GuardedJoin``), the group
columns, aggregates, privacy unit, DP specification and minimum cohort. The executor
reads this description, never the builder's stages.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from cleanjoin._typing import DataFrame
from cleanjoin.agg import Aggregate
from cleanjoin.consent import ConsentPolicy
from cleanjoin.errors import InternalError

if TYPE_CHECKING:
    from pyspark.sql.types import DataType

    from cleanjoin.dp import DPParams
    from cleanjoin.guard._dominance import Dominance

__all__ = [
    "DEFAULT_MAX_ROWS_PER_KEY",
    "QUERY_FORMAT",
    "DPSpec",
    "InputSchemas",
    "Query",
    "QuerySource",
    "is_df",
]

DEFAULT_MAX_ROWS_PER_KEY = 10_000
"""Default join-explosion limit: rows per join key on each side (``None`` disables it)."""

QUERY_FORMAT = "cleanjoin.guarded_query/v1"
"""The ``format`` field of a query description (the input of the query fingerprint)."""


def is_df(value: Any) -> bool:
    """True when ``value`` looks like a classic or Spark Connect DataFrame."""
    return hasattr(value, "schema") and hasattr(value, "sparkSession") and hasattr(value, "columns")


@dataclass(frozen=True)
class InputSchemas:
    """The two sides' column types and the join columns (read once from the inputs).

    Attributes:
        left: the left side's column names and Spark types.
        right: the right side's column names and Spark types.
        keys: the join columns as a pair ``(left, right)``.
    """

    left: Mapping[str, DataType]
    right: Mapping[str, DataType]
    keys: tuple[str, str]

    def side_of(self, column: str) -> str | None:
        """``"left"``, ``"right"``, ``"both"``, or ``None`` when neither side has ``column``."""
        in_left = column in self.left
        in_right = column in self.right
        if in_left and in_right:
            return "both"
        if in_left:
            return "left"
        if in_right:
            return "right"
        return None

    def dtype(self, column: str) -> DataType:
        """The Spark type of ``column`` (the left side's when both have it)."""
        for schema in (self.left, self.right):
            if column in schema:
                return schema[column]
        raise InternalError(f"column {column!r} vanished from the inputs")

    def columns(self) -> str:
        """Both sides' column names, for error messages."""
        return f"left: {sorted(self.left)}, right: {sorted(self.right)}"


@dataclass(frozen=True, eq=False)
class DPSpec:
    """What ``with_dp`` asked for: the DP parameters and the public groups, if any."""

    params: DPParams
    public_groups: Any = field(default=None, repr=False)

    def describe(self) -> dict[str, Any]:
        """The parameters and the public groups (see :meth:`described_groups`) as JSON."""
        out = dict(self.params.fingerprint_dict())
        out["public_groups"] = self.described_groups()
        return out

    def described_groups(self) -> str | list[Any] | None:
        """The public groups as the query description holds them: ``None``,
        ``"dataframe"`` for a DataFrame, or the list of groups (JSON)."""
        groups = self.public_groups
        if groups is None:
            return None
        if is_df(groups):
            return "dataframe"
        described: list[Any] = json.loads(json.dumps(list(groups), default=str, sort_keys=True))
        return described


@dataclass(frozen=True, eq=False)
class Query:
    """A complete guarded query, as the executor runs it (built by ``ReadyJoin.to_query``).

    Attributes:
        left: the first party's DataFrame.
        right: the second party's DataFrame.
        schemas: both sides' column types and the join columns.
        policies: the consent policies, each for its side.
        revoked: revoked tokens (a DataFrame, or a Delta table path or name), or ``None``.
        max_rows_per_key: the join-explosion limit (``None``: disabled).
        group_columns: the group columns.
        aggregates: the aggregates to release.
        unit: the privacy-unit column as given (``None``: the join column).
        dp: the DP specification, or ``None``.
        threshold: the minimum cohort (distinct privacy units per released group).
        policy: the fingerprint of the collaboration policy the query runs under, or
            ``None`` (local exploration without a policy).
        grouping_sets: the grouping sets of a release with margins (``rollup()`` or
            ``grouping_sets=``), normalized: each a tuple of group columns in their
            order, the finest first; ``None`` for a plain ``group_by``.
        dominance: the (n, k) dominance rule of threshold mode, or ``None``.
        p_percent: the p of the p % rule of threshold mode, or ``None``.
        token_keys: every non-null join key must be shaped like a spec-v1 token.
        person_columns: ``(side, column)`` pairs: a person of that side may have one
            join key only.
        max_dimension_values: the quasi-identifier guard's limit, or ``None``.
    """

    left: DataFrame = field(repr=False)
    right: DataFrame = field(repr=False)
    schemas: InputSchemas = field(repr=False)
    policies: tuple[ConsentPolicy, ...]
    revoked: DataFrame | str | None = field(repr=False)
    max_rows_per_key: int | None
    group_columns: tuple[str, ...]
    aggregates: tuple[Aggregate, ...]
    unit: str | None
    dp: DPSpec | None
    threshold: int
    policy: str | None = None
    grouping_sets: tuple[tuple[str, ...], ...] | None = None
    dominance: Dominance | None = None
    p_percent: float | None = None
    token_keys: bool = False
    person_columns: tuple[tuple[str, str], ...] = ()
    max_dimension_values: int | None = None

    @property
    def keys(self) -> tuple[str, str]:
        """The join columns as a pair ``(left, right)``."""
        return self.schemas.keys

    @property
    def unit_column(self) -> str:
        """The privacy-unit column (the left join column unless set)."""
        if self.unit is None or self.unit in self.keys:
            return self.keys[0]
        return self.unit

    def to_query(self) -> Query:
        """This description itself (see :class:`QuerySource`)."""
        return self

    def describe(self) -> dict[str, Any]:
        """The query as a JSON-friendly dict (no data; the input of :meth:`fingerprint`)."""
        revoked = self.revoked
        described: dict[str, Any] = {
            "format": QUERY_FORMAT,
            "on": list(self.keys),
            "group_by": list(self.group_columns),
            "aggregates": [a.describe() for a in self.aggregates],
            "min_cohort": self.threshold,
            "privacy_unit": self.unit or self.keys[0],
            "max_rows_per_key": self.max_rows_per_key,
            "consent": [p.to_dict() for p in self.policies],
            "revocations": (
                None if revoked is None else revoked if isinstance(revoked, str) else "dataframe"
            ),
            "dp": None if self.dp is None else self.dp.describe(),
        }
        if self.policy is not None:  # absent without a policy: fingerprints stay as they were
            described["policy_fingerprint"] = self.policy
        if self.grouping_sets is not None:  # absent without margins: fingerprints unchanged
            described["grouping_sets"] = [list(s) for s in self.grouping_sets]
        if self.dominance is not None:  # absent without the rules: fingerprints unchanged
            described["dominance"] = self.dominance.describe()
        if self.p_percent is not None:
            described["p_percent"] = self.p_percent
        if self.token_keys:
            described["token_keys"] = True
        if self.person_columns:
            described["person_columns"] = [list(p) for p in self.person_columns]
        if self.max_dimension_values is not None:
            described["max_dimension_values"] = self.max_dimension_values
        return described

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the canonical JSON of :meth:`describe` (the query fingerprint)."""
        canonical = json.dumps(self.describe(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class QuerySource(Protocol):
    """Anything that gives the plain :class:`Query` (a ``Query``, or the builder's last stage)."""

    def to_query(self) -> Query: ...
