"""cleanjoin.verify_output: the other party checks that an output table was produced under
the approved policy and is unchanged since (each single-row change fails it)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from cleanjoin import (
    AuditLog,
    CollaborationPolicy,
    GuardedJoin,
    OutputContract,
    OutputVerification,
    agg,
    verify_output,
)
from cleanjoin.errors import InvalidArgumentError


def tok(i: int) -> str:
    return hashlib.sha256(f"verify-person-{i}".encode()).hexdigest()


@pytest.fixture(scope="module")
def policy(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> CollaborationPolicy:
    root = tmp_path_factory.mktemp("verify")
    provider, consumer = str(root / "provider"), str(root / "consumer")
    spark.createDataFrame(
        [(tok(i), "5411" if i < 8 else "7995", i % 2) for i in range(12)],
        "card_number_token string, merchant_category_code string, confirmed_fraud_flag int",
    ).write.format("delta").save(provider)
    spark.createDataFrame([(tok(i), "0-1y") for i in range(12)],
                          "card_number_token string, account_age_band string",
                          ).write.format("delta").save(consumer)
    return CollaborationPolicy.from_dict({
        "format": "cleanjoin.policy/v1",
        "name": "verify-test",
        "parties": {
            "provider": {"table": provider, "join_column": "card_number_token",
                         "dimensions": ["merchant_category_code"],
                         "measures": {"confirmed_fraud_flag": {"aggregates": ["mean"],
                                                               "bounds": [0, 1]}}},
            "consumer": {"table": consumer, "join_column": "card_number_token",
                         "dimensions": ["account_age_band"], "measures": {}},
        },
        "privacy_unit": "card_number_token",
        "min_cohort": 3,
        "budget": {"ledger": str(root / "ledger"), "total_epsilon": 1.0, "total_delta": 1e-5},
    })


def _result(spark: Any, policy: CollaborationPolicy) -> Any:
    join = GuardedJoin.from_policy(policy, spark=spark, fingerprint=policy.fingerprint)
    return (
        join.group_by("merchant_category_code")
        .agg(agg.count().alias("n"), agg.mean("confirmed_fraud_flag").alias("rate"))
        .min_cohort().run()
    )


@pytest.fixture
def sealed(spark: Any, policy: CollaborationPolicy, tmp_path: Path) -> tuple[str, AuditLog]:
    """A fresh output table written under the policy, with an audit log."""
    result = _result(spark, policy)
    audit = AuditLog(str(tmp_path / "audit"), spark=spark, actor="tests")
    contract = OutputContract.from_result(result, policy=result.policy)
    path = str(tmp_path / "out")
    result.write_delta(path, contract=contract, audit=audit)
    return path, audit


def test_a_fresh_sealed_output_verifies(
    spark: Any, policy: CollaborationPolicy, sealed: tuple[str, AuditLog]
) -> None:
    path, audit = sealed
    for given in (policy, policy.fingerprint):
        outcome = verify_output(path, policy=given, audit=audit, spark=spark)
        assert isinstance(outcome, OutputVerification)
        assert (outcome.ok, outcome.reasons, outcome.version) == (True, (), 0)
        assert outcome.policy_fingerprint == policy.fingerprint
    assert verify_output(path, policy=policy, audit=audit.path, spark=spark).ok
    assert str(verify_output(path, policy=policy, spark=spark)).startswith("OK: ")
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.ok = False  # type: ignore[misc]
    meta = json.loads(
        spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").collect()[0]["userMetadata"]
    )
    assert meta["policy_fingerprint"] == policy.fingerprint
    assert {"query_fingerprint", "content_hash", "audit_head"} <= set(meta)


CHANGES = {
    "update": "UPDATE {t} SET n = n + 1 WHERE merchant_category_code = '5411'",
    "delete": "DELETE FROM {t} WHERE merchant_category_code = '5411'",
    "insert": "INSERT INTO {t} VALUES ('7995', 4, 0.5)",
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_single_row_change_fails_it(
    spark: Any, policy: CollaborationPolicy, sealed: tuple[str, AuditLog], change: str
) -> None:
    path, audit = sealed
    spark.sql(CHANGES[change].format(t=f"delta.`{path}`")).collect()
    outcome = verify_output(path, policy=policy, audit=audit, spark=spark)
    assert not outcome.ok
    assert "is not a cleanjoin write" in outcome.reasons[0]
    assert str(outcome).startswith("FAILED: ")


def test_rows_rewritten_under_a_copied_seal_fail_the_hash(
    spark: Any, policy: CollaborationPolicy, sealed: tuple[str, AuditLog]
) -> None:
    """The analyst overwrites the table with one value changed, copying the commit's seal."""
    path, audit = sealed
    seal = spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").collect()[0]["userMetadata"]
    rows = [(r["merchant_category_code"], r["n"] + 1, r["rate"])
            for r in spark.read.format("delta").load(path).collect()]
    forged = spark.createDataFrame(rows, spark.read.format("delta").load(path).schema)
    forged.write.format("delta").mode("overwrite").option("userMetadata", seal).save(path)
    outcome = verify_output(path, policy=policy, audit=audit, spark=spark)
    assert not outcome.ok
    assert "the rows do not have the content hash recorded when they were written" in outcome.reasons
    assert "the audit log holds no delta_write entry of this commit" in outcome.reasons


