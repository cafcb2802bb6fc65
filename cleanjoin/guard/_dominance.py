"""Dominance and p % rules: a cell whose total is held by a few people is suppressed.

Threshold mode only (differential privacy bounds each person's influence itself). For
every sum-type aggregate (sum, mean, variance, stddev) of a cell, each privacy unit's
*contribution* is the sum of its values in the cell after clamping to the aggregate's
bounds (a boolean as 0/1). With ``c_1 >= c_2 >= ...`` the contributions' absolute values
and ``T`` their sum (the convention for negative values: magnitudes, so a large negative
contribution dominates as much as a large positive one):

* **(n, k) dominance**: the cell is sensitive when ``c_1 + ... + c_n > k * T``;
* **p %**: the cell is sensitive when ``(T - c_1 - c_2) * 100 < p * c_1`` (the rest of the
  cell estimates the largest contribution to within p %).

A cell with ``T == 0`` is never sensitive (its total says nothing about anyone); equality
is never sensitive (the rules say "more than" and "within"). A cell is sensitive when any
of its sum-type aggregates is. Aggregates on the same column with the same bounds share
one contribution.

Plan, hashed (no unit ids): the joined rows (once per grouping set with margins) grouped
by (cell, unit) give the contributions; the cell aggregation takes their total and the
``max(n, 2)`` largest with ``max_by(c, c, k)`` (Spark 4.2+, a mergeable aggregate: the
(cell, unit) rows are shuffled once), before 4.2 from a window over each cell's rows (the
largest, how many tie with it and the largest below it give the top two without a sort;
``n > 2`` ranks them with a sorted window). The per-cell flags are joined (null-safe, on
the cell keys) onto the cell table, so the cohort rule and secondary suppression read one
column (:data:`SENSITIVE`).

Plan, bitset (:mod:`cleanjoin.guard._plan`): the guarded aggregation's own first level,
one row per (cell, block of 512 unit ids), also sums each block's values and their
magnitudes; from those :func:`bound_stats` clears the cells that cannot be sensitive, and
only the others that reach the cohort (the :data:`CANDIDATE` cells, usually few) are
decided exactly as above, from another read of their rows only. On 2M provider rows
(2026-12-02, ``bench_guard``) the rules took the guarded query from 2.72 s to 5.34 s
(2.00x) when the whole first level was one row per (cell, unit) and the largest came from
a window; figures since in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from cleanjoin._compat import spark_major_minor
from cleanjoin._spark import functions_for, window_for
from cleanjoin._typing import Column, DataFrame
from cleanjoin.agg import AggKind, Aggregate
from cleanjoin.errors import InvalidArgumentError
from cleanjoin.guard._observe import q

__all__ = [
    "CANDIDATE",
    "SENSITIVE",
    "SUM_KINDS",
    "Dominance",
    "active",
    "bound_stats",
    "cell_stats",
    "check_p_percent",
    "measures",
    "stat_columns",
    "top_k_aggregate",
    "with_sensitivity",
]

SENSITIVE = "__cj_sensitive"
"""The boolean column of a cell made sensitive by the dominance or p % rule."""

SUM_KINDS = frozenset({AggKind.SUM, AggKind.MEAN, AggKind.VARIANCE, AggKind.STDDEV})
"""The aggregates whose cells the rules check."""

_UNIT = "__cj_dom_unit"
_TOP_K_SPARK = (4, 2)  # max_by(x, ord, k)
_TOP_K_MAX = 100_000  # the largest k max_by takes
_SLACK = 1 + 1e-6  # the bound's margin for rounding

CANDIDATE = "__cj_dom_candidate"
"""The boolean column of a cell that the rules might find sensitive (:func:`bound_stats`)."""


@dataclass(frozen=True)
class Dominance:
    """The (n, k) dominance rule: no ``n`` units may hold more than ``k`` of a cell's total.

    Attributes:
        n: how many of the largest contributions are added (an integer >= 1).
        k: the largest share they may hold, in ``(0, 1]``.

    Raises:
        InvalidArgumentError: ``n`` or ``k`` out of range.

    Example:
        >>> Dominance(2, 0.85).at_least_as_strict_as(Dominance(1, 0.9))
        True
    """

    n: int = 2
    k: float = 0.85

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise InvalidArgumentError(f"dominance(): 'n' must be an integer >= 1, got {self.n!r}")
        k = self.k
        if isinstance(k, bool) or not isinstance(k, int | float) or not 0 < k <= 1:
            raise InvalidArgumentError(f"dominance(): 'k' must be a number in (0, 1], got {k!r}")
        object.__setattr__(self, "k", float(k))

    def at_least_as_strict_as(self, other: Dominance) -> bool:
        """True when every cell sensitive under ``other`` is sensitive under this rule
        (more contributors added, ``n >= other.n``, and a smaller share, ``k <= other.k``)."""
        return self.n >= other.n and self.k <= other.k

    def describe(self) -> dict[str, Any]:
        """``{"n": n, "k": k}``."""
        return {"n": self.n, "k": self.k}


def check_p_percent(p: Any) -> float:
    """The p of the p % rule: a number in ``(0, 100]`` (returned as a float).

    Raises:
        InvalidArgumentError: out of range.
    """
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0 < p <= 100:
        raise InvalidArgumentError(f"p_percent(): 'p' must be a number in (0, 100], got {p!r}")
    return float(p)


def _measures(aggregates: tuple[Aggregate, ...]) -> list[Aggregate]:
    """The sum-type aggregates, one per (column, bounds)."""
    seen: dict[tuple[Any, Any], Aggregate] = {}
    for a in aggregates:
        if a.kind in SUM_KINDS and a.column is not None:
            seen.setdefault((a.column, a.bounds), a)
    return list(seen.values())


def active(query: Any) -> bool:
    """True when a query's cells are checked: a rule is set, no DP, and a sum-type aggregate."""
    rules = query.dominance is not None or query.p_percent is not None
    return rules and query.dp is None and bool(_measures(query.aggregates))


