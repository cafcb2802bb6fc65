"""Checks of a DP query against the schema only, before any budget is spent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cleanjoin._typing import DataFrame
from cleanjoin.agg import AggKind, Aggregate
from cleanjoin.dp._params import DPParams, _is_int
from cleanjoin.errors import (
    ColumnNotFoundError,
    ConfigurationError,
    InvalidArgumentError,
    NotAllowedError,
    UnsupportedColumnTypeError,
)

_NUMERIC = ("byte", "short", "int", "long", "float", "double", "decimal", "tinyint",
            "smallint", "bigint", "integer")


def validate_dp_query(
    joined: DataFrame,
    *,
    unit: str,
    group_by: Sequence[str],
    aggregates: Sequence[Aggregate],
    params: DPParams,
    min_cohort: int,
    public_groups: Any = None,
) -> None:
    """Check a DP query against the schema only (no Spark job), before any budget is spent.

    :func:`dp_aggregate` calls it first; the guard calls it before charging a ledger.

    Raises:
        ColumnNotFoundError: a named column is missing.
        NotAllowedError: grouping on the privacy unit, or ``count_distinct`` of a
            column other than the privacy unit (pipeline_dp has no private
            count-distinct; of the unit it is pipeline_dp's ``PRIVACY_ID_COUNT``).
        ConfigurationError: a value aggregate without ``bounds``; private partition
            selection (no ``public_groups``) with ``delta == 0``.
        UnsupportedColumnTypeError: a value column that is not numeric.
        InvalidArgumentError: bad ``min_cohort``, no aggregates, duplicate names.
    """
    if not isinstance(params, DPParams):
        raise InvalidArgumentError("dp_aggregate(): 'params' must be a DPParams")
    if not _is_int(min_cohort) or min_cohort < 0:
        raise InvalidArgumentError(
            f"dp_aggregate(): 'min_cohort' must be an integer >= 0, got {min_cohort!r}"
        )
    if isinstance(group_by, str):
        raise InvalidArgumentError("dp_aggregate(): 'group_by' must be a sequence of column names")
    if not aggregates:
        raise InvalidArgumentError("dp_aggregate(): 'aggregates' must name at least one aggregate")
    names = [a.output_name for a in aggregates]
    if len(set(names)) != len(names) or set(names) & set(group_by):
        raise InvalidArgumentError(
            f"dp_aggregate(): output column names must be unique, got {[*group_by, *names]}"
        )
    if len(set(group_by)) != len(group_by):
        raise InvalidArgumentError(f"dp_aggregate(): 'group_by' repeats a column: {list(group_by)}")
    dtypes = dict(joined.dtypes)
    for col in (unit, *group_by):
        if col not in dtypes:
            raise ColumnNotFoundError(f"dp_aggregate(): column {col!r} is not in the joined rows")
    if unit in group_by:
        raise NotAllowedError(
            f"dp_aggregate(): cannot group by the privacy unit column {unit!r}: each group "
            "would be one person"
        )
    for a in aggregates:
        if not isinstance(a, Aggregate):
            raise InvalidArgumentError("dp_aggregate(): 'aggregates' must be cleanjoin.agg aggregates")
        if a.kind is AggKind.COUNT:
            continue
        assert a.column is not None
        if a.column not in dtypes:
            raise ColumnNotFoundError(
                f"dp_aggregate(): column {a.column!r} of {a.output_name!r} is not in the joined rows"
            )
        if a.kind is AggKind.COUNT_DISTINCT:
            if a.column != unit:
                raise NotAllowedError(
                    f"agg.count_distinct({a.column!r}) is not allowed with differential privacy: "
                    f"only the count of distinct privacy units (agg.count_distinct({unit!r})) "
                    "has a bounded sensitivity"
                )
            continue
        if a.bounds is None:
            raise ConfigurationError(
                f"dp_aggregate(): agg.{a.kind.value}({a.column!r}) needs 'bounds' under "
                "differential privacy (values are clamped to them and noise is scaled by them)"
            )
        if not dtypes[a.column].startswith(_NUMERIC):
            raise UnsupportedColumnTypeError(
                f"dp_aggregate(): agg.{a.kind.value}({a.column!r}) needs a numeric column, "
                f"got {dtypes[a.column]}"
            )
    if public_groups is None and group_by and params.delta == 0:
        raise ConfigurationError(
            "dp_aggregate(): private partition selection needs 'delta' > 0; "
            "set delta (e.g. 1e-6) or give public_groups"
        )
