"""The Gold table a revocation batch or a purge changes: where it is, its version and columns."""

from __future__ import annotations

from typing import Any

from cleanjoin._delta import is_conflict
from cleanjoin._table import TableRef
from cleanjoin._typing import SparkSession
from cleanjoin.errors import ColumnNotFoundError, InvalidArgumentError, SchemaMismatchError
from cleanjoin.revocation._options import RevocationMode

_INTEGRAL = ("tinyint", "smallint", "int", "bigint")


def gold_location(gold: Any, call: str) -> tuple[TableRef, SparkSession | None]:
    """Where ``gold`` is (a path, a table name or a ``delta.tables.DeltaTable``) and its session."""
    if isinstance(gold, str):
        if not gold:
            raise InvalidArgumentError(f"'gold' in {call} must be a non-empty path")
        return TableRef.parse(gold, arg="gold", call=call), None
    if hasattr(gold, "toDF") and hasattr(gold, "detail"):
        location = gold.detail().select("location").first()[0]
        return TableRef(given=str(location)), gold.toDF().sparkSession
    raise InvalidArgumentError(
        f"'gold' in {call} must be a Delta table path or name or a delta.tables.DeltaTable, "
        f"got {type(gold).__name__}"
    )


def latest_version(spark: SparkSession, gold: TableRef, call: str) -> int:
    """The newest version of the Delta table ``gold``."""
    try:
        rows = spark.sql(f"DESCRIBE HISTORY {gold.sql} LIMIT 1").select("version").collect()
    except Exception as exc:
        if is_conflict(exc):
            raise
        raise InvalidArgumentError(f"{call}: no readable Delta table {gold.describe}") from exc
    if not rows:
        raise InvalidArgumentError(f"{call}: no readable Delta table {gold.describe}")
    return int(rows[0][0])


def check_gold(
    spark: SparkSession,
    gold: TableRef,
    token_column: str,
    mode: RevocationMode,
    flag_column: str,
    flag_value: object,
    call: str,
) -> str | None:
    """Check the Gold table's columns; return the flag column's type in ``"flag"`` mode."""
    try:
        schema = gold.read(spark).schema
    except Exception as exc:
        raise InvalidArgumentError(f"{call}: no readable Delta table {gold.describe}") from exc
    types = {f.name: f.dataType.simpleString() for f in schema.fields}
    needed = [token_column] + ([flag_column] if mode is RevocationMode.FLAG else [])
    missing = [c for c in needed if c not in types]
    if missing:
        names = ", ".join(f"'{c}'" for c in missing)
        raise ColumnNotFoundError(
            f"{call}: column {names} not found in the Gold table {gold.describe}; "
            f"it has columns {sorted(types)}"
        )
    if types[token_column] != "string":
        raise SchemaMismatchError(
            f"{call}: Gold column '{token_column}' is {types[token_column]}; tokens are strings"
        )
    if mode is not RevocationMode.FLAG:
        return None
    flag_type = str(types[flag_column])
    fits = (
        (flag_type == "string" and isinstance(flag_value, str))
        or (flag_type == "boolean" and isinstance(flag_value, bool))
        or (
            flag_type in _INTEGRAL
            and isinstance(flag_value, int)
            and not isinstance(flag_value, bool)
        )
    )
    if not fits:
        raise SchemaMismatchError(
            f"{call}: Gold column '{flag_column}' is {flag_type}, but 'flag_value' is a "
            f"{type(flag_value).__name__}; give a value of the column's type"
        )
    return flag_type
