"""The built wheel installs beside a runtime's own pyspark and leaves it alone.

A Databricks runtime or serverless environment already holds pyspark (or Databricks
Connect); ``%pip install cleanjoin`` must not replace it. This test builds the wheel,
installs it into a fresh venv that already holds pyspark 3.5, and checks that the same
pyspark is still there and ``import cleanjoin`` works. It runs in the Spark 3.5
compatibility stage of ``./run test`` (it installs packages, so not in the main suite).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cleanjoin._compat import pyspark_version

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(
        pyspark_version()[:2] != (3, 5),
        reason="runs in the Spark 3.5 compatibility stage of ./run test",
    ),
]


def _run(*args: str | Path, cwd: Path) -> str:
    # run outside the checkout, without PYTHONPATH: `python -c` puts the working directory
    # first on sys.path, where the source tree's cleanjoin would win over the wheel's
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=False, cwd=cwd, env=env
    )
    assert out.returncode == 0, f"{args[:4]} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    return out.stdout


def test_wheel_leaves_an_installed_pyspark_in_place(tmp_path: Path) -> None:
    import pyspark

    wheels = tmp_path / "wheels"
    _run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels, ROOT, cwd=tmp_path
    )
    (wheel,) = wheels.glob("cleanjoin-*.whl")

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    py = venv / "bin" / "python"
    # The "runtime's" pyspark, installed first as a notebook environment would hold it.
    _run(py, "-m", "pip", "install", "--quiet", f"pyspark=={pyspark.__version__}", cwd=tmp_path)
    before = _run(py, "-m", "pip", "show", "pyspark", cwd=tmp_path)

    _run(py, "-m", "pip", "install", "--quiet", wheel, cwd=tmp_path)

    after = _run(py, "-m", "pip", "show", "pyspark", cwd=tmp_path)
    assert after == before
    probe = (
        "import json, cleanjoin, pyspark;"
        "print(json.dumps([pyspark.__version__, pyspark.__file__, cleanjoin.__file__]))"
    )
    version, pyspark_file, cleanjoin_file = json.loads(_run(py, "-c", probe, cwd=tmp_path))
    assert version == pyspark.__version__
    assert Path(pyspark_file).is_relative_to(venv)
    assert Path(cleanjoin_file).is_relative_to(venv)
    freeze = _run(py, "-m", "pip", "freeze", cwd=tmp_path).lower()
    assert "delta-spark" not in freeze
    assert sum(line.startswith("pyspark==") for line in freeze.splitlines()) == 1
