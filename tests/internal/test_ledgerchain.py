"""The ledger's hash chain and its anchors as pure functions (no Spark)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from cleanjoin._ledgerchain import (
    GENESIS_HASH,
    anchor,
    make_ledger_entry,
    verify_chain,
    verify_history,
)
from cleanjoin.errors import LedgerTampered


def chain(n: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    prev = GENESIS_HASH
    for k in range(1, n + 1):
        entry = make_ledger_entry(
            {"collaboration": "c", "entry_seq": k, "seq": k, "kind": "charge",
             "release_id": f"r{k}", "epsilon": 0.1, "delta": 0.0}, prev)
        entries.append(entry)
        prev = entry["entry_hash"]
    return entries


def history(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"version": 0, "operation": "CREATE TABLE",
                                  "operationParameters": {}, "userMetadata": None}]
    for v, e in enumerate(entries, 1):
        out.append({"version": v, "operation": "WRITE", "operationParameters": {"mode": "Append"},
                    "userMetadata": anchor("c", e["entry_seq"], e["entry_hash"])})
    return out


def test_an_intact_chain_and_history_verify() -> None:
    entries = chain(3)
    assert verify_chain(list(reversed(entries)), collaboration="c") == entries[-1]["entry_hash"]
    verify_history(history(entries), entries, collaboration="c")
    verify_chain([], collaboration="c")
    verify_history([], [], collaboration="c")


def test_an_edited_row_breaks_its_hash() -> None:
    entries = chain(3)
    entries[1] = {**entries[1], "epsilon": 0.0}
    with pytest.raises(LedgerTampered, match=re.escape("entry_seq 2: entry_hash does not match")):
        verify_chain(entries, collaboration="c")


def test_swapped_rows_break_the_chain() -> None:
    a, b, c = chain(3)
    swapped = [{**b, "entry_seq": 1}, {**a, "entry_seq": 2}, c]
    with pytest.raises(LedgerTampered, match=re.escape("prev_hash does not match")):
        verify_chain(swapped, collaboration="c")


def test_a_missing_or_duplicated_row_is_seen() -> None:
    a, b, c = chain(3)
    with pytest.raises(LedgerTampered, match=re.escape("expected entry_seq 2, found 3")):
        verify_chain([a, c], collaboration="c")
    with pytest.raises(LedgerTampered, match=re.escape("expected entry_seq 2, found 1")):
        verify_chain([a, a, b], collaboration="c")


def test_a_truncation_is_seen_in_the_anchors() -> None:
    entries = chain(3)
    with pytest.raises(LedgerTampered, match=re.escape("2 row(s) but 3 anchored append(s)")):
        verify_history(history(entries), entries[:2], collaboration="c")


@pytest.mark.parametrize(("operation", "mode", "meta"), [
    ("DELETE", None, None),
    ("WRITE", "Overwrite", "anchor"),
    ("WRITE", "Append", None),
    ("WRITE", "Append", '{"cleanjoin":"guarded_result"}'),
    ("RESTORE", None, None),
])
def test_every_commit_must_be_an_anchored_append(operation: str, mode: str | None, meta: str | None) -> None:
    entries = chain(2)
    commits = history(entries)
    text = commits[2]["userMetadata"] if meta == "anchor" else meta
    commits.append({"version": 3, "operation": operation,
                    "operationParameters": {} if mode is None else {"mode": mode},
                    "userMetadata": text})
    with pytest.raises(LedgerTampered, match=re.escape(f"commit 3 is a {operation} that is not")):
        verify_history(commits, entries, collaboration="c")


def test_maintenance_commits_are_allowed_and_history_must_start_at_creation() -> None:
    entries = chain(1)
    commits = [*history(entries), {"version": 2, "operation": "OPTIMIZE",
                                   "operationParameters": {}, "userMetadata": None}]
    verify_history(commits, entries, collaboration="c")
    with pytest.raises(LedgerTampered, match=re.escape("does not start with the table's creation")):
        verify_history(commits[1:], entries, collaboration="c")
