"""The aggregates a guarded query may release: ``count``, ``count_distinct``, ``sum``,
``mean``, ``variance`` and ``stddev``, each with optional clamping ``bounds``.

Anything that can release one person's value is refused with a clear error: ``min``,
``max``, percentiles and ``median``, ``first``/``last``, ``collect_*`` and raw
expressions. Aggregates are plain frozen descriptions; the guard (and the DP engine)
turn them into Spark expressions.

Example:
    >>> from cleanjoin import agg
    >>> a = agg.mean("confirmed_fraud_flag", bounds=(0, 1)).alias("outcome_rate")
    >>> (a.kind.value, a.column, a.bounds, a.output_name)
    ('mean', 'confirmed_fraud_flag', (0.0, 1.0), 'outcome_rate')
    >>> agg.count().output_name
    'count'
    >>> agg.max("txn_count_1h")
    Traceback (most recent call last):
    ...
    cleanjoin.errors.NotAllowedError: agg.max is not allowed in a guarded query: it releases a single record's value. Allowed aggregates: count, count_distinct, sum, mean, variance, stddev.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from cleanjoin._choice import parse_choice
from cleanjoin.errors import InvalidArgumentError, NotAllowedError

__all__ = [
    "ALLOWED",
    "AggKind",
    "Aggregate",
    "count",
    "count_distinct",
    "mean",
    "stddev",
    "sum",
    "variance",
]

ALLOWED = ("count", "count_distinct", "sum", "mean", "variance", "stddev")

_REFUSED = {
    "min": "it releases a single record's value",
    "max": "it releases a single record's value",
    "first": "it releases a single record's value",
    "last": "it releases a single record's value",
    "any_value": "it releases a single record's value",
    "mode": "it releases a single record's value",
    "median": "a quantile can release a single record's value",
    "percentile": "a quantile can release a single record's value",
    "percentile_approx": "a quantile can release a single record's value",
    "approx_percentile": "a quantile can release a single record's value",
    "quantile": "a quantile can release a single record's value",
    "percentile_cont": "a quantile can release a single record's value",
    "percentile_disc": "a quantile can release a single record's value",
    "first_value": "it releases a single record's value",
    "last_value": "it releases a single record's value",
    "min_by": "it releases a single record's value",
    "max_by": "it releases a single record's value",
    "collect_list": "it releases raw records",
    "collect_set": "it releases raw records",
    "array_agg": "it releases raw records",
    "listagg": "it releases raw records",
    "string_agg": "it releases raw records",
    "expr": "raw expressions bypass the guard",
    "raw": "raw expressions bypass the guard",
}


class AggKind(Enum):
    """The kind of an allowed aggregate. ``AggKind("mean")`` accepts the string alias."""

    COUNT = "count"
    COUNT_DISTINCT = "count_distinct"
    SUM = "sum"
    MEAN = "mean"
    VARIANCE = "variance"
    STDDEV = "stddev"

    @classmethod
    def parse(cls, value: AggKind | str) -> AggKind:
        """Accept an ``AggKind`` or its string alias, with a precise error otherwise."""
        if isinstance(value, AggKind):
            return value
        reason = _refusal(str(value).lower())
        if reason is not None:
            raise NotAllowedError(
                f'Aggregate "{value}" is not allowed in a guarded query: {reason}. '
                f"Allowed aggregates: {', '.join(ALLOWED)}."
            )
        return parse_choice(cls, value, what="aggregate")


@dataclass(frozen=True)
class Aggregate:
    """One allowed aggregate.

    Attributes:
        kind: what is computed.
        column: the input column (``None`` for ``count``).
        bounds: optional ``(lower, upper)`` clamp applied to each value before
            aggregating; required by differential privacy for value aggregates.
        name: output column name (set with :meth:`alias`); defaults to the kind's name,
            or ``<kind>_<column>``.
    """

    kind: AggKind
    column: str | None = None
    bounds: tuple[float, float] | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", AggKind.parse(self.kind))
        if self.kind is AggKind.COUNT:
            if self.column is not None or self.bounds is not None:
                raise InvalidArgumentError("agg.count() takes no column and no bounds")
            return
        if not isinstance(self.column, str) or not self.column:
            raise InvalidArgumentError(
                f"agg.{self.kind.value}(): 'column' must be a non-empty column name"
            )
        if self.bounds is not None:
            if self.kind is AggKind.COUNT_DISTINCT:
                raise InvalidArgumentError("agg.count_distinct(): 'bounds' is not accepted")
            lo, hi = self.bounds
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
                raise InvalidArgumentError(
                    f"agg.{self.kind.value}({self.column!r}): 'bounds' must be finite with "
                    f"lower <= upper, got ({lo}, {hi})"
                )
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise InvalidArgumentError("Aggregate.alias(): 'name' must be a non-empty string")

    def alias(self, name: str) -> Aggregate:
        """A copy of this aggregate with output column ``name``."""
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError("Aggregate.alias(): 'name' must be a non-empty string")
        return replace(self, name=name)

    @property
    def output_name(self) -> str:
        """The output column name."""
        if self.name is not None:
            return self.name
        if self.column is None:
            return self.kind.value
        return f"{self.kind.value}_{self.column}"

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly description (for reports, contracts and audit entries)."""
        return {
            "name": self.output_name,
            "kind": self.kind.value,
            "column": self.column,
            "bounds": list(self.bounds) if self.bounds is not None else None,
        }