def measures(query: Any) -> list[Aggregate]:
    """The sum-type aggregates whose contributions are checked, one per (column, bounds)."""
    return _measures(query.aggregates)


def top_k_aggregate(df: DataFrame) -> bool:
    """True when ``df``'s Spark runs ``max_by(x, ord, k)`` (an array of the ``k`` values
    with the largest ``ord``, sorted in descending order: Spark 4.2 and later)."""
    line = spark_major_minor(str(df.sparkSession.version))
    return line is not None and line >= _TOP_K_SPARK


def cell_stats(
    per_unit: DataFrame, query: Any, keys: tuple[str, ...], contributions: list[str],
    *, top_k: bool | None = None,
) -> tuple[DataFrame, list[Column], Column]:
    """From rows of one (cell, unit) each with its contribution columns: those rows with
    the columns the statistics need, the cell aggregation's expressions, and the
    :data:`SENSITIVE` flag to compute from the aggregated cell row.

    The largest contributions come from ``max_by(c, c, k)`` where Spark has it (a
    mergeable aggregate: the cell aggregation's partial step keeps each cell's ``k``
    largest per task, so the (cell, unit) rows are shuffled once, by unit), else from a
    window over each cell's rows (a second shuffle of those rows, by cell, and a sort).
    ``top_k`` forces one of the two (``None``: the first where it runs)."""
    F = functions_for(per_unit)
    rule: Dominance | None = query.dominance
    n = 0 if rule is None else rule.n
    k = max(n, 2)
    if top_k is None:
        top_k = k <= _TOP_K_MAX and top_k_aggregate(per_unit)
    stats: list[Column] = []
    flags: list[Column] = []
    for i, name in enumerate(contributions):
        per_unit = per_unit.withColumn(f"__cj_abs{i}", F.abs(F.col(name).cast("double")))
        a = F.col(f"__cj_abs{i}")
        per_unit, tops = _tops(F, per_unit, keys, a, i, n, top_k=top_k)
        stats += tops
        stats.append(F.coalesce(F.sum(a), F.lit(0.0)).alias(f"__cj_t{i}"))
        total, x1c, x2c = (F.col(f"__cj_{p}{i}") for p in ("t", "x1_", "x2_"))
        top_c = F.col(f"__cj_top_{i}")
        if rule is not None:
            flags.append((total > 0) & (top_c > F.lit(rule.k) * total))
        if query.p_percent is not None:
            flags.append((total > 0) & ((total - x1c - x2c) * 100 < F.lit(query.p_percent) * x1c))
    return per_unit, stats, _any(flags)


