"""The one error hierarchy of cleanjoin.

Every error cleanjoin raises derives from :class:`CleanJoinError` and also from the
built-in exception that matches its meaning, so ``except ValueError`` keeps working.

Messages name the call, the argument, and what was expected versus what was found.
They never contain a key, a raw identifier value or a token: column names, counts,
versions and privacy parameters (ε, δ) are the only data they carry.

Example:
    >>> from cleanjoin.errors import CleanJoinError, WeakKeyError
    >>> issubclass(WeakKeyError, ValueError) and issubclass(WeakKeyError, CleanJoinError)
    True
"""

from __future__ import annotations

__all__ = [
    "AuditChainError",
    "BudgetExceeded",
    "CleanJoinError",
    "ColumnNotFoundError",
    "ConfigurationError",
    "ContractViolation",
    "InternalError",
    "InvalidArgumentError",
    "JoinExplosionError",
    "LedgerConflictError",
    "LedgerTampered",
    "MissingSecretError",
    "NotAllowedError",
    "PolicyViolation",
    "RevocationInputError",
    "SchemaMismatchError",
    "SparkEnvironmentError",
    "TokenSpecError",
    "UnsupportedColumnTypeError",
    "WeakKeyError",
]


class CleanJoinError(Exception):
    """Base class of every error raised by cleanjoin."""


class InvalidArgumentError(CleanJoinError, ValueError):
    """An argument has a value that the call does not accept."""


class ConfigurationError(CleanJoinError, ValueError):
    """A combination of options cannot work together."""


class SparkEnvironmentError(CleanJoinError, RuntimeError):
    """The machine lacks something cleanjoin needs (Java, Spark, a Databricks runtime) or
    has an unsupported version of it (Python, pyspark)."""


class ColumnNotFoundError(CleanJoinError, KeyError):
    """A named column is not in the DataFrame."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else ""


class UnsupportedColumnTypeError(CleanJoinError, TypeError):
    """A column has a Spark type the call cannot use safely (e.g. a numeric card number)."""


class SchemaMismatchError(CleanJoinError, ValueError):
    """A DataFrame does not have the columns or types a call requires."""


class WeakKeyError(CleanJoinError, ValueError):
    """A secret key is shorter than the minimum length."""


class MissingSecretError(CleanJoinError, LookupError):
    """A secret could not be found where it was said to be."""


class TokenSpecError(CleanJoinError, ValueError):
    """A token specification is unknown, malformed, or of an unsupported version."""


class NotAllowedError(CleanJoinError, ValueError):
    """A query asks for something a clean room does not release (min, max, a token column, ...)."""


class JoinExplosionError(CleanJoinError, RuntimeError):
    """A join key has more rows on one side than the configured maximum."""


class LedgerConflictError(CleanJoinError, RuntimeError):
    """Too many concurrent budget charges in a row: nothing was charged; try again."""


class ContractViolation(CleanJoinError, ValueError):  # noqa: N818 - public name from the issue
    """A result was rejected by its output contract and so was not written."""

    def __init__(self, message: str, reasons: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.reasons = reasons


class BudgetExceeded(CleanJoinError, RuntimeError):  # noqa: N818 - public name from the issue
    """A release would spend more privacy budget than the collaboration has left."""


class PolicyViolation(CleanJoinError, ValueError):  # noqa: N818 - public name from the issue
    """A query breaks a rule of its collaboration policy (the data owners' rules).

    The message names the rule and the argument, never a value of the data.

    Attributes:
        rule: the policy rule broken (a policy key such as ``"min_cohort"``).
        argument: the builder argument or call that broke it (such as ``"min_cohort"``).
    """

    def __init__(self, message: str, *, rule: str, argument: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.argument = argument


class LedgerTampered(CleanJoinError, RuntimeError):  # noqa: N818 - public name from the issue
    """The budget ledger's hash chain, or its anchor, does not verify: a charge was deleted,
    edited, reordered or truncated outside cleanjoin. Nothing is spent on a tampered ledger."""


class RevocationInputError(CleanJoinError, ValueError):
    """A revocation batch has the wrong schema or null tokens."""


class AuditChainError(CleanJoinError, ValueError):
    """An audit log or export fails verification."""

    def __init__(self, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq


class InternalError(CleanJoinError, RuntimeError):
    """A bug in cleanjoin itself: an invariant that should always hold did not.

    The message says so itself, so a notebook user who sees it knows to report it.

    Example:
        >>> str(InternalError("MERGE returned no metrics row"))
        'MERGE returned no metrics row (an internal error: a bug in cleanjoin, not in your query; please report it to the cleanjoin maintainers with this message and the cleanjoin and pyspark versions)'
    """

    SUFFIX = (
        " (an internal error: a bug in cleanjoin, not in your query; please report it to the "
        "cleanjoin maintainers with this message and the cleanjoin and pyspark versions)"
    )

    def __init__(self, message: str) -> None:
        super().__init__(message + self.SUFFIX)
