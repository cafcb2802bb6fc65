"""Secondary suppression within a release with margins: a pure function on the cells.

A release with margins (a rollup or grouping sets, see :mod:`cleanjoin.guard._margins`)
holds one cell per (grouping set, key). Its additive statistics (row counts, sums; a
released mean or variance with its count reveals them too) obey one relation per cell of
a coarser set and each finer set that covers it: *parent = sum of its child cells*.
A cell suppressed by the cohort rule (primary) could be recomputed from such relations
whose other members are released. :func:`secondary_suppression` chooses the cells to
suppress as well (secondary), in two steps, to a fixed point:

1. **Heuristic** (smallest cohort first): while some relation has exactly one suppressed
   member, suppress its released member with the smallest cohort (ties: the first cell in
   the canonical order of :func:`_order`).
2. **Exact check**: a suppressed cell is recomputable exactly when its unit vector lies in
   the row space of the relations restricted to the suppressed cells (the released cells
   are constants); this is decided by exact rational elimination, per connected group of
   suppressed cells. The heuristic alone misses some patterns (a suppressed cell that is a
   "bridge" between two blocks of suppressed cells); for the first recomputable cell found,
   the released member with the smallest cohort among the relations holding it is
   suppressed, and step 1 runs again.

Relations are taken between every grouping set and each set that *covers* it (a finer
set with no other set of the release in between; for a rollup, each level and the next;
for the full lattice, a set and the sets with one column more). The release must contain
the finest set (every group column): then these relations generate every linear relation
between the cells, so the exact check is complete. Cells are identified by their index
in the input; nothing here reads, logs or returns a value.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from cleanjoin.errors import InternalError

__all__ = [
    "Cell",
    "Suppression",
    "canonical_order",
    "key_part",
    "relations",
    "secondary_suppression",
]

_Number = int | Fraction


@dataclass(frozen=True)
class Cell:
    """One cell of a release with margins.

    Attributes:
        gid: the grouping id of the cell's set (bit ``n - 1 - i`` set when the ``i``-th of
            the ``n`` group columns is rolled up, as Spark's ``grouping_id()``).
        key: the group values, one per group column (``None`` where rolled up).
        units: the cell's cohort (distinct privacy units).
    """

    gid: int
    key: tuple[Hashable, ...]
    units: int


@dataclass(frozen=True)
class Suppression:
    """The outcome of :func:`secondary_suppression` (cell indices, never values).

    Attributes:
        primary: the cells below the minimum cohort.
        secondary: the cells suppressed so that no primary one can be recomputed.
    """

    primary: frozenset[int]
    secondary: frozenset[int]

    @property
    def suppressed(self) -> frozenset[int]:
        """Every suppressed cell."""
        return self.primary | self.secondary


def _covers(gids: Sequence[int]) -> list[tuple[int, int]]:
    """Pairs (coarse, fine) of grouping ids where ``fine`` groups by a strict superset of
    ``coarse``'s columns and no other set lies in between (bits set = columns rolled up)."""
    present = sorted(set(gids))
    pairs = []
    for coarse in present:
        for fine in present:
            if fine == coarse or fine & coarse != fine:  # fine must roll up a subset
                continue
            between = any(
                mid not in (coarse, fine) and fine & mid == fine and mid & coarse == mid
                for mid in present
            )
            if not between:
                pairs.append((coarse, fine))
    return pairs


def relations(cells: Sequence[Cell]) -> list[tuple[int, tuple[int, ...]]]:
    """The additive relations of the cells: ``(parent, children)``, cell indices.

    Raises:
        InternalError: a cell's key does not have one value per group column, or a
            child has no parent cell (the cells are not one release's).
    """
    index: dict[tuple[int, tuple[Hashable, ...]], int] = {}
    by_gid: dict[int, list[int]] = {}
    width = len(cells[0].key) if cells else 0
    for i, cell in enumerate(cells):
        if len(cell.key) != width:
            raise InternalError("secondary suppression: cells of different widths")
        index[(cell.gid, tuple(_part(v) for v in cell.key))] = i
        by_gid.setdefault(cell.gid, []).append(i)
    out: list[tuple[int, tuple[int, ...]]] = []
    for coarse, fine in _covers(list(by_gid)):
        rolled = [j for j in range(width) if coarse >> (width - 1 - j) & 1]
        children: dict[int, list[int]] = {}
        for i in by_gid[fine]:
            key = [_part(v) for v in cells[i].key]
            for j in rolled:
                key[j] = None
            parent = index.get((coarse, tuple(key)))
            if parent is None:
                raise InternalError("secondary suppression: a cell has no parent cell")
            children.setdefault(parent, []).append(i)
        out += [(p, tuple(c)) for p, c in sorted(children.items())]
    return out


