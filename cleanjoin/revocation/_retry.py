"""The retry loop of revocation writes: Delta conflicts retried with exponential back-off."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import TypeVar

from cleanjoin._delta import is_conflict

# Retry back-off jitter only (de-synchronizes conflicting Delta writers); never noise:
# DP noise comes from pipeline_dp / PyDP alone (cleanjoin.dp).
_JITTER = secrets.SystemRandom()

_T = TypeVar("_T")


def retry(
    operation: Callable[[], _T],
    *,
    max_attempts: int,
    backoff_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[_T, int]:
    """Run ``operation``, retrying Delta conflicts with exponential backoff.

    Returns the result and the number of attempts made.
    """
    attempt = 1
    while True:
        try:
            return operation(), attempt
        except Exception as exc:
            if attempt >= max_attempts or not is_conflict(exc):
                raise
        # jitter de-synchronizes writers that conflicted with each other
        delay = backoff_seconds * (2 ** (attempt - 1)) * (1.0 + 0.5 * _JITTER.random())
        sleep(delay)
        attempt += 1
