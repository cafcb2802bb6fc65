"""Pick the right ``functions`` module and ``Window`` class for a DataFrame.

A classic session and a Spark Connect client can live in one Python process (the test
suite does this, and so can a notebook that talks to a remote server). In that process
``pyspark.sql.functions`` builds *classic* Columns, which a Connect DataFrame cannot use
(``TypeError: 'Column' object is not callable``). Every cleanjoin module therefore asks
this module for the functions that match the DataFrame (or session) at hand::

    F = functions_for(df)
    df.select(F.sha2(F.col("x"), 256))

Measured: ``pyspark.sql.connect.functions.pandas_udf`` (and ``arrow_udf``) fail in such
a mixed process: they build a UDF for whichever mode the *process* defaults to. Use
``DataFrame.mapInPandas`` / ``applyInPandas`` (DataFrame methods dispatch correctly),
``functions_for(df).udf``, or :func:`arrow_udf_for`, which builds the vectorized UDF
for the DataFrame's own mode.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from cleanjoin._compat import check_pyspark, data_type, scalar_arrow_udf_parts
from cleanjoin.errors import InvalidArgumentError

__all__ = ["arrow_udf_for", "functions_for", "is_connect", "resolve_session", "session_of", "window_for"]


def is_connect(obj: Any) -> bool:
    """True when ``obj`` (a SparkSession, DataFrame or Column) belongs to Spark Connect.

    Raises:
        SparkEnvironmentError: ``obj`` is a pyspark object and that pyspark is not supported.

    Example:
        >>> is_connect(object())
        False
    """
    module = type(obj).__module__
    if module.startswith("pyspark."):
        check_pyspark()
    return module.startswith("pyspark.sql.connect")


def resolve_session(call: str, *candidates: Any, active: bool = True, hint: str) -> Any:
    """The SparkSession a call works in: the one place that decides it.

    ``candidates`` (sessions, ``None`` skipped) are tried in order: the one passed to the
    call, then the object's default. When none is given and ``active`` is true, the
    process's active classic session is used.

    Raises:
        InvalidArgumentError: ``"<call>: no SparkSession; <hint>"`` when there is none.

    Example:
        >>> resolve_session("AuditLog.head", None, active=False, hint="pass spark=")
        Traceback (most recent call last):
        ...
        cleanjoin.errors.InvalidArgumentError: AuditLog.head: no SparkSession; pass spark=
    """
    for candidate in candidates:
        if candidate is not None:
            check_pyspark()
            return candidate
    if active:
        check_pyspark()
        from pyspark.sql import SparkSession as ClassicSession

        found = ClassicSession.getActiveSession()
        if found is not None:
            return found
    raise InvalidArgumentError(f"{call}: no SparkSession; {hint}")


def _module_for(obj: Any, classic: str) -> ModuleType:
    """``classic`` (a ``pyspark.sql`` module) or its ``pyspark.sql.connect`` twin, as ``obj`` needs.

    The first Spark use of most calls comes through here, so the pyspark version is checked
    here (:func:`cleanjoin._compat.check_pyspark`).
    """
    check_pyspark()
    twin = classic.replace("pyspark.sql.", "pyspark.sql.connect.", 1)
    return importlib.import_module(twin if is_connect(obj) else classic)


def functions_for(obj: Any) -> ModuleType:
    """The ``functions`` module matching ``obj`` (a DataFrame or SparkSession).

    Example:
        >>> functions_for(object()).__name__
        'pyspark.sql.functions'
    """
    return _module_for(obj, "pyspark.sql.functions")


def window_for(obj: Any) -> Any:
    """The ``Window`` class matching ``obj`` (a DataFrame or SparkSession).

    Example:
        >>> window_for(object()).__module__
        'pyspark.sql.window'
    """
    return _module_for(obj, "pyspark.sql.window").Window


def session_of(df: Any) -> Any:
    """The SparkSession a DataFrame belongs to (works in both modes)."""
    return df.sparkSession


def arrow_udf_for(obj: Any, fn: Callable[[Any], Any], return_type: str) -> Callable[[Any], Any]:
    """A scalar Arrow UDF (``fn`` maps a ``pyarrow.Array`` to one of equal length) usable
    on the kind of ``obj`` (a DataFrame, Column or session; classic or Connect), even in
    a mixed process.

    ``fn`` works on whole Arrow batches, so it can skip nulls in bulk instead of being
    called once per row as a plain ``udf`` is.
    """
    body, eval_type = scalar_arrow_udf_parts(fn)  # a pandas UDF before pyspark 4.1
    return_type_obj = data_type(return_type)  # a string needs the classic JVM to parse
    if is_connect(obj):
        from pyspark.sql.connect.udf import UserDefinedFunction as ConnectUDF

        connect_udf = ConnectUDF(body, returnType=return_type_obj, evalType=eval_type)
        wrapped: Callable[[Any], Any] = connect_udf._wrapped()
        return wrapped
    from pyspark.sql.udf import UserDefinedFunction as ClassicUDF

    classic_udf = ClassicUDF(body, returnType=return_type_obj, evalType=eval_type)
    classic_wrapped: Callable[[Any], Any] = classic_udf._wrapped()
    return classic_wrapped
