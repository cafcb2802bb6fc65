"""The dominance and p % statistics (cleanjoin.guard._dominance.cell_stats) on both of
their plans — the mergeable top-k aggregate and the window — against a brute force in
Python, on (cell, unit) rows with ties, nulls, negative and zero contributions, and null
cell keys; and the shape of the guarded plan with the rules on."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest

from cleanjoin import agg
from cleanjoin.guard import GuardedJoin
from cleanjoin.guard._dominance import (
    SENSITIVE,
    Dominance,
    cell_stats,
    stat_columns,
    top_k_aggregate,
)

SCHEMA = "g string, h int, unit long, c0 double, c1 double"
KEYS = ("g", "h")


@dataclass(frozen=True)
class Rules:
    """The two fields of a query that cell_stats reads."""

    dominance: Dominance | None
    p_percent: float | None


def per_unit_rows(seed: int) -> list[tuple[Any, ...]]:
    """One row per (cell, unit): integer contributions (exact in doubles), a dominant unit
    in some cells, ties for the largest in others, nulls, zeros and negatives."""
    rng = random.Random(seed)
    rows: list[tuple[Any, ...]] = []
    unit = 0
    for g in ("a", "b", None):
        for h in range(6):
            size = rng.choice([1, 2, 3, 5, 12])
            shape = rng.choice(["even", "dominant", "ties", "zeros", "nulls", "negative"])
            for j in range(size):
                unit += 1
                values: list[float | None] = []
                for _ in range(2):
                    v: float | None = float(rng.randint(1, 20))
                    if shape == "dominant" and j == 0:
                        v = float(rng.randint(60, 400))
                    elif shape == "ties" and j < 2:
                        v = 30.0
                    elif shape == "zeros":
                        v = 0.0
                    elif shape == "nulls" and rng.random() < 0.5:
                        v = None
                    elif shape == "negative" and rng.random() < 0.5:
                        v = -v
                    values.append(v)
                rows.append((g, h, unit, values[0], values[1]))
    # the rules' edges, exactly: top 2 = 85 of 100 (not over k = 0.85), rest = 10 % of
    # the largest (not under p = 10)
    for h, contributions in ((100, [40.0, 45.0, 15.0]), (101, [100.0, 50.0, 10.0])):
        for value in contributions:
            unit += 1
            rows.append(("edge", h, unit, value, 0.0))
    return rows


def brute_force(rows: list[tuple[Any, ...]], rules: Rules) -> dict[tuple[Any, ...], bool]:
    """Each cell's sensitivity, from the definitions in the module's docstring."""
    cells: dict[tuple[Any, ...], list[list[float]]] = {}
    for g, h, _unit, *values in rows:
        per = cells.setdefault((g, h), [[], []])
        for i, v in enumerate(values):
            if v is not None:
                per[i].append(abs(v))
    out = {}
    for cell, per in cells.items():
        sensitive = False
        for contributions in per:
            c = sorted(contributions, reverse=True)
            total = sum(c)
            x1, x2 = [*c, 0.0, 0.0][:2]
            if rules.dominance is not None:
                top = sum(c[: rules.dominance.n])
                sensitive |= total > 0 and top > rules.dominance.k * total
            if rules.p_percent is not None:
                sensitive |= total > 0 and (total - x1 - x2) * 100 < rules.p_percent * x1
        out[cell] = sensitive
    return out


RULES = [
    Rules(Dominance(1, 0.5), None),
    Rules(Dominance(2, 0.85), None),
    Rules(Dominance(3, 0.9), None),
    Rules(None, 10.0),
    Rules(Dominance(2, 0.85), 10.0),
    Rules(Dominance(5, 0.95), 25.0),
]


def flags(spark: Any, rows: list[tuple[Any, ...]], rules: Rules, *, top_k: bool) -> tuple[
    dict[tuple[Any, ...], bool], list[tuple[Any, ...]]
]:
    """Each cell's flag and its statistics, from cell_stats on the chosen plan."""
    per_unit = spark.createDataFrame(rows, SCHEMA)
    per_unit, stats, flag = cell_stats(per_unit, rules, KEYS, ["c0", "c1"], top_k=top_k)
    cells = per_unit.groupBy(*KEYS).agg(*stats).withColumn(SENSITIVE, flag)
    names = stat_columns(2)
    out = cells.select(*KEYS, SENSITIVE, *names).collect()
    return ({(r["g"], r["h"]): bool(r[SENSITIVE]) for r in out},
            sorted(((r["g"] or "", r["h"]), *(r[n] for n in names)) for r in out))


@pytest.mark.parametrize("rules", RULES, ids=lambda r: f"{r.dominance}-{r.p_percent}")
def test_both_plans_match_the_brute_force(spark: Any, rules: Rules) -> None:
    rows = per_unit_rows(21)
    expected = brute_force(rows, rules)
    assert any(expected.values())
    assert not all(expected.values())
    window, window_stats = flags(spark, rows, rules, top_k=False)
    assert window == expected
    if not top_k_aggregate(spark.range(1)):
        pytest.skip("max_by(x, ord, k) needs Spark 4.2")
    top, top_stats = flags(spark, rows, rules, top_k=True)
    assert top == expected
    assert top_stats == window_stats  # the same statistics, bit for bit