def bound_stats(
    blocks: DataFrame, query: Any, keys: tuple[str, ...], uppers: list[str], signed: list[str],
) -> tuple[DataFrame, list[Column], Column]:
    """A cheap sufficient test, from rows of one (cell, block of units) each: the
    :data:`CANDIDATE` flag of a cell that the rules *might* find sensitive.

    For each contribution, ``uppers`` is a block's sum of absolute values (no unit of the
    block contributes more, and the block's units together no more) and ``signed`` its
    sum: the cell's total of magnitudes ``T`` is at least ``L``, the sum over blocks of
    ``|signed|``. With ``A1 >= A2 >= ...`` the blocks' ``uppers``, the ``n`` largest
    contributions lie in at most ``n`` blocks, so they add up to at most
    ``A1 + ... + An``, and ``(1 + p/100) c1 + c2 <= (1 + p/100) A1 + A2``; a cell with
    ``A1 + ... + An <= k L`` and ``(1 + p/100) A1 + A2 <= L`` (each side with a margin of
    one part in a million for rounding) is not sensitive. Only candidates need the exact
    contributions (:func:`with_sensitivity`)."""
    F = functions_for(blocks)
    rule: Dominance | None = query.dominance
    n = 0 if rule is None else rule.n
    k = max(n, 2)
    top_k = k <= _TOP_K_MAX and top_k_aggregate(blocks)
    stats: list[Column] = []
    flags: list[Column] = []
    for i, (upper, part) in enumerate(zip(uppers, signed, strict=True)):
        a = F.col(upper)
        blocks, tops = _tops(F, blocks, keys, a, i, n, top_k=top_k)
        stats += tops
        stats.append(F.coalesce(F.sum(F.abs(F.col(part))), F.lit(0.0)).alias(f"__cj_t{i}"))
        low, a1, a2 = (F.col(f"__cj_{p}{i}") for p in ("t", "x1_", "x2_"))
        slack = F.lit(_SLACK)
        if rule is not None:
            flags.append(F.col(f"__cj_top_{i}") * slack > F.lit(rule.k) * low)
        if query.p_percent is not None:
            flags.append((F.lit(1 + query.p_percent / 100) * a1 + a2) * slack > low)
    return blocks, stats, _any(flags)


def _any(flags: list[Column]) -> Column:
    flag = flags[0]
    for other in flags[1:]:
        flag = flag | other
    return flag


def _tops(
    F: Any, per_unit: DataFrame, keys: tuple[str, ...], a: Column, i: int, n: int, *, top_k: bool,
) -> tuple[DataFrame, list[Column]]:
    """The cell aggregation's largest (``__cj_x1_i``), second largest (``__cj_x2_i``) and
    ``n`` largest summed (``__cj_top_i``) of ``a``, 0 when there are none."""
    if not top_k:
        return _window_stats(F, per_unit, keys, a, i, n)
    top = _top_k(F, a, max(n, 2))
    x1 = F.coalesce(F.get(top, 0), F.lit(0.0))
    x2 = F.coalesce(F.get(top, 1), F.lit(0.0))
    if n > 2:
        head = F.slice(F.coalesce(top, F.array().cast("array<double>")), 1, n)
        total_n = F.aggregate(head, F.lit(0.0), lambda acc, x: acc + x)
    else:
        total_n = x1 if n == 1 else x1 + x2
    return per_unit, [x1.alias(f"__cj_x1_{i}"), x2.alias(f"__cj_x2_{i}"), total_n.alias(f"__cj_top_{i}")]


def _top_k(F: Any, a: Column, k: int) -> Column:
    """The ``k`` largest values of ``a`` in a group, largest first (nulls skipped; ``null``
    when all are)."""
    return cast("Column", F.call_function("max_by", a, a, F.lit(k)))


