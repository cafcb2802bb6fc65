"""Refinement differencing across threshold releases (the refinement guard).

A threshold release recorded in the collaboration's ledger (see
:meth:`cleanjoin.budget.BudgetLedger.threshold_releases`) is public. A later release over
the same inputs and filters (:func:`scope_fingerprint`) whose grouping is finer or coarser
than one of the earlier release's grouping sets yields subtractions: an earlier released
cell minus the new release's released sub-cells (or a new cell minus the earlier released
sub-cells) is the count of the sub-cells that were not released. The guard treats the
earlier released cells, projected on the new grouping, like released margins of the new
release, and suppresses more of the new cells until, for every such pair of sets:

* **refinement** (an earlier set ``S`` strictly inside a new set ``T``): for every earlier
  released cell, the distinct units in its not-released sub-cells of ``T`` number 0 or at
  least the minimum cohort (else its released sub-cell with the smallest cohort is
  suppressed too: a released cell holds at least the cohort, so one is always enough);
* **coarsening** (a new set ``T`` strictly inside an earlier set ``S``): every released
  new cell has 0 or at least the cohort of distinct units outside the earlier release's
  released sub-cells of ``S`` (else the new cell is suppressed).

Distinct units are counted on the joined rows (a person in several sub-cells counts
once), with the cohort's definition (the smaller of distinct units and distinct join
keys). The within-release secondary suppression (:mod:`cleanjoin.guard._suppress`) is then
run again with the extra cells suppressed, to a fixed point
(:func:`cleanjoin.guard._margins.release`). Cells are indices; nothing here logs, raises
or returns a group value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from functools import reduce
from typing import TYPE_CHECKING, cast

from cleanjoin._spark import functions_for
from cleanjoin._typing import Column, DataFrame
from cleanjoin.contract import GROUPING_COLUMN
from cleanjoin.errors import LedgerTampered
from cleanjoin.guard._join import build_plan
from cleanjoin.guard._margins import grouping_id
from cleanjoin.guard._observe import q
from cleanjoin.guard._query import Query
from cleanjoin.guard._suppress import Cell, canonical_order, key_part

if TYPE_CHECKING:
    from cleanjoin.budget import BudgetLedger, ThresholdRelease

__all__ = ["SCOPE_KEYS", "Earlier", "RefinementGuard", "earlier_releases", "scope_fingerprint"]

SCOPE_KEYS = (
    "format", "on", "consent", "revocations", "policy_fingerprint", "token_keys",
    "person_columns",
)
"""The keys of a query description (:meth:`Query.describe`) that say which joined rows a
release is computed from: two releases are over "the same inputs and filters" when these
are equal (see ``docs/disclosure.md``)."""


def scope_fingerprint(query: Query) -> str:
    """SHA-256 (hex) of the :data:`SCOPE_KEYS` part of the query's description.

    Example:
        >>> len(scope_fingerprint(ready.to_query()))  # doctest: +SKIP
        64
    """
    described = query.describe()
    scope = {k: described.get(k) for k in SCOPE_KEYS}
    text = json.dumps(scope, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, eq=False)
class Earlier:
    """The released cells of one grouping set of an earlier threshold release.

    Attributes:
        columns: the set's columns (in the earlier release's group-column order).
        keys: the released cells' keys (values in ``columns`` order, NaN normalized).
        frame: the released cells' keys as a DataFrame with ``columns``.
    """

    columns: tuple[str, ...]
    keys: frozenset[tuple[Hashable, ...]]
    frame: DataFrame = field(repr=False)


def _sets(group_by: Sequence[str], sets: Sequence[Sequence[str]] | None) -> list[tuple[str, ...]]:
    return [tuple(group_by)] if sets is None else [tuple(s) for s in sets]


def earlier_releases(
    query: Query,
    budget: BudgetLedger,
    release_id: str,
    scope: str,
    records: Sequence[ThresholdRelease],
) -> list[Earlier]:
    """The released cells of the earlier threshold releases ``records`` of ``budget``
    (read from its verified chain) over the same scope whose grouping sets are strictly
    finer or coarser than a set of ``query``.

    Raises:
        LedgerTampered: the ledger does not verify, or an earlier release's stored rows
            are not the ones it recorded.
    """
    from cleanjoin.audit import content_hash

    spark = query.left.sparkSession
    new_sets = [frozenset(s) for s in _sets(query.group_columns, query.grouping_sets)]
    out: list[Earlier] = []
    for record in records:
        if record.release_id == release_id or record.scope != scope:
            continue
        if any(query.schemas.side_of(c) in (None, "both") for c in record.group_by):
            continue  # a column the inputs do not have: another data set
        sets = _sets(record.group_by, record.grouping_sets)
        wanted = [s for s in sets if any(frozenset(s) < t or t < frozenset(s) for t in new_sets)]
        if not wanted:
            continue
        stored = budget.load_release(record.release_id, spark=spark)
        if stored is None or content_hash(stored) != record.content_hash:
            raise LedgerTampered(
                f"run(): the stored rows of threshold release {record.release_id!r} are "
                "missing or not the ones the ledger recorded; the refinement guard cannot "
                "check this release against them"
            )
        for s in wanted:
            frame = stored
            if record.grouping_sets is not None:
                gid = grouping_id(record.group_by, s)
                frame = frame.where(functions_for(frame).col(GROUPING_COLUMN) == gid)
            frame = frame.select(*(q(c) for c in s))
            keys = frozenset(tuple(key_part(v) for v in r) for r in frame.collect())
            out.append(Earlier(tuple(s), keys, frame))
    return out


class RefinementGuard:
    """The extra suppressions of a release against earlier releases (see the module).

    Called with the release's cells and the cells suppressed so far; returns the cells
    to suppress as well (possibly empty). Spark jobs: one per (earlier set, new set) pair
    and call for refinements with small hidden sub-cells, one per pair in all for
    coarsenings.

    Args:
        query: the new release's query.
        tokens: its revoked tokens (as the run loaded them), or ``None``.
        earlier: the earlier releases' sets (:func:`earlier_releases`).
    """

    def __init__(self, query: Query, tokens: DataFrame | None, earlier: Sequence[Earlier]) -> None:
        self._query = query
        self._earlier = list(earlier)
        self._threshold = query.threshold
        self._new_sets = _sets(query.group_columns, query.grouping_sets)
        self._tokens = tokens
        self._rows: DataFrame | None = None
        self._plan_unit: tuple[str, str] = ("", "")
        self._outside: dict[tuple[int, int], dict[tuple[Hashable, ...], int]] = {}

    def _joined(self) -> DataFrame:
        """The joined rows with every group column of both releases (built once)."""
        if self._rows is None:
            cols = list(self._query.group_columns)
            for e in self._earlier:
                cols += [c for c in e.columns if c not in cols]
            plain = replace(
                self._query, group_columns=tuple(cols), aggregates=(), grouping_sets=None,
                dominance=None, p_percent=None, max_dimension_values=None,
            )
            plan = build_plan(plain, self._tokens, mode=None)
            self._rows = plan.joined
            self._plan_unit = (plan.unit, plan.key)
        return self._rows

    def _cohort(self, df: DataFrame) -> Column:
        F = functions_for(df)
        unit, key = self._plan_unit
        units = F.countDistinct(F.col(q(unit)))
        if unit != key:
            units = F.least(units, F.countDistinct(F.col(q(key))))
        return cast("Column", units.alias("__cj_rest"))

    def _matching(self, rows: DataFrame, keys: DataFrame, columns: Sequence[str], how: str) -> DataFrame:
        """``rows`` semi- or anti-joined with ``keys`` on ``columns``, null-safe."""
        F = functions_for(rows)
        renamed = keys.select(*(F.col(q(c)).alias(f"__cj_r{i}") for i, c in enumerate(columns)))
        condition = reduce(
            lambda a, b: a & b,
            [F.col(q(c)).eqNullSafe(F.col(f"__cj_r{i}")) for i, c in enumerate(columns)],
        )
        return rows.join(F.broadcast(renamed), condition, how)

    def _rest(self, df: DataFrame, columns: Sequence[str]) -> dict[tuple[Hashable, ...], int]:
        F = functions_for(df)
        grouped = df.groupBy(*(F.col(q(c)) for c in columns)).agg(self._cohort(df))
        width = len(columns)
        return {
            tuple(key_part(v) for v in r[:width]): int(r[width] or 0) for r in grouped.collect()
        }

    def __call__(self, cells: Sequence[Cell], suppressed: frozenset[int]) -> frozenset[int]:
        group = self._query.group_columns
        rank = {i: n for n, i in enumerate(canonical_order(cells))}
        extra: set[int] = set()
        for t_cols in self._new_sets:
            gid = grouping_id(group, t_cols)
            members = [i for i, c in enumerate(cells) if c.gid == gid]
            for e_index, e in enumerate(self._earlier):
                s, t = frozenset(e.columns), frozenset(t_cols)
                if s < t:
                    extra |= self._refine(cells, members, e.columns, e.keys, t_cols,
                                          suppressed | extra, rank)
                elif t < s:
                    extra |= self._coarsen(cells, members, e, e_index, t_cols, gid, suppressed | extra)
        return frozenset(extra - suppressed)

    def within(self, cells: Sequence[Cell], suppressed: frozenset[int]) -> frozenset[int]:
        """The extra suppressions a release with margins needs against its own margins.

        The secondary suppression keeps every single suppressed cell from being
        recomputed; a released margin cell minus its released sub-cells still gives the
        union of its suppressed sub-cells. For every pair of the release's grouping sets
        ``S`` strictly inside ``T`` and every released cell of ``S``, the distinct units
        in its suppressed sub-cells of ``T`` must number 0 or at least the cohort, as
        across releases (else its released sub-cell with the smallest cohort is
        suppressed too). Called with the cells suppressed so far; returns the cells to
        suppress as well (possibly empty).
        """
        group = self._query.group_columns
        rank = {i: n for n, i in enumerate(canonical_order(cells))}
        extra: set[int] = set()
        for s_cols in self._new_sets:
            s_gid = grouping_id(group, s_cols)
            for t_cols in self._new_sets:
                if not frozenset(s_cols) < frozenset(t_cols):
                    continue
                hidden = suppressed | extra
                released = frozenset(
                    self._project(c.key, s_cols)
                    for i, c in enumerate(cells) if c.gid == s_gid and i not in hidden
                )
                if not released:
                    continue
                t_gid = grouping_id(group, t_cols)
                members = [i for i, c in enumerate(cells) if c.gid == t_gid]
                extra |= self._refine(cells, members, tuple(s_cols), released, t_cols,
                                      hidden, rank)
        return frozenset(extra - suppressed)

    def _project(self, key: tuple[Hashable, ...], columns: Sequence[str]) -> tuple[Hashable, ...]:
        group = self._query.group_columns
        return tuple(key_part(key[group.index(c)]) for c in columns)

    def _refine(
        self,
        cells: Sequence[Cell],
        members: Sequence[int],
        columns: tuple[str, ...],
        keys: frozenset[tuple[Hashable, ...]],
        t_cols: Sequence[str],
        suppressed: frozenset[int] | set[int],
        rank: dict[int, int],
    ) -> set[int]:
        children: dict[tuple[Hashable, ...], list[int]] = {}
        for i in members:
            parent = self._project(cells[i].key, columns)
            if parent in keys:
                children.setdefault(parent, []).append(i)
        pending: dict[tuple[Hashable, ...], list[int]] = {}
        for parent, kids in children.items():
            hidden = [i for i in kids if i in suppressed]
            # a hidden sub-cell with a full cohort (dominance) already makes the rest large
            if hidden and all(cells[i].units < self._threshold for i in hidden):
                pending[parent] = hidden
        if not pending:
            return set()
        rows = self._joined()
        hidden_keys = [tuple(cells[i].key[self._query.group_columns.index(c)] for c in t_cols)
                       for kids in pending.values() for i in kids]
        schema = rows.select(*(q(c) for c in t_cols)).schema
        hidden_frame = rows.sparkSession.createDataFrame(hidden_keys, schema=schema)
        rest = self._rest(self._matching(rows, hidden_frame, t_cols, "left_semi"), columns)
        out: set[int] = set()
        for parent in pending:
            n = rest.get(parent, 0)
            if 0 < n < self._threshold:
                open_ = [i for i in children[parent] if i not in suppressed]
                if open_:
                    out.add(min(open_, key=lambda i: (cells[i].units, rank[i])))
        return out

    def _coarsen(
        self,
        cells: Sequence[Cell],
        members: Sequence[int],
        e: Earlier,
        e_index: int,
        t_cols: Sequence[str],
        gid: int,
        suppressed: frozenset[int] | set[int],
    ) -> set[int]:
        cache = (e_index, gid)
        if cache not in self._outside:
            rows = self._joined()
            outside = self._matching(rows, e.frame, e.columns, "left_anti")
            self._outside[cache] = self._rest(outside, t_cols)
        rest = self._outside[cache]
        out: set[int] = set()
        for i in members:
            if i in suppressed:
                continue
            n = rest.get(self._project(cells[i].key, t_cols), 0)
            if 0 < n < self._threshold:
                out.add(i)
        return out
