"""Benchmark: the full clean-room flow (``cleanjoin.demo.run_flow``) in a fresh process.

Each measurement starts its own Python process (and so its own JVM), so peak memory is per
run: ``python -m benchmarks.bench_flow --rows 1000000 [--connect]`` prints one JSON line with
the seconds of each step, the total (session start excluded) and peak resident memory of the
driver JVM and the Python driver.
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


def _child(rows: int, *, connect: bool, seed: int, profile: bool = False) -> dict[str, Any]:
    from cleanjoin._profile import Profiler
    from cleanjoin.demo import run_flow
    from cleanjoin.session import local_spark

    spark = local_spark(connect=connect, app_name="cleanjoin-bench-flow")
    spark.range(10).count()
    profiler = Profiler(spark) if profile else None
    with tempfile.TemporaryDirectory(prefix="cj-flow-") as out:
        start = time.perf_counter()
        summary = run_flow(spark, rows=rows, seed=seed, out=out, progress=lambda _m: None,
                           profiler=profiler)
        seconds = time.perf_counter() - start
        memory = peak_memory_mib()
    spark.stop()
    return {
        "benchmark": "flow",
        "variant": "connect" if connect else "classic",
        "rows": rows,
        "seconds": seconds,
        "steps": summary.seconds,
        **memory,
        **({"profile": [asdict(p) for p in profiler.steps],
            "profile_table": profiler.table()} if profiler is not None else {}),
    }


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
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
