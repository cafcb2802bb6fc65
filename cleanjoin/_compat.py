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

from cleanjoin.errors import SparkEnvironmentError

__all__ = ["SUPPORTED_SPARK", "check_pyspark_version", "pyspark_version"]

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
