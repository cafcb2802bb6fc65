
"""Alignment diagnostics: will both parties' tokens match, and if not, why not?

Token alignment fails silently: a trailing space, a number column that lost its leading
zeros or a different key gives a zero match rate and no error. Two diagnostics, each one
Spark job, report counts only (never a raw value or a token):

* :func:`profile` — what the spec's normalization does to one identifier column: nulls,
  values empty after normalization, values normalization rewrote, leading/trailing
  whitespace, non-ASCII values, values invalid for the preset, and warnings (a numeric
  column above all).
* :func:`match_report` — how two token columns overlap: rows, null tokens, distinct
  tokens, overlap and match rates, with a warning when the rate is near zero (a key or
  spec mismatch is likely: compare :meth:`~cleanjoin.secret.Secret.check_value` and
  :meth:`~cleanjoin.spec.TokenSpec.fingerprint`).

Example:
    >>> from cleanjoin import alignment  # doctest: +SKIP
    >>> print(alignment.profile(df, "pan", "pan"))  # doctest: +SKIP
    Alignment profile of column 'pan' (preset pan, spec 1a66b0af811c0b6d)
      rows                          1,000
      ...
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from cleanjoin._serialize import report_dict
from cleanjoin._spark import functions_for
from cleanjoin._sql import quote_identifier
from cleanjoin._typing import DataFrame
from cleanjoin.errors import (
    ColumnNotFoundError,
    InvalidArgumentError,
    UnsupportedColumnTypeError,
)
from cleanjoin.spec import TokenSpec
from cleanjoin.tokens import _is_ascii, _normalized_column

__all__ = ["AlignmentProfile", "MatchReport", "match_report", "profile"]

# Python's str.isspace() set as a Java regex class (for leading/trailing whitespace).
_PY_WHITESPACE_CLASS = (
    "[\\x09-\\x0d\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
)
_TOKEN_SHAPE = "^[0-9a-f]{64}$"


def _count_field(owner: str, name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(f"'{name}' of {owner} must be an int >= 0, got {value!r}")


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.2f}%" if whole else "n/a"


@dataclass(frozen=True)
class AlignmentProfile:
    """Counts describing how the token spec treats one identifier column.

    Attributes:
        column: the profiled column.
        preset: the spec preset (``pan``, ``email``, ``text``).
        spec_fingerprint: :meth:`TokenSpec.fingerprint` of the spec used.
        rows: rows in the DataFrame.
        null: null values.
        empty_after_normalization: non-null values that are empty after steps 1-4.
        changed_by_normalization: values with a (non-null) token whose normalized form
            differs from the raw value — the partner must normalize them the same way.
        leading_trailing_whitespace: values with leading or trailing whitespace
            (``str.isspace()``).
        non_ascii: values containing a non-ASCII character.
        invalid_for_preset: values non-empty after steps 1-4 but invalid for the preset
            (``pan`` only: not 12-19 digits); they get null tokens.
        warnings: human-readable warnings (counts only).
    """

    column: str
    preset: str
    spec_fingerprint: str
    rows: int
    null: int
    empty_after_normalization: int
    changed_by_normalization: int
    leading_trailing_whitespace: int
    non_ascii: int
    invalid_for_preset: int
    warnings: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in (
            "rows", "null", "empty_after_normalization", "changed_by_normalization",
            "leading_trailing_whitespace", "non_ascii", "invalid_for_preset",
        ):
            _count_field("AlignmentProfile", name, getattr(self, name))
        if self.null + self.empty_after_normalization + self.invalid_for_preset > self.rows:
            raise InvalidArgumentError(
                "AlignmentProfile: null + empty_after_normalization + invalid_for_preset "
                f"exceeds rows ({self.rows})"
            )
        object.__setattr__(self, "warnings", tuple(self.warnings))

    @property
    def tokenizable(self) -> int:
        """Rows that get a non-null token."""
        return self.rows - self.null - self.empty_after_normalization - self.invalid_for_preset

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (counts, names and warnings only).

        Example:
            >>> AlignmentProfile("pan", "pan", "x", 2, 1, 0, 0, 0, 0, 0).to_dict()["tokenizable"]
            1
        """
        return report_dict(self, tokenizable=self.tokenizable)

    def __str__(self) -> str:
        rows = [
            ("rows", self.rows),
            ("null", self.null),
            ("empty after normalization", self.empty_after_normalization),
            ("invalid for preset", self.invalid_for_preset),
            ("tokenizable (non-null token)", self.tokenizable),
            ("changed by normalization", self.changed_by_normalization),
            ("leading/trailing whitespace", self.leading_trailing_whitespace),
            ("non-ASCII", self.non_ascii),
        ]
        lines = [
            f"Alignment profile of column {self.column!r} "
            f"(preset {self.preset}, spec {self.spec_fingerprint})"
        ]
        for label, value in rows:
            share = "" if label == "rows" else f"  ({_pct(value, self.rows)})"
            lines.append(f"  {label:<30}{value:>12,}{share}")
        lines += [f"  WARNING: {w}" for w in self.warnings]
        return "\n".join(lines)


