"""Released rows kept next to the budget ledger, and threshold releases' entries.

A guarded run's released rows are stored in a write-once Delta table next to the ledger
(:func:`save_rows`); the ledger records their content hash, for a DP release in a
``release`` entry after its charge (:func:`store_release`), for a threshold release in
its own entry (:func:`record_threshold`).

A threshold (non-DP) release recorded in the budget ledger is an entry of kind
``threshold`` with ε = δ = 0 (it spends nothing and is no charge). Its
``query_fingerprint`` field holds :func:`describe_threshold`: the canonical JSON of the
query's fingerprint, the fingerprint of its inputs and filters (its *scope*) and its
group columns and grouping sets — column names and fingerprints only, never a group
value, identifier or token. The entry is hash-chained like every ledger row
(:mod:`cleanjoin._ledgerchain`), so the description cannot be edited unseen.

Example:
    >>> text = describe_threshold("q" * 64, "s" * 64, ("age_band",), None)
    >>> entry = {"release_id": "r1", "query_fingerprint": text, "charged_at_micros": 0,
    ...          "content_hash": "h" * 64, "entry_seq": 1}
    >>> threshold_of(entry, "c").group_by
    ('age_band',)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cleanjoin._auditverify import content_hash_rows
from cleanjoin._compat import UTC
from cleanjoin._serialize import report_dict
from cleanjoin._typing import DataFrame
from cleanjoin.errors import InvalidArgumentError, LedgerConflictError, LedgerTampered

if TYPE_CHECKING:
    from cleanjoin.budget import BudgetLedger

__all__ = [
    "CHARGE_KIND",
    "RELEASE_KIND",
    "THRESHOLD_FORMAT",
    "THRESHOLD_KIND",
    "ThresholdRelease",
    "describe_threshold",
    "record_threshold",
    "save_rows",
    "store_release",
    "threshold_of",
]

THRESHOLD_FORMAT = "cleanjoin.threshold_release/v1"
"""The ``format`` of a threshold entry's description."""
CHARGE_KIND, RELEASE_KIND, THRESHOLD_KIND = "charge", "release", "threshold"
"""The ``kind`` of a ledger entry: a DP charge, the record of its stored rows, a
threshold release."""


@dataclass(frozen=True)
class ThresholdRelease:
    """One recorded threshold (non-DP) release: an ε = 0, δ = 0 ledger entry that spends
    nothing and is not a :class:`~cleanjoin.budget.Charge`.

    It records what the refinement guard needs to compare a later release with it (see
    ``docs/disclosure.md``, "Differencing across releases"): column names and
    fingerprints only, never a group value, identifier or token. The released rows
    themselves are stored next to the ledger, as a DP release's are, and their content
    hash is in the entry.

    Attributes:
        collaboration: the collaboration.
        release_id: the release (unique per collaboration, across charges and thresholds).
        query_fingerprint: the fingerprint of the query that made it.
        scope: the fingerprint of its inputs and filters (join columns, consent,
            revocations, policy, key rules; see ``docs/disclosure.md``).
        group_by: its group columns.
        grouping_sets: its grouping sets (margins), or ``None`` for a plain ``group_by``.
        recorded_at: commit time (UTC).
        content_hash: the content hash of its stored rows.
    """

    collaboration: str
    release_id: str
    query_fingerprint: str
    scope: str
    group_by: tuple[str, ...]
    grouping_sets: tuple[tuple[str, ...], ...] | None
    recorded_at: datetime
    content_hash: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return report_dict(self)


def describe_threshold(
    query_fingerprint: str,
    scope: str,
    group_by: Sequence[str],
    grouping_sets: Sequence[Sequence[str]] | None,
) -> str:
    """The ``query_fingerprint`` field of a threshold entry: canonical JSON of the
    release's description (column names and fingerprints only)."""
    return json.dumps(
        {
            "format": THRESHOLD_FORMAT, "query": query_fingerprint, "scope": scope,
            "group_by": list(group_by),
            "grouping_sets": None if grouping_sets is None else [list(g) for g in grouping_sets],
        },
        sort_keys=True, separators=(",", ":"),
    )


