"""The flow profiler: wall time per step and the Spark jobs each step started."""

from __future__ import annotations

from typing import Any

from cleanjoin._profile import Profiler


def test_a_step_counts_the_jobs_it_started_and_only_those(spark_classic: Any) -> None:
    profiler = Profiler(spark_classic)
    spark_classic.range(10).count()  # a job before any step: counted nowhere
    with profiler.step("two actions"):
        spark_classic.range(100).count()
        spark_classic.range(100).collect()
    with profiler.step("no Spark work"):
        sum(range(1000))
    first, second = profiler.steps
    assert (first.name, second.name) == ("two actions", "no Spark work")
    assert first.jobs is not None
    assert first.jobs >= 2
    assert first.job_seconds is not None
    assert 0 <= first.job_seconds <= first.seconds + 1
    assert second.jobs == 0
    assert second.job_seconds == 0
    table = profiler.table()
    assert "| two actions |" in table
    assert f"| {first.jobs} |" in table
    assert table.splitlines()[-1].startswith("| **total** |")


def test_without_a_classic_session_only_wall_times_are_recorded() -> None:
    profiler = Profiler(None)
    with profiler.step("step"):
        pass
    (only,) = profiler.steps
    assert only.jobs is None
    assert only.job_seconds is None
    assert only.seconds >= 0
    assert "| step |" in profiler.table()
    assert "n/a" in profiler.table()
