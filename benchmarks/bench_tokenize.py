"""Benchmark: cleanjoin.tokenize against Python-UDF tokenizers and raw sha2.

Data: ``rows`` 16-digit PANs generated with ``spark.range`` (no driver memory used), of
which 1% carry non-ASCII dirt (NBSP, ideographic space, zero-width space, full-width
digits, and one in five an "exotic" mark — a superscript digit or combining accent — that
only the Python path can normalize) and 10% ASCII dirt (spaces, dashes, tabs).

Variants (one timed run each, after an untimed run of every variant on the same data — a
fresh JVM runs its first full-size query up to 2x slower; each run forces full evaluation
with the ``noop`` sink):

* ``cleanjoin_tokenize`` — :func:`cleanjoin.tokens.tokenize` (built-in HMAC, built-in ASCII
  and character-wise paths, a vectorized Arrow UDF that normalizes only exotic values).
* ``python_udf_same_spec`` — a Python UDF running :func:`cleanjoin.reference.token`
  (``unicodedata`` + ``hmac``) on every row.
* ``python_udf_naive`` — a Python UDF doing ``strip()`` + ``hmac`` (not spec-correct).
* ``pandas_udf_same_spec`` — the same spec in a pandas UDF (classic sessions only).
* ``builtin_hmac_no_normalization`` — the built-in HMAC alone.
* ``raw_sha2`` — ``sha2(pan, 256)``: the floor.

Goal (issue 3): tokenize ≥ 3× faster than the same-spec Python UDF and ≤ 4× raw sha2.

Run: ``python benchmarks/bench_tokenize.py --rows 2000000``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from cleanjoin import reference
from cleanjoin._spark import functions_for
from cleanjoin.secret import Secret
from cleanjoin.session import is_connect
from cleanjoin.tokens import _hmac_hex_column, _with_pads, tokenize

BENCHMARK = "tokenize"
_KEY = hashlib.sha256(b"cleanjoin benchmark key").digest()

_PAN_SQL = "lpad(cast((4000000000000000 + pmod(id * 7919, 999999999999)) as string), 16, '0')"
_DIRTY_SQL = f"""
CASE
  WHEN pmod(id, 100) = 0 THEN CASE pmod(id DIV 100, 5)
      WHEN 0 THEN concat({_PAN_SQL}, '\u00a0')
      WHEN 1 THEN concat('\u3000', {_PAN_SQL})
      WHEN 2 THEN concat(substr({_PAN_SQL}, 1, 8), '\u200b', substr({_PAN_SQL}, 9))
      WHEN 3 THEN translate({_PAN_SQL}, '0123456789', '０１２３４５６７８９')
      ELSE concat(substr({_PAN_SQL}, 1, 15), '\u00b2')
    END
  WHEN pmod(id, 10) = 1 THEN concat(' ', {_PAN_SQL}, ' ')
  WHEN pmod(id, 10) = 2 THEN concat_ws('-', substr({_PAN_SQL}, 1, 4), substr({_PAN_SQL}, 5, 4),
                                       substr({_PAN_SQL}, 9, 4), substr({_PAN_SQL}, 13, 4))
  ELSE {_PAN_SQL}
END
"""


def pans(spark: Any, rows: int) -> Any:
    """``rows`` PANs in a column ``pan``: 1% non-ASCII dirt, 10% ASCII dirt."""
    return spark.range(rows).selectExpr(f"{_DIRTY_SQL} AS pan")


def _same_spec(value: str | None) -> str | None:
    return reference.token(value, _KEY, "pan")


def _naive(value: str | None) -> str | None:
    if value is None:
        return None
    return hmac.new(_KEY, value.strip().encode("utf-8"), hashlib.sha256).hexdigest()


def _variants(spark: Any) -> dict[str, Callable[[Any], Any]]:
    secret = Secret.from_bytes(_KEY)

    def cleanjoin_tokenize(df: Any) -> Any:
        return tokenize(df, {"pan": "pan"}, secret=secret)

    def python_udf_same_spec(df: Any) -> Any:
        F = functions_for(df)
        return df.select(F.udf(_same_spec, "string")(F.col("pan")).alias("pan_token"))

    def python_udf_naive(df: Any) -> Any:
        F = functions_for(df)
        return df.select(F.udf(_naive, "string")(F.col("pan")).alias("pan_token"))

    def builtin_hmac_no_normalization(df: Any) -> Any:
        F = functions_for(df)
        return _with_pads(df, _KEY).select(_hmac_hex_column(F, F.col("pan").cast("binary")).alias("t"))

    def raw_sha2(df: Any) -> Any:
        F = functions_for(df)
        return df.select(F.sha2(F.col("pan"), 256).alias("t"))

    variants: dict[str, Callable[[Any], Any]] = {
        "cleanjoin_tokenize": cleanjoin_tokenize,
        "python_udf_same_spec": python_udf_same_spec,
        "python_udf_naive": python_udf_naive,
    }
    if not is_connect(spark):  # pandas_udf fails on Connect in a mixed process
        from pyspark.sql.functions import col, pandas_udf  # type: ignore[attr-defined]

        @pandas_udf("string")  # type: ignore[call-overload,untyped-decorator,misc]
        def same_spec_pandas(values: pd.Series) -> pd.Series:
            return values.map(_same_spec)

        variants["pandas_udf_same_spec"] = lambda df: df.select(same_spec_pandas(col("pan")).alias("t"))
    variants["builtin_hmac_no_normalization"] = builtin_hmac_no_normalization
    variants["raw_sha2"] = raw_sha2
    return variants


def _time(df: Any) -> float:
    started = time.perf_counter()
    df.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - started


def run(spark: Any, *, rows: int, seed: int = 7) -> list[dict[str, Any]]:
    """Time every variant once on ``rows`` PANs (``seed`` is unused: the data is fixed)."""
    del seed
    variants = _variants(spark)
    data = pans(spark, rows)
    for build in variants.values():  # untimed full-size run: workers started, JIT warm
        _time(build(data))
    results: list[dict[str, Any]] = []
    for name, build in variants.items():
        results.append(
            {"benchmark": BENCHMARK, "variant": name, "rows": rows, "seconds": _time(build(data))}
        )
    by_name = {r["variant"]: r["seconds"] for r in results}
    for r in results:
        r["x_raw_sha2"] = round(r["seconds"] / by_name["raw_sha2"], 2)
        r["speedup_of_tokenize"] = round(r["seconds"] / by_name["cleanjoin_tokenize"], 2)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--connect", action="store_true", help="run on a local Spark Connect server")
    args = parser.parse_args()
    from cleanjoin.session import local_spark

    spark = local_spark(connect=args.connect, app_name="bench-tokenize")
    results = run(spark, rows=args.rows)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}, "
          f"local[2], {'Connect' if args.connect else 'classic'}")
    print(f"{'variant':<32}{'rows':>12}{'seconds':>10}{'x raw sha2':>12}{'tokenize speedup':>18}")
    for r in results:
        print(f"{r['variant']:<32}{r['rows']:>12,}{r['seconds']:>10.2f}{r['x_raw_sha2']:>12.2f}"
              f"{r['speedup_of_tokenize']:>18.2f}")
    spark.stop()


if __name__ == "__main__":
    main()
