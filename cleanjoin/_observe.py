"""Counts that ride on a job already running: Spark observations, and their stand-in.

A count for a report or an audit entry (rows written, rows excluded, groups released) is
a Spark *observation* on the plan that runs anyway (``DataFrame.observe``), so it costs
no extra job: :func:`observe_metrics` attaches the metrics, :func:`observed` reads them
once the plan has run.

Where observed metrics never reach the client (Spark Connect before pyspark 4.0,
:func:`cleanjoin._compat.observation_class`), the same metrics are an aggregate run as a
job of its own when they are first read (:class:`DeferredMetrics`): over the observed
rows, or over what the plan wrote when the caller says where that is (a second pass over
a table just written costs less than recomputing the rows). The same counts, one job each,
on that line only.

Example:
    >>> metric_int({"rows": None}, "rows"), metric_int(None, "rows")
    (0, None)
"""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cleanjoin._compat import observation_class
from cleanjoin._spark import is_connect
from cleanjoin._typing import Column, DataFrame

__all__ = ["DeferredMetrics", "metric_int", "observation_for", "observe_metrics", "observed"]

_OBSERVATION_TIMEOUT_S = 60.0


def observation_for(df: DataFrame, label: str) -> Any:
    """A fresh ``Observation`` of the kind matching ``df`` (classic or Connect), or a
    :class:`DeferredMetrics` over ``df`` with no metric where observations do not arrive
    (use :func:`observe_metrics`, which gives it the metrics)."""
    kind = observation_class(connect=is_connect(df))
    if kind is None:
        return DeferredMetrics(df, ())
    return kind(f"cj_{label}_{uuid.uuid4().hex[:12]}")


@dataclass(frozen=True)
class DeferredMetrics:
    """An observation's stand-in where observed metrics never reach the client: ``get``
    computes the metrics as one aggregate job over ``frame`` (the rows that would have
    been observed) or, when ``source`` is given, over ``source()`` (for example the table
    the observed plan wrote, read only once it exists).

    Attributes:
        frame: the rows that would have been observed.
        metrics: the aggregate columns to compute.
        source: where to read the rows instead of ``frame``, called at ``get``.
    """

    frame: DataFrame
    metrics: tuple[Column, ...]
    source: Callable[[], DataFrame] | None = None

    @property
    def get(self) -> dict[str, Any]:
        """The metrics, as ``Observation.get`` gives them (a job on each call)."""
        rows = self.frame if self.source is None else self.source()
        row = rows.agg(*self.metrics).collect()[0]
        return dict(row.asDict())


def observe_metrics(
    frame: DataFrame,
    label: str,
    *metrics: Column,
    written: Callable[[], DataFrame] | None = None,
) -> tuple[DataFrame, Any]:
    """``frame`` observed with ``metrics``, and the observation to read them from later
    (:func:`observed`).

    Where observations do not arrive: ``frame`` itself and a :class:`DeferredMetrics`
    that counts with a job of its own when read, over ``written()`` when given (the
    table ``frame`` is written to: what was written is counted, not recomputed), else
    over ``frame``.
    """
    observation = observation_for(frame, label)
    if isinstance(observation, DeferredMetrics):
        return frame, DeferredMetrics(frame, tuple(metrics), written)
    return frame.observe(observation, *metrics), observation


def observed(observation: Any, *, timeout: float = _OBSERVATION_TIMEOUT_S) -> dict[str, Any] | None:
    """The metrics of an observation whose query has run, or ``None`` if unavailable.

    Classic ``Observation.get`` blocks until the observed plan runs; the bounded wait
    keeps a plan that never ran from hanging the caller (the count is then unknown).
    A :class:`DeferredMetrics` runs its job here, without that bound.
    """
    if isinstance(observation, DeferredMetrics):
        return observation.get
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        value = pool.submit(lambda: observation.get).result(timeout=timeout)
    except Exception:  # a missing metric only makes a count unknown
        return None
    finally:
        pool.shutdown(wait=False)
    return dict(value) if value else None


def metric_int(metrics: Mapping[str, Any] | None, name: str) -> int | None:
    """An integer metric (0 when null), or ``None`` when the metrics did not arrive."""
    if metrics is None:
        return None
    value = metrics.get(name)
    return 0 if value is None else int(value)
