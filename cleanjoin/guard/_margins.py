"""Margins: a release over several grouping sets (``rollup()`` or ``grouping_sets=``).

* :func:`grouping_sets` checks and normalizes what the builder was given: each set a
  subset of the group columns, in their order, the finest set (every group column)
  included, no set twice; the sets are sorted by grouping id.
* :func:`expand` gives each joined row once per grouping set, with the set's grouping id
  (``__cj_gid``) and the rolled-up columns null: grouping by the group columns and the id
  is then one aggregation over every set, on both plan paths of
  :mod:`cleanjoin.guard._plan` (Spark's own ``GROUPING SETS`` is this Expand operator; the
  explicit form keeps the bitset path's block column in every set, and runs on Spark 3.5,
  whose DataFrame API has no ``groupingSets``). A unit's rows carry the same id in every
  set, so distinct units per cell are exact on the bitset path and conservative on the
  hashed one, as for a plain ``group_by``.
* :func:`release` collects the small table of cells (keys, cohorts, aggregates) to the
  driver, applies the cohort rule to every cell of every set, chooses the secondary
  suppressions (:mod:`cleanjoin.guard._suppress`) and releases the rest, with the marker
  column :data:`~cleanjoin.contract.GROUPING_COLUMN` (``grouping_id``, an ``int``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cleanjoin._spark import functions_for
from cleanjoin._typing import DataFrame
from cleanjoin.contract import GROUPING_COLUMN
from cleanjoin.errors import InvalidArgumentError
from cleanjoin.guard._observe import q
from cleanjoin.guard._query import Query
from cleanjoin.guard._suppress import Cell, secondary_suppression

__all__ = [
    "GID",
    "GROUPING_COLUMN",
    "Refine",
    "check_stage_sets",
    "expand",
    "group_keys",
    "grouping_id",
    "grouping_sets",
    "release",
    "rollup_sets",
]

GID = "__cj_gid"
"""The internal column of a row's grouping id, renamed to ``grouping_id`` on release."""

_MAX_COLUMNS = 30  # grouping ids are ints


def grouping_id(group_columns: Sequence[str], grouping_set: Sequence[str]) -> int:
    """Spark's ``grouping_id()`` of a set: bit ``n - 1 - i`` set when the ``i``-th of the
    ``n`` group columns is not in the set.

    Example:
        >>> grouping_id(("a", "b", "c"), ("a",))
        3
    """
    n = len(group_columns)
    return sum(1 << (n - 1 - i) for i, c in enumerate(group_columns) if c not in grouping_set)


