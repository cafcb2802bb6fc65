"""SQL identifier quoting, written once for every module that builds SQL or column names.

Spark resolves a backquoted name literally (dots, spaces and keywords included); a
backquote inside the name is written twice.
"""

from __future__ import annotations

__all__ = ["quote_identifier"]


def quote_identifier(name: str) -> str:
    """``name`` as a backquoted Spark SQL identifier.

    Example:
        >>> quote_identifier("a.b"), quote_identifier("x`y")
        ('`a.b`', '`x``y`')
    """
    return "`" + name.replace("`", "``") + "`"
