"""The staged, immutable builder of guarded queries (see :mod:`cleanjoin.guard`):
``GuardedJoin`` → ``GroupedJoin`` → ``AggregatedJoin`` → ``ReadyJoin``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Self

from cleanjoin._typing import DataFrame
from cleanjoin.agg import AggKind, Aggregate
from cleanjoin.consent import ConsentPolicy
from cleanjoin.errors import (
    ColumnNotFoundError,
    ConfigurationError,
    InternalError,
    InvalidArgumentError,
    NotAllowedError,
    SchemaMismatchError,
    UnsupportedColumnTypeError,
)
from cleanjoin.guard._result import DEFAULT_MAX_ROWS_PER_KEY, GuardedResult
from cleanjoin.session import is_connect

if TYPE_CHECKING:
    from cleanjoin.audit import AuditLog
    from cleanjoin.budget import BudgetLedger
    from cleanjoin.dp import DPParams

__all__ = [
    "DEFAULT_MAX_ROWS_PER_KEY",
    "QUERY_FORMAT",
    "AggregatedJoin",
    "GroupedJoin",
    "GuardedJoin",
    "ReadyJoin",
]

QUERY_FORMAT = "cleanjoin.guarded_query/v1"
"""The ``format`` field of a query description (the input of the query fingerprint)."""

def _is_token_name(name: str) -> bool:
    lowered = name.lower()
    return lowered == "token" or lowered.endswith("_token")


def _token_fields(dtype: Any, prefix: str = "") -> list[str]:
    """The paths of ``*_token`` fields nested in a struct, array or map type."""
    from pyspark.sql.types import ArrayType, MapType, StructType

    if isinstance(dtype, StructType):
        found: list[str] = []
        for fld in dtype.fields:
            path = f"{prefix}{fld.name}"
            if _is_token_name(fld.name):
                found.append(path)
            found += _token_fields(fld.dataType, f"{path}.")
        return found
    if isinstance(dtype, ArrayType):
        return _token_fields(dtype.elementType, prefix)
    if isinstance(dtype, MapType):
        return _token_fields(dtype.keyType, prefix) + _token_fields(dtype.valueType, prefix)
    return []


def _is_df(value: Any) -> bool:
    return hasattr(value, "schema") and hasattr(value, "sparkSession") and hasattr(value, "columns")


def _flatten(call: str, columns: Sequence[Any]) -> tuple[str, ...]:
    if len(columns) == 1 and isinstance(columns[0], list | tuple):
        columns = tuple(columns[0])
    out: list[str] = []
    for col in columns:
        if not isinstance(col, str) or not col:
            raise NotAllowedError(
                f"{call}: columns must be given by name (a non-empty string), got "
                f"{type(col).__name__}; Column expressions bypass the guard"
            )
        out.append(col)
    if len(set(out)) != len(out):
        raise InvalidArgumentError(f"{call}: a column is named twice: {out}")
    return tuple(out)


# --------------------------------------------------------------------------- stage 1


@dataclass(frozen=True, eq=False)
class GuardedJoin:
    """Stage 1: the two inputs, the join column and the row filters.

    Attributes:
        left: the first party's DataFrame (``"left"`` side of consent policies).
        right: the second party's DataFrame.
        on: the token column, same name on both sides, or a pair ``(left, right)``.
        consent: a :class:`~cleanjoin.consent.ConsentPolicy` or a sequence of them,
            each applied to its own side before the join (nulls never consent).
        revoked: revoked tokens, a DataFrame or a Delta table path with the revocation
            schema (see :func:`cleanjoin.revocation.load_revocations`); rows whose join
            key is revoked are removed from both sides before the join.
        max_rows_per_key: the most rows a join key may have on each side;
            ``None`` disables the join-explosion guard.

    Raises:
        InvalidArgumentError: an input is not a DataFrame, bad ``on`` or limit.
        ConfigurationError: the inputs belong to different session kinds.
        ColumnNotFoundError: a join column is missing.
        SchemaMismatchError: the join columns have different types, or a non-token
            column has the same name on both sides (rename it on one side).

    Example:
        >>> GuardedJoin(provider_df, consumer_df, on="card_number_token")  # doctest: +SKIP
    """

    left: DataFrame = field(repr=False)
    right: DataFrame = field(repr=False)
    on: str | tuple[str, str] = field(kw_only=True)
    consent: ConsentPolicy | Sequence[ConsentPolicy] | None = field(default=None, kw_only=True)
    revoked: DataFrame | str | None = field(default=None, kw_only=True, repr=False)
    max_rows_per_key: int | None = field(default=DEFAULT_MAX_ROWS_PER_KEY, kw_only=True)
    _schemas: tuple[dict[str, Any], ...] = field(default=(), init=False, repr=False)

    def __post_init__(self) -> None:
        for side, df in (("left", self.left), ("right", self.right)):
            if not _is_df(df):
                raise InvalidArgumentError(
                    f"'{side}' in GuardedJoin must be a DataFrame, got {type(df).__name__}"
                )
        if is_connect(self.left) != is_connect(self.right):
            raise ConfigurationError(
                "GuardedJoin: 'left' and 'right' belong to different kinds of session "
                "(one classic, one Spark Connect); load both with the same session"
            )
        on = self.on
        if isinstance(on, str):
            pair = (on, on)
        elif isinstance(on, list | tuple) and len(on) == 2 and all(isinstance(c, str) for c in on):
            pair = (on[0], on[1])
        else:
            raise InvalidArgumentError(
                "'on' in GuardedJoin must be a column name or a pair (left_column, right_column)"
            )
        if not all(pair):
            raise InvalidArgumentError("'on' in GuardedJoin must name non-empty columns")
        object.__setattr__(self, "on", on if isinstance(on, str) else pair)
        # each side's schema, read once (under Spark Connect every read is a round trip);
        # the later stages' checks use it
        schemas = tuple({f.name: f.dataType for f in df.schema.fields} for df in (self.left, self.right))
        object.__setattr__(self, "_schemas", schemas)
        left_types = {name: dtype.simpleString() for name, dtype in schemas[0].items()}
        right_types = {name: dtype.simpleString() for name, dtype in schemas[1].items()}
        for side, name, types in (("left", pair[0], left_types), ("right", pair[1], right_types)):
            if name not in types:
                raise ColumnNotFoundError(
                    f"GuardedJoin: join column {name!r} is not in the {side} DataFrame "
                    f"(columns: {sorted(types)})"
                )
        if left_types[pair[0]] != right_types[pair[1]]:
            raise SchemaMismatchError(
                f"GuardedJoin: join columns have different types: left {pair[0]!r} is "
                f"{left_types[pair[0]]}, right {pair[1]!r} is {right_types[pair[1]]}"
            )
        # Spark resolves names case-insensitively by default: compare them lower-cased
        left_other = {c.lower() for c in left_types} - {pair[0].lower()}
        right_other = {c.lower() for c in right_types} - {pair[1].lower()}
        clash = {c for c in left_other & right_other if not _is_token_name(c)}
        if pair[0].lower() != pair[1].lower():
            clash |= {pair[0].lower()} & right_other
            clash |= {pair[1].lower()} & left_other
        if clash:
            names = sorted(clash)
            raise SchemaMismatchError(
                f"GuardedJoin: columns {names} are on both sides; rename them on one side "
                f"(e.g. right.withColumnRenamed({names[0]!r}, {names[0] + '_right'!r})) so each "
                "output column has one source"
            )
        internal = sorted(c for c in (*left_types, *right_types) if c.lower().startswith("__cj_"))
        if internal:
            raise InvalidArgumentError(
                f"GuardedJoin: column names starting with '__cj_' are reserved, found {internal}"
            )
        policies: tuple[ConsentPolicy, ...]
        if self.consent is None:
            policies = ()
        elif isinstance(self.consent, ConsentPolicy):
            policies = (self.consent,)
        elif isinstance(self.consent, list | tuple):
            policies = tuple(self.consent)
        else:
            raise InvalidArgumentError(
                "'consent' in GuardedJoin must be a ConsentPolicy or a list of them, got "
                f"{type(self.consent).__name__}"
            )
        for policy in policies:
            if not isinstance(policy, ConsentPolicy):
                raise InvalidArgumentError(
                    "'consent' in GuardedJoin must hold ConsentPolicy objects, got "
                    f"{type(policy).__name__}"
                )
            cols = set(left_types if policy.side == "left" else right_types)
            missing = [c for c in policy.columns if c not in cols]
            if missing:
                raise ColumnNotFoundError(
                    f"GuardedJoin: consent policy for the {policy.side} side reads column(s) "
                    f"{missing}, not in the {policy.side} DataFrame"
                )
        object.__setattr__(self, "consent", policies)
        if self.revoked is not None and not (isinstance(self.revoked, str) or _is_df(self.revoked)):
            raise InvalidArgumentError(
                "'revoked' in GuardedJoin must be a DataFrame, a Delta table path or None, got "
                f"{type(self.revoked).__name__}"
            )
        limit = self.max_rows_per_key
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InvalidArgumentError(
                f"'max_rows_per_key' in GuardedJoin must be an integer >= 1 or None, got {limit!r}"
            )

    # -- helpers used by later stages ---------------------------------------------------

    @property
    def keys(self) -> tuple[str, str]:
        """The join columns as a pair ``(left, right)``."""
        return (self.on, self.on) if isinstance(self.on, str) else (self.on[0], self.on[1])

    @property
    def policies(self) -> tuple[ConsentPolicy, ...]:
        """The consent policies as a tuple."""
        return tuple(self.consent) if isinstance(self.consent, tuple) else ()

    def _side_of(self, column: str) -> str | None:
        in_left = column in self._schemas[0]
        in_right = column in self._schemas[1]
        if in_left and in_right:
            return "both"
        if in_left:
            return "left"
        if in_right:
            return "right"
        return None

    def _dtype(self, column: str) -> Any:
        for schema in self._schemas:
            if column in schema:
                return schema[column]
        raise InternalError(f"column {column!r} vanished from the inputs")

    def _columns(self) -> str:
        """Both sides' column names, for error messages."""
        return f"left: {sorted(self._schemas[0])}, right: {sorted(self._schemas[1])}"

    def _check_output_column(self, call: str, column: str, what: str) -> None:
        if column in self.keys:
            raise NotAllowedError(
                f"{call}: {what} the join column {column!r} is not allowed; join keys are "
                "never released"
            )
        if _is_token_name(column):
            raise NotAllowedError(
                f"{call}: {what} the token column {column!r} is not allowed; tokens are "
                "never released"
            )
        if self._side_of(column) is None:
            raise ColumnNotFoundError(
                f"{call}: column {column!r} is in neither input ({self._columns()})"
            )
        nested = _token_fields(self._dtype(column))
        if nested:
            raise NotAllowedError(
                f"{call}: {what} {column!r} is not allowed: it holds the token field(s) "
                f"{nested}; tokens are never released"
            )

    def group_by(self, *columns: str) -> GroupedJoin:
        """Group the joined rows by non-token columns of either side.

        Raises:
            NotAllowedError: a join/token column, or a Column expression.
            ColumnNotFoundError: a column in neither input.

        Example:
            >>> GuardedJoin(l, r, on="t").group_by("mcc", "age_band")  # doctest: +SKIP
        """
        return GroupedJoin(self, _flatten("GuardedJoin.group_by()", columns))


