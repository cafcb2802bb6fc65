"""``MatchReport.right_match_rate`` (the demo's headline figure) and its siblings."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from cleanjoin.alignment import MatchReport, match_report


def tok(i: int) -> str:
    return hashlib.sha256(f"person-{i}".encode()).hexdigest()


def test_rates_from_counts() -> None:
    # left 8 distinct, right 4 distinct, 2 shared
    r = MatchReport("t", "t", 10, 10, 0, 0, 8, 4, 2, 2, 2)
    assert r.right_match_rate == pytest.approx(0.5)
    assert r.left_match_rate == pytest.approx(0.25)
    assert r.match_rate == pytest.approx(0.5)
    assert r.to_dict()["right_match_rate"] == pytest.approx(0.5)
    empty = MatchReport("t", "t", 0, 3, 0, 3, 0, 0, 0, 0, 0)
    assert (empty.right_match_rate, empty.left_match_rate) == (0.0, 0.0)


def test_right_match_rate_of_real_frames(spark: Any) -> None:
    # left: people 0..9 (10 distinct); right: people 5..24 (20 distinct), 5 shared, one
    # duplicate row on the right and one null on the left
    left = spark.createDataFrame([(tok(i),) for i in range(10)] + [(None,)], "t string")
    right = spark.createDataFrame([(tok(i),) for i in range(5, 25)] + [(tok(5),)], "t string")
    r = match_report(left, right, on="t")
    assert (r.left_distinct, r.right_distinct, r.overlap_distinct) == (10, 20, 5)
    assert r.right_match_rate == pytest.approx(5 / 20)
    assert r.left_match_rate == pytest.approx(5 / 10)
    assert (r.left_null, r.right_rows_matched) == (1, 6)
