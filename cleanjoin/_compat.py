"""What differs between the Python and pyspark versions cleanjoin supports, in one place.

cleanjoin runs on Python 3.10, 3.11 and 3.12 and on pyspark 3.5.x and 4.0-4.2 (classic and
Spark Connect), because clean-room notebooks bring their own. Other modules take these
names from here instead of testing versions themselves:

- :class:`StrEnum`: ``enum.StrEnum`` on Python 3.11+, the same behaviour on 3.10.
- :data:`UTC`: ``datetime.timezone.utc`` (``datetime.UTC`` is 3.11+).
- :func:`check_python` and :func:`check_pyspark`: stop an unsupported version with one
  line naming the supported ones.
- :func:`observation_class`: Spark Connect's own ``Observation`` exists from pyspark 4.0;
  before it, no observed metric reaches a Connect client.
- :func:`data_type`: UDF return types as objects (a string needs the classic JVM).
- :func:`overwrite_by_name`: Delta 3.3 cannot ``saveAsTable`` in overwrite mode.
- :func:`scalar_column`: a DataFrame as a scalar subquery (``DataFrame.scalar``) is 4.0+.
- :func:`scalar_arrow_udf_parts`: Arrow UDFs (``SQL_SCALAR_ARROW_UDF``) exist from 4.1.

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
import importlib.util
import re
import sys
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from cleanjoin.errors import InternalError, SparkEnvironmentError

if TYPE_CHECKING:
    from cleanjoin._typing import Column

__all__ = [
    "PYSPARK_SUPPORTED",
    "PYTHON_SUPPORTED",
    "UTC",
    "StrEnum",
    "check_pyspark",
    "check_pyspark_version",
    "check_python",
    "data_type",
    "observation_class",
    "overwrite_by_name",
    "pyspark_version",
    "require_pipeline_dp",
    "scalar_arrow_udf_parts",
    "scalar_column",
    "spark_major_minor",
    "trim_chars",
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


def require_pipeline_dp() -> None:
    """Stop with one clear line when pipeline_dp (the DP mechanisms) is not installed.

    pipeline-dp 0.3.1 and its python-dp need Python 3.11 or newer, so on Python 3.10
    cleanjoin installs without them: tokens, the guarded threshold query, contracts,
    audit and revocation work there, differential privacy does not.

    Raises:
        SparkEnvironmentError: pipeline_dp cannot be imported.
    """
    if "pipeline_dp" in sys.modules or importlib.util.find_spec("pipeline_dp") is not None:
        return
    raise SparkEnvironmentError(
        "differential privacy needs pipeline-dp 0.3.1, which needs Python 3.11 or newer; "
        f"this is Python {sys.version_info[0]}.{sys.version_info[1]} (threshold queries "
        "work without it)"
    )


def pyspark_version() -> tuple[int, int]:
    """The running pyspark's ``(major, minor)`` (checked: see :func:`check_pyspark`)."""
    return check_pyspark()


check_pyspark_version = check_pyspark
"""The same check under the name the session module uses."""


def trim_chars(F: Any, column: Column, chars: str) -> Column:
    """``column`` with every leading and trailing character in ``chars`` removed.

    ``functions.trim(col, trim)`` takes the characters from pyspark 4.0 on; pyspark 3.5
    (and Databricks Connect 14.3-16.4) has only ``trim(col)``, so there the same SQL
    function is called by name as ``btrim(str, trimStr)`` (Spark SQL since 3.2).

    ``F`` is the ``functions`` module that matches the DataFrame (``functions_for``).
    """
    if check_pyspark() >= (4, 0):
        return cast("Column", F.trim(column, F.lit(chars)))
    return cast("Column", F.call_function("btrim", column, F.lit(chars)))


_SIMPLE_TYPES = {
    "string": "StringType", "boolean": "BooleanType", "int": "IntegerType",
    "bigint": "LongType", "double": "DoubleType", "binary": "BinaryType",
}


def data_type(name: str) -> Any:
    """The ``pyspark.sql.types`` object of a simple SQL type name (``"string"``, ...).

    A UDF given its return type as a string parses it later through the classic JVM
    (pyspark 3.5 and 4.0 pandas UDFs do, to check the Arrow type), which a process holding
    only a Spark Connect session does not have; an object needs no parsing.

    Example:
        >>> data_type("string")
        StringType()
    """
    from pyspark.sql import types

    if name not in _SIMPLE_TYPES:
        raise InternalError(f"data_type: {name!r} is not one of {sorted(_SIMPLE_TYPES)}")
    return getattr(types, _SIMPLE_TYPES[name])()


def overwrite_by_name() -> bool:
    """True when ``saveAsTable`` in overwrite mode works on a Delta table: not on
    pyspark 3.5 with Delta 3.3 (see :meth:`cleanjoin._table.TableRef.overwrite`)."""
    return check_pyspark() >= (4, 0)


def scalar_column(F: Any, frame: Any) -> Column:
    """The value of ``frame`` (at most one row of one column) as a column: a scalar
    subquery (``DataFrame.scalar``, pyspark 4.0+), run once before the stage that uses it.

    pyspark 3.5 has no DataFrame scalar subquery, so there the value is computed at once
    (one job, at the call) and used as a literal: the same value, one job earlier.
    ``None`` (a null) when ``frame`` has no row.
    """
    if check_pyspark() >= (4, 0):
        return cast("Column", frame.scalar())
    rows = frame.limit(1).collect()
    return cast("Column", F.lit(rows[0][0] if rows else None))


def observation_class(*, connect: bool) -> type[Any] | None:
    """The ``Observation`` class to pass to ``DataFrame.observe`` (classic or Connect), or
    ``None`` where observed metrics never reach the client.

    Spark Connect has its own ``Observation`` from pyspark 4.0. Connect 3.5 (also
    Databricks Connect 14.3-16.4) accepts the classic one in ``observe`` but its client
    drops the metrics of ``collect`` and of writes (measured on pyspark 3.5.7: ``get``
    fails at once), so there the caller counts with a job of its own instead
    (:func:`cleanjoin.guard._observe.observe_metrics`).
    """
    if connect:
        try:
            from pyspark.sql.connect.observation import Observation as ConnectObservation
        except ImportError:  # pyspark 3.5: no Connect observation
            return None
        return cast("type[Any]", ConnectObservation)
    from pyspark.sql.observation import Observation as ClassicObservation

    return cast("type[Any]", ClassicObservation)


def scalar_arrow_udf_parts(
    fn: Callable[[Any], Any],
) -> tuple[Callable[[Any], Any], int]:
    """The function and ``evalType`` of a scalar UDF that maps a ``pyarrow.Array`` to one
    of equal length: ``fn`` as an Arrow UDF on pyspark 4.1+, else ``fn`` wrapped in a
    pandas UDF that converts each batch to Arrow and back (pyspark 3.5 and 4.0).
    """
    try:
        from pyspark.util import PythonEvalType
    except ImportError:  # pyspark 3.5 keeps it in pyspark.rdd
        from pyspark.rdd import PythonEvalType  # type: ignore[attr-defined, no-redef]
    arrow = getattr(PythonEvalType, "SQL_SCALAR_ARROW_UDF", None)
    if arrow is not None:
        return fn, int(arrow)
    return _ThroughPandas(fn), int(PythonEvalType.SQL_SCALAR_PANDAS_UDF)


class _ThroughPandas:
    """``fn`` (Arrow array in, Arrow array out) as a scalar pandas UDF body (picklable)."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, series: Any) -> Any:
        import pyarrow as pa

        return self.fn(pa.Array.from_pandas(series, type=pa.string())).to_pandas()
