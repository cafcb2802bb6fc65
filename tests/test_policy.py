"""Tests of cleanjoin.policy: the collaboration policy document (no Spark)."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

import cleanjoin
from cleanjoin.errors import ConfigurationError
from cleanjoin.policy import POLICY_FORMAT, CollaborationPolicy, DominancePolicy

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fraud-consortium.policy.yaml"


def example() -> dict[str, Any]:
    """The issue's example policy as a dict (a fresh copy)."""
    return {
        "format": "cleanjoin.policy/v1",
        "name": "fraud-consortium",
        "version": 1,
        "parties": {
            "provider": {
                "table": "cleanroom_catalog.provider.transaction_signals",
                "join_column": "card_number_token",
                "dimensions": ["merchant_category_code", "cross_border_flag"],
                "measures": {
                    "confirmed_fraud_flag": {"aggregates": ["sum", "mean"], "bounds": [0, 1]},
                    "txn_count_1h": {"aggregates": ["mean"], "bounds": [0, 50]},
                },
                "consent": None,
                "revoked": None,
            },
            "consumer": {
                "table": "cleanroom_catalog.consumer.account_behavior",
                "join_column": "card_number_token",
                "dimensions": ["account_age_band"],
                "measures": {},
            },
        },
        "privacy_unit": "card_number_token",
        "min_cohort": 100,
        "dp": {"required": False, "max_epsilon": 1.0, "max_delta": 1.0e-6, "public_groups": []},
        "budget": {
            "ledger": "cleanroom_catalog.state.fraud_budget",
            "total_epsilon": 5.0,
            "total_delta": 1.0e-5,
        },
    }


def refused(document: dict[str, Any], path: str) -> ConfigurationError:
    with pytest.raises(ConfigurationError, match=re.escape(f"CollaborationPolicy: {path}: ")) as info:
        CollaborationPolicy.from_dict(document)
    return info.value


def test_the_example_file_is_the_issues_example_and_public() -> None:
    policy = CollaborationPolicy.load(EXAMPLE)
    assert policy.fingerprint == CollaborationPolicy.from_dict(example()).fingerprint
    assert cleanjoin.CollaborationPolicy is CollaborationPolicy
    assert cleanjoin.PolicyViolation is cleanjoin.errors.PolicyViolation
    provider = policy.party("provider")
    assert provider.dimensions == ("cross_border_flag", "merchant_category_code")
    assert provider.measures["txn_count_1h"].bounds == (0.0, 50.0)
    assert policy.dp.max_delta == 1e-6
    assert policy.budget is not None
    assert list(policy.parties) == ["provider", "consumer"]
    assert re.fullmatch(r"[0-9a-f]{64}", policy.fingerprint)


def test_yaml_and_json_round_trip_with_one_fingerprint(tmp_path: Path) -> None:
    policy = CollaborationPolicy.load(EXAMPLE)
    as_json = tmp_path / "p.json"
    as_json.write_text(policy.to_json(), encoding="utf-8")
    as_yml = tmp_path / "p.yml"
    as_yml.write_text(policy.to_yaml(), encoding="utf-8")
    for other in (
        CollaborationPolicy.load(as_json),
        CollaborationPolicy.load(str(as_yml)),
        CollaborationPolicy.from_yaml(policy.to_yaml()),
        CollaborationPolicy.from_json(policy.to_json(indent=None)),
        CollaborationPolicy.from_dict(json.loads(policy.to_json())),
    ):
        assert other.fingerprint == policy.fingerprint
        assert other.to_dict() == policy.to_dict()
        assert other == policy


def test_an_omitted_default_and_an_explicit_one_hash_the_same() -> None:
    short = example()
    del short["version"], short["dp"]["public_groups"], short["parties"]["provider"]["consent"]
    long = example()
    long.update(
        description=None, max_rows_per_key=10_000, dominance={"n": 2, "k": 0.85}, p_percent=10,
        refinement_guard=True, max_dimension_values=1000, outputs=None,
    )
    long["parties"]["consumer"].update(person_column=None, revoked=None, consent=None)
    long["parties"]["provider"]["measures"]["txn_count_1h"]["bounds"] = [0.0, 50.0]
    assert CollaborationPolicy.from_dict(short).fingerprint == CollaborationPolicy.from_dict(long).fingerprint
    # sets are sets: their order is no meaning
    shuffled = example()
    shuffled["parties"]["provider"]["dimensions"].reverse()
    shuffled["parties"]["provider"]["measures"]["confirmed_fraud_flag"]["aggregates"].reverse()
    assert CollaborationPolicy.from_dict(shuffled) == CollaborationPolicy.from_dict(example())


def _set(path: str, value: Any) -> dict[str, Any]:
    document = example()
    *parents, leaf = path.split(".")
    node = document
    for key in parents:
        node = node[key]
    node[leaf] = value
    return document


