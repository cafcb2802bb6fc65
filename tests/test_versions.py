"""Supported versions: an unsupported pyspark stops the first Spark use with one line,
and ``import cleanjoin`` imports no pyspark (a notebook's own pyspark is used as found)."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest

import cleanjoin
from cleanjoin import GuardedJoin, Secret, local_spark, reference, tokenize
from cleanjoin._spark import functions_for, is_connect, window_for
from cleanjoin.errors import SparkEnvironmentError

REFUSED = re.escape(
    "cleanjoin needs pyspark 3.5.x, 4.0.x, 4.1.x or 4.2.x (classic or Spark Connect); "
    "found pyspark 3.4.1"
)


@pytest.fixture
def old_pyspark(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyspark

    monkeypatch.setattr(pyspark, "__version__", "3.4.1")


class _FakeDataFrame:
    """Looks like a classic DataFrame to cleanjoin (module, schema, session, columns)."""

    __module__ = "pyspark.sql.classic.dataframe"
    schema: Any = None
    sparkSession: Any = None  # noqa: N815 - pyspark's name
    columns: list[str] = []  # noqa: RUF012


def test_import_cleanjoin_does_not_import_pyspark() -> None:
    probe = (
        "import sys, cleanjoin; "
        "print(sorted(m for m in ('pyspark', 'py4j', 'delta', 'pipeline_dp') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"


def test_import_cleanjoin_on_an_old_python_stops_with_one_line() -> None:
    # sys.version_info as Python 3.9 reports it; the check runs before any other module
    probe = (
        "import sys; sys.version_info = (3, 9, 18, 'final', 0)\n"
        "try:\n    import cleanjoin\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc, sep=': ')\n"
        "    print(sorted(m for m in sys.modules if m.startswith('cleanjoin')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.splitlines() == [
        "SparkEnvironmentError: cleanjoin needs Python 3.10 or newer (3.10, 3.11 and 3.12 are "
        "supported); this is Python 3.9.18",
        "['cleanjoin._compat', 'cleanjoin.errors']",  # and nothing else was imported
    ]


@pytest.mark.usefixtures("old_pyspark")
def test_local_spark_refuses_an_unsupported_pyspark_before_starting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_java() -> str:
        raise AssertionError("the pyspark check comes before anything else")

    monkeypatch.setattr(cleanjoin.session, "check_java", no_java)
    with pytest.raises(SparkEnvironmentError, match=f"^{REFUSED}$"):
        local_spark()


@pytest.mark.usefixtures("old_pyspark")
def test_guarded_join_refuses_an_unsupported_pyspark() -> None:
    with pytest.raises(SparkEnvironmentError, match=f"^{REFUSED}$"):
        GuardedJoin(_FakeDataFrame(), _FakeDataFrame(), on="card_number_token")  # type: ignore[arg-type]


@pytest.mark.usefixtures("old_pyspark")
def test_the_spark_choke_points_refuse_an_unsupported_pyspark() -> None:
    for call in (functions_for, window_for, is_connect):
        with pytest.raises(SparkEnvironmentError, match=f"^{REFUSED}$"):
            call(_FakeDataFrame())


@pytest.mark.usefixtures("old_pyspark")
def test_objects_that_are_not_spark_are_not_checked() -> None:
    assert is_connect(object()) is False



def test_tokens_are_the_same_through_the_pandas_udf_of_pyspark_35_and_40(
    spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyspark.util import PythonEvalType

    key = bytes(range(32))
    secret = Secret.from_bytes(key)
    values = ["Ａ@Ｘ.com", "ﬁ@x.com", "İ@x.com", "ß@x.com", "a\u200b@x.com", "²@x.com", None, "", "a@x.com"]
    df = spark.createDataFrame(list(enumerate(values)), "i int, email string")

    def tokens() -> dict[int, str | None]:
        return {r["i"]: r["email_token"] for r in tokenize(df, {"email": "email"}, secret=secret).collect()}

    expected = {i: reference.token(v, key, "email") for i, v in enumerate(values)}
    arrow_udf = tokens()
    monkeypatch.delattr(PythonEvalType, "SQL_SCALAR_ARROW_UDF")  # as in pyspark 3.5 and 4.0
    assert tokens() == arrow_udf == expected
