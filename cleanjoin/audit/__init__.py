"""A tamper-evident, hash-chained audit log stored as a Delta table.

Every cleanjoin action that matters (tokenize, guarded run, contract review, Delta write,
budget charge, revocation batch, purge) can append one entry to an :class:`AuditLog`.
Each entry carries the SHA-256 of the previous one, so editing, removing, inserting or
reordering any entry breaks the chain; the latest ``entry_hash`` (the *head*) is also
written into each output table's Delta commit metadata, so a partner holding an output
holds a checkpoint of the log. ``cleanjoin audit export`` writes the log as JSONL and
``cleanjoin audit verify`` checks it with the Python standard library only (the
algorithm is in ``docs/audit-format.md``).

Appends are safe under concurrent writers: an entry is added with one idempotent blind
append keyed on ``seq`` (a compare-and-append with Delta's ``txnAppId``/``txnVersion``), and
a writer that loses the race re-reads the head and retries, so the chain never forks and no
entry is lost.

Entries never hold keys, raw identifiers or tokens: parameters must be JSON values, and a
defensive scan refuses strings shaped like card numbers, emails, tokens or key material.

Example:
    >>> log = AuditLog("/tmp/audit")  # doctest: +SKIP
    >>> e = log.append("tokenize", {"rows": 10}, spark=spark)  # doctest: +SKIP
    >>> log.head(spark=spark) == e.entry_hash  # doctest: +SKIP
    True
    >>> check_parameters({"rows": 10, "pan": "4111 1111 1111 1111"})
    Traceback (most recent call last):
    ...
    cleanjoin.errors.InvalidArgumentError: AuditLog.append: parameters['pan'] looks like a card number (a Luhn-valid run of 12-19 digits); audit entries never hold raw identifiers, tokens or keys
"""

from __future__ import annotations

from cleanjoin._auditverify import GENESIS_HASH, VerifyResult, verify_file
from cleanjoin.audit._cli import register_cli as register_cli  # for ``cleanjoin.cli``
from cleanjoin.audit._identity import content_hash, delta_identity, head_from_commit
from cleanjoin.audit._log import ACTIONS, AuditEntry, AuditLog
from cleanjoin.audit._scan import check_parameters

__all__ = [
    "ACTIONS",
    "GENESIS_HASH",
    "AuditEntry",
    "AuditLog",
    "VerifyResult",
    "check_parameters",
    "content_hash",
    "delta_identity",
    "head_from_commit",
    "verify_file",
]
