"""The one leak scanner: values shaped like a card number, an e-mail address, a token or key.

Audit entries (:func:`cleanjoin.audit.check_parameters`), the output contract's review
(:meth:`cleanjoin.OutputContract.review`) and the revocation list's free-text columns
(:func:`cleanjoin.load_revocations`) refuse the same values, because they all ask this
module. Each rule exists twice, as Python for values in hand (:func:`find_leak`) and as a
Spark column for values in a table (:func:`leak_columns`); a table-driven test holds the
two to the same answers.

The rules, checked in this order (the first that matches names the finding):

* ``card``: a Luhn-valid card number. Candidates are every run of 12-19 digits with at
  most one separator (space, dot, dash, slash) between two digits, every group of 12-19
  digits inside a run of separated digit groups, and a whole run of groups whose groups
  but the last have 4 or more digits and whose digits number 12-19, as cards are printed
  (``4111 1111 1111 1111``, ``3782-822463-10005``, ``4111.1111.1111.1111``). Dates such as
  ``2026-11-26`` have too few digits.
* ``email``: an e-mail address.
* ``hex``: a run of 32 or more hex digits (a token, a digest, key material).
* ``split_hex``: 40 or more hex digits in groups of 4 or more joined by single spaces,
  dashes or colons, with at least one digit and one letter (a token written with dashes).
  A UUID (32 hex digits) is not one.
* ``short_hex``: a run of 16 to 31 hex digits with at least one digit and one letter
  (a token truncated, or split over two or more columns: each piece of a 64-hex token
  split in up to four is such a run).
* ``base32``: a run of 40 or more base32 characters (``A-Z``, ``2-7``, either case, ``=``
  padding) with at least four digits: a token in base32 (52 characters for 32 bytes; a
  digit is 6 of 32 characters, words in capitals have none).
* ``base64``: a run of 40 or more base64 characters whose letters and digits change class
  (upper, lower, digit) at least 2 times in 5, as random bytes do (about 0.62) and names,
  paths and camelCase rarely do (below 0.3): a token or key in base64.

A 64-hex digest, or a 16-hex short fingerprint (a token spec's), is allowed where the
caller says so (``digest_ok``: the whole value of an audit parameter whose key ends in
``hash`` or ``fingerprint``).

Example:
    >>> find_leak("card 4111-1111-1111-1111 seen"), find_leak("a@b.example")
    ('card', 'email')
    >>> find_leak("ab" * 32), find_leak("ab" * 32, digest_ok=True), find_leak("2026-11-26")
    ('hex', None, None)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import pairwise
from types import ModuleType
from typing import Any, Literal, cast

from cleanjoin._luhn import luhn_ok
from cleanjoin._typing import Column

__all__ = ["LEAK_KINDS", "LeakKind", "find_leak", "leak_columns"]

LeakKind = Literal["card", "email", "hex", "split_hex", "short_hex", "base32", "base64"]
"""What a refused value looks like."""

LEAK_KINDS: tuple[LeakKind, ...] = (
    "card", "email", "hex", "split_hex", "short_hex", "base32", "base64"
)
"""Every kind, in the order the rules are checked."""

# Java and Python read these patterns alike (bounded look-behind, no named groups).
_SEP = r"[ ./\-]"
_CARD_RUN = r"(?<![0-9])[0-9](?:" + _SEP + r"?[0-9]){11,18}(?![0-9])"
_DIGIT_GROUPS = r"(?<![0-9])[0-9]+(?:" + _SEP + r"[0-9]+)*(?![0-9])"
_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_HEX_RUN = r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{32,}(?![0-9A-Fa-f])"
_SPLIT_HEX = r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{4,}(?:[ :\-][0-9A-Fa-f]{4,})+(?![0-9A-Fa-f])"
_SHORT_HEX = r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{16,31}(?![0-9A-Fa-f])"
_B32_RUN = r"(?<![A-Za-z0-9])[A-Za-z2-7]{40,}=*(?![A-Za-z0-9])"
_B64_RUN = r"[A-Za-z0-9+/=_-]{40,}"
_DIGEST = r"[0-9a-f]{64}|[0-9a-f]{16}"

_RE = {name: re.compile(p) for name, p in (
    ("card_run", _CARD_RUN), ("groups", _DIGIT_GROUPS), ("email", _EMAIL), ("hex", _HEX_RUN),
    ("split_hex", _SPLIT_HEX), ("short_hex", _SHORT_HEX), ("base32", _B32_RUN),
    ("base64", _B64_RUN), ("digest", _DIGEST), ("sep", _SEP),
)}


def _grouped_candidates(run: str) -> list[str]:
    groups = _RE["sep"].split(run)
    found = [g for g in groups if 12 <= len(g) <= 19]
    joined = "".join(groups)
    if len(groups) > 1 and all(len(g) >= 4 for g in groups[:-1]) and 12 <= len(joined) <= 19:
        found.append(joined)
    return found


def _card(text: str) -> bool:
    runs = (_RE["sep"].sub("", m.group()) for m in _RE["card_run"].finditer(text))
    if any(luhn_ok(run) for run in runs):
        return True
    return any(
        luhn_ok(c) for m in _RE["groups"].finditer(text) for c in _grouped_candidates(m.group())
    )


def _split_hex(text: str) -> bool:
    for match in _RE["split_hex"].finditer(text):
        digits = re.sub(r"[ :\-]", "", match.group())
        if len(digits) >= 40 and re.search("[0-9]", digits) and re.search("[A-Fa-f]", digits):
            return True
    return False


def _short_hex(text: str) -> bool:
    return any(
        re.search("[0-9]", m.group()) and re.search("[A-Fa-f]", m.group())
        for m in _RE["short_hex"].finditer(text)
    )


def _base32(text: str) -> bool:
    return any(len(re.findall("[2-7]", m.group())) >= 4 for m in _RE["base32"].finditer(text))


def _class_kind(ch: str) -> str:
    return "u" if "A" <= ch <= "Z" else "l" if "a" <= ch <= "z" else "d"


def _random_like(run: str) -> bool:
    kinds = [_class_kind(c) for c in run if c.isascii() and c.isalnum()]
    changes = sum(a != b for a, b in pairwise(kinds))
    return 5 * changes >= 2 * max(1, len(kinds))


def find_leak(text: str, *, digest_ok: bool = False) -> LeakKind | None:
    """The first rule ``text`` breaks (see the module docstring), or ``None``.

    Example:
        >>> find_leak("4111 1111 1111 1111"), find_leak("order 1234567890123")
        ('card', None)
        >>> find_leak("-".join(["9f3a"] * 12)), find_leak("123e4567-e89b-12d3-a456-426614174000")
        ('split_hex', None)
    """
    if digest_ok and _RE["digest"].fullmatch(text):
        return None
    if _card(text):
        return "card"
    if _RE["email"].search(text):
        return "email"
    if _RE["hex"].search(text):
        return "hex"
    if _split_hex(text):
        return "split_hex"
    if _short_hex(text):
        return "short_hex"
    if _base32(text):
        return "base32"
    if any(_random_like(m.group()) for m in _RE["base64"].finditer(text)):
        return "base64"
    return None


def _exists(F: ModuleType, array: Column, test: Callable[[Column], Column]) -> Column:
    return cast("Column", F.coalesce(F.exists(array, test), F.lit(False)))


def _all_found(F: ModuleType, text: Column, pattern: str) -> Column:
    return cast("Column", F.regexp_extract_all(text, F.lit(pattern), F.lit(0)))


def _luhn(F: ModuleType, digits: Column) -> Column:
    return cast("Column", F.call_function("luhn_check", digits))


def _card_column(F: ModuleType, text: Column) -> Column:
    runs = _exists(F, _all_found(F, text, _CARD_RUN),
                   lambda run: _luhn(F, F.regexp_replace(run, _SEP, "")))

    def grouped(run: Column) -> Column:
        groups = F.split(run, _SEP)
        joined = F.regexp_replace(run, _SEP, "")
        one = _exists(F, groups, lambda g: F.length(g).between(12, 19) & _luhn(F, g))
        printed = (
            (F.size(groups) > 1)
            & F.forall(F.slice(groups, 1, F.size(groups) - 1), lambda g: F.length(g) >= 4)
            & F.length(joined).between(12, 19)
            & _luhn(F, joined)
        )
        return cast("Column", one | F.coalesce(printed, F.lit(False)))

    return runs | _exists(F, _all_found(F, text, _DIGIT_GROUPS), grouped)


def _split_hex_column(F: ModuleType, text: Column) -> Column:
    def long_mixed(run: Column) -> Column:
        digits = F.regexp_replace(run, r"[ :\-]", "")
        return cast("Column", (F.length(digits) >= 40) & digits.rlike("[0-9]") & digits.rlike("[A-Fa-f]"))

    return _exists(F, _all_found(F, text, _SPLIT_HEX), long_mixed)


def _short_hex_column(F: ModuleType, text: Column) -> Column:
    return _exists(F, _all_found(F, text, _SHORT_HEX),
                   lambda run: run.rlike("[0-9]") & run.rlike("[A-Fa-f]"))


def _base32_column(F: ModuleType, text: Column) -> Column:
    return _exists(F, _all_found(F, text, _B32_RUN),
                   lambda run: F.length(F.regexp_replace(run, "[^2-7]", "")) >= 4)


def _base64_column(F: ModuleType, text: Column) -> Column:
    def random_like(run: Column) -> Column:
        chars = F.filter(F.split(run, ""), lambda ch: ch.rlike("^[A-Za-z0-9]$"))
        kinds = F.transform(
            chars, lambda ch: F.when(ch.rlike("^[A-Z]$"), "u").when(ch.rlike("^[a-z]$"), "l")
            .otherwise("d")
        )
        n = F.size(kinds)
        positions = F.sequence(F.lit(2), F.greatest(n, F.lit(2)))
        changes = F.size(F.filter(
            positions,
            lambda i: (i <= n) & (F.element_at(kinds, i) != F.element_at(kinds, i - 1)),
        ))
        return cast("Column", F.lit(5) * changes >= F.lit(2) * F.greatest(n, F.lit(1)))

    return _exists(F, _all_found(F, text, _B64_RUN), random_like)


def leak_columns(
    F: ModuleType, text: Column, *, kinds: tuple[LeakKind, ...] = LEAK_KINDS
) -> dict[LeakKind, Column]:
    """Boolean Spark columns, one per kind: does the string column ``text`` break that rule?

    The same rules as :func:`find_leak`, built from Spark built-ins (``regexp_extract_all``,
    higher-order functions, ``luhn_check``), so a table is scanned in the JVM. A null
    value breaks none. Unlike :func:`find_leak`, each column tests its own rule only;
    combine them in :data:`LEAK_KINDS` order to name a value's first finding.

    Args:
        F: the ``functions`` module of the DataFrame (``cleanjoin._spark.functions_for``).
        text: a string column.
        kinds: the rules wanted.

    Example:
        >>> LEAK_KINDS  # the keys of the full result, in checking order
        ('card', 'email', 'hex', 'split_hex', 'short_hex', 'base32', 'base64')
    """
    builders: dict[LeakKind, Callable[[], Column]] = {
        "card": lambda: _card_column(F, text),
        "email": lambda: F.coalesce(text.rlike(_EMAIL), F.lit(False)),
        "hex": lambda: F.coalesce(text.rlike(_HEX_RUN), F.lit(False)),
        "split_hex": lambda: _split_hex_column(F, text),
        "short_hex": lambda: _short_hex_column(F, text),
        "base32": lambda: _base32_column(F, text),
        "base64": lambda: _base64_column(F, text),
    }
    return {kind: builders[kind]() for kind in kinds}


def first_leak_column(F: ModuleType, text: Column) -> Any:
    """A string column: the first kind ``text`` breaks (:data:`LEAK_KINDS` order), or null."""
    columns = leak_columns(F, text)
    result = F.lit(None).cast("string")
    for kind in reversed(LEAK_KINDS):
        result = F.when(columns[kind], F.lit(kind)).otherwise(result)
    return result
