from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from cleanjoin import session
from cleanjoin.errors import SparkEnvironmentError

PACKAGE = Path(session.__file__).parent


def test_delta_package_matches_installed_spark() -> None:
    assert re.fullmatch(r"io\.delta:delta-spark_4\.2_2\.13:4\.4\.\d+", session.delta_package())


def test_base_conf_enables_delta_and_small_partitions() -> None:
    conf = session.base_conf("x", shuffle_partitions=3)
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.sql.shuffle.partitions"] == "3"
    assert conf["spark.ui.enabled"] == "false"
    assert conf["spark.jars.ivy"].endswith("ivy")


def test_base_conf_rejects_zero_partitions() -> None:
    with pytest.raises(ValueError, match="'shuffle_partitions' in local_spark must be >= 1, got 0"):
        session.base_conf(shuffle_partitions=0)


def test_check_java_reports_missing_java(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(SparkEnvironmentError, match="needs Java 17 or newer"):
        session.check_java()


def test_check_java_accepts_this_machine() -> None:
    assert int(session.check_java()) >= 17


def test_no_module_uses_rdd_sparkcontext_or_jvm() -> None:
    forbidden = {"rdd", "sparkContext", "_jvm", "_jsc", "_jdf"}
    # the one exception: the profiler of `cleanjoin demo --profile` reads the driver's job
    # list on a classic session only (on Spark Connect it records wall times, touching nothing)
    allowed = {"_profile.py": {"sparkContext", "_jsc"}}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr not in allowed.get(path.name, ()):
                assert node.attr not in forbidden, f"{path.name} uses .{node.attr}"


def test_session_reads_and_writes_delta(spark: Any, delta_path: str) -> None:
    spark.range(5).write.format("delta").mode("overwrite").save(delta_path)
    spark.range(5, 8).write.format("delta").mode("append").save(delta_path)
    assert spark.read.format("delta").load(delta_path).count() == 8
    history = spark.sql(f"DESCRIBE HISTORY delta.`{delta_path}`").collect()
    assert sorted(int(r["version"]) for r in history) == [0, 1]


def test_session_mode_is_what_was_asked(spark: Any, spark_classic: Any) -> None:
    assert session.is_connect(spark) == (spark is not spark_classic)


def test_python_workers_use_this_interpreter(spark: Any) -> None:
    import sys

    def which(_: int) -> str:
        import sys as worker_sys

        return worker_sys.executable

    spark.udf.register("cleanjoin_test_which_python", which, "string")
    row = spark.range(1).selectExpr("cleanjoin_test_which_python(id) AS py").collect()[0]
    assert Path(row["py"]).resolve() == Path(sys.executable).resolve()
