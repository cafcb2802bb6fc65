"""The ``cleanjoin`` command line.

Example:
    >>> build_parser().parse_args(["demo", "--rows", "1000"]).rows
    1000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]

# Modules that add sub-commands. Each exposes ``register_cli(subparsers) -> None``, which
# adds its parsers and sets ``func`` (a callable taking the parsed Namespace, returning the
# exit code) with ``set_defaults``. Imported lazily so ``cleanjoin --help`` stays fast.
_COMMAND_MODULES: tuple[str, ...] = (
    # "cleanjoin.vectors",   (issue 3 adds: vectors generate / verify)
    # "cleanjoin.audit",     (issue 6 adds: audit export / verify)
)


def _step(label: str) -> float:
    print(f"[cleanjoin] {label} ...", flush=True)
    return time.monotonic()


def _demo(args: argparse.Namespace) -> int:
    from cleanjoin.session import local_spark

    out = Path(args.out or tempfile.mkdtemp(prefix="cleanjoin-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    started = _step(f"starting local Spark with Delta Lake (connect={args.connect})")
    spark = local_spark(connect=args.connect, app_name="cleanjoin-demo")
    print(f"           ready in {time.monotonic() - started:.1f} s", flush=True)

    started = _step(f"writing {args.rows:,} rows to a Delta table")
    table = str(out / "demo_table")
    df = spark.range(args.rows).selectExpr("id", f"pmod(xxhash64({args.seed}, id), 10) AS bucket")
    df.write.format("delta").mode("overwrite").save(table)
    counts = spark.read.format("delta").load(table).groupBy("bucket").count().collect()
    version = spark.sql(f"DESCRIBE HISTORY delta.`{table}`").agg({"version": "max"}).collect()[0][0]
    print(f"           done in {time.monotonic() - started:.1f} s", flush=True)

    print("\ncleanjoin demo summary")
    print(f"  session mode     : {'Spark Connect' if args.connect else 'classic'}")
    print(f"  rows written     : {sum(int(r['count']) for r in counts):,}")
    print(f"  buckets          : {len(counts)}")
    print(f"  output table     : {table} (Delta version {version})")
    print("  (tokens, guarded joins, DP and audit land in later releases)")
    spark.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cleanjoin`` command."""
    parser = argparse.ArgumentParser(prog="cleanjoin", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the clean-room flow end to end on synthetic data")
    demo.add_argument("--rows", type=int, default=300_000, help="rows to generate")
    demo.add_argument("--seed", type=int, default=7, help="generator seed")
    demo.add_argument("--out", default=None, help="output folder (default: a temp folder)")
    demo.add_argument("--connect", action="store_true", help="run on a local Spark Connect server")
    demo.set_defaults(func=_demo)
    import importlib

    for name in _COMMAND_MODULES:
        importlib.import_module(name).register_cli(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cleanjoin`` console script."""
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
