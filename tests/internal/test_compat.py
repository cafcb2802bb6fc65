"""Tests of cleanjoin._compat, which hides what differs between the Python and pyspark
versions cleanjoin supports. None needs Spark."""

from __future__ import annotations

import ast
import enum
import pickle
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from cleanjoin import _compat
from cleanjoin.dp import NoiseKind
from cleanjoin.errors import SparkEnvironmentError

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ StrEnum on Python 3.10
def _kinds(base: Any) -> Any:
    class Kind(base):  # type: ignore[misc, valid-type]
        LAPLACE = "laplace"
        GAUSSIAN = enum.auto()

    return Kind


@pytest.mark.parametrize("base", [enum.StrEnum, _compat._StrEnum], ids=["3.11", "3.10"])
def test_str_enum_behaves_as_python_311s(base: Any) -> None:
    kind = _kinds(base)
    assert isinstance(kind.LAPLACE, str)
    assert str(kind.LAPLACE) == f"{kind.LAPLACE}" == "laplace"
    assert format(kind.LAPLACE, ">8") == " laplace"
    assert repr(kind.LAPLACE) == "<Kind.LAPLACE: 'laplace'>"
    assert kind.GAUSSIAN.value == "gaussian"  # auto(): the lower-cased name
    assert kind("laplace") is kind.LAPLACE
    assert kind.LAPLACE == "laplace"
    assert hash(kind.LAPLACE) == hash("laplace")
    assert {"laplace": 1}[kind.LAPLACE] == 1


@pytest.mark.parametrize("base", [enum.StrEnum, _compat._StrEnum], ids=["3.11", "3.10"])
def test_str_enum_refuses_values_that_are_not_strings(base: Any) -> None:
    with pytest.raises(TypeError, match=re.escape("1 is not a string")):

        class Bad(base):  # type: ignore[misc, valid-type]
            ONE = 1


def test_str_enum_is_the_standard_one_where_it_exists() -> None:
    assert _compat.StrEnum is enum.StrEnum  # this suite runs on Python 3.11+
    assert pickle.loads(pickle.dumps(NoiseKind.GAUSSIAN)) is NoiseKind.GAUSSIAN


def test_utc_is_the_standard_utc() -> None:
    import datetime

    assert _compat.UTC is datetime.timezone.utc


# ------------------------------------------------------------------ the Python floor
def test_every_source_file_is_python_310_syntax() -> None:
    # ruff (target py310) and mypy (python_version 3.10) check names; this checks syntax
    for folder in ("cleanjoin", "tests", "benchmarks", "notebooks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 10))


def test_the_python_check_parses_on_old_pythons() -> None:
    # what an old Python runs before it reaches the check: the package's __init__,
    # this module and the error classes
    for name in ("__init__.py", "_compat.py", "errors.py"):
        path = ROOT / "cleanjoin" / name
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 7))


@pytest.mark.parametrize(
    ("version", "shown"), [((3, 9, 18, "final", 0), "3.9.18"), ((3, 8), "3.8"), ((2, 7, 18), "2.7.18")]
)
def test_an_old_python_is_refused_in_one_line(version: tuple[Any, ...], shown: str) -> None:
    message = (
        "cleanjoin needs Python 3.10 or newer (3.10, 3.11 and 3.12 are supported); "
        f"this is Python {shown}"
    )
    with pytest.raises(SparkEnvironmentError, match=f"^{re.escape(message)}$"):
        _compat.check_python(version)


@pytest.mark.parametrize("version", [(3, 10, 0), (3, 11, 7), (3, 12, 3), (3, 13, 1), sys.version_info])
def test_supported_pythons_pass(version: tuple[Any, ...]) -> None:
    _compat.check_python(version)


# ------------------------------------------------------------------ the pyspark range
@pytest.mark.parametrize(
    ("version", "line"),
    [
        ("3.5.0", (3, 5)), ("3.5.7", (3, 5)), ("4.0.0", (4, 0)), ("4.2.0", (4, 2)),
        ("4.1.0.dev2", (4, 1)), ("4.0.0rc1", (4, 0)), ("3.5.2+databricks", (3, 5)),
        (" 3.5.1 ", (3, 5)), ("11.3", (11, 3)), ("3.50.1", (3, 50)),
        ("", None), ("dev", None), ("4", None), ("v4.0.0", None),
    ],
)
def test_spark_major_minor_reads_what_pyspark_versions_look_like(
    version: str, line: tuple[int, int] | None
) -> None:
    assert _compat.spark_major_minor(version) == line