_NAN = ("nan",)  # NaN as a key part: Spark groups NaN values as one value


def _part(value: Hashable) -> Hashable:
    """A key part as compared here (every NaN the same, as in Spark's grouping)."""
    return _NAN if isinstance(value, float) and value != value else value


def key_part(value: Hashable) -> Hashable:
    """A key part as cells are compared (every NaN the same, as in Spark's grouping).

    Example:
        >>> key_part(float("nan")) == key_part(float("nan"))
        True
    """
    return _part(value)


def canonical_order(cells: Sequence[Cell]) -> list[int]:
    """The cells' indices in the canonical order that breaks ties (see :func:`_canonical`).

    Example:
        >>> canonical_order([Cell(1, (None,), 3), Cell(0, ("a",), 1)])
        [1, 0]
    """
    return _canonical(cells)


def _canonical(cells: Sequence[Cell]) -> list[int]:
    """The cells' indices in the canonical order that breaks ties: by grouping id, then by
    key (nulls first, values compared by type name and text), so the outcome does not
    depend on the order the cells arrive in."""

    def sort_key(i: int) -> tuple[int, tuple[tuple[bool, str, str], ...]]:
        cell = cells[i]
        return cell.gid, tuple((v is not None, type(v).__name__, repr(v)) for v in cell.key)

    return sorted(range(len(cells)), key=sort_key)


def secondary_suppression(cells: Sequence[Cell], *, threshold: int) -> Suppression:
    """The primary and secondary suppressions of a release with margins.

    Args:
        cells: every cell of the release (all grouping sets, released or not); the
            finest set (no column rolled up, grouping id 0) must be among them.
        threshold: the minimum cohort.

    Returns:
        The cells below ``threshold`` (primary) and those suppressed so that none of them
        can be recomputed from the released cells (secondary).

    Example:
        >>> cells = [Cell(0, ("a", "x"), 5), Cell(0, ("a", "y"), 1), Cell(1, ("a", None), 6)]
        >>> s = secondary_suppression(cells, threshold=3)
        >>> sorted(s.primary), sorted(s.secondary)
        ([1], [0])
    """
    perm = _canonical(cells)  # work in the canonical order: index = rank
    outcome = _suppress([cells[i] for i in perm], threshold)
    return Suppression(
        frozenset(perm[i] for i in outcome.primary), frozenset(perm[i] for i in outcome.secondary)
    )


