"""Secondary suppression (cleanjoin.guard._suppress) against brute force on small tables.

The brute force knows nothing of the algorithm's relations: the unknowns are the finest
cells' additive statistics (a count and a sum each), every cell of every grouping set is
the sum of its finest cells, and a suppressed cell is recomputable when its vector lies in
the row space of the released cells' vectors (numpy rank check). No Spark: ``fast``.
"""

from __future__ import annotations

import itertools
import random
import re
from typing import Any

import numpy as np
import pytest

from cleanjoin.errors import InvalidArgumentError
from cleanjoin.guard import _suppress
from cleanjoin.guard._margins import grouping_id, grouping_sets, rollup_sets
from cleanjoin.guard._suppress import Cell, relations, secondary_suppression

Base = dict[tuple[Any, ...], tuple[int, float]]  # finest key -> (units, sum)


def cells_of(base: Base, columns: tuple[str, ...], sets: tuple[tuple[str, ...], ...]) -> list[Cell]:
    """Every cell of every set: its units are the sum of its finest cells' units (each
    person in one finest cell)."""
    out: dict[tuple[int, tuple[Any, ...]], int] = {}
    for s in sets:
        gid = grouping_id(columns, s)
        for key, (units, _) in base.items():
            k = tuple(v if c in s else None for c, v in zip(columns, key, strict=True))
            out[(gid, k)] = out.get((gid, k), 0) + units
    return [Cell(g, k, u) for (g, k), u in out.items()]


def vectors(cells: list[Cell], base: Base, columns: tuple[str, ...]) -> np.ndarray:
    """Each cell as a 0/1 vector over the finest cells (which of them it sums)."""
    keys = sorted(base, key=repr)
    n = len(columns)
    out = np.zeros((len(cells), len(keys)))
    for i, cell in enumerate(cells):
        for j, key in enumerate(keys):
            kept = [c for c in range(n) if not cell.gid >> (n - 1 - c) & 1]
            if all(cell.key[c] == key[c] for c in kept):
                out[i, j] = 1.0
    return out


def recomputable(cells: list[Cell], base: Base, columns: tuple[str, ...], hidden: set[int]) -> list[int]:
    """The hidden cells whose vector is in the row space of the released ones."""
    vec = vectors(cells, base, columns)
    released = vec[[i for i in range(len(cells)) if i not in hidden]]
    rank = np.linalg.matrix_rank(released) if len(released) else 0
    out = []
    for i in sorted(hidden):
        stacked = np.vstack([released, vec[i]]) if len(released) else vec[i : i + 1]
        if np.linalg.matrix_rank(stacked) == rank:
            out.append(i)
    return out


def random_base(rng: random.Random, sizes: tuple[int, ...], fill: float) -> Base:
    base: Base = {}
    for key in itertools.product(*(range(s) for s in sizes)):
        if rng.random() < fill:
            base[tuple(f"v{v}" for v in key)] = (rng.choice([1, 2, 3, 5, 8, 13]), rng.random())
    return base