def _pyspark_version(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    import pyspark

    monkeypatch.setattr(pyspark, "__version__", version)


@pytest.mark.parametrize(
    "version", ["3.5.0", "3.5.7", "4.0.0", "4.0.1", "4.1.0", "4.1.0.dev2", "4.2.0", "4.2.3"]
)
def test_supported_pysparks_pass(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    _pyspark_version(monkeypatch, version)
    assert _compat.check_pyspark() == _compat.spark_major_minor(version)


def test_the_installed_pyspark_is_supported() -> None:
    import pyspark

    assert _compat.check_pyspark() == _compat.spark_major_minor(pyspark.__version__)


@pytest.mark.parametrize("version", ["3.4.1", "3.3.4", "2.4.8", "4.3.0", "4.3.0.dev1", "5.0.0", "11.3"])
def test_an_unsupported_pyspark_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    _pyspark_version(monkeypatch, version)
    message = (
        "cleanjoin needs pyspark 3.5.x, 4.0.x, 4.1.x or 4.2.x (classic or Spark Connect); "
        f"found pyspark {version}"
    )
    with pytest.raises(SparkEnvironmentError, match=f"^{re.escape(message)}$"):
        _compat.check_pyspark()


def test_an_unreadable_pyspark_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _pyspark_version(monkeypatch, "unknown")
    message = (
        "cleanjoin needs pyspark 3.5.x, 4.0.x, 4.1.x or 4.2.x (classic or Spark Connect); "
        "found pyspark version 'unknown', which it cannot read"
    )
    with pytest.raises(SparkEnvironmentError, match=f"^{re.escape(message)}$"):
        _compat.check_pyspark()


def test_a_missing_pyspark_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # makes `import pyspark` fail
    with pytest.raises(SparkEnvironmentError, match=re.escape("; pyspark is not installed")):
        _compat.check_pyspark()


def test_the_check_reads_pyspark_dunder_version_not_pip_metadata(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Databricks Connect and the Databricks Runtime bring a pyspark without (matching)
    # pip metadata: what pip says must not matter
    from importlib import metadata

    def no_metadata(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", no_metadata)
    _pyspark_version(monkeypatch, "3.5.0")
    assert _compat.check_pyspark() == (3, 5)


# ------------------------------------------------------------------ pyspark API differences
def test_arrow_udfs_are_used_where_pyspark_has_them() -> None:
    from pyspark.util import PythonEvalType

    def fn(values: Any) -> Any:
        return values

    assert _compat.scalar_arrow_udf_parts(fn) == (fn, PythonEvalType.SQL_SCALAR_ARROW_UDF)


def test_before_pyspark_41_the_arrow_function_runs_in_a_pandas_udf(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pandas as pd
    import pyarrow as pa
    from pyspark.util import PythonEvalType

    monkeypatch.delattr(PythonEvalType, "SQL_SCALAR_ARROW_UDF")  # as in pyspark 3.5 and 4.0
    seen: list[Any] = []

    def upper(values: Any) -> Any:
        seen.append(values)
        return pa.array([None if v is None else v.upper() for v in values.to_pylist()], values.type)

    body, eval_type = _compat.scalar_arrow_udf_parts(upper)
    assert eval_type == PythonEvalType.SQL_SCALAR_PANDAS_UDF
    out = body(pd.Series(["a@x.com", None, "ß", ""], dtype=object))
    assert isinstance(seen[0], pa.Array)
    assert seen[0].type == pa.string()
    assert out.tolist() == ["A@X.COM", None, "SS", ""]
    from pyspark import cloudpickle  # how pyspark ships a UDF

    assert cloudpickle.loads(cloudpickle.dumps(body))(pd.Series(["b"])).tolist() == ["B"]


def test_connect_observations_are_none_before_pyspark_40(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Connect 3.5 drops observed metrics: no class, the guard counts with a job instead
    from pyspark.sql.connect.observation import Observation as ConnectObservation
    from pyspark.sql.observation import Observation as ClassicObservation

    assert _compat.observation_class(connect=True) is ConnectObservation
    assert _compat.observation_class(connect=False) is ClassicObservation
    monkeypatch.setitem(sys.modules, "pyspark.sql.connect.observation", None)  # pyspark 3.5
    assert _compat.observation_class(connect=True) is None
    assert _compat.observation_class(connect=False) is ClassicObservation


def test_dp_without_pipeline_dp_stops_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import sys

    from cleanjoin import _compat
    from cleanjoin.dp import DPParams
    from cleanjoin.errors import SparkEnvironmentError

    monkeypatch.delitem(sys.modules, "pipeline_dp", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(SparkEnvironmentError, match=re.escape("differential privacy needs pipeline-dp 0.3.1")):
        DPParams(epsilon=1.0)
    monkeypatch.undo()
    _compat.require_pipeline_dp()  # installed here: no error
