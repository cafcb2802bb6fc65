"""Options that are enums and also accept string aliases: one parser, one error text."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import TypeVar

from cleanjoin.errors import InvalidArgumentError

__all__ = ["options_text", "parse_choice"]

_E = TypeVar("_E", bound=Enum)


def options_text(enum_cls: type[Enum]) -> str:
    """The values of ``enum_cls`` as ``"a", "b"`` (for error messages).

    Example:
        >>> import enum
        >>> options_text(enum.Enum("Mode", {"A": "delete", "B": "flag"}))
        '"delete", "flag"'
    """
    return ", ".join(f'"{member.value}"' for member in enum_cls)


def parse_choice(
    enum_cls: type[_E], value: _E | str, *, what: str, text: str | None = None,
    aliases: Mapping[str, _E] | None = None,
) -> _E:
    """``value`` as a member of ``enum_cls``: a member as is, else its (lower-case) value.

    Args:
        enum_cls: the enum.
        value: a member or a string.
        what: the option's name in the error (``"revocation mode"``).
        text: the normalized string to look up, when the caller normalizes more than
            lower-casing (default: ``str(value).lower()``).
        aliases: other accepted strings.

    Raises:
        InvalidArgumentError: ``Unknown <what> "<value>". Available options are ...``.

    Example:
        >>> import enum
        >>> Mode = enum.Enum("Mode", {"DELETE": "delete", "FLAG": "flag"})
        >>> parse_choice(Mode, "FLAG", what="mode")
        <Mode.FLAG: 'flag'>
        >>> parse_choice(Mode, "drop", what="mode")
        Traceback (most recent call last):
        ...
        cleanjoin.errors.InvalidArgumentError: Unknown mode "drop". Available options are "delete", "flag".
    """
    if isinstance(value, enum_cls):
        return value
    key = str(value).lower() if text is None else text
    found = (aliases or {}).get(key)
    if found is not None:
        return found
    try:
        return enum_cls(key)
    except ValueError:
        raise InvalidArgumentError(
            f'Unknown {what} "{value}". Available options are {options_text(enum_cls)}.'
        ) from None