def random_sets(rng: random.Random, columns: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    kind = rng.choice(["rollup", "cube", "random"])
    if kind == "rollup":
        return rollup_sets(columns)
    subsets = [s for k in range(len(columns) + 1) for s in itertools.combinations(columns, k)]
    if kind == "random":
        subsets = [s for s in subsets if s == columns or rng.random() < 0.5]
    return grouping_sets("test", columns, subsets)


@pytest.mark.parametrize("dims", [2, 3])
def test_no_suppressed_cell_is_recomputable_brute_force(dims: int) -> None:
    rng = random.Random(20261202 + dims)
    columns = ("a", "b", "c")[:dims]
    exposed_without = 0
    for _trial in range(120 if dims == 2 else 60):
        sizes = tuple(rng.randint(2, 4 if dims == 2 else 3) for _ in columns)
        base = random_base(rng, sizes, fill=rng.choice([0.5, 0.8, 1.0]))
        if not base:
            continue
        sets = random_sets(rng, columns)
        cells = cells_of(base, columns, sets)
        threshold = rng.choice([2, 4, 6, 9])
        outcome = secondary_suppression(cells, threshold=threshold)
        assert outcome.primary == {i for i, c in enumerate(cells) if c.units < threshold}
        assert not outcome.primary & outcome.secondary
        assert all(cells[i].units >= threshold for i in outcome.secondary)
        assert recomputable(cells, base, columns, set(outcome.suppressed)) == []
        exposed_without += bool(recomputable(cells, base, columns, set(outcome.primary)))
    # the cohort rule alone would leave recomputable cells in many of these tables
    assert exposed_without >= 10


def test_one_small_cell_in_a_row_is_recomputable_without_secondary_suppression() -> None:
    # age band "18-25" x country: the DE cell has 2 people, the FR cell 40, the margin 42
    columns = ("age_band", "country")
    base: Base = {("18-25", "DE"): (2, 130.0), ("18-25", "FR"): (40, 2200.0),
                  ("26-35", "DE"): (50, 3100.0), ("26-35", "FR"): (60, 3300.0)}
    sets = grouping_sets("test", columns, [("age_band", "country"), ("age_band",)])
    cells = cells_of(base, columns, sets)
    small = next(i for i, c in enumerate(cells) if c.key == ("18-25", "DE"))
    fr = next(i for i, c in enumerate(cells) if c.key == ("18-25", "FR"))
    # the cohort rule alone: the DE cell = margin - FR cell, for counts and sums
    assert recomputable(cells, base, columns, {small}) == [small]
    vec = vectors(cells, base, columns)
    released = [i for i in range(len(cells)) if i != small]
    stats = {"count": [2.0, 40.0, 50.0, 60.0], "sum": [130.0, 2200.0, 3100.0, 3300.0]}
    keys = sorted(base, key=repr)
    for name, values in stats.items():
        truth = np.array([values[[("18-25", "DE"), ("18-25", "FR"), ("26-35", "DE"),
                                  ("26-35", "FR")].index(k)] for k in keys])
        coeffs, *_ = np.linalg.lstsq(vec[released].T, vec[small], rcond=None)
        assert float(coeffs @ (vec[released] @ truth)) == pytest.approx(float(vec[small] @ truth)), name
    outcome = secondary_suppression(cells, threshold=10)
    assert outcome.primary == {small}
    assert outcome.secondary == {fr}  # the smallest released cell of the relation
    assert recomputable(cells, base, columns, set(outcome.suppressed)) == []


def test_the_heuristic_alone_misses_cases_the_exact_check_catches(monkeypatch: pytest.MonkeyPatch) -> None:
    # 2-D tables with both margins: at the heuristic's fixed point (every relation has 0
    # or >= 2 suppressed members) a suppressed cell can still follow from a combination
    # of relations (e.g. a cell bridging two blocks of suppressed cells)
    columns = ("a", "b")
    sets = grouping_sets("test", columns, [("a", "b"), ("a",), ("b",)])
    tables = []
    rng = random.Random(5)
    for _ in range(400):
        base = random_base(rng, (rng.randint(3, 6), rng.randint(3, 6)), fill=0.8)
        tables.append((base, cells_of(base, columns, sets)))
    full = [secondary_suppression(cells, threshold=6) for _, cells in tables]
    assert all(
        recomputable(cells, base, columns, set(s.suppressed)) == []
        for (base, cells), s in zip(tables, full, strict=True)
    )
    monkeypatch.setattr(_suppress, "_recomputable", lambda members, suppressed: [])
    missed = 0
    for base, cells in tables:
        heuristic = secondary_suppression(cells, threshold=6)
        missed += bool(recomputable(cells, base, columns, set(heuristic.suppressed)))
    assert missed > 0


def test_outcome_does_not_depend_on_the_order_of_cells() -> None:
    rng = random.Random(11)
    columns = ("a", "b", "c")
    base = random_base(rng, (3, 3, 2), fill=0.8)
    cells = cells_of(base, columns, rollup_sets(columns))
    first = secondary_suppression(cells, threshold=6)
    for _ in range(5):
        shuffled = cells[:]
        rng.shuffle(shuffled)
        again = secondary_suppression(shuffled, threshold=6)
        assert {(shuffled[i].gid, shuffled[i].key) for i in again.secondary} == {
            (cells[i].gid, cells[i].key) for i in first.secondary
        }


def test_relations_of_a_rollup_are_each_level_and_the_next() -> None:
    columns = ("a", "b")
    base: Base = {("x", "p"): (1, 0.0), ("x", "q"): (1, 0.0), ("y", "p"): (1, 0.0)}
    cells = cells_of(base, columns, rollup_sets(columns))
    rels = relations(cells)
    named = sorted(
        ((cells[p].key, sorted((cells[c].key for c in children), key=repr)) for p, children in rels),
        key=repr,
    )
    assert named == sorted(
        [
            ((None, None), [("x", None), ("y", None)]),
            (("x", None), [("x", "p"), ("x", "q")]),
            (("y", None), [("y", "p")]),
        ],
        key=repr,
    )


def test_nan_keys_are_one_value() -> None:
    # each collected NaN is its own float object, unequal to every other: still one key
    cells = [Cell(0, (float("nan"),), 5), Cell(0, (1.0,), 1), Cell(1, (None,), 6)]
    outcome = secondary_suppression(cells, threshold=3)
    assert outcome.primary == {1}
    assert outcome.secondary == {0}


def test_grouping_sets_are_checked_and_normalized() -> None:
    cols = ("a", "b")
    assert grouping_sets("c()", cols, [["b", "a"], ("a",), ()]) == (("a", "b"), ("a",), ())
    assert grouping_id(cols, ()) == 3
    assert grouping_id(cols, ("b",)) == 2
    for bad, message in [
        ([("a",), ()], "must include the finest set ['a', 'b']"),
        ("ab", "must be a non-empty list"),
        ([], "must be a non-empty list"),
        ([("a", "b"), "a"], "each grouping set must be a tuple or list"),
        ([("a", "b"), ("z",)], "grouping set column 'z' is not a group column"),
        ([("a", "b"), ("b", "a")], "grouping set ['a', 'b'] is given twice"),
        ([("a", "b", "a")], "names a column twice"),
    ]:
        with pytest.raises(InvalidArgumentError, match=re.escape(message)):
            grouping_sets("c()", cols, bad)
