"""Local Spark sessions with Delta Lake, classic or Spark Connect.

cleanjoin itself never creates sessions behind your back: every function takes a
DataFrame or a SparkSession. This module is for notebooks, tests, the demo and the
benchmarks, where a local session with Delta Lake is wanted in one line.

Delta Lake's jars are not in the ``delta-spark`` pip package. They are resolved from
Maven Central by Spark's own resolver on the first start and kept in a cache folder
(``~/.cache/cleanjoin/ivy``, or ``$CLEANJOIN_CACHE/ivy``), so later starts download nothing.

Example:
    >>> from cleanjoin.session import delta_package
    >>> delta_package().startswith("io.delta:delta-spark_4.2_2.13:")
    True
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

from cleanjoin._spark import is_connect
from cleanjoin.errors import InvalidArgumentError, SparkEnvironmentError

__all__ = [
    "ConnectServer",
    "base_conf",
    "cache_dir",
    "check_java",
    "delta_package",
    "is_connect",
    "local_spark",
]

MIN_JAVA = 17

# delta-spark's pip package and its jars are released together, but not every pip
# release has jars on Maven Central: 4.4.1 is on PyPI while Maven Central serves
# delta-spark 4.4.0 as the newest jar for Spark 4.2 (checked 2026-11-25). The Python
# API of a patch release runs unchanged on the jars of the same minor release.
_JAR_VERSION_FOR_PIP = {"4.4.1": "4.4.0"}

_LOG4J = Path(__file__).with_name("_log4j2.properties")


def cache_dir() -> Path:
    """The folder where cleanjoin caches downloaded jars (``$CLEANJOIN_CACHE`` or ``~/.cache/cleanjoin``)."""
    root = os.environ.get("CLEANJOIN_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "cleanjoin"


def delta_package() -> str:
    """The Maven coordinate of the Delta Lake jar matching the installed pyspark and delta-spark.

    ``$CLEANJOIN_DELTA_PACKAGE`` overrides it (for a mirror or a newer jar).
    """
    override = os.environ.get("CLEANJOIN_DELTA_PACKAGE")
    if override:
        return override
    import pyspark

    spark_mm = ".".join(pyspark.__version__.split(".")[:2])
    pip_version = metadata.version("delta-spark")
    jar_version = _JAR_VERSION_FOR_PIP.get(pip_version, pip_version)
    return f"io.delta:delta-spark_{spark_mm}_2.13:{jar_version}"


def check_java() -> str:
    """Check that Java 17 or newer is installed and return its version string.

    Raises:
        SparkEnvironmentError: when no ``java`` is found or it is older than 17.
    """
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise SparkEnvironmentError(
            "cleanjoin needs Java 17 or newer to run Spark, and no 'java' was found "
            "(neither $JAVA_HOME/bin/java nor on PATH). Install OpenJDK 17+ "
            "(e.g. 'apt-get install openjdk-17-jdk-headless') or set JAVA_HOME."
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    text = out.stderr + out.stdout
    match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not match:
        raise SparkEnvironmentError(f"could not read the Java version from '{java} -version'")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise SparkEnvironmentError(
            f"cleanjoin needs Java {MIN_JAVA} or newer; found Java {major} at {java}. "
            "Install OpenJDK 17+ or point JAVA_HOME at it."
        )
    return f"{major}"


def base_conf(app_name: str = "cleanjoin", *, shuffle_partitions: int = 4) -> dict[str, str]:
    """The Spark configuration every cleanjoin local session uses.

    Delta Lake (extension, catalog, jars), UI and console progress off, small shuffle
    and Delta snapshot partitions, and Python workers on the running interpreter.
    """
    if shuffle_partitions < 1:
        raise InvalidArgumentError(
            f"'shuffle_partitions' in local_spark must be >= 1, got {shuffle_partitions}"
        )
    log_opts = f"-Dlog4j2.configurationFile=file:{_LOG4J}"
    return {
        "spark.app.name": app_name,
        "spark.jars.packages": delta_package(),
        "spark.jars.ivy": str(cache_dir() / "ivy"),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.default.parallelism": str(shuffle_partitions),
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.sql.adaptive.enabled": "true",
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.driver.extraJavaOptions": log_opts,
        "spark.executor.extraJavaOptions": log_opts,
        "spark.driver.memory": os.environ.get("CLEANJOIN_DRIVER_MEMORY", "4g"),
        "spark.sql.session.timeZone": "UTC",
    }


def _prepare_environment() -> None:
    check_java()
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    (cache_dir() / "ivy").mkdir(parents=True, exist_ok=True)


def local_spark(
    *,
    connect: bool = False,
    app_name: str = "cleanjoin",
    shuffle_partitions: int = 4,
    conf: Mapping[str, str] | None = None,
) -> Any:
    """Start (or reuse) a local Spark session with Delta Lake enabled.

    Args:
        connect: when True, start a real local Spark Connect server (``remote("local[2]")``)
            with Delta Lake and return a Connect session.
        app_name: Spark application name.
        shuffle_partitions: ``spark.sql.shuffle.partitions`` (small is fast locally).
        conf: extra Spark configuration.

    Returns:
        A ``pyspark.sql.SparkSession`` (classic) or a Spark Connect session.

    Raises:
        SparkEnvironmentError: when Java 17+ is missing.

    Example:
        >>> spark = local_spark()  # doctest: +SKIP
        >>> spark.range(3).count()  # doctest: +SKIP
        3
    """
    _prepare_environment()
    from pyspark.sql import SparkSession

    settings = base_conf(app_name, shuffle_partitions=shuffle_partitions)
    settings.update(conf or {})
    builder = SparkSession.builder.remote("local[2]") if connect else SparkSession.builder.master(
        "local[2]"
    )
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ConnectServer:
    """A real Spark Connect server with Delta Lake, run as its own process.

    A classic session and ``remote("local[2]")`` cannot live in one Python process; this
    server can sit beside a classic session, which is how the test suite runs every
    DataFrame test in both modes.

    Example:
        >>> with ConnectServer() as server:  # doctest: +SKIP
        ...     spark = server.session()
        ...     spark.range(3).count()
        3
    """

    port: int = 0
    startup_timeout: float = 300.0
    log_path: Path | None = None
    conf: Mapping[str, str] | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        """The ``sc://`` address of the server."""
        return f"sc://127.0.0.1:{self.port}"

    def start(self) -> ConnectServer:
        """Start the server process and wait until it accepts connections."""
        _prepare_environment()
        from pyspark.find_spark_home import _find_spark_home

        if not self.port:
            self.port = _free_port()
        spark_home = _find_spark_home()
        submit = str(Path(spark_home) / "bin" / "spark-submit")
        settings = base_conf("cleanjoin-connect-server")
        settings["spark.connect.grpc.binding.port"] = str(self.port)
        settings["spark.connect.grpc.binding.address"] = "127.0.0.1"
        settings.update(self.conf or {})
        args = [submit, "--master", "local[2]"]
        for key, value in settings.items():
            args += ["--conf", f"{key}={value}"]
        args += ["--class", "org.apache.spark.sql.connect.service.SparkConnectServer", "spark-internal"]
        log = self.log_path or (cache_dir() / f"connect-server-{self.port}.log")
        log.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, SPARK_HOME=spark_home)
        with open(log, "wb") as sink:
            self._proc = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise SparkEnvironmentError(
                    f"the Spark Connect server exited with code {self._proc.returncode}; see {log}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise SparkEnvironmentError(
            f"the Spark Connect server did not open port {self.port} within "
            f"{self.startup_timeout:.0f} s; see {log}"
        )

    def session(self) -> Any:
        """A Spark Connect session on this server."""
        from pyspark.sql.connect.session import SparkSession as ConnectSession

        return ConnectSession.builder.remote(self.url).getOrCreate()

    def stop(self) -> None:
        """Stop the server process."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._proc = None

    def __enter__(self) -> ConnectServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
