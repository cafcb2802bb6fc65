"""The rules the builder's stages apply, checked on :class:`InputSchemas` (no Spark job).

Each stage calls them in its ``__post_init__``, so a stage built directly (or with
``dataclasses.replace``) obeys the same rules as one reached through the builder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cleanjoin._names import is_token_name
from cleanjoin.agg import AggKind, Aggregate
from cleanjoin.consent import ConsentPolicy
from cleanjoin.errors import (
    ColumnNotFoundError,
    InvalidArgumentError,
    NotAllowedError,
    SchemaMismatchError,
    UnsupportedColumnTypeError,
)
from cleanjoin.guard._query import InputSchemas

__all__ = [
    "check_aggregates",
    "check_consent",
    "check_groups",
    "check_inputs",
    "check_output_column",
    "check_threshold",
    "check_unit",
    "flatten",
]


def _token_fields(dtype: Any, prefix: str = "") -> list[str]:
    """The paths of ``*_token`` fields nested in a struct, array or map type."""
    from pyspark.sql.types import ArrayType, MapType, StructType

    if isinstance(dtype, StructType):
        found: list[str] = []
        for fld in dtype.fields:
            path = f"{prefix}{fld.name}"
            if is_token_name(fld.name):
                found.append(path)
            found += _token_fields(fld.dataType, f"{path}.")
        return found
    if isinstance(dtype, ArrayType):
        return _token_fields(dtype.elementType, prefix)
    if isinstance(dtype, MapType):
        return _token_fields(dtype.keyType, prefix) + _token_fields(dtype.valueType, prefix)
    return []


def flatten(call: str, columns: Sequence[Any]) -> tuple[str, ...]:
    """Column names given as ``*columns`` or as one list; Column expressions are refused."""
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


def check_inputs(schemas: InputSchemas) -> None:
    """The schema rules of ``GuardedJoin``: join columns present and of one type, no
    other column on both sides, no reserved name."""
    pair = schemas.keys
    left_types = {name: dtype.simpleString() for name, dtype in schemas.left.items()}
    right_types = {name: dtype.simpleString() for name, dtype in schemas.right.items()}
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
    clash = {c for c in left_other & right_other if not is_token_name(c)}
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


def check_consent(schemas: InputSchemas, policies: tuple[Any, ...]) -> None:
    """Each consent policy is a ``ConsentPolicy`` reading columns of its own side."""
    for policy in policies:
        if not isinstance(policy, ConsentPolicy):
            raise InvalidArgumentError(
                "'consent' in GuardedJoin must hold ConsentPolicy objects, got "
                f"{type(policy).__name__}"
            )
        cols = schemas.left if policy.side == "left" else schemas.right
        missing = [c for c in policy.columns if c not in cols]
        if missing:
            raise ColumnNotFoundError(
                f"GuardedJoin: consent policy for the {policy.side} side reads column(s) "
                f"{missing}, not in the {policy.side} DataFrame"
            )


def check_output_column(schemas: InputSchemas, call: str, column: str, what: str) -> None:
    """A column may be grouped on or aggregated: not a join, token or token-holding column."""
    if column in schemas.keys:
        raise NotAllowedError(
            f"{call}: {what} the join column {column!r} is not allowed; join keys are "
            "never released"
        )
    if is_token_name(column):
        raise NotAllowedError(
            f"{call}: {what} the token column {column!r} is not allowed; tokens are "
            "never released"
        )
    if schemas.side_of(column) is None:
        raise ColumnNotFoundError(
            f"{call}: column {column!r} is in neither input ({schemas.columns()})"
        )
    nested = _token_fields(schemas.dtype(column))
    if nested:
        raise NotAllowedError(
            f"{call}: {what} {column!r} is not allowed: it holds the token field(s) "
            f"{nested}; tokens are never released"
        )


def check_groups(schemas: InputSchemas, group_columns: Any) -> None:
    """The rules of ``GuardedJoin.group_by`` (checked by every later stage too)."""
    call = "GuardedJoin.group_by()"
    if not isinstance(group_columns, tuple):
        raise InvalidArgumentError(f"{call}: 'group_columns' must be a tuple of column names")
    keys = flatten(call, group_columns)
    if not keys:
        raise InvalidArgumentError(f"{call} needs at least one column")
    for key in keys:
        check_output_column(schemas, call, key, "grouping on")


def check_aggregates(schemas: InputSchemas, group_columns: tuple[str, ...], aggregates: Any) -> None:
    """The rules of ``GroupedJoin.agg``."""
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
        check_output_column(schemas, call, item.column, f"aggregating ({item.kind.value})")
        if item.kind is not AggKind.COUNT_DISTINCT:
            dtype = schemas.dtype(item.column)
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
        if is_token_name(name):
            raise NotAllowedError(
                f"{call}: output name {name!r} ends in '_token'; released columns cannot "
                "look like tokens"
            )
        if name.lower().startswith("__cj_"):
            raise InvalidArgumentError(f"{call}: output names starting with '__cj_' are reserved")


def check_unit(schemas: InputSchemas, group_columns: tuple[str, ...], column: Any) -> None:
    """The rules of ``AggregatedJoin.privacy_unit``."""
    call = "privacy_unit()"
    if not isinstance(column, str) or not column:
        raise InvalidArgumentError(f"{call}: 'column' must be a non-empty column name")
    if column not in schemas.keys:
        side = schemas.side_of(column)
        if side is None:
            raise ColumnNotFoundError(
                f"{call}: column {column!r} is in neither input ({schemas.columns()})"
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


def check_threshold(n: Any) -> int:
    """The rule of ``min_cohort``: an integer >= 1 (returned)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidArgumentError(f"min_cohort(): 'n' must be an integer >= 1, got {n!r}")
    return n
