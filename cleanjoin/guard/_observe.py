"""Spark helpers of the guarded run: column quoting, observations, materialization.

* Row counts for the report (consent, revocation, null keys, groups released and
  suppressed) come from Spark *observations* on the plan itself, so they cost no
  extra job.
* Where observed metrics never reach the client (Spark Connect before pyspark 4.0,
  :func:`cleanjoin._compat.observation_class`), the same metrics are an aggregate of
  the observed rows, run as a job of its own when they are first read: the same counts,
  one job each, on that line only.
* The released result is materialized once: ``localCheckpoint`` on classic Spark;
  collect + ``createDataFrame`` on Spark Connect, where a checkpoint does not deliver
  observed metrics to the client.
"""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cleanjoin._compat import observation_class
from cleanjoin._spark import is_connect
from cleanjoin._sql import quote_identifier
from cleanjoin._typing import Column, DataFrame

__all__ = ["DeferredMetrics", "materialize", "metric_int", "observation_for", "observe_metrics", "observed", "q"]

_OBSERVATION_TIMEOUT_S = 60.0


q = quote_identifier
"""``name`` quoted for Spark (backticks): :func:`cleanjoin._sql.quote_identifier`."""


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
    been observed)."""

    frame: DataFrame
    metrics: tuple[Column, ...]

    @property
    def get(self) -> dict[str, Any]:
        """The metrics, as ``Observation.get`` gives them (a job on each call)."""
        row = self.frame.agg(*self.metrics).collect()[0]
        return dict(row.asDict())


def observe_metrics(frame: DataFrame, label: str, *metrics: Column) -> tuple[DataFrame, Any]:
    """``frame`` observed with ``metrics``, and the observation to read them from later
    (:func:`observed`); where observations do not arrive, ``frame`` itself and a
    :class:`DeferredMetrics` that counts with a job of its own when read."""
    observation = observation_for(frame, label)
    if isinstance(observation, DeferredMetrics):
        return frame, DeferredMetrics(frame, tuple(metrics))
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


def materialize(df: DataFrame) -> DataFrame:
    """Compute ``df`` once and return a DataFrame over the stored rows."""
    if is_connect(df):
        rows = df.collect()
        return df.sparkSession.createDataFrame(rows, schema=df.schema)
    return df.localCheckpoint(eager=True)


def metric_int(metrics: Mapping[str, Any] | None, name: str) -> int | None:
    """An integer metric (0 when null), or ``None`` when the metrics did not arrive."""
    if metrics is None:
        return None
    value = metrics.get(name)
    return 0 if value is None else int(value)
