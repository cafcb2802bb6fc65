"""Tests of cleanjoin.revocation's private helpers: Delta conflict detection and the retry loop.

The public API's tests are in ``tests/test_revocation.py``.
"""

from __future__ import annotations

import re

import pytest

from cleanjoin._delta import is_conflict
from cleanjoin._retry import retry_conflicts as _retry


def test_conflict_detection_by_class_and_message() -> None:
    class ConcurrentAppendException(Exception):  # noqa: N818 - Delta's name
        pass

    class ConcurrentDeleteReadException(RuntimeError):  # noqa: N818 - Delta's name
        pass

    assert is_conflict(ConcurrentAppendException("files were added"))
    assert is_conflict(ConcurrentDeleteReadException("read a deleted file"))
    # Spark Connect surfaces Delta conflicts as generic errors: match the message
    assert is_conflict(RuntimeError("[DELTA_CONCURRENT_DELETE_DELETE] a file was deleted"))
    assert is_conflict(RuntimeError("io.delta.exceptions.ConcurrentDeleteDeleteException: x"))
    assert not is_conflict(ValueError("[DELTA_MISSING_DELTA_TABLE] not a table"))


def test_retry_backs_off_on_conflicts_only() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("[DELTA_CONCURRENT_APPEND] files were added")
        return "done"

    assert _retry(flaky, max_attempts=5, backoff_seconds=0.1, sleep=sleeps.append) == ("done", 3)
    assert len(sleeps) == 2
    assert 0.1 <= sleeps[0] <= 0.15
    assert 0.2 <= sleeps[1] <= 0.3

    def broken() -> str:
        raise ValueError("not a conflict")

    with pytest.raises(ValueError, match="not a conflict"):
        _retry(broken, max_attempts=5, backoff_seconds=0.1, sleep=sleeps.append)
    assert len(sleeps) == 2

    calls.clear()
    with pytest.raises(RuntimeError, match=re.escape("[DELTA_CONCURRENT_APPEND]")):
        _retry(flaky, max_attempts=2, backoff_seconds=0.0, sleep=sleeps.append)
