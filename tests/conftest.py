"""Shared fixtures: one Spark session per mode for the whole test session.

* ``spark_classic``: a classic local session with Delta Lake.
* ``spark_connect``: a Spark Connect session on a real Connect server started as its
  own process (a classic session and ``remote("local[2]")`` cannot share a process).
* ``spark``: parametrized over both modes; every DataFrame test that takes it runs twice.

Each mode keeps its tables created by name (``default.cj_...``) in its own temporary
warehouse folder, never in ``spark-warehouse/`` of the working directory.

``CLEANJOIN_TEST_MODES=classic`` (or ``connect``) restricts the modes while developing.
Tests that use none of these fixtures are marked ``fast`` automatically: ``pytest -m fast``
runs only them, in seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cleanjoin.session import ConnectServer, local_spark

SPARK_FIXTURES = {"spark", "spark_classic", "spark_connect", "connect_server"}
MODES = [m for m in os.environ.get("CLEANJOIN_TEST_MODES", "classic,connect").split(",") if m]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if not names & SPARK_FIXTURES and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.fast)


def _warehouse(factory: pytest.TempPathFactory, mode: str) -> dict[str, str]:
    return {"spark.sql.warehouse.dir": str(factory.mktemp(f"warehouse-{mode}"))}


@pytest.fixture(scope="session")
def spark_classic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if "classic" not in MODES:
        pytest.skip("classic mode not selected in CLEANJOIN_TEST_MODES")
    session = local_spark(
        app_name="cleanjoin-tests", shuffle_partitions=2,
        conf=_warehouse(tmp_path_factory, "classic"),
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def connect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConnectServer]:
    if "connect" not in MODES:
        pytest.skip("connect mode not selected in CLEANJOIN_TEST_MODES")
    log = tmp_path_factory.mktemp("connect") / "server.log"
    server = ConnectServer(log_path=log, conf=_warehouse(tmp_path_factory, "connect")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def spark_connect(connect_server: ConnectServer) -> Iterator[Any]:
    session = connect_server.session()
    yield session
    session.stop()


@pytest.fixture(params=["classic", "connect"], scope="session")
def spark(request: pytest.FixtureRequest) -> Any:
    if request.param not in MODES:
        pytest.skip(f"{request.param} mode not selected in CLEANJOIN_TEST_MODES")
    return request.getfixturevalue(f"spark_{request.param}")


@pytest.fixture
def delta_path(tmp_path: Path) -> str:
    """A fresh folder path for a Delta table."""
    return str(tmp_path / "table")
