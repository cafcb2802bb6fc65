"""Tests of GuardedJoin.from_policy: every rule of a collaboration policy, and attacks on
them by a curious analyst with the public API only (each test fails if the attack works)."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from cleanjoin import CollaborationPolicy, PolicyViolation, agg
from cleanjoin.budget import BudgetLedger
from cleanjoin.guard import GroupedJoin, GuardedJoin, ReadyJoin
from cleanjoin.revocation import revocations_from_tokens


def tok(i: int) -> str:
    """A fake 64-hex token for person ``i``."""
    return hashlib.sha256(f"policy-person-{i}".encode()).hexdigest()


# provider: MCC 5411 has people 0-4 (person 4 did not consent), MCC 7995 people 5-6;
# consumer: everyone 0-6, person 3 revoked. Floor: 3 distinct people.
PROVIDER = [
    (tok(i), "5411" if i < 5 else "7995", "N", i % 2, 10 * i,
     "CONSORTIUM_ELIGIBLE" if i != 4 else "WITHDRAWN")
    for i in range(7)
]
CONSUMER = [(tok(i), "1-2y" if i % 2 else "0-1y", f"acct-{i // 2}") for i in range(7)]
SECRETS = ["5411", "7995", "WITHDRAWN", "acct-", *(tok(i) for i in range(7))]


def document(tables: dict[str, str], **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": "cleanjoin.policy/v1",
        "name": "fraud-consortium-test",
        "parties": {
            "provider": {
                "table": tables["provider"],
                "join_column": "card_number_token",
                "dimensions": ["merchant_category_code", "cross_border_flag"],
                "measures": {
                    "confirmed_fraud_flag": {"aggregates": ["sum", "mean"], "bounds": [0, 1]},
                    "txn_count_1h": {"aggregates": ["mean"], "bounds": [0, 50]},
                },
                "consent": {"consent_column": "sharing_consent_flag",
                            "allowed_values": ["CONSORTIUM_ELIGIBLE"]},
                "revoked": tables["revoked"],  # both parties list it: the lists are united
            },
            "consumer": {
                "table": tables["consumer"],
                "join_column": "card_number_token",
                "dimensions": ["account_age_band"],
                "measures": {},
                "revoked": tables["revoked"],
            },
        },
        "privacy_unit": "card_number_token",
        "min_cohort": 3,
        "dp": {"required": False, "max_epsilon": 1.0, "max_delta": 1e-6,
               "public_groups": [{"merchant_category_code": "5411"},
                                 {"merchant_category_code": "7995"}]},
        "budget": {"ledger": tables["ledger"], "total_epsilon": 1.5, "total_delta": 1e-5},
        # one fraud among three people is dominated: the dominance and p % rules have their
        # own tests (tests/test_disclosure.py); here they are off
        "dominance": None,
        "p_percent": None,
    }
    doc.update(changes)
    return doc


@pytest.fixture(scope="module")
def tables(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("policy")
    paths = {name: str(root / name) for name in ("provider", "consumer", "revoked", "ledger")}
    provider = spark.createDataFrame(
        PROVIDER,
        "card_number_token string, merchant_category_code string, cross_border_flag string, "
        "confirmed_fraud_flag int, txn_count_1h int, sharing_consent_flag string",
    )
    consumer = spark.createDataFrame(
        CONSUMER, "card_number_token string, account_age_band string, account_ref string"
    )
    revoked = revocations_from_tokens(
        consumer.where(consumer.card_number_token == tok(3)),
        token_column="card_number_token", reason_code="OPT_OUT", source="test",
    )
    for name, df in (("provider", provider), ("consumer", consumer), ("revoked", revoked)):
        df.write.format("delta").save(paths[name])
    return paths


@pytest.fixture(scope="module")
def policy(tables: dict[str, str]) -> CollaborationPolicy:
    return CollaborationPolicy.from_dict(document(tables))


@pytest.fixture(scope="module")
def join(spark: Any, policy: CollaborationPolicy) -> GuardedJoin:
    return GuardedJoin.from_policy(policy, spark=spark, fingerprint=policy.fingerprint)


def refused(rule: str, argument: str) -> Any:
    return pytest.raises(PolicyViolation, match=re.escape(f"rule {rule})"))


def check(info: pytest.ExceptionInfo[PolicyViolation], rule: str, argument: str) -> None:
    error = info.value
    assert (error.rule, error.argument) == (rule, argument)
    assert not [s for s in SECRETS if s in str(error)], str(error)


def by_mcc(join: GuardedJoin) -> GroupedJoin:
    return join.group_by("merchant_category_code")


# --------------------------------------------------------------------------- end to end


def test_a_run_under_a_policy_carries_its_fingerprint(join: GuardedJoin, policy: CollaborationPolicy) -> None:
    assert join.policy is policy
    aggregated = by_mcc(join).agg(agg.count().alias("n"), agg.mean("confirmed_fraud_flag").alias("rate"))
    assert not hasattr(aggregated, "run")  # the builder stays staged under a policy
    result = aggregated.min_cohort().run()
    # consent removes person 4 and the revocation person 3: 5411 keeps 3 people, 7995 has 2
    rows = {r["merchant_category_code"]: (r["n"], r["rate"]) for r in result.df.collect()}
    assert rows == {"5411": (3, pytest.approx(1 / 3))}
    report = result.report
    assert (result.policy, report.policy) == (policy.fingerprint, policy.fingerprint)
    assert report.min_cohort == 3  # min_cohort() without n: the policy's floor
    direct = ReadyJoin(join, ("merchant_category_code",), (agg.count(),))  # no threshold given
    assert direct.threshold == 3
    assert report.aggregates[1]["bounds"] == [0.0, 1.0]  # the owner's bounds
    assert report.max_rows_per_key == policy.max_rows_per_key
    assert report.rows_excluded_by_consent == {"left": 1}
    assert report.revoked_tokens_applied == 1  # one token, on both parties' lists
    ready = by_mcc(join).agg(agg.count()).min_cohort(5)  # asking for more is fine
    assert ready.describe()["policy_fingerprint"] == policy.fingerprint
    assert ready.to_query().policy == policy.fingerprint


def test_a_dp_run_charges_the_policys_ledger_and_reports_no_exact_counts(
    join: GuardedJoin, policy: CollaborationPolicy, tables: dict[str, str], spark: Any
) -> None:
    groups: list[Any] = [{"merchant_category_code": "5411"}, ("7995",)]  # dicts or tuples
    query = by_mcc(join).agg(agg.count().alias("n")).min_cohort(3).with_dp(
        epsilon=1.0, public_groups=groups
    )
    result = query.run(release_id="weekly-1")  # no budget= needed
    report = result.report
    assert sorted(r["merchant_category_code"] for r in result.df.collect()) == ["5411", "7995"]
    assert result.policy == policy.fingerprint
    assert report.budget_charged == {"epsilon": 1.0, "delta": 0.0}
    assert (report.rows_excluded_by_consent, report.rows_excluded_by_revocation) == (None, None)
    assert (report.rows_without_join_key, report.revoked_tokens_applied) == (None, None)
    ledger = BudgetLedger(tables["ledger"], collaboration=policy.name, total_epsilon=1.5,
                          total_delta=1e-5, spark=spark)
    assert ledger.remaining()[0] == pytest.approx(0.5)
    again = query.run(budget=ledger, release_id="weekly-1")  # the policy's own ledger: a replay
    assert again.report.replayed
    assert ledger.remaining()[0] == pytest.approx(0.5)


def test_without_a_policy_nothing_changes(spark: Any, tables: dict[str, str]) -> None:
    left = spark.read.format("delta").load(tables["provider"])
    right = spark.read.format("delta").load(tables["consumer"])
    plain = GuardedJoin(left, right, on="card_number_token")
    assert plain.policy is None
    ready = plain.group_by("sharing_consent_flag").agg(agg.sum("txn_count_1h")).min_cohort(1)
    assert "policy" not in ready.describe()
    assert ready.run().policy is None


# --------------------------------------------------------------------------- the rules


def test_the_fingerprint_must_be_the_approved_one(spark: Any, policy: CollaborationPolicy) -> None:
    with pytest.raises(PolicyViolation) as info:
        GuardedJoin.from_policy(policy, spark=spark, fingerprint="0" * 64)
    check(info, "fingerprint", "fingerprint")
    changed = CollaborationPolicy.from_dict({**policy.to_dict(), "min_cohort": 1})
    with pytest.raises(PolicyViolation) as info:  # an edited policy with the old approval
        GuardedJoin.from_policy(changed, spark=spark, fingerprint=policy.fingerprint)
    check(info, "fingerprint", "fingerprint")


def test_group_by_only_allowed_dimensions_of_the_owner(join: GuardedJoin) -> None:
    join.group_by("merchant_category_code", "account_age_band")  # both allowed
    with pytest.raises(PolicyViolation) as info:
        join.group_by("sharing_consent_flag")
    check(info, "parties.provider.dimensions", "group_by")
    with pytest.raises(PolicyViolation) as info:
        join.group_by("account_ref")
    check(info, "parties.consumer.dimensions", "group_by")


def test_only_allowed_measure_aggregate_pairs(join: GuardedJoin) -> None:
    grouped = by_mcc(join)
    grouped.agg(agg.count(), agg.sum("confirmed_fraud_flag"), agg.mean("txn_count_1h"))
    for aggregate, rule in (
        (agg.sum("txn_count_1h"), "parties.provider.measures.txn_count_1h.aggregates"),
        (agg.count_distinct("confirmed_fraud_flag"), "parties.provider.measures.confirmed_fraud_flag.aggregates"),
        (agg.variance("cross_border_flag"), "parties.provider.measures"),
        (agg.count_distinct("account_age_band"), "parties.consumer.measures"),
    ):
        with pytest.raises(PolicyViolation) as info:
            grouped.agg(agg.count(), aggregate)
        check(info, rule, "agg")


def test_bounds_are_the_owners_or_tighter(join: GuardedJoin) -> None:
    grouped = by_mcc(join)
    tighter = grouped.agg(agg.mean("txn_count_1h", bounds=(5, 20)))
    assert tighter.aggregates[0].bounds == (5, 20)
    assert grouped.agg(agg.mean("txn_count_1h")).aggregates[0].bounds == (0.0, 50.0)
    for bounds in ((0, 51), (-1, 50), (-1e9, 1e9)):
        with pytest.raises(PolicyViolation) as info:
            grouped.agg(agg.mean("txn_count_1h", bounds=bounds))
        check(info, "parties.provider.measures.txn_count_1h.bounds", "bounds")


def test_min_cohort_privacy_unit_and_dp_ceilings(join: GuardedJoin) -> None:
    aggregated = by_mcc(join).agg(agg.count())
    for attempt, rule, argument in (
        (lambda: aggregated.min_cohort(2), "min_cohort", "min_cohort"),
        (lambda: aggregated.min_cohort(5).min_cohort(1), "min_cohort", "min_cohort"),
        (lambda: aggregated.privacy_unit("account_ref"), "privacy_unit", "privacy_unit"),
        (lambda: aggregated.with_dp(epsilon=1.5), "dp.max_epsilon", "epsilon"),
        (lambda: aggregated.with_dp(epsilon=0.5, delta=1e-3), "dp.max_delta", "delta"),
    ):
        with pytest.raises(PolicyViolation) as info:
            attempt()
        check(info, rule, argument)
    aggregated.privacy_unit("card_number_token").with_dp(epsilon=1.0, delta=1e-6)  # at the ceilings


def test_dp_required_budget_and_release_id(join: GuardedJoin, spark: Any, tables: dict[str, str]) -> None:
    required = CollaborationPolicy.from_dict(
        document(tables, dp={"required": True, "max_epsilon": 1.0, "max_delta": 1e-6})
    )
    strict = GuardedJoin.from_policy(required, spark=spark, fingerprint=required.fingerprint)
    with pytest.raises(PolicyViolation) as info:
        by_mcc(strict).agg(agg.count()).min_cohort(3).run()
    check(info, "dp.required", "with_dp")
    with pytest.raises(PolicyViolation) as info:
        by_mcc(join).agg(agg.count()).with_dp(epsilon=0.5).min_cohort().run()
    check(info, "budget", "release_id")


# --------------------------------------------------------------------------- attacks


def test_attack_min_cohort_one(join: GuardedJoin) -> None:
    aggregated = by_mcc(join).agg(agg.count())
    with pytest.raises(PolicyViolation) as info:
        aggregated.min_cohort(1)
    check(info, "min_cohort", "min_cohort")
    with pytest.raises(PolicyViolation) as info:  # the stage built by hand
        ReadyJoin(join, ("merchant_category_code",), (agg.count(),), threshold=1)
    check(info, "min_cohort", "min_cohort")


def test_attack_wider_bounds_and_other_columns(join: GuardedJoin) -> None:
    grouped = by_mcc(join)
    with pytest.raises(PolicyViolation) as info:
        grouped.agg(agg.sum("confirmed_fraud_flag", bounds=(0, 1e6)))
    check(info, "parties.provider.measures.confirmed_fraud_flag.bounds", "bounds")
    with pytest.raises(PolicyViolation) as info:  # an aggregate on a column nobody allowed
        grouped.agg(agg.mean("sharing_consent_flag", bounds=(0, 1)))
    check(info, "parties.provider.measures", "agg")
    with pytest.raises(PolicyViolation) as info:  # grouping on a column nobody allowed
        join.group_by("account_ref", "merchant_category_code")
    check(info, "parties.consumer.dimensions", "group_by")


def test_attack_a_different_privacy_unit(join: GuardedJoin) -> None:
    ready = by_mcc(join).agg(agg.count()).min_cohort(3)
    with pytest.raises(PolicyViolation) as info:
        ready.privacy_unit("account_ref")
    check(info, "privacy_unit", "privacy_unit")


def test_attack_huge_epsilon_and_smuggled_public_groups(join: GuardedJoin, spark: Any) -> None:
    ready = by_mcc(join).agg(agg.count()).min_cohort(3)
    with pytest.raises(PolicyViolation) as info:
        ready.with_dp(epsilon=1e9)
    check(info, "dp.max_epsilon", "epsilon")
    groups = spark.createDataFrame([("5411",), ("6011",)], "merchant_category_code string")
    for public_groups in (groups, [("5411",), ("6011",)], [{"merchant_category_code": 5411}],
                          [{"merchant_category_code": "5411", "cross_border_flag": "N"}]):
        with pytest.raises(PolicyViolation) as info:
            ready.with_dp(epsilon=0.5, public_groups=public_groups)
        check(info, "dp.public_groups", "public_groups")


def test_attack_a_fresh_ledger_or_collaboration_name(
    join: GuardedJoin, tables: dict[str, str], tmp_path: Path, spark: Any
) -> None:
    ready = by_mcc(join).agg(agg.count()).min_cohort(3).with_dp(epsilon=0.5)
    for ledger in (
        BudgetLedger(str(tmp_path / "fresh"), collaboration="fraud-consortium-test",
                     total_epsilon=1.5, total_delta=1e-5, spark=spark),
        BudgetLedger(tables["ledger"], collaboration="another-name", total_epsilon=1.5,
                     total_delta=1e-5, spark=spark),
        BudgetLedger(tables["ledger"], collaboration="fraud-consortium-test",
                     total_epsilon=100.0, total_delta=1e-5, spark=spark),
    ):
        with pytest.raises(PolicyViolation) as info:
            ready.run(budget=ledger, release_id="fresh-1")
        check(info, "budget.ledger", "budget")
    with pytest.raises(PolicyViolation) as info:  # DP without a ledger: no release id
        ready.run()
    check(info, "budget", "release_id")


def test_attack_dataclasses_replace_cannot_drop_the_policy(join: GuardedJoin) -> None:
    ready = by_mcc(join).agg(agg.count()).min_cohort(3)
    attempts: list[tuple[Any, str, str]] = [
        (lambda: dataclasses.replace(ready, threshold=1), "min_cohort", "min_cohort"),
        (lambda: dataclasses.replace(join, max_rows_per_key=None), "max_rows_per_key",
         "max_rows_per_key"),
        (lambda: dataclasses.replace(join, consent=()), "parties.consent", "consent"),
        (lambda: dataclasses.replace(join, revoked=None), "parties.revoked", "revoked"),
        (lambda: dataclasses.replace(join, _binding=None), "policy", "left"),
        (lambda: GuardedJoin(join.left, join.right, on="card_number_token"), "policy", "left"),
        (lambda: dataclasses.replace(ready, aggregates=(agg.mean("txn_count_1h", bounds=(0, 1e6)),)),
         "parties.provider.measures.txn_count_1h.bounds", "bounds"),
        (lambda: dataclasses.replace(ready, aggregates=(agg.mean("txn_count_1h"),)),
         "parties.provider.measures.txn_count_1h.bounds", "bounds"),
        (lambda: dataclasses.replace(ready, unit="account_ref"), "privacy_unit", "privacy_unit"),
        (lambda: dataclasses.replace(ready, group_columns=("account_ref",)),
         "parties.consumer.dimensions", "group_by"),
    ]
    for attempt, rule, argument in attempts:
        with pytest.raises(PolicyViolation) as info:
            attempt()
        check(info, rule, argument)
    # the policy cannot be moved onto other inputs either
    other = join.left.where(join.left.merchant_category_code == "7995")
    swaps: list[dict[str, Any]] = [{"left": other}, {"left": join.right, "right": join.left}]
    for changes in swaps:
        with pytest.raises(PolicyViolation) as info:
            dataclasses.replace(join, **changes)
        check(info, "parties.table", "left")
