"""The session a revocation call runs in, when the caller does not pass one."""

from __future__ import annotations

from typing import Any

from cleanjoin._typing import SparkSession
from cleanjoin.errors import InvalidArgumentError


def resolve_session(call: str, spark: SparkSession | None, *frames: Any) -> SparkSession:
    """``spark``, else the session of the first of ``frames`` that has one, else the active one."""
    if spark is not None:
        return spark
    for frame in frames:
        session = getattr(frame, "sparkSession", None)
        if session is not None:
            return session
    from pyspark.sql import SparkSession as ClassicSession

    active = ClassicSession.getActiveSession()
    if active is None:
        raise InvalidArgumentError(
            f"{call}: pass 'spark' (a SparkSession) to read a Delta table given by path"
        )
    return active
