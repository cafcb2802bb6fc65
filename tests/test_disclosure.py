"""Disclosure control beyond the cohort (issue 21): dominance and p % rules, the
quasi-identifier guard, key provenance and the leak scanner's look-alikes, with
hand-computed answers (each rule exactly at its edge, on both sides of it)."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Any

import pytest

from cleanjoin import agg
from cleanjoin.errors import InvalidArgumentError
from cleanjoin.guard import GuardedJoin, ReadyJoin
from cleanjoin.guard._dominance import Dominance

LEFT_SCHEMA = "card_number_token string, amount int"
RIGHT_SCHEMA = "card_number_token string, segment string"


def tok(i: int) -> str:
    """A fake 64-hex token for person ``i``."""
    return hashlib.sha256(f"disclosure-person-{i}".encode()).hexdigest()


# segment -> each person's contribution; a person's contribution is split over two rows
# where it is even, so the rules must add a unit's rows up before ranking
CELLS: dict[str, list[int]] = {
    "edge": [40, 45, 15],  # top 2 = 85 of 100: exactly k = 0.85, not sensitive
    "over": [40, 46, 14],  # top 2 = 86 of 100: sensitive under (2, 0.85)
    "ties": [40, 40, 20],  # top 2 = 80 (the largest twice)
    "p_edge": [100, 50, 10],  # rest 10 = 10 % of 100: not sensitive under p = 10
    "p_over": [100, 50, 9],  # rest 9 < 10: sensitive under p = 10
    "neg": [-40, 46, 14],  # magnitudes 40, 46, 14: as "over"
    "small": [1, 1],  # two people: below the cohort of 3
    "zero": [0, 0, 0],  # total 0: never sensitive
}


def tables(spark: Any) -> tuple[Any, Any]:
    left: list[tuple[Any, ...]] = []
    right: list[tuple[Any, ...]] = []
    person = 0
    for segment, values in CELLS.items():
        for value in values:
            t = tok(person)
            if value % 2 == 0 and value:
                left += [(t, value // 2), (t, value // 2)]
            else:
                left.append((t, value))
            right.append((t, segment))
            person += 1
    return spark.createDataFrame(left, LEFT_SCHEMA), spark.createDataFrame(right, RIGHT_SCHEMA)


@pytest.fixture(scope="module")
def inputs(spark: Any) -> tuple[Any, Any]:
    return tables(spark)


def ready(inputs: tuple[Any, Any], *, guard: bool = True, kind: str = "sum") -> ReadyJoin:
    left, right = inputs
    limit = 10_000 if guard else None  # None: the hashed plan (no unit ids)
    measure = {"sum": agg.sum("amount"), "mean": agg.mean("amount", bounds=(-100, 100)),
               "variance": agg.variance("amount", bounds=(-100, 100))}[kind]
    return (
        GuardedJoin(left, right, on="card_number_token", max_rows_per_key=limit)
        .group_by("segment")
        .agg(agg.count().alias("n"), measure.alias("m"))
        .min_cohort(3)
    )


def segments(result: Any) -> set[str]:
    return {r["segment"] for r in result.df.collect()}


ALL_BIG = {s for s, v in CELLS.items() if len(v) >= 3}


@pytest.mark.parametrize("guard", [True, False], ids=["bitset", "hashed"])
def test_dominance_at_the_edge(inputs: tuple[Any, Any], guard: bool) -> None:
    result = ready(inputs, guard=guard).dominance(n=2, k=0.85).run()
    # sensitive: over (86 %), neg (magnitudes), p_edge (150/160), p_over (150/159)
    assert segments(result) == {"edge", "ties", "zero"}
    assert result.report.groups_suppressed == 1  # "small", by the cohort rule
    assert result.report.groups_suppressed_dominance == 4
    assert "dominance" in str(result.report)


@pytest.mark.parametrize("guard", [True, False], ids=["bitset", "hashed"])
def test_ties_for_the_largest_contribution(inputs: tuple[Any, Any], guard: bool) -> None:
    at = ready(inputs, guard=guard).dominance(n=2, k=0.8).run()
    below = ready(inputs, guard=guard).dominance(n=2, k=0.79).run()
    assert "ties" in segments(at)  # 80 of 100 is not more than 0.8
    assert "ties" not in segments(below)  # the largest counted twice: 80 > 79


def test_n_one_and_n_three(inputs: tuple[Any, Any]) -> None:
    one = ready(inputs).dominance(n=1, k=0.46).run()
    # largest share: edge 45 %, over 46 %, ties 40 %, p_edge 62.5 %, p_over 62.9 %,
    # neg 46 %
    assert segments(one) == {"edge", "over", "ties", "neg", "zero"}
    three = ready(inputs).dominance(n=3, k=0.99).run()  # three people hold 100 %
    assert segments(three) == {"zero"}
    assert three.report.groups_suppressed_dominance == 6


@pytest.mark.parametrize("guard", [True, False], ids=["bitset", "hashed"])
def test_p_percent_at_the_edge(inputs: tuple[Any, Any], guard: bool) -> None:
    result = ready(inputs, guard=guard).p_percent(10).run()
    # rest / largest: edge 15/45, over 14/46, ties 20/40, p_edge 10/100, p_over 9/100
    assert segments(result) == ALL_BIG - {"p_over"}
    assert result.report.groups_suppressed_dominance == 1


@pytest.mark.parametrize("kind", ["mean", "variance"])
def test_every_sum_type_measure_is_checked(inputs: tuple[Any, Any], kind: str) -> None:
    result = ready(inputs, kind=kind).p_percent(10).run()
    assert segments(result) == ALL_BIG - {"p_over"}


def test_without_a_rule_nothing_changes(inputs: tuple[Any, Any]) -> None:
    plain = ready(inputs)
    result = plain.run()
    assert segments(result) == ALL_BIG
    assert result.report.groups_suppressed_dominance is None
    assert "dominance" not in plain.describe()
    counts_only = dataclasses.replace(
        plain, aggregates=(agg.count().alias("n"),)
    ).dominance().run()  # no sum-type measure: nothing to dominate
    assert counts_only.report.groups_suppressed_dominance is None


def test_rules_are_part_of_the_query_fingerprint(inputs: tuple[Any, Any]) -> None:
    plain = ready(inputs)
    assert plain.dominance().fingerprint() != plain.fingerprint()
    assert plain.dominance().describe()["dominance"] == {"n": 2, "k": 0.85}
    assert plain.p_percent(10).describe()["p_percent"] == 10.0


def test_margins_protect_a_dominated_cell(inputs: tuple[Any, Any]) -> None:
    left, right = inputs
    result = (
        GuardedJoin(left, right, on="card_number_token")
        .group_by("segment").rollup()
        .agg(agg.count().alias("n"), agg.sum("amount").alias("m"))
        .min_cohort(3).p_percent(10).run()
    )
    report = result.report
    assert report.groups_suppressed_dominance == 1  # p_over
    assert report.groups_suppressed == 1  # small
    # the grand total minus the released cells would give small + p_over together;
    # "small" is suppressed too, so the pair is hidden by each other, no complement needed
    released = {r["segment"] for r in result.df.collect() if r["grouping_id"] == 0}
    assert "p_over" not in released and "small" not in released


def test_invalid_rules() -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape("'n' must be an integer >= 1")):
        Dominance(0, 0.5)
    with pytest.raises(InvalidArgumentError, match=re.escape("'k' must be a number in (0, 1]")):
        Dominance(2, 1.5)
    assert Dominance(3, 0.8).at_least_as_strict_as(Dominance(2, 0.85))
    assert not Dominance(1, 0.8).at_least_as_strict_as(Dominance(2, 0.85))
    assert not Dominance(2, 0.9).at_least_as_strict_as(Dominance(2, 0.85))
