"""Collaboration policies: the rules come from the data owners, not the notebook.

A :class:`CollaborationPolicy` is a versioned YAML/JSON document (``format:
cleanjoin.policy/v1``) that both organizations approve by its :attr:`~CollaborationPolicy.
fingerprint`. :meth:`cleanjoin.guard.GuardedJoin.from_policy` reads the inputs it names
and binds every later stage of the query to its rules (allowed dimensions and measures,
owner-fixed bounds, the minimum-cohort floor, the privacy unit, DP ceilings, public
groups and the budget ledger); a query that breaks one raises
:class:`~cleanjoin.errors.PolicyViolation`. The format and the threat model:
``docs/policy.md``.

Example:
    >>> from cleanjoin.policy import CollaborationPolicy
    >>> policy = CollaborationPolicy.from_yaml('''
    ... format: cleanjoin.policy/v1
    ... name: demo
    ... parties:
    ...   provider: {table: s.provider, join_column: t, dimensions: [mcc]}
    ...   consumer: {table: s.consumer, join_column: t}
    ... privacy_unit: t
    ... min_cohort: 100
    ... ''')
    >>> policy.fingerprint == CollaborationPolicy.from_json(policy.to_json()).fingerprint
    True
"""

from __future__ import annotations

from cleanjoin.policy._load import POLICY_FORMAT
from cleanjoin.policy._model import (
    AgreementsPolicy,
    BudgetPolicy,
    DominancePolicy,
    DPPolicy,
    MeasurePolicy,
    PartyConsent,
    PartyPolicy,
)
from cleanjoin.policy._policy import CollaborationPolicy

__all__ = [
    "POLICY_FORMAT",
    "AgreementsPolicy",
    "BudgetPolicy",
    "CollaborationPolicy",
    "DPPolicy",
    "DominancePolicy",
    "MeasurePolicy",
    "PartyConsent",
    "PartyPolicy",
]