@dataclass(frozen=True)
class MatchReport:
    """How two token columns overlap (counts only).

    Attributes:
        left_column / right_column: the token columns compared.
        left_rows / right_rows: rows on each side.
        left_null / right_null: rows with a null token (they never join).
        left_distinct / right_distinct: distinct non-null tokens.
        overlap_distinct: distinct tokens present on both sides.
        left_rows_matched / right_rows_matched: rows whose token is on the other side.
        left_not_token_shaped / right_not_token_shaped: distinct non-null values that are
            not 64 lowercase hex characters (raw values passed by mistake?).
        warnings: human-readable warnings.
    """

    left_column: str
    right_column: str
    left_rows: int
    right_rows: int
    left_null: int
    right_null: int
    left_distinct: int
    right_distinct: int
    overlap_distinct: int
    left_rows_matched: int
    right_rows_matched: int
    left_not_token_shaped: int = 0
    right_not_token_shaped: int = 0
    warnings: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in (
            "left_rows", "right_rows", "left_null", "right_null", "left_distinct",
            "right_distinct", "overlap_distinct", "left_rows_matched", "right_rows_matched",
            "left_not_token_shaped", "right_not_token_shaped",
        ):
            _count_field("MatchReport", name, getattr(self, name))
        if self.overlap_distinct > min(self.left_distinct, self.right_distinct):
            raise InvalidArgumentError(
                "MatchReport: overlap_distinct exceeds the distinct tokens of a side"
            )
        object.__setattr__(self, "warnings", tuple(self.warnings))

    @property
    def left_match_rate(self) -> float:
        """Share of the left side's distinct tokens found on the right (0.0 when none)."""
        return self.overlap_distinct / self.left_distinct if self.left_distinct else 0.0

    @property
    def right_match_rate(self) -> float:
        """Share of the right side's distinct tokens found on the left (0.0 when none)."""
        return self.overlap_distinct / self.right_distinct if self.right_distinct else 0.0

    @property
    def match_rate(self) -> float:
        """Overlap over the smaller side's distinct tokens: 1.0 when the smaller side is
        fully contained in the larger one (0.0 when a side has no tokens).

        Example:
            >>> MatchReport("t", "t", 10, 10, 0, 0, 8, 4, 2, 2, 2).match_rate
            0.5
        """
        smaller = min(self.left_distinct, self.right_distinct)
        return self.overlap_distinct / smaller if smaller else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (counts, rates and warnings)."""
        return report_dict(
            self, match_rate=self.match_rate, left_match_rate=self.left_match_rate,
            right_match_rate=self.right_match_rate,
        )

    def __str__(self) -> str:
        lines = [f"Match report: left {self.left_column!r} vs right {self.right_column!r}"]
        for label, left, right in (
            ("rows", self.left_rows, self.right_rows),
            ("null tokens", self.left_null, self.right_null),
            ("distinct tokens", self.left_distinct, self.right_distinct),
            ("rows matched", self.left_rows_matched, self.right_rows_matched),
        ):
            lines.append(f"  {label:<22}{left:>14,}{right:>14,}")
        lines.append(f"  {'overlap (distinct)':<22}{self.overlap_distinct:>14,}")
        lines.append(
            f"  {'match rate':<22}{_pct(self.overlap_distinct, self.left_distinct):>14}"
            f"{_pct(self.overlap_distinct, self.right_distinct):>14}"
            f"   (of the smaller side: {100 * self.match_rate:.2f}%)"
        )
        lines += [f"  WARNING: {w}" for w in self.warnings]
        return "\n".join(lines)


# -- profile ------------------------------------------------------------------------------------------
def profile(df: DataFrame, column: str, preset: TokenSpec | str) -> AlignmentProfile:
    """Profile one identifier column under a token spec (one Spark job).

    Args:
        df: a classic or Spark Connect DataFrame.
        column: the raw identifier column.
        preset: ``"pan"``, ``"email"``, ``"text"`` or a :class:`TokenSpec`.

    Returns:
        An :class:`AlignmentProfile`; ``print()`` it for a readable summary.

    Raises:
        ColumnNotFoundError: ``column`` is not in ``df``.
        UnsupportedColumnTypeError: the column is neither a string nor a number.
        TokenSpecError: an unknown preset.

    Example:
        >>> p = profile(df, "pan", "pan")  # doctest: +SKIP
        >>> p.invalid_for_preset, p.warnings  # doctest: +SKIP
        (3, ('3 of 1,000 values (0.30%) are invalid for preset pan and get null tokens',))
    """
    from pyspark.sql.types import NumericType, StringType

    spec = TokenSpec.parse(preset)
    fields = {f.name: f for f in df.schema.fields}
    if not isinstance(column, str) or column not in fields:
        raise ColumnNotFoundError(
            f"profile: column {column!r} not found; available columns: {sorted(fields)}"
        )
    data_type = fields[column].dataType
    F = functions_for(df)
    warnings: list[str] = []
    value = F.col(quote_identifier(column))
    if isinstance(data_type, NumericType):
        warnings.append(
            f"column {column!r} is numeric ({data_type.simpleString()}): identifiers stored as "
            "numbers have lost leading zeros and formatting and will not match the partner's "
            "tokens; read the column as a string at the source (tokenize refuses it)"
        )
        value = value.cast("string")
    elif not isinstance(data_type, StringType):
        raise UnsupportedColumnTypeError(
            f"profile: column {column!r} has type {data_type.simpleString()}; "
            "identifiers must be string columns"
        )
    base = _normalized_column(F, value, "text")
    final = base if spec.name == "text" else _normalized_column(F, value, spec.name)

    def count_if(condition: Any, name: str) -> Any:
        return F.count(F.when(condition, 1)).alias(name)

    row = df.agg(
        F.count(F.lit(1)).alias("rows"),
        count_if(value.isNull(), "null"),
        count_if(value.isNotNull() & base.isNull(), "empty"),
        count_if(base.isNotNull() & final.isNull(), "invalid"),
        count_if(final.isNotNull() & (final != value), "changed"),
        count_if(value.rlike(f"^{_PY_WHITESPACE_CLASS}|{_PY_WHITESPACE_CLASS}\\z"), "ws"),
        count_if(~_is_ascii(F, value), "non_ascii"),
    ).collect()[0]
    rows, null, empty, invalid = int(row["rows"]), int(row["null"]), int(row["empty"]), int(row["invalid"])
    if rows == 0:
        warnings.append("the DataFrame has no rows")
    elif null + empty + invalid == rows:
        warnings.append("no value gets a token (all null, empty or invalid): nothing can join")
    if invalid:
        warnings.append(
            f"{invalid:,} of {rows:,} values ({_pct(invalid, rows)}) are invalid for preset "
            f"{spec.name} and get null tokens"
        )
    return AlignmentProfile(
        column=column,
        preset=spec.name,
        spec_fingerprint=spec.fingerprint(),
        rows=rows,
        null=null,
        empty_after_normalization=empty,
        changed_by_normalization=int(row["changed"]),
        leading_trailing_whitespace=int(row["ws"]),
        non_ascii=int(row["non_ascii"]),
        invalid_for_preset=invalid,
        warnings=tuple(warnings),
    )


# -- match report ----------------------------------------------------------------------------------------
def _token_column(df: DataFrame, name: str, side: str) -> None:
    from pyspark.sql.types import StringType

    fields = {f.name: f for f in df.schema.fields}
    if name not in fields:
        raise ColumnNotFoundError(
            f"match_report: {side} column {name!r} not found; available columns: {sorted(fields)}"
        )
    if not isinstance(fields[name].dataType, StringType):
        raise UnsupportedColumnTypeError(
            f"match_report: {side} column {name!r} has type "
            f"{fields[name].dataType.simpleString()}; token columns are strings"
        )


def match_report(
    left: DataFrame,
    right: DataFrame,
    *,
    on: str | tuple[str, str],
    near_zero: float = 0.01,
) -> MatchReport:
    """Compare two token columns: rows, null tokens, distinct tokens, overlap and match
    rates (one Spark job, one shuffle of the tokens). Nothing but counts is returned or
    printed.

    Args:
        left: the first DataFrame (tokenized).
        right: the second DataFrame (tokenized), in the same session.
        on: the token column name on both sides, or ``(left_name, right_name)``.
        near_zero: warn when :attr:`MatchReport.match_rate` is below this (default 1%).

    Returns:
        A :class:`MatchReport`; ``print()`` it for a readable summary.

    Raises:
        ColumnNotFoundError: a token column is missing.
        UnsupportedColumnTypeError: a token column is not a string column.
        InvalidArgumentError: a bad ``on`` or ``near_zero``.

    Example:
        >>> report = match_report(ours, theirs, on="pan_token")  # doctest: +SKIP
        >>> round(report.match_rate, 3)  # doctest: +SKIP
        0.42
    """
    if isinstance(on, str):
        left_name, right_name = on, on
    elif isinstance(on, tuple) and len(on) == 2 and all(isinstance(c, str) for c in on):
        left_name, right_name = on
    else:
        raise InvalidArgumentError(
            f"'on' in match_report must be a column name or a (left, right) pair of names, got {on!r}"
        )
    if isinstance(near_zero, bool) or not isinstance(near_zero, int | float) or not 0 <= near_zero <= 1:
        raise InvalidArgumentError(f"'near_zero' in match_report must be in [0, 1], got {near_zero!r}")
    _token_column(left, left_name, "left")
    _token_column(right, right_name, "right")
    F = functions_for(left)
    # one shuffle: both sides' tokens tagged with their side, unioned and grouped once (a
    # grouping per side and a join on the groups would shuffle each side and then join)
    tagged = left.select(F.col(quote_identifier(left_name)).alias("t"), F.lit(0).alias("s")).unionAll(
        right.select(F.col(quote_identifier(right_name)).alias("t"), F.lit(1).alias("s"))
    )
    joined = tagged.groupBy("t").agg(
        F.count(F.when(F.col("s") == 0, 1)).alias("ln"), F.count(F.when(F.col("s") == 1, 1)).alias("rn")
    )
    t, ln, rn = F.col("t"), F.col("ln"), F.col("rn")
    in_left = t.isNotNull() & (ln > 0)
    in_right = t.isNotNull() & (rn > 0)
    both = in_left & in_right
    bad_shape = ~t.rlike(_TOKEN_SHAPE)
    row = joined.agg(
        F.coalesce(F.sum(ln), F.lit(0)).alias("left_rows"),
        F.coalesce(F.sum(rn), F.lit(0)).alias("right_rows"),
        F.coalesce(F.sum(F.when(t.isNull(), ln)), F.lit(0)).alias("left_null"),
        F.coalesce(F.sum(F.when(t.isNull(), rn)), F.lit(0)).alias("right_null"),
        F.count(F.when(in_left, 1)).alias("left_distinct"),
        F.count(F.when(in_right, 1)).alias("right_distinct"),
        F.count(F.when(both, 1)).alias("overlap"),
        F.coalesce(F.sum(F.when(both, ln)), F.lit(0)).alias("left_matched"),
        F.coalesce(F.sum(F.when(both, rn)), F.lit(0)).alias("right_matched"),
        F.count(F.when(in_left & bad_shape, 1)).alias("left_bad"),
        F.count(F.when(in_right & bad_shape, 1)).alias("right_bad"),
    ).collect()[0]
    counts = {k: int(v) for k, v in row.asDict().items()}
    report = MatchReport(
        left_column=left_name,
        right_column=right_name,
        left_rows=counts["left_rows"],
        right_rows=counts["right_rows"],
        left_null=counts["left_null"],
        right_null=counts["right_null"],
        left_distinct=counts["left_distinct"],
        right_distinct=counts["right_distinct"],
        overlap_distinct=counts["overlap"],
        left_rows_matched=counts["left_matched"],
        right_rows_matched=counts["right_matched"],
        left_not_token_shaped=counts["left_bad"],
        right_not_token_shaped=counts["right_bad"],
    )
    warnings: list[str] = []
    if report.left_distinct and report.right_distinct and report.match_rate < near_zero:
        warnings.append(
            f"match rate {100 * report.match_rate:.2f}% is near zero: a key or spec mismatch is "
            "likely; compare Secret.check_value() and TokenSpec.fingerprint() with your partner"
        )
    for side, distinct, bad, nulls, rows in (
        ("left", report.left_distinct, report.left_not_token_shaped, report.left_null, report.left_rows),
        ("right", report.right_distinct, report.right_not_token_shaped, report.right_null, report.right_rows),
    ):
        if rows and not distinct:
            warnings.append(f"the {side} side has no non-null tokens ({nulls:,} null of {rows:,} rows)")
        if bad:
            warnings.append(
                f"{bad:,} distinct {side} values are not 64-hex tokens: was the column tokenized?"
            )
    return MatchReport(**{**asdict(report), "warnings": tuple(warnings)})
