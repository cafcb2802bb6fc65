from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cleanjoin.cli import build_parser


def test_demo_parser_defaults() -> None:
    args = build_parser().parse_args(["demo"])
    assert args.rows == 300_000
    assert args.connect is False


@pytest.mark.slow
def test_demo_runs_end_to_end_in_a_fresh_process(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cleanjoin.cli", "demo", "--rows", "2000", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "rows written     : 2,000" in proc.stdout
    assert (tmp_path / "demo_table" / "_delta_log").is_dir()