def _window_stats(
    F: Any, per_unit: DataFrame, keys: tuple[str, ...], a: Column, i: int, n: int
) -> tuple[DataFrame, list[Column]]:
    """The largest, second largest and ``n`` largest contributions of a cell from a window
    over its (cell, unit) rows: the cell's largest, how many tie with it and the largest
    below it give the top two without a sort; ``n > 2`` ranks them with a sorted window."""
    window = window_for(per_unit).partitionBy(*(F.col(q(c)) for c in keys))
    if n > 2:
        ranked = F.row_number().over(window.orderBy(a.desc_nulls_last()))
        per_unit = per_unit.withColumn(f"__cj_r{i}", ranked)
        r = F.col(f"__cj_r{i}")
        return per_unit, [
            F.coalesce(F.sum(F.when(r == 1, a)), F.lit(0.0)).alias(f"__cj_x1_{i}"),
            F.coalesce(F.sum(F.when(r == 2, a)), F.lit(0.0)).alias(f"__cj_x2_{i}"),
            F.coalesce(F.sum(F.when(r <= n, a)), F.lit(0.0)).alias(f"__cj_top_{i}"),
        ]
    per_unit = per_unit.withColumn(f"__cj_m{i}", F.max(a).over(window))
    m = F.col(f"__cj_m{i}")
    ties = F.count(F.when(a == m, F.lit(1)))
    below = F.coalesce(F.max(F.when(a < m, a)), F.lit(0.0))
    x1 = F.coalesce(F.max(a), F.lit(0.0))
    x2 = F.when(ties >= 2, x1).otherwise(below)
    return per_unit, [
        x1.alias(f"__cj_x1_{i}"), x2.alias(f"__cj_x2_{i}"),
        (x1 if n == 1 else x1 + x2).alias(f"__cj_top_{i}"),
    ]


def stat_columns(count: int) -> list[str]:
    """The names of :func:`cell_stats`' aggregated columns for ``count`` contributions."""
    return [f"__cj_{p}{i}" for i in range(count) for p in ("x1_", "x2_", "top_", "t")]


def with_sensitivity(
    grouped: DataFrame, joined: DataFrame, query: Any, keys: tuple[str, ...], unit: Column,
    value: Any,
) -> DataFrame:
    """``grouped`` (one row per cell, keyed by ``keys``) with the boolean :data:`SENSITIVE`,
    from a second aggregation of the joined rows by (cell, unit).

    Args:
        grouped: the cell table.
        joined: the joined rows, already expanded per grouping set.
        query: the query (its rules and aggregates).
        keys: the cell's key columns.
        unit: the unit of a row (an exact id, or a hash: two units sharing a hash add up,
            which can only make a cell more dominated, never less).
        value: ``value(F, aggregate, query)``, an aggregate's clamped input.
    """
    F = functions_for(joined)
    cells = [F.col(q(c)) for c in keys]
    names = [f"__cj_c{i}" for i in range(len(measures(query)))]
    contributions = [F.sum(value(F, a, query)).cast("double").alias(name)
                     for name, a in zip(names, measures(query), strict=True)]
    per_unit = joined.groupBy(*cells, unit.alias(_UNIT)).agg(*contributions)
    per_unit, stats, flag = cell_stats(per_unit, query, keys, names)
    renamed = [F.col(q(c)).alias(f"__cj_d{j}") for j, c in enumerate(keys)]
    per_cell = per_unit.groupBy(*cells).agg(*stats)
    per_cell = per_cell.select(*renamed, flag.alias(SENSITIVE))
    condition = F.col(q(keys[0])).eqNullSafe(F.col("__cj_d0"))
    for j, c in enumerate(keys[1:], start=1):
        condition = condition & F.col(q(c)).eqNullSafe(F.col(f"__cj_d{j}"))
    out = grouped.join(per_cell, on=condition, how="left")
    out = out.drop(*(f"__cj_d{j}" for j in range(len(keys))))
    return out.withColumn(SENSITIVE, F.coalesce(F.col(SENSITIVE), F.lit(False)))