def threshold_of(entry: Mapping[str, Any], collaboration: str) -> ThresholdRelease:
    """The :class:`ThresholdRelease` of a (chain-verified) ledger entry of kind ``threshold``.

    Raises:
        LedgerTampered: the entry holds no valid description.
    """
    try:
        d = json.loads(entry["query_fingerprint"])
        if d.get("format") != THRESHOLD_FORMAT:
            raise ValueError("format")
        sets = d["grouping_sets"]
        return ThresholdRelease(
            collaboration=collaboration,
            release_id=str(entry["release_id"]),
            query_fingerprint=str(d["query"]),
            scope=str(d["scope"]),
            group_by=tuple(str(c) for c in d["group_by"]),
            grouping_sets=None if sets is None else tuple(tuple(str(c) for c in g) for g in sets),
            recorded_at=datetime.fromtimestamp(entry["charged_at_micros"] / 1e6, tz=UTC),
            content_hash=str(entry["content_hash"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise LedgerTampered(
            f"BudgetLedger: threshold entry {entry.get('entry_seq')} of collaboration "
            f"{collaboration!r} holds no valid release description"
        ) from None


def record_threshold(
    ledger: BudgetLedger,
    release_id: str,
    df: DataFrame,
    *,
    query_fingerprint: str,
    scope: str,
    group_by: Sequence[str],
    grouping_sets: Sequence[Sequence[str]] | None,
    checked: frozenset[str] | None = None,
) -> str:
    """Store the released rows of a threshold release next to ``ledger`` and append its
    entry (only a guarded threshold run does this); return the rows'
    content hash.

    ``checked``: the threshold releases the refinement guard checked this one against
    (``None``: no guard). A threshold release over the same scope recorded since (a run
    racing this one) would have gone unchecked, so the entry is refused: fail closed.

    Raises:
        InvalidArgumentError: ``release_id`` is already used in the collaboration.
        LedgerTampered: the ledger does not verify.
        LedgerConflictError: lost the race to concurrent appends too many times, or a
            threshold release over the same scope was recorded since the check.
    """
    call = "BudgetLedger (a guarded run's threshold release)"
    if not isinstance(release_id, str) or not release_id.strip():
        raise InvalidArgumentError(f"{call}: 'release_id' must be a non-empty string")
    spark = df.sparkSession
    ledger._ensure_table(spark)
    rows = ledger._entries(spark)
    ledger._check_totals(rows)
    used = (
        f"{call}: release id {release_id!r} is already used in collaboration "
        f"{ledger.collaboration!r}"
    )
    if any(r["release_id"] == release_id for r in rows):
        raise InvalidArgumentError(used)
    digest = save_rows(ledger, release_id, df, used)
    described = describe_threshold(query_fingerprint, scope, group_by, grouping_sets)
    charge_id = uuid.uuid4().hex

    def entry(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if any(r["release_id"] == release_id for r in rows):
            raise InvalidArgumentError(used)
        if checked is not None and any(
            t.scope == scope and t.release_id not in checked for t in ledger._thresholds_of(rows)
        ):
            raise LedgerConflictError(
                f"{call}: another threshold release over the same inputs was recorded while "
                f"this run computed, so the refinement guard did not check release "
                f"{release_id!r} against it; it is not recorded or returned (its id is "
                "used): run it again under a new release_id"
            )
        return ledger._entry(
            rows, kind=THRESHOLD_KIND, seq=0, release_id=release_id, epsilon=0.0, delta=0.0,
            query_fingerprint=described, now=datetime.now(UTC), charge_id=charge_id,
            content_hash=digest,
        )

    ledger._append(spark, rows, entry, call)
    return digest


def save_rows(ledger: BudgetLedger, release_id: str, df: DataFrame, used: str) -> str:
    """Write the released rows of ``release_id`` once next to ``ledger`` (``used``: the
    message if they are already stored) and return their content hash, read from the
    stored table (the query is not run again)."""
    meta = json.dumps({"collaboration": ledger.collaboration, "release_id": release_id})
    target = ledger._release_ref(release_id)
    try:
        target.save(df.write.format("delta").mode("error").option("userMetadata", meta))
    except Exception as exc:
        text = str(exc)
        if any(m in text for m in ("already exist", "PATH_EXISTS", "PATH_ALREADY_EXISTS",
                                   "TABLE_OR_VIEW_ALREADY_EXISTS")):
            raise InvalidArgumentError(used) from None
        raise
    stored = target.read(df.sparkSession)
    return content_hash_rows(list(stored.columns), (tuple(r) for r in stored.collect()))


def store_release(ledger: BudgetLedger, release_id: str, df: DataFrame) -> str:
    """Store the rows of charged DP release ``release_id`` and append its ``release``
    entry (see :meth:`cleanjoin.budget.BudgetLedger._store_release`); return their hash.

    Raises:
        InvalidArgumentError: the release was never charged, or is already stored.
        LedgerTampered: the ledger does not verify.
    """
    call = "BudgetLedger (a guarded run's release)"
    spark = df.sparkSession
    rows = ledger._entries(spark)
    charged = [r for r in rows if r["kind"] == CHARGE_KIND and r["release_id"] == release_id]
    if not charged:
        raise InvalidArgumentError(
            f"{call}: release id {release_id!r} was never charged in "
            f"collaboration {ledger.collaboration!r}"
        )
    if any(r["kind"] == RELEASE_KIND and r["release_id"] == release_id for r in rows):
        raise InvalidArgumentError(f"{call}: release id {release_id!r} is already stored")
    digest = save_rows(ledger, release_id, df, f"{call}: release id {release_id!r} is already stored")
    charge = charged[0]
    ledger._append(spark, rows, lambda rows: ledger._entry(
        rows, kind=RELEASE_KIND, seq=int(charge["seq"]), release_id=release_id,
        epsilon=0.0, delta=0.0, query_fingerprint=charge["query_fingerprint"],
        now=datetime.now(UTC), charge_id=charge["charge_id"], content_hash=digest,
    ), call)
    return digest
