"""The cleanjoin token spec, version 1, in pure Python (standard library only).

This module is the executable form of ``docs/token-spec.md``. A partner who has only
that document and Python's standard library reproduces cleanjoin's tokens bit for bit
with the three functions here; cleanjoin's own Spark implementation
(:func:`cleanjoin.tokens.tokenize`) is tested to agree with it on large randomized corpora.

The spec, for every preset and in this order:

1. Unicode NFKC (``unicodedata.normalize("NFKC", value)``).
2. Remove U+00AD, U+200B, U+200C, U+200D, U+2060 and U+FEFF.
3. Strip leading and trailing whitespace exactly as ``str.strip()`` does.
4. An empty result is null.

Then per preset: ``pan`` removes every remaining whitespace character (``str.isspace()``)
and ``-`` and is valid only if it matches ``^[0-9]{12,19}$`` (otherwise null); ``email``
lowercases with ``str.lower()``; ``text`` does nothing more.

Token = lowercase hex of HMAC-SHA256(key, UTF-8 bytes of the normalized value); a null
or invalid value has a null token.

Example:
    >>> normalize("\\u00a04111-1111-1111-1111\\u200b ", "pan")
    '4111111111111111'
    >>> normalize("  Alice@Example.COM ", "email")
    'alice@example.com'
    >>> normalize(" \\u3000 ", "text") is None
    True
    >>> key = bytes(range(32))
    >>> token("4111 1111 1111 1111", key, "pan") == token("4111111111111111", key, "pan")
    True
    >>> token("not a card", key, "pan") is None
    True
    >>> len(check_value(key))
    12
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import unicodedata
from typing import Any

__all__ = [
    "CHECK_VALUE_MESSAGE",
    "PRESETS",
    "REMOVED_CHARACTERS",
    "SPEC_VERSION",
    "check_value",
    "fingerprint",
    "normalize",
    "spec_document",
    "token",
]

SPEC_VERSION = 1
"""The version of the token spec this module implements."""

PRESETS: tuple[str, ...] = ("pan", "email", "text")
"""The preset names of spec version 1."""

REMOVED_CHARACTERS = "\u00ad\u200b\u200c\u200d\u2060\ufeff"
"""Characters removed in step 2: soft hyphen, zero-width space / non-joiner / joiner,
word joiner and zero-width no-break space (byte order mark)."""

CHECK_VALUE_MESSAGE = b"cleanjoin key check value v1"
"""The fixed message whose HMAC-SHA256 (truncated) is the key check value."""

CHECK_VALUE_BYTES = 6
"""The key check value is the first 6 bytes (12 lowercase hex characters) of the HMAC."""

_REMOVE_TABLE = dict.fromkeys(map(ord, REMOVED_CHARACTERS))
_PAN = re.compile(r"[0-9]{12,19}")


def _check_preset(preset: str) -> None:
    if preset not in PRESETS:
        known = ", ".join(f'"{p}"' for p in PRESETS)
        raise ValueError(f'Unknown token preset "{preset}". Available options are {known}.')


def normalize(value: str | None, preset: str) -> str | None:
    """Normalize ``value`` as spec version 1 says for ``preset``.

    Args:
        value: the raw value (``None`` is null).
        preset: ``"pan"``, ``"email"`` or ``"text"``.

    Returns:
        The normalized value, or ``None`` when the value is null, empty after
        normalization, or (``pan``) not 12 to 19 ASCII digits.

    Raises:
        ValueError: for an unknown preset.

    Example:
        >>> normalize("４１１１ １１１１ １１１１ １１１１", "pan")  # full-width digits
        '4111111111111111'
        >>> normalize("Straße@EXAMPLE.de", "email")
        'straße@example.de'
    """
    _check_preset(preset)
    if value is None:
        return None
    result = unicodedata.normalize("NFKC", value)
    result = result.translate(_REMOVE_TABLE)
    result = result.strip()
    if not result:
        return None
    if preset == "pan":
        result = "".join(ch for ch in result if not ch.isspace() and ch != "-")
        return result if _PAN.fullmatch(result) else None
    if preset == "email":
        return result.lower()
    return result


def hmac_hex(key: bytes, message: bytes) -> str:
    """Lowercase hex of HMAC-SHA256(key, message) (RFC 2104 / RFC 4231).

    Example:
        >>> hmac_hex(b"Jefe", b"what do ya want for nothing?")[:16]
        '5bdcc146bf60754e'
    """
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def token(value: str | None, key: bytes, preset: str) -> str | None:
    """The token of ``value``: lowercase hex HMAC-SHA256 of its normalized UTF-8 bytes.

    Args:
        value: the raw value.
        key: the shared secret key (bytes).
        preset: ``"pan"``, ``"email"`` or ``"text"``.

    Returns:
        64 lowercase hex characters, or ``None`` when the normalized value is null.

    Example:
        >>> token(None, b"k" * 32, "text") is None
        True
    """
    normalized = normalize(value, preset)
    if normalized is None:
        return None
    return hmac_hex(key, normalized.encode("utf-8"))


def check_value(key: bytes) -> str:
    """The key check value: the first 6 bytes, as 12 lowercase hex characters, of
    HMAC-SHA256(key, ``b"cleanjoin key check value v1"``).

    Both parties compare it to confirm they hold the same key without revealing it.

    Example:
        >>> check_value(bytes(32)) == hmac_hex(bytes(32), CHECK_VALUE_MESSAGE)[:12]
        True
    """
    return hmac_hex(key, CHECK_VALUE_MESSAGE)[: 2 * CHECK_VALUE_BYTES]


def spec_document(preset: str, *, version: int = SPEC_VERSION) -> dict[str, Any]:
    """The canonical description of a token spec, the input of :func:`fingerprint`.

    Example:
        >>> spec_document("pan")["hash"]
        'HMAC-SHA256'
    """
    _check_preset(preset)
    if version != SPEC_VERSION:
        raise ValueError(f"Unsupported token spec version {version}; this module implements {SPEC_VERSION}.")
    return {
        "spec": "cleanjoin-token",
        "version": version,
        "preset": preset,
        "normalization": "NFKC",
        "hash": "HMAC-SHA256",
        "encoding": "UTF-8",
        "output": "lowercase-hex",
    }


def canonical_json(document: dict[str, Any]) -> str:
    """JSON with sorted keys, no spaces and ASCII-only escapes (the fingerprint input).

    Example:
        >>> canonical_json({"b": 1, "a": "é"})
        '{"a":"\\\\u00e9","b":1}'
    """
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def fingerprint(preset: str, *, version: int = SPEC_VERSION) -> str:
    """The spec fingerprint: the first 16 lowercase hex characters of the SHA-256 of the
    canonical JSON of :func:`spec_document`. It identifies the spec, never the key.

    Example:
        >>> len(fingerprint("pan")), fingerprint("pan") != fingerprint("email")
        (16, True)
    """
    data = canonical_json(spec_document(preset, version=version)).encode("ascii")
    return hashlib.sha256(data).hexdigest()[:16]
