"""Consent policies: which rows of one party may enter clean-room compute.

A :class:`ConsentPolicy` is a small frozen description of the rows of *one side* of a
guarded join that may be shared: a consent flag column with allowed values, and/or a
data-residency region column with an allowed set of regions. The allowed regions may
come from partner agreements — a DataFrame, or a Delta table given by path or by name
such as ``main.clean_room.agreements`` — (only regions with an ``ACTIVE`` agreement), so
suspending an agreement takes the region's rows out of the next run.

``GuardedJoin(left, right, on=..., consent=policy)`` applies the policy to the side it
belongs to before joining and reports how many rows it excluded. A null in a policy
column never counts as consent.

Example:
    >>> from cleanjoin.consent import ConsentPolicy
    >>> policy = ConsentPolicy(
    ...     side="left",
    ...     consent_column="sharing_consent_flag",
    ...     allowed_values=("CONSORTIUM_ELIGIBLE",),
    ...     region_column="data_residency_region",
    ...     allowed_regions={"EU", "UK"},
    ... )
    >>> policy.to_dict()["allowed_regions"]
    ['EU', 'UK']
    >>> ConsentPolicy.from_dict(policy.to_dict()) == policy
    True
    >>> policy.apply(transactions_df)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from cleanjoin._spark import functions_for, resolve_session
from cleanjoin._sql import quote_identifier
from cleanjoin._table import TableRef
from cleanjoin._typing import Column, DataFrame, SparkSession
from cleanjoin.errors import ColumnNotFoundError, InvalidArgumentError

__all__ = [
    "DEFAULT_CONSENT_COLUMN",
    "DEFAULT_CONSENT_VALUES",
    "DEFAULT_REGION_COLUMN",
    "ConsentPolicy",
]

DEFAULT_CONSENT_COLUMN = "sharing_consent_flag"
"""The consent flag column of the fraud-signal collaboration's provider data."""

DEFAULT_CONSENT_VALUES: tuple[str, ...] = ("CONSORTIUM_ELIGIBLE",)
"""The consent flag values that allow sharing in the fraud-signal collaboration."""

DEFAULT_REGION_COLUMN = "data_residency_region"
"""The data-residency region column of the fraud-signal collaboration's provider data."""

MAX_ALLOWED_REGIONS = 10_000
"""Upper bound on the allowed-region set collected from an agreements DataFrame."""

ConsentValue = str | int | bool
_SIDES = ("left", "right")



def _check_name(value: Any, arg: str) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(
            f"'{arg}' in ConsentPolicy must be a non-empty column name, got {type(value).__name__}"
        )


