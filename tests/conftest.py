"""Shared fixtures: one Spark session per mode for the whole test session.

* ``spark_classic``: a classic local session with Delta Lake.
* ``spark_connect``: a Spark Connect session on a real Connect server started as its
  own process (a classic session and ``remote("local[2]")`` cannot share a process).
* ``spark``: parametrized over both modes; every DataFrame test that takes it runs twice.

Each mode keeps its tables created by name (``default.cj_...``) in its own temporary
warehouse folder, never in ``spark-warehouse/`` of the working directory.

``CLEANJOIN_TEST_MODES=classic`` (or ``connect``) restricts the modes while developing.
Tests that use none of these fixtures are marked ``fast`` automatically: ``pytest -m fast``
runs only them, in seconds. The tests named in ``COMPAT_TESTS`` (and every test marked
``compat`` in its module) are marked ``compat``: ``./run test`` runs that selection again on
each older Spark line.
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

# The compatibility selection, per module: tokens, guard, DP, contract, audit, ledger,
# revocation, tables by name and sessions, chosen to touch each Spark and Delta API cleanjoin uses, in both
# modes where the test takes ``spark``, in a few minutes per Spark line.
COMPAT_TESTS = {
    "test_tokens.py": {
        "test_hmac_core_rfc4231",
        "test_tokens_equal_reference_on_random_corpus",
        "test_known_pan_values",
    },
    "test_guard.py": {
        "test_cohort_counts_distinct_people_not_rows",
        "test_threshold_boundary_and_join_key_never_in_output",
        "test_unit_bitsets_give_the_hashed_plans_answers",
        "test_join_explosion_guard_names_side_and_limit",
        "test_left_explosion_caught_both_ways",
        "test_consent_and_revocation_are_applied_and_counted",
    },
    "test_dp.py": {
        "test_gaussian_noise_matches_reported_stddev",
        "test_bounded_table_totals_match_the_bounding_rules",
        "test_public_groups_release_empty_groups_and_drop_others",
        "test_guarded_dp_run_charges_once_and_replays",
    },
    "test_contract.py": {
        "test_compliant_result_is_approved",
        "test_approved_result_is_one_commit_with_metadata",
        "test_rejected_result_leaves_table_untouched",
    },
    "test_audit.py": {
        "test_append_head_export_and_verify",
        "test_concurrent_threads_never_fork_or_lose_entries",
    },
    "test_budget.py": {
        "test_charges_overspend_and_replay",
        "test_concurrent_charges_never_overspend",
    },
    "test_revocation.py": {
        "test_load_revocations_dedups_to_one_column",
        "test_apply_deletes_with_duplicates",
        "test_stream_applies_each_batch_once",
        "test_purge_makes_pre_revocation_versions_unreadable",
    },
    "test_table_names.py": {
        "test_audit_log_by_name",
        "test_ledger_by_name",
        "test_revocations_and_purge_on_named_tables",
        "test_consent_and_write_delta_by_name",
    },
    "test_session.py": {
        "test_session_reads_and_writes_delta",
        "test_session_mode_is_what_was_asked",
        "test_python_workers_use_this_interpreter",
    },
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if getattr(item, "originalname", None) in COMPAT_TESTS.get(item.path.name, ()):
            item.add_marker(pytest.mark.compat)
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
