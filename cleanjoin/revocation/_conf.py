"""Session confs set for one statement, serialized per session by a lock."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from cleanjoin._typing import SparkSession

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _session_key(spark: SparkSession) -> str:
    session_id = getattr(spark, "session_id", None)
    return f"connect:{session_id}" if isinstance(session_id, str) else f"classic:{id(spark)}"


@contextmanager
def session_confs(spark: SparkSession, settings: Mapping[str, str]) -> Iterator[None]:
    """Set session confs for one statement and restore them afterwards.

    Session confs are shared by every thread using the session, so statements that rely
    on them are serialized per session (other sessions and other processes still write
    concurrently, and their conflicts are retried).
    """
    key = _session_key(spark)
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        previous = {name: spark.conf.get(name, None) for name in settings}
        try:
            for name, value in settings.items():
                spark.conf.set(name, value)
            yield
        finally:
            for name, value in previous.items():
                if value is None:
                    spark.conf.unset(name)
                else:
                    spark.conf.set(name, value)