@dataclass(frozen=True)
class ConsentPolicy:
    """Which rows of one side of a guarded join may be shared.

    A row is shareable when every configured rule holds: its ``consent_column`` value is
    one of ``allowed_values`` and its ``region_column`` value is in ``allowed_regions``.
    Nulls are never shareable.

    Attributes:
        side: the :class:`~cleanjoin.guard.GuardedJoin` input the policy belongs to
            (``"left"`` = the first DataFrame, ``"right"`` = the second).
        consent_column: the consent flag column, or ``None`` for no flag rule.
        allowed_values: the flag values that mean "may be shared" (required, non-empty,
            when ``consent_column`` is set).
        region_column: the data-residency region column, or ``None`` for no region rule.
        allowed_regions: the regions whose rows may be shared (required when
            ``region_column`` is set; an empty set shares nothing).

    Raises:
        InvalidArgumentError: for an unknown side, a policy with no rule, or a rule
            without its allowed values.
    """

    side: Literal["left", "right"]
    consent_column: str | None = DEFAULT_CONSENT_COLUMN
    allowed_values: tuple[ConsentValue, ...] = DEFAULT_CONSENT_VALUES
    region_column: str | None = None
    allowed_regions: frozenset[str] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.side not in _SIDES:
            raise InvalidArgumentError(
                f'Unknown side "{self.side}" in ConsentPolicy. Available options are "left", "right".'
            )
        if self.consent_column is None and self.region_column is None:
            raise InvalidArgumentError(
                "ConsentPolicy needs at least one rule: set 'consent_column' and/or 'region_column'"
            )
        if self.consent_column is not None:
            _check_name(self.consent_column, "consent_column")
            values = self.allowed_values
            if isinstance(values, str | bytes) or not isinstance(values, Iterable):
                raise InvalidArgumentError(
                    "'allowed_values' in ConsentPolicy must be a sequence of values "
                    '(e.g. ("CONSORTIUM_ELIGIBLE",)), not a single value'
                )
            values = tuple(values)
            if not values:
                raise InvalidArgumentError(
                    "'allowed_values' in ConsentPolicy must not be empty when 'consent_column' is set"
                )
            for value in values:
                if not isinstance(value, str | int | bool):
                    raise InvalidArgumentError(
                        "'allowed_values' in ConsentPolicy must hold str, int or bool values, "
                        f"got {type(value).__name__}"
                    )
            object.__setattr__(self, "allowed_values", tuple(dict.fromkeys(values)))
        else:
            object.__setattr__(self, "allowed_values", ())
        if self.region_column is not None:
            _check_name(self.region_column, "region_column")
            regions = self.allowed_regions
            if regions is None:
                raise InvalidArgumentError(
                    "'allowed_regions' in ConsentPolicy is required when 'region_column' is set "
                    "(use ConsentPolicy.from_agreements to collect it from partner agreements)"
                )
            if isinstance(regions, str | bytes) or not isinstance(regions, Iterable):
                raise InvalidArgumentError(
                    "'allowed_regions' in ConsentPolicy must be a set of region names, "
                    "not a single value"
                )
            regions = frozenset(regions)
            for region in regions:
                if not isinstance(region, str) or not region:
                    raise InvalidArgumentError(
                        "'allowed_regions' in ConsentPolicy must hold non-empty strings"
                    )
            object.__setattr__(self, "allowed_regions", regions)
        elif self.allowed_regions is not None:
            raise InvalidArgumentError(
                "'allowed_regions' in ConsentPolicy needs 'region_column' to be set"
            )

    @classmethod
    def from_agreements(
        cls,
        agreements: DataFrame | str,
        *,
        side: Literal["left", "right"],
        region_column: str = DEFAULT_REGION_COLUMN,
        agreement_region_column: str | None = None,
        status_column: str = "agreement_status",
        active_value: str = "ACTIVE",
        consent_column: str | None = DEFAULT_CONSENT_COLUMN,
        allowed_values: Iterable[ConsentValue] = DEFAULT_CONSENT_VALUES,
        spark: SparkSession | None = None,
    ) -> ConsentPolicy:
        """A policy whose allowed regions are those with an active partner agreement.

        Args:
            agreements: partner agreements, one row per agreement: a (small) DataFrame, or
                a Delta table holding them, by path or by name (``catalog.schema.table``
                or ``schema.table``), read when the policy is built.
            side: the side of the guarded join the policy belongs to.
            region_column: the region column of the data the policy filters.
            agreement_region_column: the region column in ``agreements`` (defaults to
                ``region_column``).
            status_column: the agreement status column in ``agreements``.
            active_value: the status meaning the agreement is in force; rows with any
                other status (``SUSPENDED``, ``EXPIRED``, null) allow nothing.
            consent_column: the consent flag column (``None`` for no flag rule).
            allowed_values: the consent flag values that allow sharing.
            spark: the session to read a table with (defaults to the active session).

        Raises:
            ColumnNotFoundError: when ``agreements`` lacks a named column.
            InvalidArgumentError: when the agreements table cannot be read.
            InvalidArgumentError: when more than ``MAX_ALLOWED_REGIONS`` regions are active.

        Example:
            >>> ConsentPolicy.from_agreements(agreements_df, side="left")  # doctest: +SKIP
            >>> ConsentPolicy.from_agreements("main.clean_room.agreements", side="left",  # doctest: +SKIP
            ...                               spark=spark)
        """
        if isinstance(agreements, str):
            agreements = _read_agreements(agreements, spark)
        source_column = agreement_region_column or region_column
        _check_name(source_column, "agreement_region_column")
        _check_name(status_column, "status_column")
        _require_columns(
            agreements, (source_column, status_column), "ConsentPolicy.from_agreements"
        )
        fn = functions_for(agreements)
        rows = (
            agreements.where(fn.col(quote_identifier(status_column)) == fn.lit(active_value))
            .where(fn.col(quote_identifier(source_column)).isNotNull())
            .select(fn.col(quote_identifier(source_column)).cast("string").alias("region"))
            .distinct()
            .limit(MAX_ALLOWED_REGIONS + 1)
            .collect()
        )
        if len(rows) > MAX_ALLOWED_REGIONS:
            raise InvalidArgumentError(
                f"ConsentPolicy.from_agreements: more than {MAX_ALLOWED_REGIONS} distinct active "
                f"regions in column '{source_column}'; is it really a region column?"
            )
        regions = frozenset(str(row[0]) for row in rows if row[0])
        return cls(
            side=side,
            consent_column=consent_column,
            allowed_values=tuple(allowed_values) if consent_column is not None else (),
            region_column=region_column,
            allowed_regions=regions,
        )

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the policy reads."""
        return tuple(c for c in (self.consent_column, self.region_column) if c is not None)

    def condition(self, df: DataFrame) -> Column:
        """A boolean Column that is True exactly for the rows of ``df`` that may be shared.

        Nulls in a policy column give False (never null).

        Raises:
            ColumnNotFoundError: when ``df`` lacks a policy column (the message names it).

        Example:
            >>> df.where(policy.condition(df))  # doctest: +SKIP
        """
        _require_columns(df, self.columns, "ConsentPolicy.condition")
        fn = functions_for(df)
        rule = fn.lit(True)
        if self.consent_column is not None:
            rule = rule & fn.col(quote_identifier(self.consent_column)).isin(list(self.allowed_values))
        if self.region_column is not None:
            regions = sorted(self.allowed_regions or ())
            if regions:
                rule = rule & fn.col(quote_identifier(self.region_column)).isin(regions)
            else:
                rule = fn.lit(False)
        return cast("Column", fn.coalesce(rule, fn.lit(False)))

    def apply(self, df: DataFrame) -> DataFrame:
        """The rows of ``df`` that may be shared.

        Example:
            >>> policy.apply(transactions_df).count()  # doctest: +SKIP
        """
        return df.where(self.condition(df))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description (for reports, contracts and audit entries)."""
        return {
            "side": self.side,
            "consent_column": self.consent_column,
            "allowed_values": list(self.allowed_values),
            "region_column": self.region_column,
            "allowed_regions": (
                sorted(self.allowed_regions) if self.allowed_regions is not None else None
            ),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConsentPolicy:
        """The policy described by :meth:`to_dict`'s output.

        Raises:
            InvalidArgumentError: for unknown keys or invalid values.
        """
        known = {"side", "consent_column", "allowed_values", "region_column", "allowed_regions"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidArgumentError(
                f"ConsentPolicy.from_dict: unknown keys {unknown}; expected {sorted(known)}"
            )
        if "side" not in data:
            raise InvalidArgumentError("ConsentPolicy.from_dict: 'side' is required")
        regions = data.get("allowed_regions")
        return cls(
            side=data["side"],
            consent_column=data.get("consent_column", DEFAULT_CONSENT_COLUMN),
            allowed_values=tuple(data.get("allowed_values") or ()),
            region_column=data.get("region_column"),
            allowed_regions=frozenset(regions) if regions is not None else None,
        )


def _read_agreements(table: str, spark: SparkSession | None) -> DataFrame:
    call = "ConsentPolicy.from_agreements"
    ref = TableRef.parse(table, arg="agreements", call=call)
    session = resolve_session(call, spark, hint="pass spark= to read an agreements table")
    try:
        frame = ref.read(session)
        frame.schema  # noqa: B018 - forces analysis (Spark Connect reads lazily)
    except Exception as exc:
        raise InvalidArgumentError(f"{call}: no readable agreements table {ref.describe}") from exc
    return frame


def _require_columns(df: DataFrame, columns: Iterable[str], call: str) -> None:
    present = list(df.columns)
    missing = [c for c in columns if c not in present]
    if missing:
        names = ", ".join(f"'{c}'" for c in missing)
        raise ColumnNotFoundError(
            f"{call}: column {names} not found; the DataFrame has columns {present}"
        )
