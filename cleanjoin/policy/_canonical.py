"""The canonical form of a collaboration policy and its fingerprint.

The canonical form is the document with every default filled in, sets sorted
(dimensions, aggregates, regions, public groups, outputs) and numbers typed (bounds, ε
and δ as floats). Its JSON — keys sorted except the order of ``parties``, which says
which party is the join's left side, no spaces, UTF-8 — is hashed with SHA-256.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from cleanjoin.policy._load import POLICY_FORMAT
from cleanjoin.policy._model import MeasurePolicy, PartyConsent, PartyPolicy

if TYPE_CHECKING:
    from cleanjoin.policy._policy import CollaborationPolicy

__all__ = ["canonical_json", "fingerprint_of", "to_dict"]


def _measure(m: MeasurePolicy) -> dict[str, Any]:
    return {"aggregates": list(m.aggregates), "bounds": None if m.bounds is None else list(m.bounds)}


def _consent(c: PartyConsent | None) -> dict[str, Any] | None:
    if c is None:
        return None
    a = c.agreements
    return {
        "consent_column": c.consent_column,
        "allowed_values": list(c.allowed_values),
        "region_column": c.region_column,
        "allowed_regions": None if c.allowed_regions is None else list(c.allowed_regions),
        "agreements": None if a is None else {
            "table": a.table,
            "region_column": a.region_column,
            "status_column": a.status_column,
            "active_value": a.active_value,
        },
    }


def _party(p: PartyPolicy) -> dict[str, Any]:
    return {
        "table": p.table,
        "join_column": p.join_column,
        "dimensions": list(p.dimensions),
        "measures": {name: _measure(m) for name, m in sorted(p.measures.items())},
        "consent": _consent(p.consent),
        "revoked": p.revoked,
        "person_column": p.person_column,
    }


def to_dict(policy: CollaborationPolicy) -> dict[str, Any]:
    """The canonical document of ``policy`` (every default filled in)."""
    dp = policy.dp
    budget = policy.budget
    dominance = policy.dominance
    return {
        "format": POLICY_FORMAT,
        "name": policy.name,
        "version": policy.version,
        "description": policy.description,
        "parties": {name: _party(p) for name, p in policy.parties.items()},
        "privacy_unit": policy.privacy_unit,
        "min_cohort": policy.min_cohort,
        "max_rows_per_key": policy.max_rows_per_key,
        "dp": {
            "required": dp.required,
            "max_epsilon": dp.max_epsilon,
            "max_delta": dp.max_delta,
            "public_groups": [dict(g) for g in dp.public_groups],
        },
        "budget": None if budget is None else {
            "ledger": budget.ledger,
            "total_epsilon": budget.total_epsilon,
            "total_delta": budget.total_delta,
        },
        "dominance": None if dominance is None else {"n": dominance.n, "k": dominance.k},
        "p_percent": policy.p_percent,
        "refinement_guard": policy.refinement_guard,
        "max_dimension_values": policy.max_dimension_values,
        "outputs": None if policy.outputs is None else list(policy.outputs),
    }


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def canonical_json(document: dict[str, Any]) -> str:
    """The canonical JSON of a canonical document: keys sorted, except the parties' order."""
    ordered = _sorted(document)
    ordered["parties"] = {
        name: _sorted(party) for name, party in document["parties"].items()
    }
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def fingerprint_of(document: dict[str, Any]) -> str:
    """SHA-256 (hex) of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()
