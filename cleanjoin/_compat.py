"""Differences between the Spark versions cleanjoin supports, hidden in one place.

cleanjoin runs on Spark 3.5.x and 4.0 to 4.2, classic and Spark Connect. Where those
versions differ, the rest of the package calls a function here instead of testing a
version itself.

Example:
    >>> pyspark_version() >= (3, 5)
    True
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from cleanjoin.errors import SparkEnvironmentError

if TYPE_CHECKING:
    from cleanjoin._typing import Column

__all__ = ["SUPPORTED_SPARK", "check_pyspark_version", "pyspark_version", "scalar_arrow_udf_parts", "trim_chars"]

# ---------------------------------------------------------------------------------------
# Spark versions
# ---------------------------------------------------------------------------------------

#: The Spark lines cleanjoin is tested on (oldest and newest, inclusive).
SUPPORTED_SPARK = ((3, 5), (4, 2))


def pyspark_version() -> tuple[int, int]:
    """The ``(major, minor)`` version of the installed pyspark (or Databricks Connect client).

    Raises:
        SparkEnvironmentError: when pyspark is not installed.
    """
    try:
        import pyspark
    except ImportError:
        raise SparkEnvironmentError(
            "cleanjoin needs pyspark 3.5 to 4.2 (or a Databricks runtime or Databricks Connect "
            "client of that Spark line); install cleanjoin[local] for a local Spark"
        ) from None
    match = re.match(r"(\d+)\.(\d+)", pyspark.__version__)
    if not match:
        raise SparkEnvironmentError(f"could not read the pyspark version {pyspark.__version__!r}")
    return int(match.group(1)), int(match.group(2))


def check_pyspark_version() -> tuple[int, int]:
    """Check that the installed pyspark is one cleanjoin supports (3.5 to 4.2).

    Raises:
        SparkEnvironmentError: one line naming the supported versions and the one found.

    Example:
        >>> check_pyspark_version() >= (3, 5)
        True
    """
    found = pyspark_version()
    (lo_major, lo_minor), (hi_major, hi_minor) = SUPPORTED_SPARK
    if not (lo_major, lo_minor) <= found <= (hi_major, hi_minor):
        raise SparkEnvironmentError(
            f"cleanjoin supports pyspark {lo_major}.{lo_minor} to {hi_major}.{hi_minor}; "
            f"found pyspark {found[0]}.{found[1]}"
        )
    return found


# ---------------------------------------------------------------------------------------
# Column functions whose signature changed
# ---------------------------------------------------------------------------------------


def trim_chars(F: Any, column: Column, chars: str) -> Column:
    """``column`` with every leading and trailing character in ``chars`` removed.

    ``functions.trim(col, trim)`` takes the characters from pyspark 4.0 on; pyspark 3.5
    (and Databricks Connect 14.3-16.4) has only ``trim(col)``, so there the same SQL
    function is called by name as ``btrim(str, trimStr)`` (Spark SQL since 3.2).

    ``F`` is the ``functions`` module that matches the DataFrame (``functions_for``).
    """
    if pyspark_version() >= (4, 0):
        return cast("Column", F.trim(column, F.lit(chars)))
    return cast("Column", F.call_function("btrim", column, F.lit(chars)))


# ---------------------------------------------------------------------------------------
# Vectorized UDFs
# ---------------------------------------------------------------------------------------


def scalar_arrow_udf_parts(
    fn: Callable[[Any], Any],
) -> tuple[Callable[[Any], Any], int]:
    """The function and ``evalType`` of a scalar UDF that maps a ``pyarrow.Array`` to one
    of equal length.

    Spark 4.1 and later run such a function as an Arrow UDF (``SQL_SCALAR_ARROW_UDF``);
    Spark 3.5 and 4.0 have no Arrow UDF, so there it runs as a pandas UDF whose batches are
    turned into Arrow arrays and back (nulls stay nulls, strings stay the same strings).
    """
    try:
        from pyspark.util import PythonEvalType
    except ImportError:  # pyspark 3.5 keeps it in pyspark.rdd
        from pyspark.rdd import PythonEvalType  # type: ignore[no-redef]

    arrow_type = getattr(PythonEvalType, "SQL_SCALAR_ARROW_UDF", None)
    if arrow_type is not None:
        return fn, int(arrow_type)

    def on_pandas(series: Any) -> Any:
        import pyarrow as pa

        return fn(pa.Array.from_pandas(series)).to_pandas()

    return on_pandas, int(PythonEvalType.SQL_SCALAR_PANDAS_UDF)
