"""Margins (``group_by(...).rollup()``, ``grouping_sets=``) and secondary suppression, end
to end on real Spark in both session modes, with hand-computed answers."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Any

import pytest

from cleanjoin import agg
from cleanjoin.contract import GROUPING_COLUMN, ColumnRole, ContractColumn, OutputContract
from cleanjoin.errors import InvalidArgumentError, NotAllowedError
from cleanjoin.guard import GroupedJoin, GuardedJoin

LEFT_SCHEMA = "card_number_token string, country string, amount int"
RIGHT_SCHEMA = "card_number_token string, age_band string"


def tok(i: int) -> str:
    """A fake 64-hex token for person ``i``."""
    return hashlib.sha256(f"margin-person-{i}".encode()).hexdigest()


# people per (age band, country); None is a real null country, not a margin
PEOPLE = {("18-25", "DE"): 2, ("18-25", "FR"): 4, ("18-25", "US"): 5,
          ("26-35", "DE"): 3, ("26-35", "FR"): 3, ("26-35", None): 3}


def tables(spark: Any) -> tuple[Any, Any]:
    """Each person has two rows of amount 10 on the left and one row on the right."""
    left: list[tuple[Any, ...]] = []
    right: list[tuple[Any, ...]] = []
    person = 0
    for (band, country), n in PEOPLE.items():
        for _ in range(n):
            left += [(tok(person), country, 10)] * 2
            right.append((tok(person), band))
            person += 1
    return spark.createDataFrame(left, LEFT_SCHEMA), spark.createDataFrame(right, RIGHT_SCHEMA)


def released(result: Any) -> dict[tuple[Any, ...], tuple[int, int]]:
    """(grouping_id, age_band, country) -> (record_count, amount_sum)."""
    return {
        (r[GROUPING_COLUMN], r["age_band"], r["country"]): (r["record_count"], r["amount_sum"])
        for r in result.df.collect()
    }


def query(spark: Any, **join: Any) -> Any:
    left, right = tables(spark)
    return GuardedJoin(left, right, on="card_number_token", **join)


AGGS = (agg.count().alias("record_count"), agg.sum("amount").alias("amount_sum"))


@pytest.mark.parametrize("limit", [10, None], ids=["bitsets", "hashed"])
def test_rollup_releases_every_level_with_complementary_suppression(spark: Any, limit: Any) -> None:
    result = (
        query(spark, max_rows_per_key=limit)
        .group_by("age_band", "country").rollup()
        .agg(*AGGS).min_cohort(3).run()
    )
    # (18-25, DE) has 2 people: suppressed; its margin (11 people) minus FR and US would
    # give it, so the smallest released sibling, FR (4 people), is suppressed too
    assert released(result) == {
        (0, "18-25", "US"): (10, 100),
        (0, "26-35", "DE"): (6, 60),
        (0, "26-35", "FR"): (6, 60),
        (0, "26-35", None): (6, 60),  # a null country, told from the margin by grouping_id
        (1, "18-25", None): (22, 220),
        (1, "26-35", None): (18, 180),
        (3, None, None): (40, 400),
    }
    report = result.report
    assert report.groups_released == 7
    assert report.groups_suppressed == 1
    assert report.groups_suppressed_secondary == 1
    assert result.df.columns == ["age_band", "country", GROUPING_COLUMN, "record_count", "amount_sum"]
    assert dict(result.df.dtypes)[GROUPING_COLUMN] == "int"
    assert "1 more (secondary" in str(report)
    assert report.to_dict()["groups_suppressed_secondary"] == 1


def test_differencing_within_one_release_cannot_give_the_small_cell(spark: Any) -> None:
    # the example: group_by(age_band) and group_by(age_band, country) in one release
    result = (
        query(spark)
        .group_by("age_band", "country", grouping_sets=[("age_band", "country"), ("age_band",)])
        .agg(*AGGS).min_cohort(3).run()
    )
    cells = released(result)
    assert (0, "18-25", "DE") not in cells
    # the attack: a band's margin minus its released countries
    for band in ("18-25", "26-35"):
        margin = cells[(1, band, None)]
        rest = [v for (g, b, _), v in cells.items() if g == 0 and b == band]
        left_over = (margin[0] - sum(v[0] for v in rest), margin[1] - sum(v[1] for v in rest))
        # 0 (nothing hidden) or the sum of at least two hidden cells, never one of them
        assert left_over in {(0, 0), (12, 120)}, band
    assert cells[(1, "18-25", None)] == (22, 220)
    assert result.report.groups_suppressed == 1
    assert result.report.groups_suppressed_secondary == 1
    # without margins the same grouping suppresses the one cell only
    plain = query(spark).group_by("age_band", "country").agg(*AGGS).min_cohort(3).run()
    assert plain.report.groups_suppressed == 1
    assert plain.report.groups_suppressed_secondary is None
    assert GROUPING_COLUMN not in plain.df.columns


def test_every_cell_of_every_set_obeys_the_cohort_in_people(spark: Any) -> None:
    result = (
        query(spark)
        .group_by("age_band", "country", grouping_sets=[("age_band", "country"), ("country",), ()])
        .agg(*AGGS).min_cohort(5).run()
    )
    # people per cell: 2, 4, 5, 3, 3, 3 -> only (18-25, US) reaches 5; per country (two
    # rows per person): DE 5, FR 7, US 5, null 3 -> null suppressed; the total (20) minus
    # DE, FR and US would give it, so the smallest of them, DE (tied with US, first in
    # order), is suppressed too
    assert released(result) == {
        (0, "18-25", "US"): (10, 100),
        (2, None, "FR"): (14, 140),
        (2, None, "US"): (10, 100),
        (3, None, None): (40, 400),
    }
    assert result.report.groups_suppressed == 6
    assert result.report.groups_suppressed_secondary == 1


def test_contract_from_result_accepts_the_margin_marker(spark: Any) -> None:
    result = query(spark).group_by("age_band", "country").rollup().agg(*AGGS).min_cohort(3).run()
    contract = OutputContract.from_result(result, name="margins")
    assert contract.column(GROUPING_COLUMN).role is ColumnRole.GROUPING
    assert contract.column("age_band").role is ColumnRole.DIMENSION
    assert contract.column("record_count").role is ColumnRole.COHORT_COUNT
    assert contract.review(result).approved
    assert OutputContract.from_json(contract.to_json()) == contract
    with pytest.raises(InvalidArgumentError, match="a grouping column must have an integer type"):
        ContractColumn(GROUPING_COLUMN, "string", "grouping")
    # a contract without the marker rejects a release with margins
    plain = OutputContract(columns=tuple(c for c in contract.columns if c.name != GROUPING_COLUMN),
                           min_cohort=3)
    assert f"column {GROUPING_COLUMN!r} is not allowed by the contract" in plain.review(result).reasons


def test_margins_stages_descriptions_and_refusals(spark: Any) -> None:
    grouped = query(spark).group_by("age_band", "country")
    rolled = grouped.rollup()
    assert grouped.grouping_sets is None  # the stage held is not changed
    assert rolled.grouping_sets == (("age_band", "country"), ("age_band",), ())
    with pytest.raises(dataclasses.FrozenInstanceError):
        rolled.grouping_sets = None  # type: ignore[misc]
    plain = grouped.agg(*AGGS).min_cohort(3)
    ready = rolled.agg(*AGGS).min_cohort(3)
    assert "grouping_sets" not in plain.describe()
    assert ready.describe()["grouping_sets"] == [["age_band", "country"], ["age_band"], []]
    same = query(spark).group_by(
        "age_band", "country", grouping_sets=[(), ("age_band",), ("country", "age_band")]
    ).agg(*AGGS).min_cohort(3)
    assert same.fingerprint() == ready.fingerprint() != plain.fingerprint()
    assert ready.min_cohort(5).privacy_unit("card_number_token").to_query().grouping_sets is not None
    with pytest.raises(InvalidArgumentError, match=re.escape("already has grouping sets")):
        rolled.rollup()
    with pytest.raises(InvalidArgumentError, match=re.escape("must include the finest set")):
        query(spark).group_by("age_band", "country", grouping_sets=[("age_band",), ()])
    with pytest.raises(InvalidArgumentError, match=re.escape("'grouping_id' is the margin marker")):
        rolled.agg(agg.count().alias(GROUPING_COLUMN))
    with pytest.raises(InvalidArgumentError, match=re.escape("must be set with group_by(grouping_sets")):
        GroupedJoin(
            grouped.join, grouped.group_columns, grouping_sets=(("country",), ("age_band", "country"))
        )
    with pytest.raises(NotAllowedError, match=re.escape("not available with differential privacy")):
        ready.with_dp(epsilon=1.0)
