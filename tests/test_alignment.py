"""Alignment diagnostics: profile and match_report (counts only, never values)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from cleanjoin import reference
from cleanjoin.alignment import AlignmentProfile, MatchReport, match_report, profile
from cleanjoin.errors import (
    ColumnNotFoundError,
    InvalidArgumentError,
    TokenSpecError,
    UnsupportedColumnTypeError,
)
from cleanjoin.secret import Secret
from cleanjoin.spec import TokenSpec
from cleanjoin.tokens import tokenize

SECRET = Secret.from_bytes(bytes(range(50, 90)))
OTHER = Secret.from_bytes(bytes(range(90, 130)))

PANS = [
    "4111111111111111",          # clean
    " 4111111111111112",         # leading space (changed, whitespace)
    "4111-1111-1111-1113\u00a0",  # dashes + NBSP (changed, whitespace, non-ASCII)
    "４１１１１１１１１１１１１１１４",  # full-width (changed, non-ASCII)
    "12345",                     # invalid
    "\u200b  ",                  # empty after normalization (non-ASCII, whitespace)
    None,                        # null
]


def test_profile_counts(spark: Any) -> None:
    df = spark.createDataFrame([(p,) for p in PANS], "pan string")
    result = profile(df, "pan", "pan")
    assert (result.rows, result.null, result.empty_after_normalization) == (7, 1, 1)
    assert result.invalid_for_preset == 1
    assert result.changed_by_normalization == 3
    assert result.leading_trailing_whitespace == 3
    assert result.non_ascii == 3
    assert result.tokenizable == 4
    assert result.spec_fingerprint == TokenSpec.preset("pan").fingerprint()
    assert result.warnings == ("1 of 7 values (14.29%) are invalid for preset pan and get null tokens",)
    text = str(result)
    assert "invalid for preset" in text
    assert "WARNING" in text
    for value in PANS:
        if value and value.strip():
            assert value.strip() not in text
    assert "4111" not in text


def test_profile_counts_agree_with_reference(spark_classic: Any) -> None:
    values = ["a@X.com", " b@y.com", "C@Z.COM ", "\u3000", "", None, "é@x.fr", "x\u2028"]
    df = spark_classic.createDataFrame([(v,) for v in values], "email string")
    result = profile(df, "email", TokenSpec.preset("email"))
    norm = [reference.normalize(v, "email") for v in values]
    assert result.changed_by_normalization == sum(
        1 for v, n in zip(values, norm, strict=True) if n is not None and n != v
    )
    assert result.leading_trailing_whitespace == sum(1 for v in values if v and v != v.strip())
    assert result.empty_after_normalization == 2
    assert result.invalid_for_preset == 0


def test_numeric_column_warns(spark_classic: Any) -> None:
    df = spark_classic.createDataFrame([(4111111111111111,), (411111111111111,)], "pan bigint")
    result = profile(df, "pan", "pan")
    assert result.warnings[0].startswith("column 'pan' is numeric (bigint): identifiers stored as numbers")
    assert result.invalid_for_preset == 0
    assert result.rows == 2


def test_profile_errors(spark_classic: Any) -> None:
    df = spark_classic.createDataFrame([(True, "x")], "b boolean, s string")
    with pytest.raises(ColumnNotFoundError, match=re.escape("profile: column 'nope' not found")):
        profile(df, "nope", "pan")
    with pytest.raises(UnsupportedColumnTypeError, match=re.escape("column 'b' has type boolean")):
        profile(df, "b", "pan")
    with pytest.raises(TokenSpecError, match=re.escape('Unknown token preset "ssn"')):
        profile(df, "s", "ssn")


def test_match_report_same_and_different_key(spark: Any) -> None:
    left = spark.createDataFrame(
        [(p,) for p in ["4111111111111111", "4111111111111111", "4222222222222", "x", None]], "pan string"
    )
    right = spark.createDataFrame(
        [(p,) for p in [" 4111-1111-1111-1111", "5555555555554444", None, None]], "card string"
    )
    lt = tokenize(left, {"pan": "pan"}, secret=SECRET)
    rt = tokenize(right, {"card": "pan"}, secret=SECRET)
    report = match_report(lt, rt, on=("pan_token", "card_token"))
    assert (report.left_rows, report.right_rows) == (5, 4)
    assert (report.left_null, report.right_null) == (2, 2)
    assert (report.left_distinct, report.right_distinct, report.overlap_distinct) == (2, 2, 1)
    assert (report.left_rows_matched, report.right_rows_matched) == (2, 1)
    assert report.match_rate == 0.5
    assert report.left_match_rate == 0.5
    assert report.warnings == ()
    mismatch = match_report(lt, tokenize(right, {"card": "pan"}, secret=OTHER), on=("pan_token", "card_token"))
    assert mismatch.overlap_distinct == 0
    assert "near zero: a key or spec mismatch is likely" in mismatch.warnings[0]
    assert "4111" not in str(mismatch)


def test_match_report_flags_untokenized_columns_and_errors(spark_classic: Any) -> None:
    raw = spark_classic.createDataFrame([("4111111111111111",)], "t string")
    report = match_report(raw, raw, on="t")
    assert report.left_not_token_shaped == 1
    assert any("not 64-hex tokens" in w for w in report.warnings)
    assert "4111111111111111" not in str(report) + str(report.to_dict())
    with pytest.raises(ColumnNotFoundError, match=re.escape("match_report: right column 'u' not found")):
        match_report(raw, raw, on=("t", "u"))
    with pytest.raises(InvalidArgumentError, match=re.escape("'on' in match_report")):
        match_report(raw, raw, on=["t"])  # type: ignore[arg-type]
    nums = spark_classic.createDataFrame([(1,)], "t int")
    with pytest.raises(UnsupportedColumnTypeError, match=re.escape("left column 't' has type int")):
        match_report(nums, raw, on="t")


def test_reports_are_frozen_and_validated() -> None:
    report = MatchReport("a", "b", 1, 1, 0, 0, 1, 1, 1, 1, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.left_rows = 3  # type: ignore[misc]
    with pytest.raises(InvalidArgumentError, match=re.escape("'rows' of AlignmentProfile must be an int >= 0")):
        AlignmentProfile("c", "pan", "f", -1, 0, 0, 0, 0, 0, 0)
    with pytest.raises(InvalidArgumentError, match=re.escape("overlap_distinct exceeds")):
        MatchReport("a", "b", 1, 1, 0, 0, 1, 1, 2, 1, 1)
