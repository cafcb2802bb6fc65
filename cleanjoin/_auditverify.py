"""Offline audit-log verification and content hashing, Python standard library only.

This module is the executable form of ``docs/audit-format.md``. It imports nothing
outside the standard library (not even pyspark), so a partner can copy it, or run
``cleanjoin audit verify``, on a machine without Spark.

Example:
    >>> e0 = make_entry(0, GENESIS_HASH, time="2026-01-01T00:00:00.000000Z", actor="a",
    ...                 action="tokenize", parameters={"rows": 3})
    >>> e1 = make_entry(1, e0["entry_hash"], time="2026-01-01T00:00:01.000000Z", actor="a",
    ...                 action="purge", parameters={})
    >>> verify_entries([e0, e1]).ok
    True
    >>> verify_entries([e1]).first_bad_seq
    0
"""

from __future__ import annotations

import datetime as _dt
import decimal
import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ENTRY_FIELDS",
    "FORMAT_VERSION",
    "GENESIS_HASH",
    "VerifyResult",
    "canonical_json",
    "compute_entry_hash",
    "content_hash_rows",
    "jsonable",
    "make_entry",
    "verify_entries",
    "verify_file",
    "verify_lines",
]

FORMAT_VERSION = 1
"""Version of the entry format described in docs/audit-format.md."""

GENESIS_HASH = "0" * 64
"""``prev_hash`` of the first entry (seq 0)."""

ENTRY_FIELDS = frozenset(
    {
        "format_version",
        "seq",
        "time",
        "actor",
        "action",
        "parameters",
        "inputs",
        "output",
        "prev_hash",
        "entry_hash",
    }
)
"""The exact set of keys of an exported entry."""

_HEX = frozenset("0123456789abcdef")


