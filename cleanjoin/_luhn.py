"""The Luhn check digit of payment card numbers (ISO/IEC 7812), written once."""

from __future__ import annotations

__all__ = ["luhn_check_digit", "luhn_ok"]


def luhn_ok(digits: str) -> bool:
    """True when the ASCII digit string ``digits`` passes the Luhn check.

    Example:
        >>> luhn_ok("4111111111111111"), luhn_ok("4111111111111112")
        (True, False)
    """
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def luhn_check_digit(partial: str) -> str:
    """The digit that makes ``partial`` + digit pass the Luhn check.

    Example:
        >>> luhn_check_digit("411111111111111")
        '1'
    """
    return str((10 - sum(
        (d * 2 - 9 if d > 4 else d * 2) if i % 2 == 0 else d
        for i, d in enumerate(int(c) for c in reversed(partial))
    ) % 10) % 10)
