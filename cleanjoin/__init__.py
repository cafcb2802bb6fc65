"""cleanjoin: privacy-safe joins between organizations (data clean rooms) on PySpark.

raw tables → :func:`tokenize` (normalize, HMAC-SHA256 with a shared :class:`Secret`) →
:class:`GuardedJoin` (minimum cohort in distinct people, allowed aggregates only, optional
differential privacy, :class:`BudgetLedger`) → :class:`OutputContract` review → Delta
output → :class:`AuditLog`.

Example:
    >>> import cleanjoin
    >>> cleanjoin.__version__
    '0.1.0'
    >>> cleanjoin.agg.mean("confirmed_fraud_flag", bounds=(0, 1)).alias("rate").output_name
    'rate'
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING

# refuse an old Python in one line, before a module that needs 3.10 fails in its own way
if sys.version_info < (3, 10):  # noqa: UP036 - ruff knows the floor; an old Python does not
    from cleanjoin._compat import check_python

    check_python()

from cleanjoin import agg, alignment, vectors
from cleanjoin.audit import AuditEntry, AuditLog, content_hash, delta_identity, verify_file
from cleanjoin.budget import BudgetLedger, Charge
from cleanjoin.consent import ConsentPolicy
from cleanjoin.contract import ColumnRole, ContractColumn, OutputContract, Review
from cleanjoin.dp import DPParams, DPReport, NoiseKind, dp_aggregate
from cleanjoin.errors import CleanJoinError, PolicyViolation
from cleanjoin.guard import GuardedJoin, GuardedResult, GuardReport
from cleanjoin.policy import CollaborationPolicy
from cleanjoin.revocation import (
    apply_revocations,
    load_revocations,
    purge,
    revocations_from_tokens,
    start_revocation_stream,
)
from cleanjoin.secret import Secret
from cleanjoin.session import ConnectServer, local_spark
from cleanjoin.spec import TokenSpec
from cleanjoin.tokens import TokenWrite, tokenize, write_tokens
from cleanjoin.verify import OutputVerification, verify_output

__version__ = "0.1.0"

__all__ = [
    "AuditEntry",
    "AuditLog",
    "BudgetLedger",
    "Charge",
    "CleanJoinError",
    "CollaborationPolicy",
    "ColumnRole",
    "ConnectServer",
    "ConsentPolicy",
    "ContractColumn",
    "DPParams",
    "DPReport",
    "GuardReport",
    "GuardedJoin",
    "GuardedResult",
    "NoiseKind",
    "OutputContract",
    "OutputVerification",
    "PolicyViolation",
    "Review",
    "Secret",
    "TokenSpec",
    "TokenWrite",
    "__version__",
    "agg",
    "alignment",
    "apply_revocations",
    "content_hash",
    "delta_identity",
    "dp_aggregate",
    "load_revocations",
    "local_spark",
    "purge",
    "revocations_from_tokens",
    "start_revocation_stream",
    "synth",
    "tokenize",
    "vectors",
    "verify_file",
    "verify_output",
    "write_tokens",
]

if TYPE_CHECKING:
    from cleanjoin import synth


def __getattr__(name: str) -> ModuleType:
    """Import :mod:`cleanjoin.synth` on first use, so that ``import cleanjoin`` does not."""
    if name == "synth":
        return importlib.import_module("cleanjoin.synth")
    raise AttributeError(f"module 'cleanjoin' has no attribute '{name}'")