def canonical_json(value: Any) -> str:
    """The canonical JSON text of ``value``: sorted keys, no whitespace, raw UTF-8, no NaN.

    Example:
        >>> canonical_json({"b": [1, 2.5], "a": "é"})
        '{"a":"é","b":[1,2.5]}'
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def compute_entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of ``entry`` without its ``entry_hash`` key.

    Example:
        >>> compute_entry_hash({"seq": 0, "entry_hash": "ignored"}) == compute_entry_hash({"seq": 0})
        True
    """
    body = {k: v for k, v in entry.items() if k != "entry_hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def make_entry(
    seq: int,
    prev_hash: str,
    *,
    time: str,
    actor: str,
    action: str,
    parameters: Mapping[str, Any],
    inputs: Sequence[Mapping[str, Any]] = (),
    output: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build one entry (a plain dict, ``entry_hash`` included). No validation: the caller's job."""
    entry: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "seq": seq,
        "time": time,
        "actor": actor,
        "action": action,
        "parameters": dict(parameters),
        "inputs": [dict(i) for i in inputs],
        "output": dict(output) if output is not None else None,
        "prev_hash": prev_hash,
    }
    entry["entry_hash"] = compute_entry_hash(entry)
    return entry


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of verifying an audit log.

    Attributes:
        ok: True when every entry verified (and the head, when given, was found).
        entries: how many entries were read.
        first_bad_seq: the sequence number expected at the first entry that failed
            (every entry with a smaller ``seq`` is proven intact); ``None`` when ok.
        reason: a short explanation (never an entry's values); ``""`` when ok.
        head: ``entry_hash`` of the last entry read (``None`` for an empty log).
    """

    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str = ""
    head: str | None = None

    def __bool__(self) -> bool:
        return self.ok


def _is_hash(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


def _check_entry(entry: Any, seq: int, prev: str) -> str:
    """The reason entry number ``seq`` fails, or "" when it is valid."""
    if isinstance(entry, _Unreadable):
        return str(entry)
    if not isinstance(entry, dict):
        return "not a JSON object"
    if set(entry) != ENTRY_FIELDS:
        return "wrong set of fields"
    if entry["format_version"] != FORMAT_VERSION or isinstance(entry["format_version"], bool):
        return "unknown format_version"
    if entry["seq"] != seq or isinstance(entry["seq"], bool):
        return f"expected seq {seq} here (entry missing, inserted or reordered)"
    if entry["prev_hash"] != prev:
        return "prev_hash does not match the previous entry_hash (chain broken)"
    if not _is_hash(entry["entry_hash"]) or compute_entry_hash(entry) != entry["entry_hash"]:
        return "entry_hash does not match the entry's content (entry edited)"
    return ""


def verify_entries(entries: Iterable[Any], *, head: str | None = None) -> VerifyResult:
    """Verify parsed entries (dicts) in file order.

    The first entry must have seq 0 and ``prev_hash`` = :data:`GENESIS_HASH`; each next
    entry has seq + 1 and the previous ``entry_hash`` as ``prev_hash``. When ``head``
    (a checkpoint ``entry_hash``, e.g. from an output table's commit metadata) is given,
    some entry must have it, otherwise the log was truncated (or forked).
    """
    prev, count, seen_head = GENESIS_HASH, 0, head is None
    for seq, entry in enumerate(entries):
        reason = _check_entry(entry, seq, prev)
        if reason:
            return VerifyResult(False, seq + 1, seq, reason, prev if seq else None)
        prev, count = entry["entry_hash"], seq + 1
        seen_head = seen_head or prev == head
    last = prev if count else None
    if not seen_head:
        return VerifyResult(
            False, count, count, "head not found: the log was truncated or forked", last
        )
    return VerifyResult(True, count, None, "", last)


class _Unreadable(str):
    """A line that could not be read as a canonical entry; the text is the reason."""


def _parse_lines(lines: Iterable[str]) -> Iterator[Any]:
    for line in lines:
        text = line[:-1] if line.endswith("\n") else line
        try:
            obj = json.loads(text)
            canonical = canonical_json(obj) == text
        except ValueError:
            yield _Unreadable("not valid JSON")
            continue
        yield obj if canonical else _Unreadable("not in canonical JSON form")


def verify_lines(lines: Iterable[str], *, head: str | None = None) -> VerifyResult:
    """Verify an export given as lines of text (one canonical JSON entry per line)."""
    return verify_entries(_parse_lines(lines), head=head)


def verify_file(path: str | Path, *, head: str | None = None) -> VerifyResult:
    """Verify a JSONL audit export (``cleanjoin audit export``) with the standard library.

    Args:
        path: the ``.jsonl`` file.
        head: optional checkpoint ``entry_hash`` that must be in the log.

    Returns:
        A :class:`VerifyResult`; ``first_bad_seq`` names the first failing entry.

    Example:
        >>> import tempfile, os
        >>> e0 = make_entry(0, GENESIS_HASH, time="t", actor="a", action="purge", parameters={})
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = os.path.join(d, "audit.jsonl")
        ...     _ = open(p, "w", encoding="utf-8").write(canonical_json(e0) + "\\n")
        ...     verify_file(p, head=e0["entry_hash"]).ok
        True
    """
    with open(path, encoding="utf-8", newline="\n") as handle:
        return verify_lines(handle, head=head)


def jsonable(value: Any) -> Any:
    """A released cell value as a canonical JSON value (see docs/audit-format.md).

    ``None`` → null; bool, int, str as is; finite float as is, NaN/±inf as the strings
    ``"NaN"``, ``"Infinity"``, ``"-Infinity"``; Decimal → its ``str``; date/datetime →
    ISO-8601 (aware datetimes converted to UTC); bytes → lowercase hex; lists/tuples →
    lists; mappings and Rows → objects; numpy scalars through ``.item()``.

    Example:
        >>> import decimal
        >>> jsonable([float("nan"), decimal.Decimal("1.50"), b"\\x01"])
        ['NaN', '1.50', '01']
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if hasattr(value, "asDict"):  # a pyspark Row (struct)
        return {str(k): jsonable(v) for k, v in value.asDict().items()}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalar
        return jsonable(value.item())
    if hasattr(value, "tolist"):  # numpy array
        return jsonable(value.tolist())
    raise TypeError(f"cannot hash a released value of type {type(value).__name__}")


def content_hash_rows(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """SHA-256 hex of released rows in canonical order (the algorithm of ``content_hash``).

    The first line is the canonical JSON list of the sorted column names; then one line
    per row, the canonical JSON object ``{column: jsonable(value)}``, lines sorted by
    code point; each line is UTF-8 encoded and ends with ``\\n``.

    Example:
        >>> a = content_hash_rows(["n", "g"], [(2, "x"), (1, "y")])
        >>> a == content_hash_rows(["g", "n"], [("y", 1), ("x", 2)])
        True
    """
    names = list(columns)
    if len(set(names)) != len(names):
        raise ValueError("content hash: column names must be unique")
    lines = sorted(
        canonical_json({name: jsonable(v) for name, v in zip(names, row, strict=True)})
        for row in rows
    )
    digest = hashlib.sha256((canonical_json(sorted(names)) + "\n").encode("utf-8"))
    for line in lines:
        digest.update((line + "\n").encode("utf-8"))
    return digest.hexdigest()