def test_a_wrong_policy_or_no_policy_fails(
    spark: Any, policy: CollaborationPolicy, sealed: tuple[str, AuditLog], tmp_path: Path
) -> None:
    path, _ = sealed
    other = "ab" * 32
    outcome = verify_output(path, policy=other, spark=spark)
    assert not outcome.ok
    assert outcome.reasons == (
        f"the write was made under policy {policy.fingerprint[:16]}…, not the approved "
        f"{other[:16]}…",
    )
    with pytest.raises(InvalidArgumentError, match=re.escape("'policy' in verify_output must be")):
        verify_output(path, policy="not-a-fingerprint", spark=spark)
    # a result without a policy, written without an audit log
    left = spark.read.format("delta").load(policy.parties["provider"].table)
    right = spark.read.format("delta").load(policy.parties["consumer"].table)
    free = (GuardedJoin(left, right, on="card_number_token").group_by("merchant_category_code")
            .agg(agg.count().alias("n")).min_cohort(3).run())
    loose = str(tmp_path / "loose")
    free.write_delta(loose, contract=OutputContract.from_result(free))
    outcome = verify_output(loose, policy=policy, audit=sealed[1], spark=spark)
    assert outcome.reasons == (
        "the write was not made under a collaboration policy",
        "the write recorded no audit head (it was written without an audit log)",
    )


def test_a_contract_can_require_the_policy(spark: Any, policy: CollaborationPolicy) -> None:
    result = _result(spark, policy)
    contract = OutputContract.from_result(result, policy="cd" * 32)
    review = contract.review(result)
    assert not review.approved
    assert review.reasons[-1] == (
        f"the contract requires policy {'cd' * 6}…; the result was released under policy "
        f"{policy.fingerprint[:12]}…"
    )
    assert OutputContract.from_json(contract.to_json()) == contract
    assert "policy" not in OutputContract.from_result(result).to_dict()


def test_a_table_name_and_the_cli_verb(
    spark_classic: Any, tmp_path: Path
) -> None:
    """By table name, and ``cleanjoin verify-output`` with its exit codes."""
    import uuid

    from cleanjoin.cli import main

    spark = spark_classic
    root = tmp_path / "named"
    provider, consumer = str(root / "provider"), str(root / "consumer")
    spark.createDataFrame([(tok(i), "5411") for i in range(4)],
                          "card_number_token string, merchant_category_code string",
                          ).write.format("delta").save(provider)
    spark.createDataFrame([(tok(i),) for i in range(4)], "card_number_token string",
                          ).write.format("delta").save(consumer)
    doc = {
        "format": "cleanjoin.policy/v1", "name": "verify-cli",
        "parties": {
            "provider": {"table": provider, "join_column": "card_number_token",
                         "dimensions": ["merchant_category_code"], "measures": {}},
            "consumer": {"table": consumer, "join_column": "card_number_token",
                         "dimensions": [], "measures": {}},
        },
        "privacy_unit": "card_number_token", "min_cohort": 2,
        "budget": {"ledger": str(root / "ledger"), "total_epsilon": 1.0, "total_delta": 1e-5},
    }
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(doc), encoding="utf-8")
    policy = CollaborationPolicy.load(policy_file)
    result = (GuardedJoin.from_policy(policy, spark=spark, fingerprint=policy.fingerprint)
              .group_by("merchant_category_code").agg(agg.count().alias("n")).min_cohort().run())
    name = f"spark_catalog.default.cj_verified_{uuid.uuid4().hex[:10]}"
    try:
        result.write_delta(name, contract=OutputContract.from_result(result))
        assert verify_output(name, policy=policy, spark=spark).ok
        assert main(["verify-output", name, "--policy", str(policy_file)]) == 0
        assert main(["verify-output", name, "--policy-fingerprint", policy.fingerprint]) == 0
        assert main(["verify-output", name, "--policy-fingerprint", "ef" * 32]) == 1
        spark.sql(f"DELETE FROM {name} WHERE n > 0").collect()
        assert not verify_output(name, policy=policy, spark=spark).ok
        assert main(["verify-output", name, "--policy", str(policy_file)]) == 1
        assert main(["verify-output", name, "--policy-fingerprint", "nothex"]) == 2
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {name}").collect()
