"""One retry policy for Delta writers that race each other.

Two writers of one Delta table (an audit log, a budget ledger, a Gold table) can
conflict; the loser retries. Every retry loop in cleanjoin waits :func:`backoff`
between attempts, and loops that only repeat one operation use :func:`retry_conflicts`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import TypeVar

from cleanjoin._delta import is_conflict

__all__ = ["backoff", "retry_conflicts"]

_T = TypeVar("_T")

# Back-off jitter only (it de-synchronizes conflicting writers); never DP noise, which
# comes from pipeline_dp / PyDP alone (cleanjoin.dp).
_JITTER = secrets.SystemRandom()


def backoff(attempt: int, *, base: float = 0.05, cap: float = 2.0) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry).

    Exponential (``base`` doubled per attempt, at most ``cap``), times a random factor in
    [1, 1.5) so that writers that conflicted with each other do not retry in step.

    Example:
        >>> 0.05 <= backoff(1) < 0.075, 0.1 <= backoff(2) < 0.15, backoff(50, cap=1.0) < 1.5
        (True, True, True)
    """
    factor: float = 1.0 + 0.5 * _JITTER.random()
    exponent = min(max(attempt, 1) - 1, 10)
    return min(cap, base * float(1 << exponent)) * factor


def retry_conflicts(
    operation: Callable[[], _T],
    *,
    max_attempts: int,
    backoff_seconds: float,
    cap_seconds: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[_T, int]:
    """Run ``operation``, retrying Delta write conflicts (:func:`is_conflict`) only.

    Returns the result and the number of attempts made; re-raises any other error, and
    the conflict itself after ``max_attempts`` attempts.

    Example:
        >>> class ConcurrentAppendException(Exception): ...
        >>> calls = []
        >>> def flaky():
        ...     calls.append(1)
        ...     if len(calls) < 3:
        ...         raise ConcurrentAppendException("files were added")
        ...     return "done"
        >>> retry_conflicts(flaky, max_attempts=5, backoff_seconds=0.0, sleep=lambda s: None)
        ('done', 3)
    """
    attempt = 1
    while True:
        try:
            return operation(), attempt
        except Exception as exc:
            if attempt >= max_attempts or not is_conflict(exc):
                raise
        sleep(backoff(attempt, base=backoff_seconds, cap=cap_seconds))
        attempt += 1