def _suppress(cells: Sequence[Cell], threshold: int) -> Suppression:
    """:func:`secondary_suppression` on cells in canonical order (ties: the lower index)."""
    rels = relations(cells)
    members = [(p, *c) for p, c in rels]
    of_cell: list[list[int]] = [[] for _ in cells]
    for r, group in enumerate(members):
        for i in group:
            of_cell[i].append(r)
    primary = frozenset(i for i, c in enumerate(cells) if c.units < threshold)
    suppressed = set(primary)
    hidden = [sum(1 for i in group if i in suppressed) for group in members]

    def cheapest(candidates: Sequence[int]) -> int:
        return min(candidates, key=lambda i: (cells[i].units, i))

    def suppress(i: int, queue: list[int]) -> None:
        suppressed.add(i)
        for r in of_cell[i]:
            hidden[r] += 1
            heapq.heappush(queue, r)

    queue = [r for r, n in enumerate(hidden) if n == 1]
    heapq.heapify(queue)
    while True:
        while queue:  # step 1: the heuristic, to its fixed point
            r = heapq.heappop(queue)
            if hidden[r] != 1:
                continue
            open_ = [i for i in members[r] if i not in suppressed]
            if open_:
                suppress(cheapest(open_), queue)
        exposed = _recomputable(members, suppressed)
        if not exposed:
            break
        # step 2: the heuristic's fixed point leaves recomputable cells: for each (unless
        # a relation holding it already got a new unknown in this round), open one more
        # unknown in a relation that holds it, or else in one of its block's relations
        touched: set[int] = set()
        for cell, block in exposed:
            if touched & set(of_cell[cell]):
                continue
            open_ = [i for r in of_cell[cell] for i in members[r] if i not in suppressed]
            if not open_:
                near = {r for i in block for r in of_cell[i]}
                open_ = [i for r in sorted(near) for i in members[r] if i not in suppressed]
            if not open_:  # pragma: no cover - a nonempty cell is never 0 = a sum of others
                raise InternalError(
                    "secondary suppression: a cell is fixed by suppressed cells only"
                )
            chosen = cheapest(open_)
            suppress(chosen, queue)
            touched.update(of_cell[chosen])
    return Suppression(primary, frozenset(suppressed - primary))


def _recomputable(
    members: Sequence[tuple[int, ...]], suppressed: set[int]
) -> list[tuple[int, set[int]]]:
    """The suppressed cells whose value follows from the released ones, in order, each
    with the block of suppressed cells it is connected to (empty when there is none).

    Each relation ``parent - sum(children) = 0`` restricted to the suppressed cells is one
    row (``+1`` for the parent, ``-1`` for a child); a cell is recomputable exactly when its
    unit vector is in the rows' span, i.e. when the reduced row echelon form has a row
    equal to it. The rows are reduced per connected group of suppressed cells.
    """
    rows: list[dict[int, _Number]] = []
    for group in members:
        row: dict[int, _Number] = {
            i: 1 if k == 0 else -1 for k, i in enumerate(group) if i in suppressed
        }
        if row:
            rows.append(row)
    parent = {i: i for i in suppressed}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for row in rows:
        first, *rest = row
        for i in rest:
            a, b = find(first), find(i)
            if a != b:
                parent[max(a, b)] = min(a, b)
    blocks: dict[int, list[dict[int, _Number]]] = {}
    for row in rows:
        blocks.setdefault(find(next(iter(row))), []).append(row)
    found = sorted(i for rows_ in blocks.values() for i in _fixed(rows_))
    if not found:
        return []
    members_of: dict[int, set[int]] = {}
    for i in suppressed:
        members_of.setdefault(find(i), set()).add(i)
    return [(i, members_of[find(i)]) for i in found]


def _fixed(rows: list[dict[int, _Number]]) -> list[int]:
    """The variables equal to a unit vector row of the reduced row echelon form (exact:
    integers while every pivot is +-1, as in most tables, fractions otherwise)."""
    pivots: dict[int, dict[int, _Number]] = {}  # pivot column -> its reduced row
    for original in rows:
        row = dict(original)
        # the pivot rows are reduced (zero in every other pivot column), so subtracting
        # one never brings in another pivot column: the original's pivot columns suffice
        for col in [c for c in row if c in pivots]:
            prow = pivots[col]
            factor = row.get(col)
            if factor:
                _subtract(row, prow, factor)
        if not row:
            continue
        col = min(row)
        lead = row[col]
        if lead in (1, -1):
            row = {c: v * lead for c, v in row.items()}  # 1 / lead == lead
        else:
            row = {c: Fraction(v) / lead for c, v in row.items()}
        for other in pivots.values():  # keep the form reduced
            factor = other.get(col)
            if factor:
                _subtract(other, row, factor)
        pivots[col] = row
    return [col for col, row in pivots.items() if len(row) == 1]


def _subtract(target: dict[int, _Number], source: Mapping[int, _Number], factor: _Number) -> None:
    """``target -= factor * source`` on sparse rows, dropping the entries that become 0."""
    for c, v in source.items():
        value = target.get(c, 0) - factor * v
        if value:
            target[c] = value
        else:
            target.pop(c, None)
