"""Version choices of cleanjoin.session and the jar cache, without starting Spark."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cleanjoin import _compat, session
from cleanjoin.errors import SparkEnvironmentError

pytestmark = pytest.mark.compat


@pytest.mark.parametrize(
    ("spark", "scala", "pip", "expected"),
    [
        ((3, 5), "2.12", "3.3.2", "io.delta:delta-spark_2.12:3.3.2"),
        ((4, 0), "2.13", "4.0.1", "io.delta:delta-spark_2.13:4.0.1"),
        ((4, 2), "2.13", "4.4.1", "io.delta:delta-spark_4.2_2.13:4.4.0"),
    ],
)
def test_delta_coordinate_per_spark_line(
    monkeypatch: pytest.MonkeyPatch, spark: tuple[int, int], scala: str, pip: str, expected: str
) -> None:
    monkeypatch.delenv("CLEANJOIN_DELTA_PACKAGE", raising=False)
    monkeypatch.setattr(session, "pyspark_version", lambda: spark)
    monkeypatch.setattr(session, "scala_version", lambda: scala)
    monkeypatch.setattr(session.metadata, "version", lambda name: pip)
    assert session.delta_package() == expected


def test_delta_of_another_spark_line_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLEANJOIN_DELTA_PACKAGE", raising=False)
    monkeypatch.setattr(session, "pyspark_version", lambda: (3, 5))
    monkeypatch.setattr(session.metadata, "version", lambda name: "4.0.1")
    with pytest.raises(SparkEnvironmentError, match=re.escape("delta-spark 4.0.1 does not run on Spark 3.5")):
        session.delta_package()


def test_scala_version_is_read_from_pyspark_jars() -> None:
    assert session.scala_version() == ("2.12" if _compat.pyspark_version() < (4, 0) else "2.13")


def test_unsupported_pyspark_stops_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyspark

    monkeypatch.setattr(pyspark, "__version__", "3.4.1")
    with pytest.raises(SparkEnvironmentError, match=re.escape("cleanjoin needs pyspark 3.5.x, 4.0.x, 4.1.x or 4.2.x (classic or Spark Connect); found pyspark 3.4.1")):
        _compat.check_pyspark()


def _fake_resolution(calls: list[list[str]]) -> Any:
    def run(args: list[str], **_: Any) -> subprocess.CompletedProcess[bytes]:
        calls.append(args)
        ivy = Path(next(a for a in args if a.startswith("spark.jars.ivy=")).split("=", 1)[1])
        (ivy / "jars").mkdir(parents=True, exist_ok=True)
        (ivy / "jars" / "io.delta_delta-spark_2.13-9.9.9.jar").write_bytes(b"jar")
        return subprocess.CompletedProcess(args, 0)

    return run


def test_second_start_resolves_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLEANJOIN_CACHE", str(tmp_path))
    calls: list[list[str]] = []
    monkeypatch.setattr(session.subprocess, "run", _fake_resolution(calls))
    first = session.jar_conf(["io.delta:delta-spark_2.13:9.9.9"])
    second = session.jar_conf(["io.delta:delta-spark_2.13:9.9.9"])
    assert first == second
    assert first["spark.jars"].endswith("io.delta_delta-spark_2.13-9.9.9.jar")
    assert len(calls) == 1
    assert capsys.readouterr().err == "resolving Delta Lake jars (first run only)...\n"
    settings = next(a for a in calls[0] if a.startswith("spark.jars.ivySettings=")).split("=", 1)[1]
    text = Path(settings).read_text()
    assert "<ibiblio name=\"central\" m2compatible=\"true\"/>" in text
    assert "://" not in text  # ivy's own Maven Central default; no address written


def test_failed_resolution_names_the_log(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLEANJOIN_CACHE", str(tmp_path))
    monkeypatch.setattr(
        session.subprocess, "run", lambda args, **_: subprocess.CompletedProcess(args, 1)
    )
    with pytest.raises(SparkEnvironmentError, match=re.escape("could not resolve io.delta:x:1 from Maven Central")):
        session.cached_jars(["io.delta:x:1"])
