"""Type aliases shared by cleanjoin modules.

pyspark's classic and Connect DataFrames are different classes; cleanjoin accepts both,
so public signatures use these aliases.
"""

from __future__ import annotations

from typing import Any, TypeAlias

DataFrame: TypeAlias = Any
"""A ``pyspark.sql.DataFrame`` or a ``pyspark.sql.connect.dataframe.DataFrame``."""

SparkSession: TypeAlias = Any
"""A classic or Spark Connect ``SparkSession``."""

Column: TypeAlias = Any
"""A classic or Spark Connect ``Column``."""

__all__ = ["Column", "DataFrame", "SparkSession"]
