"""Spark helpers of the guarded run: column quoting, observations, materialization.

* Row counts for the report (consent, revocation, null keys, groups released and
  suppressed) come from Spark *observations* on the plan itself, so they cost no
  extra job: :mod:`cleanjoin._observe`, the library's one home of observations (shared
  with the token writer), re-exported here for the guard's modules. Where observed
  metrics never reach the client (Spark Connect before pyspark 4.0), the same metrics
  are an aggregate of the observed rows, one job each, on that line only.
* The released result is materialized once: ``localCheckpoint`` on classic Spark;
  collect + ``createDataFrame`` on Spark Connect, where a checkpoint does not deliver
  observed metrics to the client.
"""

from __future__ import annotations

from cleanjoin._observe import (
    DeferredMetrics,
    metric_int,
    observation_for,
    observe_metrics,
    observed,
)
from cleanjoin._spark import is_connect
from cleanjoin._sql import quote_identifier
from cleanjoin._typing import DataFrame

__all__ = ["DeferredMetrics", "materialize", "metric_int", "observation_for", "observe_metrics", "observed", "q"]


q = quote_identifier
"""``name`` quoted for Spark (backticks): :func:`cleanjoin._sql.quote_identifier`."""


def materialize(df: DataFrame) -> DataFrame:
    """Compute ``df`` once and return a DataFrame over the stored rows."""
    if is_connect(df):
        rows = df.collect()
        return df.sparkSession.createDataFrame(rows, schema=df.schema)
    return df.localCheckpoint(eager=True)
