"""The budget ledger's hash chain and its anchor in the Delta table's own commit history.

Every ledger row (a ``charge`` or the ``release`` record of a charged release's stored
rows) is one entry of a chain per collaboration, hashed like the audit log
(:func:`cleanjoin._auditverify.compute_entry_hash` over the canonical JSON of the row):
``entry_seq`` 1, 2, ..., ``prev_hash`` the previous row's ``entry_hash`` (64 zeros for the
first). A chain alone cannot see a truncation (the last rows removed) and a table
rewritten as a whole could carry any chain, so each append is one Delta commit whose
``userMetadata`` is the :func:`anchor` of the row it adds, and a reader checks the
table's history too: after the commit that created it, every commit must be a blind
append carrying an anchor (``OPTIMIZE`` and ``VACUUM``, which change no rows, aside), and
the anchors of a collaboration, in commit order, must be exactly its rows' ``(entry_seq,
entry_hash)``. A ``DELETE``, ``UPDATE``, ``MERGE``, overwrite, ``RESTORE``, property change
or foreign append is a commit that is not an anchored append; an edited, reordered or
deleted row breaks the chain or its match with the anchors. Pure functions, standard
library only; :class:`cleanjoin.budget.BudgetLedger` reads the rows and the history.

Example:
    >>> e1 = make_ledger_entry({"collaboration": "c", "entry_seq": 1, "kind": "charge"}, GENESIS_HASH)
    >>> verify_chain([e1], collaboration="c") == e1["entry_hash"]
    True
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from cleanjoin._auditverify import GENESIS_HASH, canonical_json, compute_entry_hash
from cleanjoin.errors import LedgerTampered

__all__ = [
    "ANCHOR_KIND",
    "GENESIS_HASH",
    "HASHED_FIELDS",
    "anchor",
    "make_ledger_entry",
    "verify_chain",
    "verify_history",
]

ANCHOR_KIND = "ledger_append"
"""The ``cleanjoin`` value of an anchor's JSON (the commit ``userMetadata``)."""

HASHED_FIELDS = (
    "collaboration", "entry_seq", "seq", "kind", "release_id", "epsilon", "delta",
    "charged_at_micros", "query_fingerprint", "total_epsilon", "total_delta", "charge_id",
    "content_hash", "prev_hash",
)
"""The fields of a ledger entry that its ``entry_hash`` covers (``entry_hash`` aside)."""

_CREATE = frozenset({"CREATE TABLE", "CREATE OR REPLACE TABLE"})
_NO_DATA_CHANGE = frozenset({"OPTIMIZE", "VACUUM START", "VACUUM END"})


def make_ledger_entry(fields: Mapping[str, Any], prev_hash: str) -> dict[str, Any]:
    """The entry of ``fields`` (missing hashed fields are ``None``) after ``prev_hash``.

    Example:
        >>> make_ledger_entry({"entry_seq": 1}, GENESIS_HASH)["prev_hash"] == GENESIS_HASH
        True
    """
    entry: dict[str, Any] = {name: fields.get(name) for name in HASHED_FIELDS}
    entry["prev_hash"] = prev_hash
    entry["entry_hash"] = compute_entry_hash(entry)
    return entry


def anchor(collaboration: str, entry_seq: int, entry_hash: str) -> str:
    """The commit ``userMetadata`` of the append that adds entry ``entry_seq``.

    Example:
        >>> anchor("c", 1, "ab")
        '{"cleanjoin":"ledger_append","collaboration":"c","entry_hash":"ab","entry_seq":1}'
    """
    return canonical_json(
        {"cleanjoin": ANCHOR_KIND, "collaboration": collaboration, "entry_seq": int(entry_seq),
         "entry_hash": entry_hash}
    )


def _tampered(collaboration: str, what: str) -> LedgerTampered:
    return LedgerTampered(
        f"BudgetLedger: the ledger of collaboration {collaboration!r} does not verify: {what}; "
        "it was changed outside cleanjoin, so nothing is spent on it"
    )


def verify_chain(entries: Sequence[Mapping[str, Any]], *, collaboration: str) -> str | None:
    """Check the chain of one collaboration's entries (any order); return its head hash.

    Raises:
        LedgerTampered: a row is missing, duplicated, reordered or edited.
    """
    prev = GENESIS_HASH
    for position, entry in enumerate(sorted(entries, key=lambda e: int(e["entry_seq"])), 1):
        seq = int(entry["entry_seq"])
        if seq != position:
            raise _tampered(
                collaboration, f"expected entry_seq {position}, found {seq} (a row missing, "
                "duplicated or inserted)"
            )
        if entry.get("prev_hash") != prev:
            raise _tampered(collaboration, f"entry_seq {seq}: prev_hash does not match the "
                            "previous row (chain broken: a row removed or reordered)")
        body = {name: entry.get(name) for name in HASHED_FIELDS}
        if compute_entry_hash(body) != entry.get("entry_hash"):
            raise _tampered(collaboration, f"entry_seq {seq}: entry_hash does not match the "
                            "row's content (row edited)")
        prev = str(entry["entry_hash"])
    return None if not entries else prev


def _mode(parameters: Any) -> str | None:
    if not isinstance(parameters, Mapping):
        return None
    mode = parameters.get("mode")
    return None if mode is None else str(mode).strip('"')


def verify_history(
    history: Sequence[Mapping[str, Any]],
    entries: Sequence[Mapping[str, Any]],
    *,
    collaboration: str,
) -> None:
    """Check the table's commit history against one collaboration's (chain-checked) entries.

    Args:
        history: the commits (``version``, ``operation``, ``operationParameters``,
            ``userMetadata``) up to the version the entries were read at.
        entries: that collaboration's rows at that version.
        collaboration: its name (for the anchors and the messages).

    Raises:
        LedgerTampered: a commit other than an anchored append, or anchors that do not
            match the rows (a truncation, a row added by hand).
    """
    commits = sorted(history, key=lambda h: int(h["version"]))
    if not commits:
        if entries:
            raise _tampered(collaboration, "the table has rows but no commit history")
        return
    first = commits[0]
    if int(first["version"]) != 0 or first["operation"] not in _CREATE:
        raise _tampered(
            collaboration, "the commit history does not start with the table's creation "
            "(history removed, or the table re-created)"
        )
    anchors: list[tuple[int, str]] = []
    for commit in commits[1:]:
        version, operation = int(commit["version"]), str(commit["operation"])
        if operation in _NO_DATA_CHANGE:
            continue
        meta: Any = None
        try:
            meta = json.loads(commit["userMetadata"] or "null")
        except ValueError:
            meta = None
        is_anchor = isinstance(meta, dict) and meta.get("cleanjoin") == ANCHOR_KIND
        if operation != "WRITE" or _mode(commit.get("operationParameters")) != "Append" or not is_anchor:
            raise _tampered(
                collaboration, f"commit {version} is a {operation} that is not a cleanjoin "
                "ledger append"
            )
        if meta.get("collaboration") == collaboration:
            anchors.append((int(meta.get("entry_seq", -1)), str(meta.get("entry_hash"))))
    rows = sorted((int(e["entry_seq"]), str(e["entry_hash"])) for e in entries)
    if anchors != rows:
        raise _tampered(
            collaboration, f"{len(rows)} row(s) but {len(anchors)} anchored append(s) in the "
            "table's history, or their hashes differ (rows truncated or added by hand)"
        )
