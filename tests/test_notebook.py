"""The clean-room notebook is generated from one source and executed headless (nbclient)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def _builder() -> Any:
    spec = importlib.util.spec_from_file_location("build_notebook", NOTEBOOKS / "build_notebook.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_notebooks_are_up_to_date() -> None:
    builder = _builder()
    assert (NOTEBOOKS / "clean_room.ipynb").read_text(encoding="utf-8") == builder.notebook_json(), (
        "run: python notebooks/build_notebook.py"
    )
    databricks = (NOTEBOOKS / "clean_room_databricks.py").read_text(encoding="utf-8")
    assert databricks == builder.databricks_source()
    assert databricks.startswith("# Databricks notebook source")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["classic", "connect"])
def test_notebook_executes(mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    selected = os.environ.get("CLEANJOIN_TEST_MODES", "classic,connect").split(",")
    if mode not in selected:
        pytest.skip(f"{mode} mode not selected in CLEANJOIN_TEST_MODES")
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("CLEANJOIN_NB_ROWS", "30000")
    monkeypatch.setenv("CLEANJOIN_NB_CONNECT", "1" if mode == "connect" else "0")
    monkeypatch.setenv("CLEANJOIN_NB_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("CLEANJOIN_DRIVER_MEMORY", os.environ.get("CLEANJOIN_DRIVER_MEMORY", "2g"))
    nb = nbformat.read(NOTEBOOKS / "clean_room.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    text = "\n".join(
        str(output.get("text", "")) for cell in nb.cells if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )
    assert "check value:" in text
    assert "written as Delta version" in text
    assert text.count("is a sealed cleanjoin output under policy") == 2  # verify_output, both
    assert (tmp_path / "out" / "outcome_rate.png").stat().st_size > 1000
    assert (tmp_path / "out" / "audit.jsonl").exists()
