"""Token specs: which published normalization a column gets before it is hashed.

A :class:`TokenSpec` names a preset (``pan``, ``email`` or ``text``) of a versioned spec
(``docs/token-spec.md``; this release implements version 1). Both parties of a clean room
must use the same spec for a join column; :meth:`TokenSpec.fingerprint` lets them compare
it in one short string. The spec never contains key material.

Example:
    >>> spec = TokenSpec.preset("pan")
    >>> spec.version, spec.name
    (1, 'pan')
    >>> TokenSpec.from_json(spec.to_json()) == spec
    True
    >>> spec.fingerprint() == TokenSpec.preset("pan").fingerprint()
    True
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cleanjoin import reference
from cleanjoin.errors import TokenSpecError

__all__ = ["PRESETS", "SPEC_VERSION", "TokenSpec"]

SPEC_VERSION = reference.SPEC_VERSION
PRESETS = reference.PRESETS


def _options() -> str:
    return ", ".join(f'"{p}"' for p in PRESETS)


@dataclass(frozen=True)
class TokenSpec:
    """A versioned token spec for one column.

    Attributes:
        name: the preset: ``"pan"`` (card numbers), ``"email"`` or ``"text"``.
        version: the spec version (only ``1`` exists).

    Raises:
        TokenSpecError: for an unknown preset or an unsupported version.

    Example:
        >>> TokenSpec("phone")
        Traceback (most recent call last):
        ...
        cleanjoin.errors.TokenSpecError: Unknown token preset "phone". Available options are "pan", "email", "text".
    """

    name: str
    version: int = SPEC_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or self.name not in PRESETS:
            raise TokenSpecError(
                f'Unknown token preset "{self.name}". Available options are {_options()}.'
            )
        if isinstance(self.version, bool) or not isinstance(self.version, int):
            raise TokenSpecError(
                f"'version' of TokenSpec must be an int, got {type(self.version).__name__}"
            )
        if self.version != SPEC_VERSION:
            raise TokenSpecError(
                f"Unsupported token spec version {self.version}; this cleanjoin implements "
                f"version {SPEC_VERSION}."
            )

    @classmethod
    def preset(cls, name: str) -> TokenSpec:
        """The current-version spec of a preset (``"pan"``, ``"email"`` or ``"text"``).

        Example:
            >>> TokenSpec.preset("email")
            TokenSpec(name='email', version=1)
        """
        return cls(name)

    @classmethod
    def parse(cls, value: TokenSpec | str) -> TokenSpec:
        """Accept a ``TokenSpec`` or a preset name.

        Example:
            >>> TokenSpec.parse("text").name
            'text'
        """
        if isinstance(value, TokenSpec):
            return value
        if isinstance(value, str):
            return cls.preset(value)
        raise TokenSpecError(
            f"a token spec must be a TokenSpec or a preset name ({_options()}), "
            f"got {type(value).__name__}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The canonical description of this spec (see ``docs/token-spec.md``)."""
        return reference.spec_document(self.name, version=self.version)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): the input of :meth:`fingerprint`.

        Example:
            >>> TokenSpec.preset("text").to_json()[:40]
            '{"encoding":"UTF-8","hash":"HMAC-SHA256"'
        """
        return reference.canonical_json(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> TokenSpec:
        """Parse :meth:`to_json` output, refusing anything that is not exactly a known spec.

        Raises:
            TokenSpecError: malformed JSON, unknown preset or version, or fields that do
                not match the published spec.

        Example:
            >>> TokenSpec.from_json('{"preset": "pan", "version": 2}')
            Traceback (most recent call last):
            ...
            cleanjoin.errors.TokenSpecError: Unsupported token spec version 2; this cleanjoin implements version 1.
        """
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise TokenSpecError(f"TokenSpec.from_json: not valid JSON ({exc.__class__.__name__})") from None
        if not isinstance(data, dict):
            raise TokenSpecError("TokenSpec.from_json: expected a JSON object")
        spec = cls(data.get("preset", ""), data.get("version", SPEC_VERSION))
        expected = spec.to_dict()
        different = sorted(k for k in set(data) | set(expected) if data.get(k) != expected.get(k))
        if different:
            raise TokenSpecError(
                "TokenSpec.from_json: fields do not match the published spec version "
                f"{spec.version} preset \"{spec.name}\": {', '.join(different)}"
            )
        return spec

    def fingerprint(self) -> str:
        """16 hex characters identifying the spec (SHA-256 of :meth:`to_json`), never the key.

        Example:
            >>> len(TokenSpec.preset("pan").fingerprint())
            16
        """
        return reference.fingerprint(self.name, version=self.version)