# --------------------------------------------------------------------------- stage 2


@dataclass(frozen=True, eq=False)
class GroupedJoin:
    """Stage 2: a join with its group columns; next, :meth:`agg`.

    Attributes:
        join: the :class:`GuardedJoin`.
        group_columns: the group columns.
    """

    join: GuardedJoin
    group_columns: tuple[str, ...]

    def __post_init__(self) -> None:
        # every stage validates itself, so a stage built directly (or with
        # dataclasses.replace) obeys the same rules as one reached through the builder
        _check_groups(self.join, self.group_columns)

    def agg(self, *aggregates: Aggregate) -> AggregatedJoin:
        """The aggregates to release, from :mod:`cleanjoin.agg`.

        Raises:
            NotAllowedError: a raw Column or string expression, or an aggregate of a
                join/token column.
            UnsupportedColumnTypeError: a sum/mean/variance/stddev of a non-numeric column.
            InvalidArgumentError: no aggregates, or clashing output names.

        Example:
            >>> from cleanjoin import agg
            >>> grouped.agg(agg.count().alias("n"), agg.mean("flag", bounds=(0, 1)))  # doctest: +SKIP
        """
        if len(aggregates) == 1 and isinstance(aggregates[0], list | tuple):
            aggregates = tuple(aggregates[0])
        return AggregatedJoin(self.join, self.group_columns, tuple(aggregates))


