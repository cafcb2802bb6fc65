"""Local Spark sessions with Delta Lake, classic or Spark Connect.

cleanjoin itself never creates sessions behind your back: every function takes a
DataFrame or a SparkSession. This module is for notebooks, tests, the demo and the
benchmarks, where a local session with Delta Lake is wanted in one line.

Delta Lake's jars are not in the ``delta-spark`` pip package. :func:`delta_package` picks
the Maven coordinate that matches the running Spark and Scala version (Spark 3.5 →
``delta-spark_2.12:3.3.x``, Spark 4.0 → ``delta-spark_2.13:4.0.x``, Spark 4.1 and later →
``delta-spark_<spark>_2.13``). On the first start Spark's own resolver fetches it from Maven
Central, in a separate quiet process that prints one line; the resolved jar files are kept in
``~/.cache/cleanjoin/jars/<coordinate>/`` (or under ``$CLEANJOIN_CACHE``), and every later start
passes them as ``spark.jars``, so it resolves and downloads nothing.

Example:
    >>> from cleanjoin.session import delta_package
    >>> delta_package().startswith("io.delta:delta-spark_")
    True
"""

from __future__ import annotations

import fcntl
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

from cleanjoin._compat import check_pyspark, pyspark_version
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


def scala_version() -> str:
    """The Scala binary version (``"2.12"`` or ``"2.13"``) of the installed pyspark's jars.

    Read from ``scala-library-<version>.jar`` in pyspark's ``jars/`` folder; a pyspark without
    jars (a Connect-only client) gets the default of its Spark line (2.12 for 3.x, else 2.13).
    """
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    for jar in sorted(jars.glob("scala-library-*.jar")):
        match = re.fullmatch(r"scala-library-(\d+\.\d+)\.\d+\.jar", jar.name)
        if match:
            return match.group(1)
    return "2.12" if pyspark_version()[0] < 4 else "2.13"


def delta_package() -> str:
    """The Maven coordinate of the Delta Lake jar matching the installed pyspark and delta-spark.

    ==========  ===========  ==========================================
    Spark       delta-spark  coordinate
    ==========  ===========  ==========================================
    3.5.x       3.3.x        ``io.delta:delta-spark_2.12:3.3.x``
    4.0.x       4.0.x        ``io.delta:delta-spark_2.13:4.0.x``
    4.1, 4.2    4.x          ``io.delta:delta-spark_<4.x>_2.13:<jar>``
    ==========  ===========  ==========================================

    ``$CLEANJOIN_DELTA_PACKAGE`` overrides it (for a mirror or a newer jar).

    Raises:
        SparkEnvironmentError: when delta-spark is not installed, or its major version does
            not belong to the running Spark line (Delta 3 for Spark 3.5, Delta 4 for Spark 4).
    """
    override = os.environ.get("CLEANJOIN_DELTA_PACKAGE")
    if override:
        return override
    major, minor = pyspark_version()
    try:
        pip_version = metadata.version("delta-spark")
    except metadata.PackageNotFoundError:
        raise SparkEnvironmentError(
            "local_spark needs the 'delta-spark' package; install cleanjoin[local] "
            "(or delta-spark 3.3 for Spark 3.5, 4.0 for Spark 4.0, 4.4 for Spark 4.2)"
        ) from None
    jar_version = _JAR_VERSION_FOR_PIP.get(pip_version, pip_version)
    delta_major = int(jar_version.split(".")[0])
    if delta_major != (3 if major == 3 else 4):
        raise SparkEnvironmentError(
            f"local_spark: delta-spark {pip_version} does not run on Spark {major}.{minor}; "
            "use delta-spark 3.3 for Spark 3.5, 4.0 for Spark 4.0, 4.4 for Spark 4.2"
        )
    scala = scala_version()
    if (major, minor) < (4, 1):
        return f"io.delta:delta-spark_{scala}:{jar_version}"
    return f"io.delta:delta-spark_{major}.{minor}_{scala}:{jar_version}"


def _connect_packages() -> list[str]:
    """Maven coordinates a Spark Connect server needs beyond Delta Lake.

    pyspark 4 ships the Connect server in its jars; pyspark 3.5 does not, so it is
    resolved (``org.apache.spark:spark-connect_2.12:<version>``) and cached like Delta.
    """
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    if any(jars.glob("spark-connect_*.jar")):
        return []
    version = pyspark.__version__.split("+")[0]
    return [f"org.apache.spark:spark-connect_{scala_version()}:{version}"]