@pytest.mark.parametrize(
    "changed",
    [
        _set("min_cohort", 101),
        _set("version", 2),
        _set("name", "fraud-consortium-2"),
        _set("privacy_unit", "account_token"),
        _set("parties.provider.measures.txn_count_1h.bounds", [0, 51]),
        _set("parties.provider.measures.txn_count_1h.aggregates", ["mean", "sum"]),
        _set("parties.consumer.dimensions", ["account_age_band", "region"]),
        _set("parties.consumer.table", "/mnt/consumer/account_behavior"),
        _set("parties.consumer.person_column", "account_token"),
        _set("dp.required", True),
        _set("dp.max_epsilon", 0.5),
        _set("dp.public_groups", [{"merchant_category_code": "5411"}]),
        _set("budget.total_epsilon", 6.0),
        _set("budget.ledger", "cleanroom_catalog.state.other"),
        _set("dominance", None),
        _set("p_percent", None),
        _set("refinement_guard", False),
        _set("max_dimension_values", 999),
        _set("max_rows_per_key", 50),
        _set("outputs", ["a" * 64]),
        {**example(), "parties": dict(reversed(list(example()["parties"].items())))},
    ],
)
def test_a_change_of_meaning_changes_the_fingerprint(changed: dict[str, Any]) -> None:
    assert CollaborationPolicy.from_dict(changed).fingerprint != CollaborationPolicy.load(EXAMPLE).fingerprint


def test_a_changed_byte_of_the_file_changes_the_fingerprint_and_a_comment_does_not() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    base = CollaborationPolicy.from_yaml(text).fingerprint
    assert CollaborationPolicy.from_yaml(text.replace("min_cohort: 100", "min_cohort: 10")).fingerprint != base
    assert CollaborationPolicy.from_yaml(text.replace("[0, 50]", "[0, 5]")).fingerprint != base
    assert CollaborationPolicy.from_yaml(text.replace("1.0e-6", "2.0e-6")).fingerprint != base
    assert CollaborationPolicy.from_yaml(text.replace("# per release", "# each")).fingerprint == base
    # YAML 1.2 numbers: 1e-6 is a number, not a string
    assert CollaborationPolicy.from_yaml(text.replace("1.0e-6", "1e-6")).fingerprint == base


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        ("format", "cleanjoin.policy/v2", "format"),
        ("min_cohort", 0, "min_cohort"),
        ("min_cohort", True, "min_cohort"),
        ("min_cohort", None, "min_cohort"),
        ("parties.provider.measures.txn_count_1h.bounds", [5, 5], "parties.provider.measures.txn_count_1h.bounds"),
        ("parties.provider.measures.txn_count_1h.bounds", [0, float("inf")], "parties.provider.measures.txn_count_1h.bounds[1]"),
        ("parties.provider.measures.txn_count_1h.bounds", [0], "parties.provider.measures.txn_count_1h.bounds"),
        ("parties.provider.measures.txn_count_1h.bounds", None, "parties.provider.measures.txn_count_1h.bounds"),
        ("parties.provider.measures.txn_count_1h.aggregates", ["count"], "parties.provider.measures.txn_count_1h.aggregates[0]"),
        ("parties.provider.measures.txn_count_1h.aggregates", ["max"], "parties.provider.measures.txn_count_1h.aggregates[0]"),
        ("parties.provider.measures.txn_count_1h.aggregates", [], "parties.provider.measures.txn_count_1h.aggregates"),
        ("parties.provider.measures.card_number_token", {"aggregates": ["count_distinct"]}, "parties.provider.measures.card_number_token"),
        ("parties.provider.dimensions", ["email_token"], "parties.provider.dimensions"),
        ("parties.provider.table", "not a table!", "parties.provider.table"),
        ("parties.provider.table", None, "parties.provider.table"),
        ("parties.provider.join_column", "", "parties.provider.join_column"),
        ("parties.provider.revoked", 7, "parties.provider.revoked"),
        ("parties.provider.consent", {"consent_column": None}, "parties.provider.consent"),
        ("parties.provider.consent", {"region_column": "r", "allowed_regions": ["EU"],
                                      "agreements": {"table": "s.a"}}, "parties.provider.consent.allowed_regions"),
        ("dp.max_epsilon", 0, "dp.max_epsilon"),
        ("dp.max_epsilon", 6.0, "dp.max_epsilon"),
        ("dp.max_delta", 1.0, "dp.max_delta"),
        ("dp.max_delta", 1e-4, "dp.max_delta"),
        ("dp.required", "yes please", "dp.required"),
        ("dp.public_groups", [{}], "dp.public_groups[0]"),
        ("budget.total_epsilon", -1, "budget.total_epsilon"),
        ("budget.total_delta", 1, "budget.total_delta"),
        ("budget.ledger", None, "budget.ledger"),
        ("dominance", {"n": 0, "k": 0.5}, "dominance.n"),
        ("dominance", {"n": 2, "k": 1.5}, "dominance.k"),
        ("p_percent", 0, "p_percent"),
        ("refinement_guard", 1, "refinement_guard"),
        ("max_dimension_values", 0, "max_dimension_values"),
        ("outputs", ["not-a-fingerprint"], "outputs[0]"),
        ("version", 0, "version"),
    ],
)
def test_invalid_values_name_their_key_path(path: str, value: Any, where: str) -> None:
    refused(_set(path, value), where)


