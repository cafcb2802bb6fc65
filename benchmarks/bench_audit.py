"""Benchmark: offline verification of a large audit export (standard library only).

Generates a ``rows``-entry JSONL export with stdlib code (no Spark), then times:

* ``verify_file``      — ``cleanjoin audit verify`` (``cleanjoin._auditverify.verify_file``);
* ``doc_algorithm``    — the ≤ 25-line algorithm printed in ``docs/audit-format.md``;
* ``baseline_parse``   — ``json.loads`` of every line only (a lower bound);
* ``baseline_sha256``  — one SHA-256 per line only (a lower bound);

and, when a Spark session is given, ``delta_append`` — the mean seconds of one
``AuditLog.append`` (insert-only MERGE) over a few appends (``rows`` = appends).

Run: ``python -m benchmarks.bench_audit --rows 100000`` (add ``--spark`` to include appends).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cleanjoin._auditverify import GENESIS_HASH, canonical_json, make_entry, verify_file

DOC = Path(__file__).resolve().parents[1] / "docs" / "audit-format.md"


def write_export(path: Path, rows: int, *, seed: int = 7) -> str:
    """Write a valid ``rows``-entry export to ``path``; return its head hash."""
    prev = GENESIS_HASH
    actions = ("tokenize", "guarded_run", "contract_review", "delta_write", "budget_charge")
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for seq in range(rows):
            entry = make_entry(
                seq, prev, time=f"2026-11-26T00:00:00.{seq % 1_000_000:06d}Z", actor="analyst",
                action=actions[(seq + seed) % len(actions)],
                parameters={
                    "group_by": ["merchant_category_code", "account_age_band"],
                    "aggregates": [{"name": "outcome_rate", "kind": "mean", "bounds": [0, 1]}],
                    "min_cohort": 100, "epsilon": 0.5, "groups_released": seq % 97,
                },
                inputs=[{"path": "/data/provider_tokens", "version": seq % 50}],
                output={"path": "/data/out", "version": seq, "content_hash": f"{seq:064x}"},
            )
            handle.write(canonical_json(entry) + "\n")
            prev = entry["entry_hash"]
    return prev


def _doc_verify() -> Callable[..., Any]:
    code = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8").split(
        "## Verification algorithm", 1)[1], re.S)
    if code is None:
        raise RuntimeError("no verification algorithm found in docs/audit-format.md")
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOC), "exec"), namespace)
    verify: Callable[..., Any] = namespace["verify"]
    return verify


def _parse_only(path: Path) -> int:
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if json.loads(line))


def _sha_only(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for line in handle if hashlib.sha256(line).digest())


def _time(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def run(spark: Any = None, *, rows: int, seed: int = 7) -> list[dict[str, Any]]:
    """Time each variant once on a ``rows``-entry export (after a tiny warm-up)."""
    results: list[dict[str, Any]] = []
    doc_verify = _doc_verify()
    with tempfile.TemporaryDirectory(prefix="cleanjoin-bench-audit-") as tmp:
        small, big = Path(tmp) / "warm.jsonl", Path(tmp) / "audit.jsonl"
        small_head = write_export(small, 50, seed=seed)
        gen_seconds, head = _time(lambda: write_export(big, rows, seed=seed))
        size_mb = big.stat().st_size / 1e6
        variants: dict[str, Callable[[Path, str], Any]] = {
            "verify_file": lambda p, h: verify_file(p, head=h).ok,
            "doc_algorithm": lambda p, h: doc_verify(str(p), h)[0],
            "baseline_parse": lambda p, h: _parse_only(p) > 0,
            "baseline_sha256": lambda p, h: _sha_only(p) > 0,
        }
        for fn in variants.values():  # warm up
            assert fn(small, small_head)
        base = None
        for name, fn in variants.items():
            seconds, ok = _time(lambda fn=fn: fn(big, head))
            if not ok:
                raise RuntimeError(f"{name} did not verify the generated export")
            base = base or seconds
            results.append({
                "benchmark": "audit_verify", "variant": name, "rows": rows, "seconds": seconds,
                "vs_verify_file": seconds / base, "export_mb": round(size_mb, 1),
                "generate_seconds": round(gen_seconds, 2),
            })
        if spark is not None:
            from cleanjoin.audit import AuditLog

            log = AuditLog(str(Path(tmp) / "audit_table"), actor="bench")
            log.append("tokenize", {"warmup": True}, spark=spark)
            appends = max(1, min(rows, 10))
            seconds, _ = _time(
                lambda: [log.append("guarded_run", {"i": i}, spark=spark) for i in range(appends)]
            )
            results.append({
                "benchmark": "audit_append", "variant": "delta_append", "rows": appends,
                "seconds": seconds, "seconds_per_append": seconds / appends,
            })
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="entries in the export")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--spark", action="store_true", help="also time AuditLog.append")
    args = parser.parse_args()
    spark = None
    if args.spark:
        from cleanjoin import local_spark

        spark = local_spark(app_name="bench-audit")
    print(f"machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}")
    results = run(spark, rows=args.rows, seed=args.seed)
    print(f"{'benchmark':<14} {'variant':<16} {'rows':>9} {'seconds':>9}  extra")
    for r in results:
        extra = {k: v for k, v in r.items() if k not in ("benchmark", "variant", "rows", "seconds")}
        print(f"{r['benchmark']:<14} {r['variant']:<16} {r['rows']:>9,} {r['seconds']:>9.2f}  {extra}")


if __name__ == "__main__":
    main()
