"""Delta Lake helpers shared by the modules that write Delta tables with SQL.

The DeltaTable Python API does not work under Spark Connect here (no delta-connect for
Spark 4.2), so cleanjoin writes with SQL on ``delta.`path``` or a table name (see
:mod:`cleanjoin._table`) and recognises Delta's errors
by name: classic mode raises ``delta.exceptions`` classes, Spark Connect wraps them in
generic gRPC errors whose message carries the class name or the error class.
"""

from __future__ import annotations

import contextlib

__all__ = ["CONFLICT_ERRORS", "is_conflict", "is_missing", "quote_path"]

CONFLICT_ERRORS = (
    "ConcurrentAppendException",
    "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentTransactionException",
    "ConcurrentWriteException",
    "MetadataChangedException",
    "ProtocolChangedException",
    "DELTA_CONCURRENT_",
    "DELTA_METADATA_CHANGED",
    "DELTA_PROTOCOL_CHANGED",
    "FileAlreadyExistsException",
    "TABLE_OR_VIEW_ALREADY_EXISTS",
    "DELTA_TABLE_ALREADY_EXISTS",  # the same race on Delta 3.3 (Connect 3.5, measured)
    "DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION",
    "LOCATION_ALREADY_EXISTS",
)
"""Names and error classes of Delta write conflicts that a retry resolves (two writers
creating the same table race on ``FileAlreadyExists`` / ``TABLE_OR_VIEW_ALREADY_EXISTS``,
or, while the other writer has written files but not yet its first commit, on
``DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION``; two writers creating the same managed
table by name race on ``LOCATION_ALREADY_EXISTS``)."""

_MISSING = (
    "DELTA_MISSING_DELTA_TABLE",
    "DELTA_TABLE_NOT_FOUND",
    "PATH_NOT_FOUND",
    "TABLE_OR_VIEW_NOT_FOUND",
    "NoSuchTableException",
    "Table or view not found",
    "is not a Delta table",
    "doesn't exist",
    "does not exist",
)


def quote_path(path: str) -> str:
    """The SQL name of the Delta table at ``path``.

    Example:
        >>> quote_path("/tmp/a`b")
        'delta.`/tmp/a``b`'
    """
    return "delta.`" + path.replace("`", "``") + "`"


def _text(exc: BaseException) -> str:
    names = " ".join(cls.__name__ for cls in type(exc).__mro__)
    text = f"{names} {type(exc).__module__} {exc}"[:20000]
    condition = getattr(exc, "getCondition", None) or getattr(exc, "getErrorClass", None)
    if callable(condition):
        with contextlib.suppress(Exception):  # best effort: the message is matched anyway
            text += f" {condition()}"
    return text


def is_conflict(exc: BaseException) -> bool:
    """True when ``exc`` is a Delta write conflict that a retry can resolve (both modes).

    Example:
        >>> class ConcurrentAppendException(Exception): ...
        >>> is_conflict(ConcurrentAppendException("files were added")), is_conflict(ValueError("x"))
        (True, False)
    """
    text = _text(exc)
    return any(marker in text for marker in CONFLICT_ERRORS)


def is_missing(exc: BaseException) -> bool:
    """True when ``exc`` says the Delta table does not exist (yet), by path or by name.

    Example:
        >>> is_missing(RuntimeError("[DELTA_MISSING_DELTA_TABLE] not a table")), is_missing(ValueError("x"))
        (True, False)
        >>> is_missing(RuntimeError("[TABLE_OR_VIEW_NOT_FOUND] The table or view `s`.`t` cannot be found."))
        True
    """
    text = _text(exc)
    return any(marker in text for marker in _MISSING)
