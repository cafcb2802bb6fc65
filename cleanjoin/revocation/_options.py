"""The options every call that applies revocations shares: the mode, the flag, the retries."""

from __future__ import annotations

from enum import Enum

from cleanjoin._choice import parse_choice
from cleanjoin.errors import InvalidArgumentError


class RevocationMode(Enum):
    """What :func:`apply_revocations` does with a Gold row whose token is revoked.

    ``RevocationMode.parse("delete")`` accepts the string alias.
    """

    DELETE = "delete"
    FLAG = "flag"

    @classmethod
    def parse(cls, value: RevocationMode | str) -> RevocationMode:
        """Accept a ``RevocationMode`` or its string alias, with a precise error otherwise.

        Example:
            >>> RevocationMode.parse("FLAG")
            <RevocationMode.FLAG: 'flag'>
            >>> RevocationMode.parse("drop")
            Traceback (most recent call last):
            ...
            cleanjoin.errors.InvalidArgumentError: Unknown revocation mode "drop". Available options are "delete", "flag".
        """
        return parse_choice(cls, value, what="revocation mode")


def check_options(
    token_column: str,
    mode: RevocationMode | str,
    flag_column: str,
    flag_value: object,
    max_attempts: int,
    backoff_seconds: float,
    call: str,
) -> RevocationMode:
    """Check the shared options of ``call``; return the parsed mode."""
    if not isinstance(token_column, str) or not token_column:
        raise InvalidArgumentError(f"'token_column' in {call} must be a non-empty column name")
    parsed = RevocationMode.parse(mode)
    if parsed is RevocationMode.FLAG:
        if not isinstance(flag_column, str) or not flag_column:
            raise InvalidArgumentError(f"'flag_column' in {call} must be a non-empty column name")
        if not isinstance(flag_value, str | bool | int):
            raise InvalidArgumentError(
                f"'flag_value' in {call} must be a str, bool or int, got {type(flag_value).__name__}"
            )
    if not isinstance(max_attempts, int) or max_attempts < 1:
        raise InvalidArgumentError(
            f"'max_attempts' in {call} must be an int >= 1, got {max_attempts}"
        )
    if not backoff_seconds >= 0:
        raise InvalidArgumentError(
            f"'backoff_seconds' in {call} must be >= 0, got {backoff_seconds}"
        )
    return parsed