def test_unknown_keys_are_refused_at_every_level() -> None:
    error = refused({**example(), "min_cohrt": 5}, "the document")
    assert "['min_cohrt']" in str(error)
    refused(_set("parties.provider.colour", "red"), "parties.provider")
    refused(_set("parties.provider.measures.txn_count_1h.clamp", [0, 1]), "parties.provider.measures.txn_count_1h")
    refused(_set("dp.epsilon", 1.0), "dp")
    refused(_set("budget.spent", 0.0), "budget")
    refused(_set("dominance", {"n": 2, "k": 0.8, "m": 1}), "dominance")


def test_structure_errors() -> None:
    refused(_set("parties", {"provider": example()["parties"]["provider"]}), "parties")
    budgetless = example()
    del budgetless["budget"]
    CollaborationPolicy.from_dict(budgetless)  # no budget: allowed, DP releases are not
    budgetless["dp"]["required"] = True
    refused(budgetless, "budget")
    with pytest.raises(ConfigurationError, match=re.escape('unknown policy file suffix ".toml"')):
        CollaborationPolicy.load("policy.toml")
    with pytest.raises(ConfigurationError, match="given twice"):
        CollaborationPolicy.from_yaml("format: x\nformat: y\n")
    with pytest.raises(ConfigurationError, match="given twice"):
        CollaborationPolicy.from_json('{"format": "x", "format": "y"}')
    with pytest.raises(ConfigurationError, match=re.escape("not valid YAML (line 2)")):
        CollaborationPolicy.from_yaml("a: [1, 2\n")


def test_messages_never_repeat_a_value() -> None:
    secret = "sk_live 0123456789abcdef"
    for path in ("parties.provider.table", "budget.ledger", "name", "privacy_unit", "min_cohort"):
        document = _set(path, secret) if path != "privacy_unit" else _set(path, 12345)
        with pytest.raises(ConfigurationError) as info:
            CollaborationPolicy.from_dict(document)
        assert secret not in str(info.value)
        assert "12345" not in str(info.value)


def test_the_21_keys_have_defaults_and_can_be_switched_off() -> None:
    policy = CollaborationPolicy.from_dict(example())
    assert policy.dominance == DominancePolicy(n=2, k=0.85)
    assert (policy.p_percent, policy.refinement_guard, policy.max_dimension_values) == (10.0, True, 1000)
    assert policy.outputs is None
    assert policy.party("consumer").person_column is None
    off = CollaborationPolicy.from_dict({**example(), "dominance": None, "p_percent": None,
                                         "outputs": ["b" * 64, "a" * 64]})
    assert (off.dominance, off.p_percent, off.outputs) == (None, None, ("a" * 64, "b" * 64))


def test_consent_forms() -> None:
    document = _set("parties.provider.consent", {
        "region_column": "data_residency_region", "allowed_regions": ["UK", "EU"],
    })
    consent = CollaborationPolicy.from_dict(document).party("provider").consent
    assert consent is not None
    built = consent.to_consent_policy("left")
    assert built.consent_column == "sharing_consent_flag"  # ConsentPolicy's default rule
    assert built.allowed_regions == frozenset({"EU", "UK"})
    agreed = CollaborationPolicy.from_dict(_set("parties.provider.consent", {
        "consent_column": None, "agreements": {"table": "main.clean_room.agreements"},
    })).party("provider").consent
    assert agreed is not None
    assert agreed.agreements is not None
    assert agreed.region_column == "data_residency_region"
    assert agreed.agreements.status_column == "agreement_status"


def test_a_policy_is_immutable_and_validated_when_built_directly() -> None:
    policy = CollaborationPolicy.from_dict(example())
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.min_cohort = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy.parties["intruder"] = policy.party("provider")  # type: ignore[index]
    with pytest.raises(TypeError):
        policy.party("provider").measures["x"] = policy.party("provider").measures["txn_count_1h"]  # type: ignore[index]
    with pytest.raises(ConfigurationError, match=re.escape("CollaborationPolicy: min_cohort: ")):
        dataclasses.replace(policy, min_cohort=0)
    lowered = dataclasses.replace(policy, min_cohort=1)
    assert lowered.fingerprint != policy.fingerprint  # a copy is another policy
    original = example()
    CollaborationPolicy.from_dict(original)
    assert original == example()  # the input document is not changed
    assert POLICY_FORMAT == "cleanjoin.policy/v1"
    assert copy.deepcopy(policy.to_dict()) == policy.to_dict()
