"""The Luhn check (ISO/IEC 7812-1) of card numbers: the one home of its arithmetic.

Stdlib only; imports nothing from cleanjoin, so any module may use it.

Example:
    >>> luhn_ok("4111111111111111"), luhn_ok("4111111111111112")
    (True, False)
    >>> "411111111111111" + luhn_check_digit("411111111111111")
    '4111111111111111'
"""

from __future__ import annotations

__all__ = ["luhn_check_digit", "luhn_ok"]


def _luhn_sum(digits: str, *, double_first: bool) -> int:
    """Sum of the Luhn contributions of ``digits`` read right to left, every second one
    doubled (from the rightmost when ``double_first``, else from the second from the right).

    Each character counts as ``ord(ch) - 48``: only ASCII digits give meaningful values.
    """
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if (i % 2 == 1) != double_first:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total


def luhn_ok(digits: str) -> bool:
    """True when ``digits`` passes the Luhn check (its rightmost digit is the check digit).

    No length or character check: callers pass ASCII digits and check the length
    themselves. A non-digit counts as ``ord(ch) - 48``, and the empty string passes.

    Example:
        >>> luhn_ok("378282246310005"), luhn_ok("30569309025904"), luhn_ok("79927398710")
        (True, True, False)
        >>> luhn_ok("0004111111111111111")  # leading zeros add nothing to the sum
        True
        >>> luhn_ok("")
        True
    """
    return _luhn_sum(digits, double_first=False) % 10 == 0


def luhn_check_digit(partial: str) -> str:
    """The digit that makes ``partial + digit`` pass :func:`luhn_ok` (``partial``: ASCII digits).

    Example:
        >>> luhn_check_digit("7992739871")
        '3'
        >>> luhn_ok("3400000000000" + luhn_check_digit("3400000000000"))
        True
        >>> luhn_check_digit("")
        '0'
    """
    return str((10 - _luhn_sum(partial, double_first=True) % 10) % 10)
