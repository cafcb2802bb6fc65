"""Quoting of column and view names in the SQL the revocation modules write."""

from __future__ import annotations


def quote(column: str) -> str:
    """The backquoted SQL identifier for ``column``.

    Example:
        >>> quote("card`token")
        '`card``token`'
    """
    return "`" + column.replace("`", "``") + "`"