@pytest.mark.parametrize(("cell", "at_edge", "over"), [
    (100, Rules(Dominance(2, 0.85), None), Rules(Dominance(2, 0.849), None)),
    (101, Rules(None, 10.0), Rules(None, 10.01)),
])
def test_exactly_at_the_edge_is_not_sensitive(
    spark: Any, cell: int, at_edge: Rules, over: Rules
) -> None:
    rows = per_unit_rows(21)
    top_k = top_k_aggregate(spark.range(1))
    assert flags(spark, rows, at_edge, top_k=top_k)[0][("edge", cell)] is False
    assert flags(spark, rows, over, top_k=top_k)[0][("edge", cell)] is True


def guarded_tables(spark: Any, seed: int) -> tuple[Any, Any]:
    """Joined inputs whose segments hold (cell, unit) contributions of every shape of
    per_unit_rows, each unit's value split over one to three rows (some negative)."""
    rng = random.Random(seed)
    left: list[tuple[Any, ...]] = []
    right: list[tuple[Any, ...]] = []
    for g, h, unit, value, _ in per_unit_rows(seed):
        token = f"{unit:064x}"
        right.append((token, f"{g}-{h}"))
        if value is None:
            left.append((token, None))
            continue
        parts = rng.randint(1, 3)
        for j in range(parts):
            share = value - (parts - 1) * 2.0 if j == 0 else 2.0
            left.append((token, share))
    return (spark.createDataFrame(left, "k string, v double"),
            spark.createDataFrame(right, "k string, segment string"))


@pytest.mark.parametrize("rules", RULES, ids=lambda r: f"{r.dominance}-{r.p_percent}")
def test_the_bound_and_the_exact_plan_release_the_same_cells(spark: Any, rules: Rules) -> None:
    """The bitset plan (bound, then the exact rules for its candidates only) against the
    hashed plan (the exact rules for every cell): the same cells released and counted."""
    left, right = guarded_tables(spark, 5)
    results = []
    for limit in (10, None):  # 10: the bitset plan; None: the hashed one
        ready = (
            GuardedJoin(left, right, on="k", max_rows_per_key=limit)
            .group_by("segment").agg(agg.count().alias("n"), agg.sum("v", bounds=(-500, 500)).alias("s"))
            .min_cohort(2)
        )
        if rules.dominance is not None:
            ready = ready.dominance(rules.dominance.n, rules.dominance.k)
        if rules.p_percent is not None:
            ready = ready.p_percent(rules.p_percent)
        result = ready.run()
        report = result.report
        results.append((sorted(tuple(r) for r in result.df.collect()), report.groups_released,
                        report.groups_suppressed, report.groups_suppressed_dominance))
    assert results[0] == results[1]
    assert results[0][3] > 0  # some cells are dominated
    assert results[0][1] > 0  # and some are released


@pytest.mark.parametrize("rules", RULES, ids=lambda r: f"{r.dominance}-{r.p_percent}")
def test_the_bound_never_clears_a_sensitive_cell(spark: Any, rules: Rules) -> None:
    """bound_stats on (cell, block) rows — each block the sums over a few of a cell's
    units — flags every cell the brute force finds sensitive, and clears some others."""
    from cleanjoin.guard._dominance import CANDIDATE, bound_stats

    rows = per_unit_rows(21)
    rng = random.Random(3)
    for h in range(200, 206):  # large even cells: clearly safe when split over blocks
        rows += [("even", h, 10_000 + 100 * h + u, float(rng.randint(1, 9)), 1.0)
                 for u in range(40)]
    blocks: dict[tuple[Any, ...], list[float]] = {}
    for g, h, unit, *values in rows:
        parts = blocks.setdefault((g, h, unit % 8), [0.0, 0.0, 0.0, 0.0])
        for i, v in enumerate(values):
            if v is not None:
                parts[2 * i] += abs(v)
                parts[2 * i + 1] += v
    frame = spark.createDataFrame(
        [(g, h, b, *parts) for (g, h, b), parts in blocks.items()],
        "g string, h int, b int, a0 double, s0 double, a1 double, s1 double",
    )
    frame, stats, flag = bound_stats(frame, rules, KEYS, ["a0", "a1"], ["s0", "s1"])
    cells = frame.groupBy(*KEYS).agg(*stats).withColumn(CANDIDATE, flag).collect()
    candidate = {(r["g"], r["h"]): bool(r[CANDIDATE]) for r in cells}
    expected = brute_force(rows, rules)
    assert candidate.keys() == expected.keys()
    assert [c for c, sensitive in expected.items() if sensitive and not candidate[c]] == []
    assert not any(candidate[("even", h)] for h in range(200, 206))
