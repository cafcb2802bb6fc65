"""Type aliases shared by cleanjoin modules: real pyspark types, so mypy checks calls.

Spark Connect's ``DataFrame`` and ``Column`` subclass the classic ``pyspark.sql`` classes
(pyspark 4), so one alias covers both modes. Connect's ``SparkSession`` does not subclass
the classic one, so :data:`SparkSession` stays open (``Any``).

pyspark is imported for the type checker only: ``import cleanjoin`` (and the stdlib-only
``cleanjoin audit verify``) never imports it; at run time the aliases are ``Any``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from pyspark.sql import Column as _Column
    from pyspark.sql import DataFrame as _DataFrame

    DataFrame: TypeAlias = _DataFrame
    Column: TypeAlias = _Column
else:
    DataFrame = Any
    """A ``pyspark.sql.DataFrame`` or a ``pyspark.sql.connect.dataframe.DataFrame``."""

    Column = Any
    """A classic or Spark Connect ``Column``."""

SparkSession: TypeAlias = Any
"""A classic or Spark Connect ``SparkSession`` (two unrelated classes)."""

__all__ = ["Column", "DataFrame", "SparkSession"]
