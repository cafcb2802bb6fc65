"""The privacy scan of audit entries: JSON values only, nothing shaped like a secret.

The shapes themselves (card numbers, e-mail addresses, tokens, key material) are the
library's one leak scanner, :mod:`cleanjoin._leak`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from cleanjoin._leak import LeakKind, find_leak
from cleanjoin.errors import InvalidArgumentError

__all__ = ["check_parameters"]

# Keys whose values may be 64-hex digests: the hash/fingerprint of something public.
_DIGEST_KEY_SUFFIXES = ("hash", "fingerprint", "check_value")

_WHAT: dict[LeakKind, str] = {
    "card": "a card number (a Luhn-valid run of 12-19 digits)",
    "email": "an email address",
    "hex": "a token or key material (a run of 32 or more hex digits)",
    "split_hex": "a token or key material (40 or more hex digits split by separators)",
    "short_hex": "part of a token (a run of 16-31 hex digits with digits and letters)",
    "base32": "a token or key material (a long base32 run)",
    "base64": "key material (a long base64-like run)",
}


def _shape_problem(text: str, *, digest_ok: bool) -> str:
    """What ``text`` looks like that must not be logged, or "" when it looks harmless."""
    kind = find_leak(text, digest_ok=digest_ok)
    return "" if kind is None else _WHAT[kind]


def _refuse(where: str, what: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"AuditLog.append: {where} looks like {what}; audit entries never hold raw "
        "identifiers, tokens or keys"
    )


def _scan(value: Any, where: str, *, digest_ok: bool = False) -> Any:
    """Validate one JSON value recursively; return it with tuples as lists."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        problem = _shape_problem(str(value), digest_ok=False)
        if problem:
            raise _refuse(where, problem)
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgumentError(
                f"AuditLog.append: {where} is not a finite number (NaN and infinities are not JSON)"
            )
        return value
    if isinstance(value, str):
        problem = _shape_problem(value, digest_ok=digest_ok)
        if problem:
            raise _refuse(where, problem)
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for i, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise InvalidArgumentError(
                    f"AuditLog.append: {where} has a key of type {type(key).__name__}; "
                    "JSON object keys must be strings"
                )
            if _shape_problem(key, digest_ok=False):
                raise _refuse(f"{where} key number {i}", _shape_problem(key, digest_ok=False))
            digest = key.lower().endswith(_DIGEST_KEY_SUFFIXES)
            out[key] = _scan(item, f"{where}[{key!r}]", digest_ok=digest)
        return out
    if isinstance(value, (list, tuple)):
        return [_scan(item, f"{where}[{i}]", digest_ok=digest_ok) for i, item in enumerate(value)]
    raise InvalidArgumentError(
        f"AuditLog.append: {where} has type {type(value).__name__}, which is not "
        "JSON-serializable (use str, int, float, bool, None, list or dict)"
    )


def check_parameters(parameters: Mapping[str, Any], *, where: str = "parameters") -> dict[str, Any]:
    """Validate audit parameters and return them as plain JSON (tuples become lists).

    Refuses values that are not JSON (sets, objects, NaN, non-string keys) and, as a
    last line of defence, strings, numbers and keys that the library's one leak scanner
    (:mod:`cleanjoin._leak`) finds shaped like a card number (a Luhn-valid run of 12-19
    digits, contiguous or grouped as printed on cards: ``4111 1111 1111 1111``), an email
    address, a token or hex key (32+ hex digits, or 40+ split by dashes), or base64 key
    material (a run of 40+ base64 characters whose letters and digits change class as
    often as random data does). A 64-hex digest is allowed only as the whole value of a
    key ending in ``hash``, ``fingerprint`` or ``check_value``. Error messages name the
    place, never the value.

    Raises:
        InvalidArgumentError: when a value is refused.

    Example:
        >>> check_parameters({"groups": ("a", "b"), "spec_fingerprint": "ab" * 32})["groups"]
        ['a', 'b']
    """
    if not isinstance(parameters, Mapping):
        raise InvalidArgumentError(
            f"AuditLog.append: '{where}' must be a mapping (a JSON object), "
            f"got {type(parameters).__name__}"
        )
    result: dict[str, Any] = _scan(parameters, where)
    return result


