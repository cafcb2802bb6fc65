"""Benchmark: the full clean-room flow (``cleanjoin.demo.run_flow``) in a fresh process,
against the how-to's bare notebook flow on the same rows.

Each measurement starts its own Python process (and so its own JVM), so peak memory is per
run: ``python -m benchmarks.bench_flow --rows 1000000 [--connect]`` prints one JSON line with
the seconds of each step, the total (session start excluded) and peak resident memory of the
driver JVM and the Python driver.

Both flows read the same provider and consumer rows, generated once and stored as Parquet
(untimed). The bare notebook flow (:func:`bare_flow`) is what a notebook without cleanjoin
does: ``sha2`` tokens → Delta; join, group-by, ``record_count >= 100``, Delta write. It runs
before and after the cleanjoin flow (the mean is the baseline, so JIT warm-up favours
neither). ``"ratios"`` in the JSON line gives cleanjoin ÷ bare per step and for the whole
threshold flow (tokenize + guarded run, review, write, audit), with and without the DP
release and its ledger.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from typing import Any

from benchmarks._common import peak_memory_mib

TOKENIZE_STEP = "tokenizing each party's side into Delta gold tables"
GUARD_STEP = "guarded join and aggregate (min_cohort 100)"
DP_STEP = "differentially private release charged to the budget ledger"


def measure(rows: int, *, connect: bool, seed: int = 7, profile: bool = False) -> dict[str, Any]:
    """Run the flow in a child process and return its measurement (with ``profile``, its
    ``"profile"`` holds each step's wall time and Spark jobs: see ``cleanjoin._profile``)."""
    cmd = [sys.executable, "-m", "benchmarks.bench_flow", "--rows", str(rows), "--json",
           "--seed", str(seed)] + (["--connect"] if connect else []) + (
               ["--profile"] if profile else [])
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{\"benchmark\"")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"flow benchmark failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def bare_flow(spark: Any, provider_path: str, consumer_path: str, out: str) -> dict[str, float]:
    """The how-to's bare notebook flow; the seconds of its two steps.

    ``tokenize``: ``sha2`` of the raw identifiers (no normalization, no key), both sides
    written to Delta. ``join``: join on the token, group by the demo's dimensions, the demo's
    three aggregates, ``record_count >= 100``, Delta write.
    """
    from cleanjoin._spark import functions_for
    from cleanjoin.demo import GROUP_BY, MIN_COHORT

    start = time.perf_counter()
    provider = spark.read.parquet(provider_path)
    F = functions_for(provider)
    provider.withColumn("card_number", F.sha2("card_number", 256)).withColumnRenamed(
        "card_number", "card_number_token"
    ).write.format("delta").mode("overwrite").save(f"{out}/provider_gold")
    consumer = spark.read.parquet(consumer_path)
    consumer.withColumn("card_number", F.sha2("card_number", 256)).withColumn(
        "email", F.sha2("email", 256)
    ).withColumnRenamed("card_number", "card_number_token").withColumnRenamed(
        "email", "email_token"
    ).write.format("delta").mode("overwrite").save(f"{out}/consumer_gold")
    tokenized = time.perf_counter()
    left = spark.read.format("delta").load(f"{out}/provider_gold")
    right = spark.read.format("delta").load(f"{out}/consumer_gold")
    (
        left.join(right, "card_number_token")
        .groupBy(*GROUP_BY)
        .agg(F.count(F.lit(1)).alias("record_count"),
             F.avg("confirmed_fraud_flag").alias("outcome_rate"),
             F.avg("txn_count_1h").alias("avg_velocity_1h"))
        .filter(F.col("record_count") >= MIN_COHORT)
        .write.format("delta").mode("overwrite").save(f"{out}/segments")
    )
    done = time.perf_counter()
    return {"tokenize": tokenized - start, "join": done - tokenized}


def ratios(steps: dict[str, float], bare: dict[str, float]) -> dict[str, float]:
    """cleanjoin ÷ bare: per step and for the whole threshold flow (with and without DP)."""
    tok, guard, dp = steps[TOKENIZE_STEP], steps[GUARD_STEP], steps[DP_STEP]
    base = bare["tokenize"] + bare["join"]
    return {
        "tokenize": tok / bare["tokenize"],
        "join": guard / bare["join"],
        "threshold_flow": (tok + guard) / base,
        "threshold_flow_with_dp": (tok + guard + dp) / base,
    }


def _child(rows: int, *, connect: bool, seed: int, profile: bool = False) -> dict[str, Any]:
    from cleanjoin import synth
    from cleanjoin._profile import Profiler
    from cleanjoin.demo import run_flow
    from cleanjoin.session import local_spark

    spark = local_spark(connect=connect, app_name="cleanjoin-bench-flow")
    spark.range(10).count()
    profiler = Profiler(spark) if profile else None
    with tempfile.TemporaryDirectory(prefix="cj-flow-") as out:
        cards = max(rows // 6, 50)
        provider_path, consumer_path = f"{out}/provider.parquet", f"{out}/consumer.parquet"
        synth.transaction_signals(spark, rows=rows, cards=cards, seed=seed).write.parquet(
            provider_path)
        synth.account_behavior(spark, cards=max(cards // 2, 1_000), provider_cards=cards,
                               seed=seed).write.parquet(consumer_path)
        bare_runs = [bare_flow(spark, provider_path, consumer_path, f"{out}/bare0")]
        sources = (spark.read.parquet(provider_path), spark.read.parquet(consumer_path))
        start = time.perf_counter()
        summary = run_flow(spark, rows=rows, seed=seed, out=f"{out}/flow",
                           progress=lambda _m: None, profiler=profiler, sources=sources)
        seconds = time.perf_counter() - start
        bare_runs.append(bare_flow(spark, provider_path, consumer_path, f"{out}/bare1"))
        memory = peak_memory_mib()
    spark.stop()
    bare = {k: sum(r[k] for r in bare_runs) / len(bare_runs) for k in ("tokenize", "join")}
    return {
        "benchmark": "flow",
        "variant": "connect" if connect else "classic",
        "rows": rows,
        "seconds": seconds,
        "steps": summary.seconds,
        "bare": bare,
        "bare_runs": bare_runs,
        "ratios": ratios(summary.seconds, bare),
        **memory,
        **({"profile": [asdict(p) for p in profiler.steps],
            "profile_table": profiler.table()} if profiler is not None else {}),
    }


def ratio_table(result: dict[str, Any]) -> str:
    """The cleanjoin-vs-bare table of one measurement, in Markdown."""
    steps, bare, r = result["steps"], result["bare"], result["ratios"]
    tok, guard, dp = steps[TOKENIZE_STEP], steps[GUARD_STEP], steps[DP_STEP]
    base = bare["tokenize"] + bare["join"]
    return "\n".join([
        f"| step ({result['rows']:,} provider rows) | bare notebook s | cleanjoin s | ratio |",
        "|---|---:|---:|---:|",
        f"| tokenize both sides + write Delta | {bare['tokenize']:.2f} | {tok:.2f} "
        f"(with audit) | {r['tokenize']:.2f}× |",
        f"| join + aggregate + write Delta | {bare['join']:.2f} | {guard:.2f} (run, review, "
        f"write, audit) | {r['join']:.2f}× |",
        f"| DP release + ledger + write | — | {dp:.2f} | — |",
        f"| whole threshold flow | {base:.2f} | {tok + guard:.2f} | "
        f"{r['threshold_flow']:.2f}× |",
        f"| threshold flow + DP release + ledger | {base:.2f} | {tok + guard + dp:.2f} | "
        f"{r['threshold_flow_with_dp']:.2f}× |",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--connect", action="store_true")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--profile", action="store_true",
                        help="also record each step's wall time and Spark jobs")
    args = parser.parse_args()
    result = _child(args.rows, connect=args.connect, seed=args.seed, profile=args.profile)
    if args.profile and not args.json:
        print(result["profile_table"])
    if not args.json:
        print(ratio_table(result))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