# --------------------------------------------------------------------------- stage 3/4


@dataclass(frozen=True, eq=False)
class _DPSpec:
    params: DPParams
    public_groups: Any = field(default=None, repr=False)

    def describe(self) -> dict[str, Any]:
        out = dict(self.params.fingerprint_dict())
        groups = self.public_groups
        if groups is None:
            out["public_groups"] = None
        elif _is_df(groups):
            out["public_groups"] = "dataframe"
        else:
            out["public_groups"] = json.loads(json.dumps(list(groups), default=str, sort_keys=True))
        return out


@dataclass(frozen=True, eq=False)
class _Aggregated:
    join: GuardedJoin
    group_columns: tuple[str, ...]
    aggregates: tuple[Aggregate, ...]
    unit: str | None = None
    dp: _DPSpec | None = None

    def __post_init__(self) -> None:
        _check_groups(self.join, self.group_columns)
        _check_aggregates(self.join, self.group_columns, self.aggregates)
        if self.unit is not None:
            _check_unit(self.join, self.group_columns, self.unit)
        if self.dp is not None and not isinstance(self.dp, _DPSpec):
            raise InvalidArgumentError("'dp' must be set with .with_dp(...)")

    def privacy_unit(self, column: str) -> Self:
        """Count cohorts in distinct values of ``column`` (default: the join token).

        Use the column that identifies one person (e.g. an account token when one
        person has several cards). Without DP, a group's cohort is the smaller of its
        distinct units and its distinct join keys, so a unit finer than the join key
        (a transaction id, an amount) can never make the rule weaker than the default.

        Raises:
            ColumnNotFoundError: the column is in neither input.
            SchemaMismatchError: the column is on both sides (ambiguous).
            NotAllowedError: the column is a group column.

        Example:
            >>> query.privacy_unit("account_token")  # doctest: +SKIP
        """
        if not isinstance(column, str) or not column:
            raise InvalidArgumentError("privacy_unit(): 'column' must be a non-empty column name")
        return replace(self, unit=column)

    def with_dp(
        self,
        *,
        epsilon: float,
        delta: float = 0.0,
        max_partitions_contributed: int = 1,
        max_contributions_per_partition: int = 1,
        noise: str = "laplace",
        partition_selection: str = "truncated_geometric",
        public_groups: DataFrame | Sequence[Mapping[str, Any]] | Sequence[tuple[Any, ...]] | None = None,
    ) -> Self:
        """Release with differential privacy (see :class:`cleanjoin.dp.DPParams`).

        ``min_cohort`` becomes pipeline_dp's ``pre_threshold`` of private partition
        selection; ``public_groups`` (a DataFrame with the group columns, or a list)
        skips partition selection.

        Raises:
            InvalidArgumentError, ConfigurationError: invalid DP parameters.

        Example:
            >>> query.with_dp(epsilon=1.0, delta=1e-6, max_partitions_contributed=3)  # doctest: +SKIP
        """
        from cleanjoin.dp import DPParams

        params = DPParams(
            epsilon=epsilon,
            delta=delta,
            max_partitions_contributed=max_partitions_contributed,
            max_contributions_per_partition=max_contributions_per_partition,
            noise=noise,
            partition_selection=partition_selection,
        )
        if public_groups is not None and not _is_df(public_groups):
            if isinstance(public_groups, str | bytes) or not isinstance(public_groups, Sequence):
                raise InvalidArgumentError(
                    "with_dp(): 'public_groups' must be a DataFrame or a list of dicts/tuples"
                )
            public_groups = tuple(public_groups)
        return replace(self, dp=_DPSpec(params, public_groups))

    @property
    def unit_column(self) -> str:
        """The privacy-unit column (the left join column unless set)."""
        if self.unit is None or self.unit in self.join.keys:
            return self.join.keys[0]
        return self.unit


