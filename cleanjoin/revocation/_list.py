"""The revocation list: its schema, the token shape, validation and loading."""

from __future__ import annotations

import functools
import operator
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cleanjoin._leak import leak_columns
from cleanjoin._spark import functions_for, resolve_session
from cleanjoin._sql import quote_identifier
from cleanjoin._table import TableRef
from cleanjoin._typing import DataFrame, SparkSession
from cleanjoin.errors import ColumnNotFoundError, InvalidArgumentError, RevocationInputError

REVOCATION_COLUMNS = ("token", "revoked_at", "reason_code", "source")
"""The columns of a revocation list, in order."""

TOKEN_PATTERN = "^[0-9a-f]{64}$"
"""The shape of a cleanjoin token: 64 lowercase hex characters (HMAC-SHA256)."""

SPARK_HINT = "pass 'spark' (a SparkSession) to read a Delta table given by path or name"

_FREE_TEXT = ("reason_code", "source")
"""The revocation list's columns of free text, scanned for leaks."""

_TOKEN_RE = re.compile(TOKEN_PATTERN)


def is_token(value: object) -> bool:
    """True when ``value`` has the shape of a cleanjoin token (64 lowercase hex characters).

    Example:
        >>> is_token("0" * 64), is_token("0" * 63), is_token(None)
        (True, False, False)
    """
    return isinstance(value, str) and _TOKEN_RE.match(value) is not None


def revocation_schema() -> Any:
    """The schema of a revocation list (a ``pyspark.sql.types.StructType``).

    Example:
        >>> revocation_schema().simpleString()
        'struct<token:string,revoked_at:timestamp,reason_code:string,source:string>'
    """
    from pyspark.sql.types import StringType, StructField, StructType, TimestampType

    return StructType(
        [
            StructField("token", StringType(), True),
            StructField("revoked_at", TimestampType(), True),
            StructField("reason_code", StringType(), True),
            StructField("source", StringType(), True),
        ]
    )


_ACCEPTED_TYPES = {
    "token": ("string",),
    "revoked_at": ("timestamp", "timestamp_ntz"),
    "reason_code": ("string",),
    "source": ("string",),
}


def check_schema(df: DataFrame, call: str) -> None:
    """Raise RevocationInputError naming missing or wrongly typed revocation columns."""
    types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    missing = [c for c in REVOCATION_COLUMNS if c not in types]
    wrong = [
        f"'{c}' is {types[c]} (expected {' or '.join(_ACCEPTED_TYPES[c])})"
        for c in REVOCATION_COLUMNS
        if c in types and types[c] not in _ACCEPTED_TYPES[c]
    ]
    problems = []
    if missing:
        problems.append("missing column(s) " + ", ".join(f"'{c}'" for c in missing))
    if wrong:
        problems.append("wrong type(s): " + "; ".join(wrong))
    if problems:
        raise RevocationInputError(
            f"{call}: the revocation list must have columns token string, revoked_at "
            f"timestamp, reason_code string, source string; {' and '.join(problems)}"
        )


@dataclass(frozen=True)
class Checked:
    """A validated revocation batch: its distinct tokens and its counts."""

    tokens: DataFrame  # one column `token`, distinct
    rows: int
    distinct: int


def validate(revoked: DataFrame, call: str) -> Checked:
    """Check schema, null tokens, token shape and the free-text columns in one pass.

    ``reason_code`` and ``source`` must not carry what a revocation list must never hold
    in clear (a card number, an e-mail address, a token or key): the library's one leak
    scanner (:mod:`cleanjoin._leak`) decides, as for audit entries and contract reviews.
    Never shows a value.
    """
    check_schema(revoked, call)
    fn = functions_for(revoked)
    token = fn.col("token")
    leaks = [leak for name in _FREE_TEXT for leak in leak_columns(fn, fn.col(name)).values()]
    leaky = functools.reduce(operator.or_, leaks)
    stats = revoked.agg(
        fn.sum(fn.when(leaky, 1).otherwise(0)).alias("leaky"),
        fn.count(fn.lit(1)).alias("rows"),
        fn.sum(fn.when(token.isNull(), 1).otherwise(0)).alias("nulls"),
        fn.sum(fn.when(token.isNotNull() & ~token.rlike(TOKEN_PATTERN), 1).otherwise(0)).alias(
            "malformed"
        ),
        fn.count_distinct(token).alias("distinct"),
    ).collect()[0]
    rows = int(stats["rows"])
    nulls = int(stats["nulls"] or 0)
    malformed = int(stats["malformed"] or 0)
    if nulls:
        raise RevocationInputError(
            f"{call}: {nulls} of {rows} revocation rows have a null token; "
            "every revocation must name a token"
        )
    if malformed:
        raise RevocationInputError(
            f"{call}: {malformed} of {rows} revocation tokens are not cleanjoin tokens "
            "(64 lowercase hex characters); values are not shown. Tokenize opt-outs with "
            "cleanjoin.tokenize and build the list with revocations_from_tokens"
        )
    leaky_rows = int(stats["leaky"] or 0)
    if leaky_rows:
        raise RevocationInputError(
            f"{call}: {leaky_rows} of {rows} revocation rows have a reason_code or source that "
            "looks like a card number, an e-mail address, a token or key material; values "
            "are not shown. Use codes such as 'opt_out' and a party name"
        )
    return Checked(
        tokens=revoked.select("token").distinct(), rows=rows, distinct=int(stats["distinct"])
    )


