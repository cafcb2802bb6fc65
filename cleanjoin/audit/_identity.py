"""Identities of what an audit entry speaks of: Delta tables, released rows, checkpoints."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cleanjoin._auditverify import content_hash_rows
from cleanjoin._delta import is_missing
from cleanjoin._table import TableRef
from cleanjoin._typing import DataFrame, SparkSession
from cleanjoin.errors import InvalidArgumentError

__all__ = ["content_hash", "delta_identity", "head_from_commit"]


def content_hash(df: DataFrame) -> str:
    """SHA-256 hex of the released rows of ``df`` in a canonical order.

    Collects ``df`` (released aggregates are small). Columns are sorted by name; each row
    becomes the canonical JSON object ``{column: value}``; the lines are sorted, so row
    order does not matter. See ``docs/audit-format.md`` to recompute it with pandas.

    Example:
        >>> content_hash(result.df)  # doctest: +SKIP
        '3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b'
    """
    columns = list(df.columns)
    return content_hash_rows(columns, (tuple(r) for r in df.collect()))


def delta_identity(spark: SparkSession, path: str) -> dict[str, Any]:
    """``{"path": path, "version": latest version}`` of the Delta table at ``path``, or
    ``{"table": name, "version": ...}`` when ``path`` is a table name (``schema.table`` or
    ``catalog.schema.table``).

    Example:
        >>> delta_identity(spark, "/tmp/gold")  # doctest: +SKIP
        {'path': '/tmp/gold', 'version': 4}
        >>> delta_identity(spark, "main.gold.segments")  # doctest: +SKIP
        {'table': 'main.gold.segments', 'version': 2}
    """
    ref = TableRef.parse(path, arg="path", call="delta_identity")
    where = f"at {path!r}" if ref.is_path else ref.describe
    try:
        rows = spark.sql(f"DESCRIBE HISTORY {ref.sql} LIMIT 1").select("version").collect()
    except Exception as exc:
        if is_missing(exc) or "DELTA_TABLE_ONLY_OPERATION" in str(exc):
            raise InvalidArgumentError(f"delta_identity: there is no Delta table {where}") from None
        raise
    if not rows:
        the = f"the table at {path!r}" if ref.is_path else f"the table {ref.describe}"
        raise InvalidArgumentError(f"delta_identity: {the} has no history")
    return {**ref.identity(), "version": int(rows[0]["version"])}


def head_from_commit(
    spark: SparkSession, path: str, *, version: int | None = None
) -> str | None:
    """The audit head recorded in a Delta table's commit ``userMetadata`` (JSON with
    ``audit_head``), at ``version`` or the latest commit; ``None`` when absent.

    ``path`` is the table's path or its name (``schema.table``, ``catalog.schema.table``).

    Example:
        >>> head_from_commit(spark, "/tmp/gold")  # doctest: +SKIP
        '5f1c...'
        >>> head_from_commit(spark, "main.gold.segments", version=3)  # doctest: +SKIP
        '5f1c...'
    """
    ref = TableRef.parse(path, arg="path", call="head_from_commit")
    history = spark.sql(f"DESCRIBE HISTORY {ref.sql}").select("version", "userMetadata")
    rows = history.orderBy("version", ascending=False).collect()
    for row in rows:
        if version is not None and int(row["version"]) != version:
            continue
        meta = row["userMetadata"]
        if not meta:
            return None
        try:
            data = json.loads(meta)
        except ValueError:
            return None
        found = _find_key(data, "audit_head")
        return found if isinstance(found, str) else None
    return None


def _find_key(data: Any, key: str) -> Any:
    if isinstance(data, Mapping):
        if key in data:
            return data[key]
        for value in data.values():
            found = _find_key(value, key)
            if found is not None:
                return found
    return None