def rollup_sets(group_columns: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """The grouping sets of a rollup: every prefix of the group columns, longest first.

    Example:
        >>> rollup_sets(("a", "b"))
        (('a', 'b'), ('a',), ())
    """
    cols = tuple(group_columns)
    return tuple(cols[:k] for k in range(len(cols), -1, -1))


def grouping_sets(call: str, group_columns: Sequence[str], sets: Any) -> tuple[tuple[str, ...], ...]:
    """``sets`` checked against the group columns and normalized (columns in the group
    columns' order, sets by grouping id: the finest first).

    Raises:
        InvalidArgumentError: not a list of column lists, a column that is not a group
            column or is named twice in a set, a set given twice, the finest set missing,
            a group column in no set, or more than 30 group columns.

    Example:
        >>> grouping_sets("group_by()", ("a", "b"), [(), ["a", "b"], ("b",)])
        (('a', 'b'), ('b',), ())
    """
    cols = tuple(group_columns)
    if isinstance(sets, str | bytes) or not isinstance(sets, Sequence) or not sets:
        raise InvalidArgumentError(
            f"{call}: 'grouping_sets' must be a non-empty list of column lists, e.g. "
            "[('a', 'b'), ('a',), ()]"
        )
    if len(cols) > _MAX_COLUMNS:
        raise InvalidArgumentError(
            f"{call}: margins allow at most {_MAX_COLUMNS} group columns, got {len(cols)}"
        )
    out: dict[int, tuple[str, ...]] = {}
    for item in sets:
        if isinstance(item, str | bytes) or not isinstance(item, Sequence):
            raise InvalidArgumentError(
                f"{call}: each grouping set must be a tuple or list of column names, got "
                f"{type(item).__name__} (write a one-column set as ('a',))"
            )
        names = list(item)
        for name in names:
            if not isinstance(name, str) or name not in cols:
                shown = repr(name) if isinstance(name, str) else type(name).__name__
                raise InvalidArgumentError(
                    f"{call}: grouping set column {shown} is not a group column {list(cols)}"
                )
        if len(set(names)) != len(names):
            raise InvalidArgumentError(f"{call}: a grouping set names a column twice: {names}")
        gid = grouping_id(cols, names)
        if gid in out:
            raise InvalidArgumentError(
                f"{call}: grouping set {[c for c in cols if c in names]} is given twice"
            )
        out[gid] = tuple(c for c in cols if c in names)
    if 0 not in out:
        raise InvalidArgumentError(
            f"{call}: 'grouping_sets' must include the finest set {list(cols)} (every group "
            "column): the margins are checked against its cells"
        )
    return tuple(out[g] for g in sorted(out))


def check_stage_sets(group_columns: tuple[str, ...], sets: Any) -> None:
    """The grouping sets of a builder stage: ``None``, or normalized sets of its group columns."""
    if sets is None:
        return
    call = "GuardedJoin.group_by()"
    if grouping_sets(call, group_columns, sets) != sets:
        raise InvalidArgumentError(
            f"{call}: 'grouping_sets' must be set with group_by(grouping_sets=...) or rollup()"
        )
    if GROUPING_COLUMN in group_columns:
        raise InvalidArgumentError(
            f"{call}: with margins the output column {GROUPING_COLUMN!r} is the margin "
            "marker; rename the group column"
        )


def group_keys(query: Query) -> tuple[str, ...]:
    """The columns the plan groups by: the group columns, and the grouping id with margins."""
    if query.grouping_sets is None:
        return query.group_columns
    return (*query.group_columns, GID)


def expand(df: DataFrame, query: Query) -> DataFrame:
    """``df`` with each row once per grouping set of ``query`` (itself without margins)."""
    sets = query.grouping_sets
    if sets is None:
        return df
    F = functions_for(df)
    cols = query.group_columns
    gids = [grouping_id(cols, s) for s in sets]
    out = df.withColumn(GID, F.explode(F.array(*(F.lit(g) for g in gids))))
    n = len(cols)
    for i, name in enumerate(cols):
        kept = F.col(GID).bitwiseAND(F.lit(1 << (n - 1 - i))) == F.lit(0)
        # a rolled-up column is null (of its own type): when without otherwise
        out = out.withColumn(name, F.when(kept, F.col(q(name))))
    return out


Refine = Callable[[Sequence[Cell], frozenset[int]], frozenset[int]]
"""Given a release's cells and those suppressed so far, the cells to suppress as well
(the refinement guard, :class:`cleanjoin.guard._refine.RefinementGuard`)."""


def release(
    grouped: DataFrame,
    query: Query,
    units: str,
    sensitive: str | None = None,
    refine: Refine | None = None,
    within: Refine | None = None,
) -> tuple[DataFrame, int, int, int, int, int]:
    """The released rows of a query with margins, the cells released, suppressed by the
    cohort rule (primary) and suppressed so that no suppressed cell can be recomputed
    (secondary), the cells that reach the cohort but are sensitive under the
    dominance or p % rules (column ``sensitive``, if given: suppressed as primary ones),
    and the cells suppressed by ``refine`` (the refinement guard, if given: suppressed as
    primary ones, then the secondary suppression runs again, to a fixed point). The cells
    ``within`` adds (:meth:`cleanjoin.guard._refine.RefinementGuard.within`: no released
    margin cell minus its released sub-cells gives fewer than the cohort) join the same
    fixed point and are counted as secondary suppressions.

    ``grouped`` has one row per cell (``group_keys(query)``, the cohort in ``units`` and
    the aggregates); it is computed once, by collecting it: the table of cells is small,
    and the secondary suppression is a function of all of it.
    """
    cols = query.group_columns
    names = [*cols, GID, *(a.output_name for a in query.aggregates)]
    extra = [q(units)] if sensitive is None else [q(units), q(sensitive)]
    table = grouped.select(*(q(c) for c in names), *extra)
    rows = table.collect()
    width = len(cols)
    tail = len(extra)
    unit_at = len(names)
    dominated = 0
    cells = []
    for r in rows:
        n = int(r[unit_at] or 0)
        if sensitive is not None and r[unit_at + 1] and n >= query.threshold:
            dominated += 1
            n = 0  # suppressed like a cell below the cohort
        cells.append(Cell(int(r[width]), tuple(r[:width]), n))
    outcome = secondary_suppression(cells, threshold=query.threshold)
    forced: set[int] = set()
    complements: set[int] = set()
    while refine is not None or within is not None:
        more = set() if refine is None else refine(cells, outcome.suppressed) - outcome.suppressed
        hidden = outcome.suppressed | more
        also = set() if within is None else within(cells, frozenset(hidden)) - hidden
        if not more and not also:
            break
        forced |= more
        complements |= also
        marked = [Cell(c.gid, c.key, 0) if i in forced or i in complements else c
                  for i, c in enumerate(cells)]
        outcome = secondary_suppression(marked, threshold=query.threshold)
    hidden = outcome.suppressed
    F = functions_for(grouped)
    schema = type(table.schema)(table.schema.fields[:-tail])
    kept = [tuple(r[:-tail]) for i, r in enumerate(rows) if i not in hidden]
    df = grouped.sparkSession.createDataFrame(kept, schema=schema)
    df = df.withColumnRenamed(GID, GROUPING_COLUMN).withColumn(
        GROUPING_COLUMN, F.col(GROUPING_COLUMN).cast("int")
    )
    primary = len(outcome.primary) - dominated - len(forced) - len(complements)
    secondary = len(outcome.secondary) + len(complements)
    return df, len(kept), primary, secondary, dominated, len(forced)
