"""What differs between the Python and pyspark versions cleanjoin supports, in one place.

cleanjoin runs on Python 3.10, 3.11 and 3.12 and on pyspark 3.5.x and 4.0-4.2 (classic and
Spark Connect), because clean-room notebooks bring their own. Other modules take these
names from here instead of testing versions themselves:

- :class:`StrEnum`: ``enum.StrEnum`` on Python 3.11+, the same behaviour on 3.10.
- :data:`UTC`: ``datetime.timezone.utc`` (``datetime.UTC`` is 3.11+).
- :func:`check_python` and :func:`check_pyspark`: stop an unsupported version with one
  line naming the supported ones.

This module is imported before any other on ``import cleanjoin`` (to refuse an old Python
in one line), so it uses no syntax newer than Python 3.7 and imports no pyspark at module
level.

Example:
    >>> class Mode(StrEnum):
    ...     DELETE = "delete"
    >>> str(Mode.DELETE), f"{Mode.DELETE}", Mode.DELETE == "delete"
    ('delete', 'delete', True)
"""

from __future__ import annotations

import datetime as _dt
import enum
import re
import sys
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cleanjoin.errors import SparkEnvironmentError

__all__ = [
    "PYSPARK_SUPPORTED",
    "PYTHON_SUPPORTED",
    "UTC",
    "StrEnum",
    "check_pyspark",
    "check_python",
    "spark_major_minor",
]

UTC = _dt.timezone.utc
"""The UTC time zone (``datetime.UTC`` on Python 3.11+ is this same object)."""

class _StrEnum(str, enum.Enum):
    """Python 3.11's ``enum.StrEnum`` for 3.10: members are strings; ``str()`` and
    ``format()`` give the value; ``auto()`` gives the lower-cased member name."""

    _value_: str

    if TYPE_CHECKING:  # as typeshed declares enum.StrEnum's

        @property
        def value(self) -> str: ...

    def __new__(cls, *values: Any) -> _StrEnum:
        if len(values) != 1:
            raise TypeError(f"a StrEnum value is one string, got {len(values)} arguments")
        if not isinstance(values[0], str):
            raise TypeError(f"{values[0]!r} is not a string")
        member = str.__new__(cls, values[0])
        member._value_ = values[0]
        return member

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, format_spec: str) -> str:
        return str.__format__(self, format_spec)

    @staticmethod
    def _generate_next_value_(name: str, start: int, count: int, last_values: list[Any]) -> str:
        return name.lower()


if sys.version_info >= (3, 11):
    from enum import StrEnum
else:
    StrEnum = _StrEnum


PYTHON_SUPPORTED = "Python 3.10 or newer (3.10, 3.11 and 3.12 are supported)"
PYSPARK_SUPPORTED = "pyspark 3.5.x, 4.0.x, 4.1.x or 4.2.x (classic or Spark Connect)"
_SPARK_LINES = frozenset({(3, 5), (4, 0), (4, 1), (4, 2)})


def check_python(version: Sequence[Any] | None = None) -> None:
    """Refuse a Python older than 3.10 (``version`` defaults to ``sys.version_info``).

    Raises:
        SparkEnvironmentError: ``cleanjoin needs Python 3.10 or newer (...); this is Python 3.9.18``.

    Example:
        >>> check_python((3, 9, 18))
        Traceback (most recent call last):
        ...
        cleanjoin.errors.SparkEnvironmentError: cleanjoin needs Python 3.10 or newer (3.10, 3.11 and 3.12 are supported); this is Python 3.9.18
    """
    found = tuple(sys.version_info if version is None else version)
    if tuple(found[:2]) < (3, 10):
        shown = ".".join(str(part) for part in found[:3])
        raise SparkEnvironmentError(f"cleanjoin needs {PYTHON_SUPPORTED}; this is Python {shown}")


def spark_major_minor(version: str) -> tuple[int, int] | None:
    """The major and minor numbers of a pyspark version string, ``None`` if it has none.

    Example:
        >>> spark_major_minor("3.5.7"), spark_major_minor("4.1.0.dev2"), spark_major_minor("dev")
        ((3, 5), (4, 1), None)
    """
    match = re.match(r"\s*(\d+)\.(\d+)(?!\d)", version)
    return (int(match.group(1)), int(match.group(2))) if match else None


@lru_cache(maxsize=8)
def _checked(version: str) -> tuple[int, int]:
    line = spark_major_minor(version)
    if line is None:
        raise SparkEnvironmentError(
            f"cleanjoin needs {PYSPARK_SUPPORTED}; found pyspark version {version!r}, "
            "which it cannot read"
        )
    if line not in _SPARK_LINES:
        raise SparkEnvironmentError(f"cleanjoin needs {PYSPARK_SUPPORTED}; found pyspark {version}")
    return line


def check_pyspark() -> tuple[int, int]:
    """The running pyspark's ``(major, minor)``, or one clear error if it is not supported.

    Reads ``pyspark.__version__`` (also right for Databricks Connect and the Databricks
    Runtime, whose pyspark may have no pip metadata). Called at the first Spark use
    (:func:`cleanjoin._spark.functions_for`, ``is_connect`` on a pyspark object,
    ``local_spark``); after the first call it costs a dictionary look-up.

    Raises:
        SparkEnvironmentError: pyspark is missing or outside 3.5.x and 4.0-4.2.
    """
    try:
        import pyspark
    except ImportError:
        raise SparkEnvironmentError(
            f"cleanjoin needs {PYSPARK_SUPPORTED}; pyspark is not installed"
        ) from None
    return _checked(str(getattr(pyspark, "__version__", "")))