def read_revocations(revoked: DataFrame | str, spark: SparkSession | None, call: str) -> DataFrame:
    """The revocation list ``revoked`` as a DataFrame (read from Delta when it is a path or
    a table name)."""
    if isinstance(revoked, str):
        table = TableRef.parse(revoked, arg="revoked", call=call)
        session = resolve_session(call, spark, hint=SPARK_HINT)
        try:
            frame = table.read(session)
            frame.schema  # noqa: B018 - forces analysis (Spark Connect reads lazily)
        except Exception as exc:
            raise RevocationInputError(
                f"{call}: no readable Delta revocation table {table.describe}"
            ) from exc
        return frame
    if not hasattr(revoked, "schema") or not hasattr(revoked, "sparkSession"):
        raise InvalidArgumentError(
            f"'revoked' in {call} must be a DataFrame or a Delta table path or name, "
            f"got {type(revoked).__name__}"
        )
    return revoked


def load_revocations(revoked: DataFrame | str, *, spark: SparkSession | None = None) -> DataFrame:
    """Validate a revocation list and return its distinct tokens.

    Args:
        revoked: a DataFrame with the revocation schema, or a Delta table holding one: its
            path or its name (``catalog.schema.table`` or ``schema.table``). Extra columns
            are allowed and ignored.
        spark: the session to read a table with (defaults to the active session).

    Returns:
        A DataFrame with one column ``token``, one row per distinct revoked token.

    Raises:
        RevocationInputError: a column is missing or wrongly typed (the message names
            it), tokens are null (the message gives the count), or tokens are not
            64 lowercase hex characters (the count; values are never shown).

    Example:
        >>> tokens = load_revocations("/gold/revocations", spark=spark)  # doctest: +SKIP
        >>> tokens.columns  # doctest: +SKIP
        ['token']
    """
    call = "load_revocations"
    return validate(read_revocations(revoked, spark, call), call).tokens


def revocations_from_tokens(
    df: DataFrame,
    *,
    token_column: str,
    reason_code: str,
    source: str,
    revoked_at: datetime | None = None,
) -> DataFrame:
    """Build a revocation list from a DataFrame of tokenized opt-outs.

    Args:
        df: opt-outs, already tokenized (e.g. the output of ``cleanjoin.tokenize``).
        token_column: the token column of ``df`` (e.g. ``"card_number_token"``).
        reason_code: why the rows are revoked (e.g. ``"OPT_OUT"``, ``"AGREEMENT_SUSPENDED"``).
        source: who reported the revocation (e.g. ``"issuer-portal"``).
        revoked_at: when; defaults to the current timestamp at evaluation.

    Returns:
        A DataFrame with the revocation schema (token, revoked_at, reason_code, source).

    Raises:
        ColumnNotFoundError: ``token_column`` is not in ``df``.
        InvalidArgumentError: empty ``reason_code`` or ``source``.

    Example:
        >>> revocations_from_tokens(optouts, token_column="card_number_token",  # doctest: +SKIP
        ...                         reason_code="OPT_OUT", source="issuer-portal").columns
        ['token', 'revoked_at', 'reason_code', 'source']
    """
    call = "revocations_from_tokens"
    for name, value in (("reason_code", reason_code), ("source", source)):
        if not isinstance(value, str) or not value:
            raise InvalidArgumentError(f"'{name}' in {call} must be a non-empty string")
    if revoked_at is not None and not isinstance(revoked_at, datetime):
        raise InvalidArgumentError(
            f"'revoked_at' in {call} must be a datetime or None, got {type(revoked_at).__name__}"
        )
    if token_column not in df.columns:
        raise ColumnNotFoundError(
            f"{call}: column '{token_column}' not found; the DataFrame has columns {list(df.columns)}"
        )
    fn = functions_for(df)
    when = (
        fn.lit(revoked_at).cast("timestamp") if revoked_at is not None else fn.current_timestamp()
    )
    return df.select(
        fn.col(quote_identifier(token_column)).cast("string").alias("token"),
        when.alias("revoked_at"),
        fn.lit(reason_code).alias("reason_code"),
        fn.lit(source).alias("source"),
    )
