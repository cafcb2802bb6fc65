"""Revocations: opt-outs leave clean-room compute on the next run, exactly once.

A *revocation list* is a Delta table (or DataFrame) of revoked tokens with the columns
``token`` (64 lowercase hex characters, a cleanjoin token), ``revoked_at`` (timestamp),
``reason_code`` and ``source`` (strings). It is used in three places:

* **Query time** — ``GuardedJoin(..., revoked=revocations)`` anti-joins the tokens
  returned by :func:`load_revocations`, so a revocation takes effect on the next run even
  before any table is rewritten.
* **Gold table maintenance** — :func:`apply_revocations` MERGEs a batch into a Delta Gold
  table: it deletes the matching rows (or flips a consent flag), after validating and
  de-duplicating the batch, retrying when a concurrent writer conflicts.
* **Streaming** — :func:`start_revocation_stream` applies each micro-batch of any
  streaming source with Delta's idempotent-write mechanism (``txnAppId`` / ``txnVersion``
  keyed by the streaming query's id and the batch id), so a batch replayed after a crash
  is applied once.

:func:`purge` then removes revoked rows from old table versions too (``REORG ... APPLY
(PURGE)`` where deletion vectors are on, then ``VACUUM``); see ``docs/revocation.md`` for
the trade-off against reproducing past releases.

Every batch and every purge appends an audit entry (``"revocation_batch"``, ``"purge"``)
when an audit log is given. No error, log line, result or audit entry contains a token.

Example:
    >>> from cleanjoin.revocation import REVOCATION_COLUMNS, is_token
    >>> REVOCATION_COLUMNS
    ('token', 'revoked_at', 'reason_code', 'source')
    >>> is_token("ab" * 32), is_token("AB" * 32)
    (True, False)
    >>> revoked = revocations_from_tokens(optouts, token_column="card_number_token",  # doctest: +SKIP
    ...                                   reason_code="OPT_OUT", source="issuer-portal")
    >>> apply_revocations("/gold/fraud_signals", revoked,  # doctest: +SKIP
    ...                   token_column="card_number_token").rows_deleted
    3
"""

from __future__ import annotations

from cleanjoin.revocation._list import (
    REVOCATION_COLUMNS,
    TOKEN_PATTERN,
    is_token,
    load_revocations,
    revocation_schema,
    revocations_from_tokens,
)
from cleanjoin.revocation._merge import RevocationResult, apply_revocations
from cleanjoin.revocation._options import RevocationMode
from cleanjoin.revocation._purge import PurgeResult, purge
from cleanjoin.revocation._stream import RevocationBatchWriter, start_revocation_stream

__all__ = [
    "REVOCATION_COLUMNS",
    "TOKEN_PATTERN",
    "PurgeResult",
    "RevocationBatchWriter",
    "RevocationMode",
    "RevocationResult",
    "apply_revocations",
    "is_token",
    "load_revocations",
    "purge",
    "revocation_schema",
    "revocations_from_tokens",
    "start_revocation_stream",
]
