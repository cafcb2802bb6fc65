"""Output contracts: a pre-approved description of what a released result may look like.

An :class:`OutputContract` lists the output columns a result may have (name, Spark type
and role: ``"dimension"``, ``"measure"``, ``"cohort_count"``, or ``"grouping"`` for the
margin marker ``grouping_id`` of a release with margins), the minimum cohort the
run must have enforced, and whether differential privacy is required. It is stored as
canonical JSON and identified by a SHA-256 :meth:`~OutputContract.fingerprint`.

:meth:`OutputContract.review` checks a guarded result against the contract and returns
a :class:`Review`: approved, or rejected with *every* reason. Reasons name columns,
types, counts and thresholds; they never contain a row value. A compliant result is
auto-approved; ``GuardedResult.write_delta`` raises
:class:`~cleanjoin.errors.ContractViolation` for a rejected one and writes nothing.

Checks (one Spark job for all value checks, over the small released result):

* a column the contract does not allow, a contract column that is missing, a wrong type;
* a ``cohort_count`` column with values below the contract's ``min_cohort`` (or null);
* a string column with values that look like tokens (64 hexadecimal characters, or 43
  URL-safe base64 characters) or card numbers (12-19 digits, spaces/dashes allowed,
  Luhn-valid);
* a run whose minimum cohort is lower than the contract's;
* a contract that requires differential privacy and a run that did not use it.

Contracts are stored as JSON (:meth:`~OutputContract.to_json`) or YAML
(:meth:`~OutputContract.to_yaml`, safe loading only, so a hand-reviewed file may carry
comments); both describe the same dict, so a contract has one fingerprint whichever file
it was read from. :meth:`~OutputContract.load` and :meth:`~OutputContract.save` pick the
format by the file's suffix.

Example:
    >>> from cleanjoin.contract import ContractColumn, OutputContract
    >>> contract = OutputContract(
    ...     columns=(
    ...         ContractColumn("merchant_category_code", "string", "dimension"),
    ...         ContractColumn("record_count", "bigint", "cohort_count"),
    ...         ContractColumn("outcome_rate", "double", "measure"),
    ...     ),
    ...     min_cohort=100,
    ...     name="fraud-segments",
    ...     version="1",
    ... )
    >>> OutputContract.from_json(contract.to_json()) == contract
    True
    >>> OutputContract.from_yaml(contract.to_yaml()).fingerprint() == contract.fingerprint()
    True
    >>> len(contract.fingerprint())
    64
    >>> contract.review(result).approved  # doctest: +SKIP
    True
"""

from __future__ import annotations

from cleanjoin.contract._cli import register_cli as register_cli  # for cleanjoin.cli
from cleanjoin.contract._columns import (
    COHORT_COUNT_TYPES,
    GROUPING_COLUMN,
    ColumnRole,
    ContractColumn,
)
from cleanjoin.contract._model import CONTRACT_FORMAT, OutputContract
from cleanjoin.contract._review import Review
from cleanjoin.contract._scan import B64_TOKEN_PATTERN as B64_TOKEN_PATTERN
from cleanjoin.contract._scan import CARD_PATTERN as CARD_PATTERN
from cleanjoin.contract._scan import HEX_TOKEN_PATTERN as HEX_TOKEN_PATTERN

__all__ = [
    "COHORT_COUNT_TYPES",
    "CONTRACT_FORMAT",
    "GROUPING_COLUMN",
    "ColumnRole",
    "ContractColumn",
    "OutputContract",
    "Review",
]
