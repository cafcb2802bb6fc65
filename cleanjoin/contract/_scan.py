"""The value scan of a released result: token and card-number look-alikes, low cohorts.

:func:`scan_values` is the one entry point: it reads every value of the (small) result
in one Spark job and returns the reasons to reject it, as counts per column, never a
value. Which columns are read, and how, is this module's (:func:`_scan_kind`); what counts as a
look-alike is the library's one leak scanner's (:mod:`cleanjoin._leak`), the same rules
that audit entries and revocation lists obey.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from cleanjoin._leak import LeakKind, leak_columns
from cleanjoin._spark import functions_for
from cleanjoin._sql import quote_identifier
from cleanjoin._typing import DataFrame

# The token and card forms as patterns, importable as before. The review itself asks the
# leak scanner, whose rules include these and more (32+ hex digits, split tokens, e-mail).
HEX_TOKEN_PATTERN = r"[0-9a-fA-F]{64}"
"""A run of 64 hexadecimal characters anywhere in a value (an HMAC-SHA256 / SHA-256
token, alone or inside a longer text)."""

B64_TOKEN_PATTERN = r"(?<![A-Za-z0-9_+/\-])[A-Za-z0-9_+/\-]{43}=?(?![A-Za-z0-9_+/=\-])"
"""A 32-byte value in (URL-safe) base64 anywhere in a value (a token in base64 form)."""

CARD_PATTERN = r"(?<![0-9])[0-9](?:[ \-]?[0-9]){11,18}(?![0-9])"
"""12 to 19 digits anywhere in a value, single spaces or dashes allowed between them (a
payment card number, if Luhn-valid)."""


def scan_values(
    df: DataFrame, *, cohort_columns: Sequence[str], dimensions: Collection[str], min_cohort: int
) -> list[str]:
    """Reasons to reject ``df`` found in its values (counts only), in one Spark job.

    Args:
        df: the result to scan; every column is scanned as :func:`_scan_kind` says.
        cohort_columns: numeric columns whose every value must reach ``min_cohort``
            (a null or NaN does not).
        dimensions: the columns whose whole numbers are also scanned for card numbers
            (a contract's dimensions and the columns it does not know).
        min_cohort: the contract's minimum cohort.

    Returns:
        The reasons, cohort columns first, then per scanned column (in schema order) its
        token and card look-alikes; empty when nothing is found or nothing is scanned.
    """
    fields = {f.name: f for f in df.schema.fields}
    scans = {
        n: kind for n, f in fields.items()
        if (kind := _scan_kind(f.dataType, dimension=n in dimensions))
    }
    return _value_checks(df, cohort_columns, scans, min_cohort)


def _scan_kind(dtype: Any, *, dimension: bool) -> str | None:
    """How a column's values are scanned for tokens and card numbers, if at all.

    "text": strings (any collation, char, varchar); "binary": raw bytes, as hex; "json":
    arrays, maps and structs, as their JSON text; "digits": whole numbers of a dimension
    (a card number stored as a number: integers and decimals as written, so the digits
    before a decimal point are a group of their own), "float": doubles and floats of a
    dimension, read as their whole number (exact up to 2**53, so to 15 digits and most
    16-digit numbers). Measures' numbers (counts, sums) are not scanned:
    a large sum is Luhn-valid one time in ten.
    """
    from pyspark.sql.types import (
        ArrayType,
        BinaryType,
        CharType,
        DecimalType,
        FractionalType,
        IntegralType,
        MapType,
        StringType,
        StructType,
        VarcharType,
    )

    if isinstance(dtype, StringType | CharType | VarcharType):
        return "text"
    if isinstance(dtype, BinaryType):
        return "binary"
    if isinstance(dtype, ArrayType | MapType | StructType):
        return "json"
    if dimension and isinstance(dtype, IntegralType | DecimalType):
        return "digits"
    if dimension and isinstance(dtype, FractionalType):
        return "float"  # a card number stored as a double: read as its whole number
    return None



_REASONS = {
    "token": "look like tokens (64 hexadecimal or 43 base64 characters)",
    "card": "look like card numbers (12-19 digits, Luhn-valid)",
    "email": "look like e-mail addresses",
}
"""One reason per kind of finding; the leak scanner's ``hex``, ``split_hex`` and ``base64``
rules all find tokens (or key material) written in some form."""

_TOKEN_KINDS: tuple[LeakKind, ...] = ("hex", "split_hex", "short_hex", "base32", "base64")


def _value_checks(
    df: DataFrame, cohort_cols: Sequence[str], scans: Mapping[str, str], min_cohort: int
) -> list[str]:
    """Count suspicious values per column in one Spark job; return reasons (counts only).

    ``scans`` maps a column to how its values are read (see :func:`_scan_kind`); the
    rules are the library's one leak scanner's (:func:`cleanjoin._leak.leak_columns`).
    """
    if not cohort_cols and not scans:
        return []
    F = functions_for(df)
    exprs: list[Any] = []
    labels: list[tuple[str, str]] = []

    def count(flag: Any, label: tuple[str, str]) -> None:
        exprs.append(F.sum(F.when(flag, 1).otherwise(0)).alias(f"v{len(exprs)}"))
        labels.append(label)

    for name in cohort_cols:
        col = F.col(quote_identifier(name))
        count(col.isNull() | F.isnan(col.cast("double")) | (col < F.lit(min_cohort)),
              ("cohort", name))
    for name, kind in scans.items():
        col = F.col(quote_identifier(name))
        text = {
            "text": col.cast("string"),
            "binary": F.hex(col),
            "json": F.to_json(col),
            "digits": col.cast("string"),
            "float": col.cast("decimal(38,0)").cast("string"),
        }[kind]
        if kind in ("digits", "float"):  # a whole number can only be a card number
            count(leak_columns(F, text, kinds=("card",))["card"], ("card", name))
            continue
        flags = leak_columns(F, text)
        token = flags[_TOKEN_KINDS[0]]
        for kind in _TOKEN_KINDS[1:]:
            token = token | flags[kind]
        count(token, ("token", name))
        count(flags["card"], ("card", name))
        count(flags["email"], ("email", name))
    # one partition: a released result is small, and the aggregate then needs no
    # shuffle (one job, where a shuffle and the final aggregate would be two)
    row = df.coalesce(1).agg(*exprs).collect()[0]
    reasons: list[str] = []
    for (kind, name), value in zip(labels, row, strict=True):
        n = int(value or 0)
        if not n:
            continue
        if kind == "cohort":
            reasons.append(
                f"column {name!r} (cohort_count) has {n} value(s) below the contract's minimum "
                f"cohort {min_cohort} or null"
            )
        else:
            reasons.append(f"column {name!r} has {n} value(s) that {_REASONS[kind]}")
    return reasons