@dataclass(frozen=True, eq=False)
class AggregatedJoin(_Aggregated):
    """Stage 3: grouping and aggregates are set; next, :meth:`min_cohort`.

    :meth:`privacy_unit` and :meth:`with_dp` may be called here or on the
    :class:`ReadyJoin`; there is no ``run`` until a minimum cohort is set.
    """

    def min_cohort(self, n: int) -> ReadyJoin:
        """Release only groups with at least ``n`` distinct privacy units.

        Raises:
            InvalidArgumentError: ``n`` is not an integer >= 1.

        Example:
            >>> ready = aggregated.min_cohort(100)  # doctest: +SKIP
        """
        return ReadyJoin(
            self.join, self.group_columns, self.aggregates, self.unit, self.dp,
            threshold=_check_threshold(n),
        )


def _check_threshold(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidArgumentError(f"min_cohort(): 'n' must be an integer >= 1, got {n!r}")
    return n


@dataclass(frozen=True, eq=False)
class ReadyJoin(_Aggregated):
    """Stage 4: a complete guarded query; :meth:`run` executes it.

    Attributes:
        threshold: the minimum cohort (distinct privacy units per released group).
    """

    threshold: int = field(default=0, kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_threshold(self.threshold)

    def min_cohort(self, n: int) -> ReadyJoin:
        """A copy with minimum cohort ``n``."""
        return replace(self, threshold=_check_threshold(n))

    def describe(self) -> dict[str, Any]:
        """The query as a JSON-friendly dict (no data; the input of :meth:`fingerprint`)."""
        join = self.join
        revoked = join.revoked
        return {
            "format": QUERY_FORMAT,
            "on": list(join.keys),
            "group_by": list(self.group_columns),
            "aggregates": [a.describe() for a in self.aggregates],
            "min_cohort": self.threshold,
            "privacy_unit": self.unit or join.keys[0],
            "max_rows_per_key": join.max_rows_per_key,
            "consent": [p.to_dict() for p in join.policies],
            "revocations": (
                None if revoked is None else revoked if isinstance(revoked, str) else "dataframe"
            ),
            "dp": None if self.dp is None else self.dp.describe(),
        }

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the canonical JSON of :meth:`describe` (the query fingerprint)."""
        canonical = json.dumps(self.describe(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def run(
        self,
        *,
        audit: AuditLog | None = None,
        budget: BudgetLedger | None = None,
        release_id: str | None = None,
    ) -> GuardedResult:
        """Run the query and return the released rows with a report.

        Args:
            audit: an :class:`~cleanjoin.audit.AuditLog`; a ``"guarded_run"`` entry is
                appended (query, counts, content hash of the released rows).
            budget: a :class:`~cleanjoin.budget.BudgetLedger` (DP runs only): checked
                before any Spark job, charged after the join-explosion check and before
                the DP computation.
            release_id: the release's identity; required with ``budget``. A release id
                already in the ledger replays its stored rows (no charge, no compute).

        Raises:
            InvalidArgumentError: ``budget`` without ``release_id`` or without DP, or a
                release id already used by a different query.
            BudgetExceeded: the ledger cannot pay for the release (nothing computed).
            JoinExplosionError: a join key has too many rows on one side.

        Example:
            >>> result = ready.run()  # doctest: +SKIP
            >>> result.report.groups_released  # doctest: +SKIP
            42
        """
        from cleanjoin._guard_run import execute

        if release_id is not None and (not isinstance(release_id, str) or not release_id):
            raise InvalidArgumentError("run(): 'release_id' must be a non-empty string")
        if budget is not None:
            if self.dp is None:
                raise InvalidArgumentError(
                    "run(): 'budget' needs a differentially private query; call .with_dp(...) "
                    "first (a budget ledger tracks ε and δ)"
                )
            if release_id is None:
                raise InvalidArgumentError(
                    "run(): 'budget' needs a 'release_id' (it names the release in the ledger "
                    "and makes re-runs replay instead of spending twice)"
                )
        return execute(self, audit=audit, budget=budget, release_id=release_id)


# --------------------------------------------------------------------------- stage rules


def _check_groups(join: Any, group_columns: Any) -> None:
    """The rules of :meth:`GuardedJoin.group_by` (checked by every later stage too)."""
    call = "GuardedJoin.group_by()"
    if not isinstance(join, GuardedJoin):
        raise InvalidArgumentError(
            f"a query stage needs a GuardedJoin as 'join', got {type(join).__name__}"
        )
    if not isinstance(group_columns, tuple):
        raise InvalidArgumentError(f"{call}: 'group_columns' must be a tuple of column names")
    keys = _flatten(call, group_columns)
    if not keys:
        raise InvalidArgumentError(f"{call} needs at least one column")
    for key in keys:
        join._check_output_column(call, key, "grouping on")


def _check_aggregates(join: GuardedJoin, group_columns: tuple[str, ...], aggregates: Any) -> None:
    """The rules of :meth:`GroupedJoin.agg`."""
    if not isinstance(aggregates, tuple):
        raise InvalidArgumentError("GroupedJoin.agg(): 'aggregates' must be a tuple")
    call = "GroupedJoin.agg()"
    if not aggregates:
        raise InvalidArgumentError(f"{call} needs at least one aggregate, e.g. agg.count()")
    for item in aggregates:
        if not isinstance(item, Aggregate):
            raise NotAllowedError(
                f"{call}: only cleanjoin.agg aggregates are allowed, got "
                f"{type(item).__name__}; raw Column and SQL string expressions bypass the "
                "guard (use agg.count(), agg.sum(...), agg.mean(...), ...)"
            )
    from pyspark.sql.types import BooleanType, NumericType

    for item in aggregates:
        if item.column is None:
            continue
        join._check_output_column(call, item.column, f"aggregating ({item.kind.value})")
        if item.kind is not AggKind.COUNT_DISTINCT:
            dtype = join._dtype(item.column)
            if not isinstance(dtype, NumericType | BooleanType):
                raise UnsupportedColumnTypeError(
                    f"{call}: agg.{item.kind.value}({item.column!r}) needs a numeric "
                    f"column, got {dtype.simpleString()}"
                )
    names = [a.output_name for a in aggregates]
    taken = {c.lower() for c in group_columns}
    for name in names:
        if name.lower() in taken:
            raise InvalidArgumentError(
                f"{call}: output column {name!r} is used twice (group columns "
                f"{list(group_columns)}, aggregates {names}); give each a distinct "
                ".alias()"
            )
        taken.add(name.lower())
        if _is_token_name(name):
            raise NotAllowedError(
                f"{call}: output name {name!r} ends in '_token'; released columns cannot "
                "look like tokens"
            )
        if name.lower().startswith("__cj_"):
            raise InvalidArgumentError(f"{call}: output names starting with '__cj_' are reserved")


def _check_unit(join: GuardedJoin, group_columns: tuple[str, ...], column: Any) -> None:
    """The rules of :meth:`AggregatedJoin.privacy_unit`."""
    call = "privacy_unit()"
    if not isinstance(column, str) or not column:
        raise InvalidArgumentError(f"{call}: 'column' must be a non-empty column name")
    if column not in join.keys:
        side = join._side_of(column)
        if side is None:
            raise ColumnNotFoundError(
                f"{call}: column {column!r} is in neither input ({join._columns()})"
            )
        if side == "both":
            raise SchemaMismatchError(
                f"{call}: column {column!r} is on both sides; rename it on one side"
            )
    if column.lower() in {c.lower() for c in group_columns}:
        raise NotAllowedError(
            f"{call}: the privacy unit {column!r} is also a group column; each group would "
            "be one person"
        )