def _bounds(bounds: tuple[float, float] | None) -> tuple[float, float] | None:
    if bounds is None:
        return None
    try:
        lo, hi = bounds
        return (float(lo), float(hi))
    except (TypeError, ValueError):
        raise InvalidArgumentError("'bounds' must be a pair (lower, upper) of numbers") from None


def count() -> Aggregate:
    """Number of joined rows in the group."""
    return Aggregate(AggKind.COUNT)


def count_distinct(column: str) -> Aggregate:
    """Number of distinct values of a (non-token) column in the group."""
    return Aggregate(AggKind.COUNT_DISTINCT, column)


def sum(column: str, *, bounds: tuple[float, float] | None = None) -> Aggregate:
    """Sum of ``column``, each value clamped to ``bounds`` when given."""
    return Aggregate(AggKind.SUM, column, _bounds(bounds))


def mean(column: str, *, bounds: tuple[float, float] | None = None) -> Aggregate:
    """Mean of ``column``, each value clamped to ``bounds`` when given."""
    return Aggregate(AggKind.MEAN, column, _bounds(bounds))


def variance(column: str, *, bounds: tuple[float, float] | None = None) -> Aggregate:
    """Population variance of ``column``, each value clamped to ``bounds`` when given."""
    return Aggregate(AggKind.VARIANCE, column, _bounds(bounds))


def stddev(column: str, *, bounds: tuple[float, float] | None = None) -> Aggregate:
    """Population standard deviation of ``column``, values clamped to ``bounds`` when given."""
    return Aggregate(AggKind.STDDEV, column, _bounds(bounds))


def __getattr__(name: str) -> Any:
    if name.startswith("_"):
        raise AttributeError(f"module 'cleanjoin.agg' has no attribute {name!r}")
    reason = _refusal(name)
    if reason is None and _is_spark_function(name):
        reason = "only the allowed aggregates are released"
    if reason is not None:

        def refused(*_args: Any, **_kwargs: Any) -> Aggregate:
            raise NotAllowedError(
                f"agg.{name} is not allowed in a guarded query: {reason}. "
                f"Allowed aggregates: {', '.join(ALLOWED)}."
            )

        return refused
    raise AttributeError(f"module 'cleanjoin.agg' has no attribute {name!r}")


def _refusal(name: str) -> str | None:
    """Why the aggregate ``name`` is refused, or ``None`` if this list does not refuse it."""
    if name in _REFUSED:
        return _REFUSED[name]
    return "it releases raw records" if name.startswith("collect_") else None


def _is_spark_function(name: str) -> bool:
    """True when ``name`` is a function of ``pyspark.sql.functions`` (e.g. ``kurtosis``):
    asking cleanjoin.agg for it is asking for an aggregate that is not allowed."""
    import pyspark.sql.functions as spark_functions

    return callable(getattr(spark_functions, name, None))
