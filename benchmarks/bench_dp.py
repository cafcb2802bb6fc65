"""Benchmark: cleanjoin's DataFrame-native DP aggregate vs pipeline_dp's DPEngine on Spark RDDs.

Data: :func:`cleanjoin.synth.transaction_signals` (``rows`` provider rows, ``rows // 20``
cards) joined with :func:`cleanjoin.synth.account_behavior` (60 % overlap). The PAN is
replaced by its ``card_number_token`` from ``cleanjoin.tokenize`` (empty and invalid PANs
get null tokens that never join; see ``benchmarks._common.joined_inputs``), and both are
written to Parquet once, so every variant reads the same files.

Same query and parameters everywhere: group by (merchant_category_code,
account_age_band, cross_border_flag); count and mean(confirmed_fraud_flag, bounds 0..1);
ε=1, δ=1e-6, Laplace noise, max_partitions_contributed=3,
max_contributions_per_partition=5, truncated-geometric partition selection with
pre_threshold = min_cohort = 100; privacy unit = the card token.

Variants (one timed run each, after an untimed run of every variant on the same input,
or on 1M rows when the input is larger):

* ``cleanjoin_dp`` — ``GuardedJoin(...).with_dp(...).run()`` (join, bounding with window
  functions, JVM aggregation, one ``mapInPandas`` for selection and noise, rows
  materialized).
* ``pipeline_dp_rdd`` — the same DataFrame join, then ``.rdd`` and pipeline_dp's
  ``DPEngine.aggregate`` on ``SparkRDDBackend`` (metrics COUNT + MEAN), collected.
  Classic sessions only (RDDs do not exist under Spark Connect).
* ``guarded_no_dp`` — the non-DP guarded query (``min_cohort(100)``), for reference.

Goal (issue 5): ``cleanjoin_dp`` ≥ 8× faster than ``pipeline_dp_rdd`` on 1M rows.

Run: ``python -m benchmarks.bench_dp --rows 1000000``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

from benchmarks._common import joined_inputs
from cleanjoin import agg
from cleanjoin.guard import GuardedJoin
from cleanjoin.session import is_connect

BENCHMARK = "dp"
GROUPS = ("merchant_category_code", "account_age_band", "cross_border_flag")
TOKEN = "card_number_token"
MIN_COHORT = 100
_WARM_ROWS = 1_000_000  # a fresh JVM runs its first full-size query up to 2x slower
DP = {"epsilon": 1.0, "delta": 1e-6, "max_partitions_contributed": 3,
      "max_contributions_per_partition": 5, "noise": "laplace"}


def _query(left: Any, right: Any) -> Any:
    return (
        GuardedJoin(left, right, on=TOKEN)
        .group_by(*GROUPS)
        .agg(agg.count().alias("n"),
             agg.mean("confirmed_fraud_flag", bounds=(0, 1)).alias("fraud_rate"))
        .min_cohort(MIN_COHORT)
    )


def _cleanjoin_dp(left: Any, right: Any) -> Callable[[], Any]:
    query = _query(left, right).with_dp(**DP)
    return lambda: query.run().df.collect()


def _guarded_no_dp(left: Any, right: Any) -> Callable[[], Any]:
    query = _query(left, right)
    return lambda: query.run().df.collect()


def _pipeline_dp(left: Any, right: Any) -> Callable[[], Any]:
    import pipeline_dp

    joined = left.join(right, on=TOKEN, how="inner").select(
        TOKEN, *GROUPS, left["confirmed_fraud_flag"].cast("double").alias("v")
    )

    def run() -> Any:
        spark = joined.sparkSession
        backend = pipeline_dp.SparkRDDBackend(spark.sparkContext)  # benchmarks only
        accountant = pipeline_dp.NaiveBudgetAccountant(
            total_epsilon=DP["epsilon"], total_delta=DP["delta"]
        )
        engine = pipeline_dp.DPEngine(accountant, backend)
        params = pipeline_dp.AggregateParams(
            noise_kind=pipeline_dp.NoiseKind.LAPLACE,
            metrics=[pipeline_dp.Metrics.COUNT, pipeline_dp.Metrics.MEAN],
            max_partitions_contributed=DP["max_partitions_contributed"],
            max_contributions_per_partition=DP["max_contributions_per_partition"],
            min_value=0.0,
            max_value=1.0,
            pre_threshold=MIN_COHORT,
        )
        extractors = pipeline_dp.DataExtractors(
            privacy_id_extractor=lambda r: r[0],
            partition_extractor=lambda r: (r[1], r[2], r[3]),
            value_extractor=lambda r: r[4],
        )
        rdd = joined.rdd.map(tuple)
        result = engine.aggregate(rdd, params, extractors)
        accountant.compute_budgets()
        return result.collect()

    return run


def _variants(left: Any, right: Any) -> dict[str, Callable[[], Any]]:
    variants = {"cleanjoin_dp": _cleanjoin_dp(left, right)}
    if not is_connect(left):
        variants["pipeline_dp_rdd"] = _pipeline_dp(left, right)
    variants["guarded_no_dp"] = _guarded_no_dp(left, right)
    return variants


def _time(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def run(spark: Any, *, rows: int, seed: int = 7) -> list[dict[str, Any]]:
    """Time every variant once on ``rows`` provider rows, after an untimed run of every
    variant on the same input (on 1M rows when ``rows`` is larger)."""
    folder = tempfile.mkdtemp(prefix="cleanjoin-bench-dp-")
    try:
        left, right = joined_inputs(spark, rows, seed, os.path.join(folder, "data"))
        warm_left, warm_right = left, right
        if rows > _WARM_ROWS:
            warm_left, warm_right = joined_inputs(spark, _WARM_ROWS, seed, os.path.join(folder, "warm"))
        for fn in _variants(warm_left, warm_right).values():
            fn()
        results = []
        for name, fn in _variants(left, right).items():
            seconds, out = _time(fn)
            results.append({"benchmark": BENCHMARK, "variant": name, "rows": rows,
                            "seconds": seconds, "groups_released": len(out)})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    by_name = {r["variant"]: r["seconds"] for r in results}
    for r in results:
        if "pipeline_dp_rdd" in by_name:
            r["x_faster_than_pipeline_dp"] = round(by_name["pipeline_dp_rdd"] / r["seconds"], 2)
        r["x_no_dp"] = round(r["seconds"] / by_name["guarded_no_dp"], 2)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--connect", action="store_true",
                        help="run on a local Spark Connect server (no pipeline_dp baseline)")
    args = parser.parse_args()
    from cleanjoin.session import local_spark

    spark = local_spark(connect=args.connect, app_name="bench-dp")
    results = run(spark, rows=args.rows, seed=args.seed)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python "
          f"{platform.python_version()}, local[2], {'Connect' if args.connect else 'classic'}")
    print(f"{'variant':<18} {'rows':>10} {'seconds':>9} {'groups':>7} {'x faster than pdp':>18} "
          f"{'x no-DP':>8}")
    for r in results:
        faster = r.get("x_faster_than_pipeline_dp", float("nan"))
        print(f"{r['variant']:<18} {r['rows']:>10,} {r['seconds']:>9.2f} "
              f"{r['groups_released']:>7} {faster:>18.2f} {r['x_no_dp']:>8.2f}")


if __name__ == "__main__":
    main()