# Ivy settings for the one resolution on a first start: Maven Central only. Spark's default
# chain also asks the local ~/.m2 and ~/.ivy2 folders and the spark-packages repository, which
# is unreachable on many machines and fills the log with warnings. An ``ibiblio`` resolver
# without a root is ivy's own Maven Central default, so no address is written here.
_IVY_SETTINGS = """<ivysettings>
  <settings defaultResolver="central"/>
  <resolvers>
    <ibiblio name="central" m2compatible="true"/>
  </resolvers>
</ivysettings>
"""


def _cache_key(packages: list[str]) -> str:
    return "+".join(re.sub(r"[^A-Za-z0-9._-]", "_", p) for p in sorted(packages))


def cached_jars(packages: list[str]) -> list[Path]:
    """The jar files of ``packages`` (Maven coordinates) with their dependencies, cached.

    The first call for a set of coordinates resolves them with Spark's resolver in a
    separate ``spark-submit`` process (Maven Central only; its output goes to
    ``resolve.log`` beside the jars) and prints one line of progress. The jar list is kept in
    ``cache_dir()/jars/<coordinates>/``; later calls only read it. A lock file makes
    concurrent first starts resolve once.

    Raises:
        SparkEnvironmentError: when the resolution fails (no network, unknown coordinate).
    """
    folder = cache_dir() / "jars" / _cache_key(packages)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "jars.txt"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        jars = _read_manifest(manifest)
        if jars is None:
            _resolve(packages, folder)
            jars = sorted((folder / "jars").glob("*.jar"))
            if not jars:
                raise SparkEnvironmentError(
                    f"resolving {', '.join(packages)} gave no jar files; see {folder / 'resolve.log'}"
                )
            tmp = manifest.with_suffix(".tmp")
            tmp.write_text("".join(f"{jar.name}\n" for jar in jars))
            tmp.replace(manifest)
    return jars


def _read_manifest(manifest: Path) -> list[Path] | None:
    if not manifest.exists():
        return None
    jars = [manifest.parent / "jars" / name for name in manifest.read_text().split()]
    return jars if jars and all(jar.exists() for jar in jars) else None


def _resolve(packages: list[str], folder: Path) -> None:
    from pyspark.find_spark_home import _find_spark_home

    spark_home = _find_spark_home()
    settings = folder / "ivysettings.xml"
    settings.write_text(_IVY_SETTINGS)
    noop = folder / "resolve_only.py"
    noop.write_text("# cleanjoin: resolves jars with spark-submit, runs nothing\n")
    log = folder / "resolve.log"
    args = [
        str(Path(spark_home) / "bin" / "spark-submit"),
        "--master", "local[1]",
        "--packages", ",".join(packages),
        "--conf", f"spark.jars.ivy={folder}",
        "--conf", f"spark.jars.ivySettings={settings}",
        "--conf", f"spark.pyspark.python={sys.executable}",
        "--conf", f"spark.driver.extraJavaOptions=-Dlog4j2.configurationFile=file:{_LOG4J}",
        str(noop),
    ]
    print("resolving Delta Lake jars (first run only)...", file=sys.stderr, flush=True)
    env = dict(os.environ, SPARK_HOME=spark_home, PYSPARK_PYTHON=sys.executable)
    env.pop("SPARK_REMOTE", None)
    with open(log, "wb") as sink:
        code = subprocess.run(args, stdout=sink, stderr=subprocess.STDOUT, env=env, check=False)
    if code.returncode != 0:
        raise SparkEnvironmentError(
            f"could not resolve {', '.join(packages)} from Maven Central "
            f"(spark-submit exited with code {code.returncode}); see {log}"
        )


def jar_conf(packages: list[str]) -> dict[str, str]:
    """Spark settings that load ``packages`` from the jar cache (see :func:`cached_jars`).

    Use it in place of ``spark.jars.packages``.
    """
    return {"spark.jars": ",".join(str(jar) for jar in cached_jars(packages))}


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
    check_pyspark()
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
        SparkEnvironmentError: when Java 17+ is missing or pyspark is not 3.5.x or 4.0-4.2.

    Example:
        >>> spark = local_spark()  # doctest: +SKIP
        >>> spark.range(3).count()  # doctest: +SKIP
        3
    """
    _prepare_environment()
    from pyspark.sql import SparkSession

    settings = base_conf(app_name, shuffle_partitions=shuffle_partitions)
    packages = [settings.pop("spark.jars.packages")] + (_connect_packages() if connect else [])
    settings.update(jar_conf(packages))
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
        settings.update(jar_conf([settings.pop("spark.jars.packages"), *_connect_packages()]))
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
