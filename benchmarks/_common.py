"""Shared helpers for the benchmarks: machine description, timing, peak memory, plots."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def machine() -> dict[str, str]:
    """Cores, memory, OS, Python, Spark, Delta, pipeline_dp and Java versions."""
    import pyspark

    info = {
        "cores": str(os.cpu_count()),
        "memory": _mem_total(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "spark": pyspark.__version__,
    }
    try:
        from importlib.metadata import version

        info["delta-spark"] = version("delta-spark")
        info["pipeline-dp"] = version("pipeline-dp")
    except Exception:  # pragma: no cover - metadata missing
        pass
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
        info["java"] = (out.stderr or out.stdout).splitlines()[0]
    except OSError:
        info["java"] = "not found"
    return info


BENCH_KEY = bytes(range(100, 140))
"""A fixed 40-byte key for the benchmarks' tokens (public: benchmark data only)."""


def joined_inputs(spark: Any, rows: int, seed: int, folder: str) -> tuple[Any, Any]:
    """Provider and consumer tables for the join benchmarks, written to Parquet once.

    :func:`cleanjoin.synth.transaction_signals` (``rows`` rows, ``rows // 20`` cards) and
    :func:`cleanjoin.synth.account_behavior` (one row per card, 60 % overlap), with the
    PAN replaced by its ``card_number_token`` from :func:`cleanjoin.tokenize`, as in the
    product: empty and invalid PANs get a null token and never join. (Until 2026-11-26
    the benchmarks used ``sha2(trim(pan))``, which gave every empty PAN the same token:
    one fake "card" of ~6,000 provider x ~300 consumer rows = 1.8M of the 2.9M joined rows
    at 2M provider rows.)
    """
    from cleanjoin import Secret, tokenize
    from cleanjoin.synth import account_behavior, transaction_signals

    cards = max(rows // 20, 10)
    secret = Secret.from_bytes(BENCH_KEY)
    provider = transaction_signals(spark, rows=rows, cards=cards, seed=seed)
    consumer = account_behavior(spark, cards=cards, overlap=0.6, seed=seed, provider_cards=cards)
    left_path, right_path = os.path.join(folder, "provider"), os.path.join(folder, "consumer")
    tokenize(provider, {"card_number": "pan"}, secret=secret).write.mode("overwrite").parquet(left_path)
    (
        tokenize(consumer, {"card_number": "pan"}, secret=secret)
        .drop("email")
        .write.mode("overwrite").parquet(right_path)
    )
    return spark.read.parquet(left_path), spark.read.parquet(right_path)


def _mem_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def timed(fn: Callable[[], Any]) -> float:
    """Seconds taken by ``fn()``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(entry.name))
    return kids


def peak_memory_mib(pid: int | None = None) -> dict[str, float]:
    """Peak resident memory (VmHWM) of this process and of its JVM descendants, in MiB."""
    root = pid or os.getpid()
    result: dict[str, float] = {}
    todo = [root]
    seen: set[int] = set()
    jvm = 0.0
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(_children(current))
        try:
            status = Path(f"/proc/{current}/status").read_text()
            cmd = Path(f"/proc/{current}/comm").read_text().strip()
        except OSError:
            continue
        hwm = next((line for line in status.splitlines() if line.startswith("VmHWM:")), None)
        if hwm is None:
            continue
        mib = int(hwm.split()[1]) / 1024
        if current == root:
            result["python_peak_mib"] = mib
        elif cmd == "java":
            jvm = max(jvm, mib)
    result["jvm_peak_mib"] = jvm
    return result


def bar_plot(path: Path, title: str, labels: list[str], values: list[float], ylabel: str) -> None:
    """A simple bar chart saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    bars = ax.bar(labels, values, color="#3b6ea5")
    ax.bar_label(bars, fmt="%.2f")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", labelrotation=15)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def line_plot(path: Path, title: str, xs: list[float], series: dict[str, list[float]], xlabel: str,
              ylabel: str) -> None:
    """A line chart (one line per series) saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    for name, ys in series.items():
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
