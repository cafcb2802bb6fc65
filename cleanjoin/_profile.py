"""Where a flow's time goes: wall time per step and the Spark jobs each step ran.

``cleanjoin demo --profile`` and the full-flow benchmark wrap each step in
:meth:`Profiler.step`; the profile lists, per step, the wall time, the number of Spark jobs
the step started and the seconds those jobs ran (submission to completion, summed: jobs
that overlap count twice). Jobs are read from the driver's status store, which Spark keeps
whether or not its UI is on. A Spark Connect session runs its jobs in the server, out of
the client's reach: the profile then gives wall times only.

Example:
    >>> profiler = Profiler(None)
    >>> with profiler.step("nothing"):
    ...     pass
    >>> [(s.name, s.jobs) for s in profiler.steps]
    [('nothing', None)]
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cleanjoin._spark import is_connect
from cleanjoin._typing import SparkSession

__all__ = ["Profiler", "StepProfile"]


@dataclass(frozen=True)
class StepProfile:
    """One step of a profile.

    Attributes:
        name: the step's name.
        seconds: its wall time.
        jobs: Spark jobs it started (``None`` when the session's jobs are out of reach).
        job_seconds: the seconds those jobs ran, summed (``None`` likewise).
    """

    name: str
    seconds: float
    jobs: int | None
    job_seconds: float | None


class Profiler:
    """Collects a :class:`StepProfile` per step run under :meth:`step`.

    Args:
        spark: the session whose jobs are counted; ``None`` or a Spark Connect session
            gives wall times only.
    """

    def __init__(self, spark: SparkSession | None) -> None:
        self._store: Any = None
        if spark is not None and not is_connect(spark):
            self._store = spark.sparkContext._jsc.sc().statusStore()
        self.steps: list[StepProfile] = []

    def _jobs(self) -> dict[int, tuple[int | None, int | None]]:
        """Every job the store knows: id → (submission, completion) in epoch milliseconds."""
        listed = self._store.jobsList(None)
        out: dict[int, tuple[int | None, int | None]] = {}
        for i in range(listed.length()):
            job = listed.apply(i)
            sub, done = job.submissionTime(), job.completionTime()
            out[int(job.jobId())] = (
                int(sub.get().getTime()) if sub.isDefined() else None,
                int(done.get().getTime()) if done.isDefined() else None,
            )
        return out

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the block as step ``name`` and count the Spark jobs it started."""
        before = set(self._jobs()) if self._store is not None else set()
        start = time.monotonic()
        try:
            yield
        finally:
            seconds = time.monotonic() - start
            jobs: int | None = None
            job_seconds: float | None = None
            if self._store is not None:
                new = {k: v for k, v in self._jobs().items() if k not in before}
                jobs = len(new)
                job_seconds = sum(
                    (done - sub) / 1000 for sub, done in new.values()
                    if sub is not None and done is not None
                )
            self.steps.append(StepProfile(name, seconds, jobs, job_seconds))

    def table(self) -> str:
        """The profile as a Markdown table (one row per step, then the total)."""
        lines = ["| step | wall s | Spark jobs | job s |", "|---|---:|---:|---:|"]
        for s in self.steps:
            jobs = "n/a" if s.jobs is None else str(s.jobs)
            job_s = "n/a" if s.job_seconds is None else f"{s.job_seconds:.2f}"
            lines.append(f"| {s.name} | {s.seconds:.2f} | {jobs} | {job_s} |")
        total = sum(s.seconds for s in self.steps)
        known = [s for s in self.steps if s.jobs is not None]
        jobs_total = str(sum(s.jobs or 0 for s in known)) if known else "n/a"
        job_s_total = f"{sum(s.job_seconds or 0.0 for s in known):.2f}" if known else "n/a"
        lines.append(f"| **total** | {total:.2f} | {jobs_total} | {job_s_total} |")
        return "\n".join(lines)
