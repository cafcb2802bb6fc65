"""A privacy-budget ledger per collaboration, kept in a Delta table.

Every differentially private release spends (ε, δ) from the collaboration's total. The
ledger records each charge (collaboration, release id, ε, δ, time UTC, query
fingerprint, sequence number) in a Delta table — a path or a table name such as
``main.clean_room.budget_ledger`` — so charges survive new sessions and clusters. A charge that would exceed the total raises
:class:`~cleanjoin.errors.BudgetExceeded` before any work, with the requested and
remaining numbers.

Integrity: the ledger is hash-chained like the audit log and each of its appends is one
Delta commit whose ``userMetadata`` anchors the chain's head (``cleanjoin._ledgerchain``).
Every read verifies the chain and the table's commit history; a deleted, edited, reordered
or truncated row, or any commit other than a cleanjoin append (``DELETE``, ``UPDATE``,
``MERGE``, an overwrite, a foreign append), raises :class:`~cleanjoin.errors.LedgerTampered`
before anything is spent, and the remaining budget comes from a verified chain only.

Concurrency: a charge is a compare-and-append on the chain's next ``entry_seq``: it reads
the verified rows (the remaining budget and the next position), then appends its row with
one idempotent blind append keyed on that position (Delta's ``txnAppId``/``txnVersion``).
If another charge won the race, the append is skipped or fails with a Delta conflict; the
ledger then re-reads, re-checks the total and retries. Two concurrent charges can never
overspend.

Charges and stored releases are written only by a guarded run
(``ReadyJoin.run(budget=..., release_id=...)``). Released rows are kept for replay in Delta
tables in ``<path>_releases/`` (next to the charges table, not inside it: Delta would
take a nested folder for a partition), or, for a ledger given by name, in tables
``<name>_release_<digest>``; the ledger records their content hash in a ``release`` row.
Re-running a release id returns the stored rows, if their hash still matches, and charges
nothing, so no fresh noise can be averaged away. A threshold (non-DP) run given a ledger
is recorded as a ``threshold`` entry (ε = δ = 0, no charge; :class:`ThresholdRelease`)
for the refinement guard (``docs/disclosure.md``).

Example:
    >>> from cleanjoin.budget import BudgetLedger
    >>> ledger = BudgetLedger("/tmp/ledger", collaboration="fraud-consortium",
    ...                       total_epsilon=5.0, total_delta=1e-5)
    >>> ledger.total
    (5.0, 1e-05)
    >>> ledger.remaining(spark=spark)  # doctest: +SKIP
    (5.0, 1e-05)
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from cleanjoin._auditverify import GENESIS_HASH
from cleanjoin._compat import UTC
from cleanjoin._delta import is_conflict, is_missing
from cleanjoin._ledgerchain import anchor, make_ledger_entry, verify_chain, verify_history
from cleanjoin._ledgerrelease import (
    CHARGE_KIND,
    RELEASE_KIND,
    THRESHOLD_KIND,
    ThresholdRelease,
    store_release,
    threshold_of,
)
from cleanjoin._retry import backoff
from cleanjoin._serialize import report_dict
from cleanjoin._spark import functions_for, resolve_session
from cleanjoin._table import TableRef
from cleanjoin._typing import DataFrame, SparkSession
from cleanjoin.errors import (
    BudgetExceeded,
    ConfigurationError,
    InvalidArgumentError,
    LedgerConflictError,
    LedgerTampered,
)

__all__ = ["BudgetLedger", "Charge", "LedgerConflictError", "ThresholdRelease"]

_SCHEMA = (
    "collaboration STRING, seq BIGINT, release_id STRING, epsilon DOUBLE, delta DOUBLE, "
    "charged_at TIMESTAMP, query_fingerprint STRING, total_epsilon DOUBLE, "
    "total_delta DOUBLE, charge_id STRING, kind STRING, content_hash STRING, "
    "entry_seq BIGINT, prev_hash STRING, entry_hash STRING"
)
_COLUMNS = tuple(part.strip().split(" ")[0] for part in _SCHEMA.split(","))
_MAX_ATTEMPTS = 25
_TOLERANCE = 1e-12
_CHARGE, _RELEASE, _THRESHOLD = CHARGE_KIND, RELEASE_KIND, THRESHOLD_KIND
# the ledger keeps its whole commit history (the anchors of its chain): no log clean-up
_PROPERTIES = (
    "'delta.appendOnly' = 'true', 'delta.logRetentionDuration' = 'interval 36500 days'"
)


class _AuditSink(Protocol):
    def append(
        self,
        action: str,
        parameters: Mapping[str, Any],
        *,
        inputs: Sequence[Mapping[str, Any]] = ...,
        output: Mapping[str, Any] | None = ...,
        spark: SparkSession | None = ...,
    ) -> Any: ...


@dataclass(frozen=True)
class Charge:
    """One recorded spend of privacy budget.

    Attributes:
        collaboration: the collaboration charged.
        release_id: the release the budget was spent on (unique per collaboration).
        epsilon: ε charged.
        delta: δ charged.
        charged_at: commit time (UTC, timezone-aware).
        query_fingerprint: fingerprint of the query that spent it.
        seq: 1, 2, ... per collaboration, in commit order.
        content_hash: the content hash of the release's stored rows as the ledger
            recorded it when they were stored (``None`` until then).
    """

    collaboration: str
    release_id: str
    epsilon: float
    delta: float
    charged_at: datetime
    query_fingerprint: str
    seq: int
    content_hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict.

        Example:
            >>> from datetime import datetime, timezone
            >>> Charge("c", "r1", 0.5, 0.0, datetime(2026, 1, 1, tzinfo=timezone.utc), "fp", 1).to_dict()["charged_at"]
            '2026-01-01T00:00:00+00:00'
        """
        return report_dict(self)


def _real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _nonempty(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(f"{what} must be a non-empty string")
    return value


class BudgetLedger:
    """The privacy-budget ledger of one collaboration, stored as a Delta table.

    Args:
        path: the Delta table of charges, created on first use: a folder path (released
            rows are kept in ``<path>_releases/``) or a table name ``schema.table`` /
            ``catalog.schema.table`` (released rows in ``<name>_release_<digest>``).
        collaboration: the collaboration's name; one table may hold several.
        total_epsilon: the collaboration's total ε (finite, > 0).
        total_delta: the collaboration's total δ in ``[0, 1)``.
        spark: the session used when a method gets no ``spark=``.

    The totals are recorded with every charge; a ledger object whose totals differ from
    the recorded ones is refused (``ConfigurationError``) so a budget cannot be raised by
    opening the table with bigger numbers.
    """

    def __init__(
        self,
        path: str,
        *,
        collaboration: str,
        total_epsilon: float,
        total_delta: float,
        spark: SparkSession | None = None,
    ) -> None:
        self.path = _nonempty(path, "BudgetLedger(): 'path'").rstrip("/")
        self._ref = TableRef.parse(self.path, arg="path", call="BudgetLedger()")
        self.collaboration = _nonempty(collaboration, "BudgetLedger(): 'collaboration'")
        if not _real(total_epsilon) or total_epsilon <= 0:
            raise InvalidArgumentError(
                f"BudgetLedger(): 'total_epsilon' must be a finite number > 0, got {total_epsilon!r}"
            )
        if not _real(total_delta) or not 0 <= total_delta < 1:
            raise InvalidArgumentError(
                f"BudgetLedger(): 'total_delta' must be a number in [0, 1), got {total_delta!r}"
            )
        self.total_epsilon = float(total_epsilon)
        self.total_delta = float(total_delta)
        self._spark = spark
        self._table_ready = False

    def __repr__(self) -> str:
        return (
            f"BudgetLedger(path={self.path!r}, collaboration={self.collaboration!r}, "
            f"total_epsilon={self.total_epsilon}, total_delta={self.total_delta})"
        )

    @property
    def table(self) -> str:
        """The charges table in SQL: ``delta.`path``` or the backquoted table name."""
        return self._ref.sql

    @property
    def total(self) -> tuple[float, float]:
        """``(total_epsilon, total_delta)``."""
        return (self.total_epsilon, self.total_delta)

    # ------------------------------------------------------------------ reading

    def _session(self, spark: SparkSession | None, call: str) -> SparkSession:
        return resolve_session(
            f"BudgetLedger.{call}()", spark, self._spark, hint="pass spark= here or to BudgetLedger()"
        )

    def _ensure_table(self, spark: SparkSession) -> None:
        if self._table_ready:
            return
        for attempt in range(_MAX_ATTEMPTS):
            try:
                spark.sql(
                    f"CREATE TABLE IF NOT EXISTS {self._ref.sql} ({_SCHEMA}) USING DELTA "
                    f"TBLPROPERTIES ({_PROPERTIES})"
                ).collect()
                self._table_ready = True
                return
            except Exception as exc:
                if not is_conflict(exc):
                    raise
                # another writer is creating the table: back off (capped), then re-check
                time.sleep(backoff(attempt + 1, cap=1.0))

    def _entries(self, spark: SparkSession) -> list[dict[str, Any]]:
        """This collaboration's ledger rows (as chain entries), verified: the chain and the
        table's commit history, read at one version.

        Raises:
            LedgerTampered: the chain or its anchors do not verify.
        """
        fn = functions_for(spark)
        try:
            history = [
                r.asDict() for r in spark.sql(f"DESCRIBE HISTORY {self._ref.sql}")
                .select("version", "operation", "operationParameters", "userMetadata").collect()
            ]
        except Exception as exc:
            if is_missing(exc):
                return []
            raise
        if not history:
            return []
        version = max(int(h["version"]) for h in history)
        try:
            rows = (
                spark.sql(f"SELECT * FROM {self._ref.sql} VERSION AS OF {version}")
                .where(fn.col("collaboration") == fn.lit(self.collaboration))
                .select(*[c for c in _COLUMNS if c != "charged_at"],
                        fn.unix_micros(fn.col("charged_at")).alias("charged_at_micros"))
                .collect()
            )
        except Exception as exc:
            if is_missing(exc):
                return []
            if "UNRESOLVED_COLUMN" in str(exc) or "cannot resolve" in str(exc):
                raise LedgerTampered(
                    f"BudgetLedger: the table {self._ref.describe} has no hash chain (a ledger "
                    "written before chained ledgers, or not a ledger); nothing is spent on it"
                ) from None
            raise
        entries = [r.asDict() for r in rows]
        # the history first: it names the commit that changed the table
        verify_history(history, entries, collaboration=self.collaboration)
        verify_chain(entries, collaboration=self.collaboration)
        return sorted(entries, key=lambda e: int(e["entry_seq"]))

    def _charge_of(self, row: Mapping[str, Any], content_hash: str | None = None) -> Charge:
        return Charge(
            collaboration=self.collaboration,
            release_id=row["release_id"],
            epsilon=float(row["epsilon"]),
            delta=float(row["delta"]),
            charged_at=datetime.fromtimestamp(row["charged_at_micros"] / 1e6, tz=UTC),
            query_fingerprint=row["query_fingerprint"],
            seq=int(row["seq"]),
            content_hash=content_hash,
        )

    def _charges_of(self, entries: Sequence[Mapping[str, Any]]) -> list[Charge]:
        stored = {e["release_id"]: e["content_hash"] for e in entries if e["kind"] == _RELEASE}
        return sorted(
            (self._charge_of(e, stored.get(e["release_id"])) for e in entries
             if e["kind"] == _CHARGE),
            key=lambda c: c.seq,
        )

    def charges(self, *, spark: SparkSession | None = None) -> list[Charge]:
        """Every charge of this collaboration, in ``seq`` order (the ledger verified first).

        Raises:
            LedgerTampered: the ledger's chain or its commit history does not verify.
        """
        return self._charges_of(self._entries(self._session(spark, "charges")))

    def _remaining_of(self, rows: Sequence[Mapping[str, Any]]) -> tuple[float, float]:
        spent = [r for r in rows if r["kind"] == _CHARGE]
        spent_e = math.fsum(float(r["epsilon"]) for r in spent)
        spent_d = math.fsum(float(r["delta"]) for r in spent)
        return (max(0.0, self.total_epsilon - spent_e), max(0.0, self.total_delta - spent_d))

    def _check_totals(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for r in rows:
            if (
                abs(float(r["total_epsilon"]) - self.total_epsilon) > _TOLERANCE
                or abs(float(r["total_delta"]) - self.total_delta) > _TOLERANCE
            ):
                raise ConfigurationError(
                    f"BudgetLedger: collaboration {self.collaboration!r} was charged with totals "
                    f"ε={float(r['total_epsilon'])}, δ={float(r['total_delta'])}; this ledger says "
                    f"ε={self.total_epsilon}, δ={self.total_delta}. Totals cannot be changed."
                )

    def remaining(self, *, spark: SparkSession | None = None) -> tuple[float, float]:
        """``(ε, δ)`` left for this collaboration, from the verified chain only.

        Raises:
            LedgerTampered: the ledger's chain or its commit history does not verify.
        """
        rows = self._entries(self._session(spark, "remaining"))
        self._check_totals(rows)
        return self._remaining_of(rows)

    def find(self, release_id: str, *, spark: SparkSession | None = None) -> Charge | None:
        """The charge of ``release_id`` (with the content hash of its stored rows, once
        stored), or ``None`` if it was never charged."""
        _nonempty(release_id, "BudgetLedger.find(): 'release_id'")
        for charge in self._charges_of(self._entries(self._session(spark, "find"))):
            if charge.release_id == release_id:
                return charge
        return None

    def _thresholds_of(self, entries: Sequence[Mapping[str, Any]]) -> list[ThresholdRelease]:
        return [threshold_of(e, self.collaboration) for e in entries if e["kind"] == _THRESHOLD]

    def threshold_releases(self, *, spark: SparkSession | None = None) -> list[ThresholdRelease]:
        """Every recorded threshold release of this collaboration, in ledger order (the
        ledger verified first). They spend nothing (see :meth:`remaining`).

        Raises:
            LedgerTampered: the ledger's chain or its commit history does not verify.
        """
        return self._thresholds_of(self._entries(self._session(spark, "threshold_releases")))

    def find_threshold(
        self, release_id: str, *, spark: SparkSession | None = None
    ) -> ThresholdRelease | None:
        """The recorded threshold release ``release_id``, or ``None``."""
        _nonempty(release_id, "BudgetLedger.find_threshold(): 'release_id'")
        for record in self.threshold_releases(spark=spark):
            if record.release_id == release_id:
                return record
        return None

    def _append(
        self,
        spark: SparkSession,
        rows: list[dict[str, Any]],
        entry: Callable[[Sequence[Mapping[str, Any]]], dict[str, Any]],
        call: str,
    ) -> None:
        """Append ``entry(rows)`` after the verified ``rows``, re-reading and retrying when a
        concurrent append wins the position."""
        for attempt in range(_MAX_ATTEMPTS):
            try:
                if self._insert(spark, entry(rows)):
                    return
            except Exception as exc:
                if not is_conflict(exc):
                    raise
            time.sleep(backoff(attempt + 1, base=0.02, cap=0.5))
            rows = self._entries(spark)
        raise LedgerConflictError(
            f"{call}: gave up after {_MAX_ATTEMPTS} concurrent-append conflicts in "
            f"collaboration {self.collaboration!r}; the release's rows are stored but not "
            "recorded, so it cannot be replayed"
        )

    # ------------------------------------------------------------------ charging

    def check_available(
        self, *, epsilon: float, delta: float, spark: SparkSession | None = None
    ) -> None:
        """Raise :class:`BudgetExceeded` now if charging ``(epsilon, delta)`` would exceed
        the total; writes nothing (a guarded run's charge checks again, atomically).

        Raises:
            BudgetExceeded: with the requested and remaining ε and δ.
            LedgerTampered: the ledger does not verify.
        """
        session = self._session(spark, "check_available")
        self._ensure_table(session)
        rows = self._entries(session)
        self._check_totals(rows)
        self._refuse_overspend(rows, float(epsilon), float(delta))

    def _refuse_overspend(
        self, rows: Sequence[Mapping[str, Any]], epsilon: float, delta: float
    ) -> None:
        rem_e, rem_d = self._remaining_of(rows)
        if epsilon > rem_e + _TOLERANCE or delta > rem_d + _TOLERANCE:
            raise BudgetExceeded(
                f"Privacy budget exceeded for collaboration {self.collaboration!r}: "
                f"Requested: ε={epsilon:g}, δ={delta:g}. Remaining: ε={rem_e:g}, δ={rem_d:g} "
                f"(total ε={self.total_epsilon:g}, δ={self.total_delta:g})."
            )

    def _charge(
        self,
        release_id: str,
        *,
        epsilon: float,
        delta: float,
        query_fingerprint: str,
        spark: SparkSession | None = None,
        audit: _AuditSink | None = None,
    ) -> Charge:
        """Spend ``(epsilon, delta)`` on ``release_id``, atomically and concurrency-safely.

        Not public: only a guarded run charges (``ReadyJoin.run(budget=..., release_id=...)``).

        Raises:
            BudgetExceeded: the charge would exceed the total (nothing is charged).
            InvalidArgumentError: ε not > 0, δ not in [0, 1), or ``release_id`` is already
                charged (replay it with ``run(release_id=...)``).
            ConfigurationError: this ledger's totals differ from the recorded ones.
            LedgerTampered: the ledger does not verify (nothing is charged).
            LedgerConflictError: lost the race to concurrent charges too many times.
        """
        call = "BudgetLedger (a guarded run's charge)"
        _nonempty(release_id, f"{call}: 'release_id'")
        if not isinstance(query_fingerprint, str):
            raise InvalidArgumentError(f"{call}: 'query_fingerprint' must be a string")
        if not _real(epsilon) or epsilon <= 0:
            raise InvalidArgumentError(
                f"{call}: 'epsilon' must be a finite number > 0 (a release costs budget), "
                f"got {epsilon!r}"
            )
        if not _real(delta) or not 0 <= delta < 1:
            raise InvalidArgumentError(
                f"{call}: 'delta' must be a finite number in [0, 1), got {delta!r}"
            )
        epsilon, delta = float(epsilon), float(delta)
        session = self._session(spark, "charge")
        self._ensure_table(session)
        charge_id = uuid.uuid4().hex
        for attempt in range(_MAX_ATTEMPTS):
            rows = self._entries(session)
            self._check_totals(rows)
            if any(r["kind"] == _THRESHOLD and r["release_id"] == release_id for r in rows):
                raise InvalidArgumentError(
                    f"BudgetLedger: release id {release_id!r} is a threshold release in "
                    f"collaboration {self.collaboration!r} (it charged nothing); use a new "
                    "release id"
                )
            if any(r["kind"] == _CHARGE and r["release_id"] == release_id for r in rows):
                raise InvalidArgumentError(
                    f"BudgetLedger: release id {release_id!r} is already charged in "
                    f"collaboration {self.collaboration!r}; replay it with "
                    "run(budget=..., release_id=...)"
                )
            self._refuse_overspend(rows, epsilon, delta)
            rem_e, rem_d = self._remaining_of(rows)
            seq = max((int(r["seq"]) for r in rows if r["kind"] == _CHARGE), default=0) + 1
            now = datetime.now(UTC)
            entry = self._entry(
                rows, kind=_CHARGE, seq=seq, release_id=release_id, epsilon=epsilon,
                delta=delta, query_fingerprint=query_fingerprint, now=now, charge_id=charge_id,
                content_hash=None,
            )
            try:
                inserted = self._insert(session, entry)
            except Exception as exc:
                if not is_conflict(exc):
                    raise
                inserted = False
            if inserted:
                charge = Charge(self.collaboration, release_id, epsilon, delta,
                                now, query_fingerprint, seq)
                if audit is not None:
                    audit.append(
                        "budget_charge",
                        {
                            "ledger": self._ref.name,
                            "collaboration": self.collaboration,
                            "release_id": release_id,
                            "epsilon": epsilon,
                            "delta": delta,
                            "seq": seq,
                            "query_fingerprint": query_fingerprint,
                            "remaining_epsilon": max(0.0, rem_e - epsilon),
                            "remaining_delta": max(0.0, rem_d - delta),
                            "ledger_entry_seq": entry["entry_seq"],
                            "ledger_entry_hash": entry["entry_hash"],
                        },
                        spark=session,
                    )
                return charge
            time.sleep(backoff(attempt + 1, base=0.02, cap=0.5))
        raise LedgerConflictError(
            f"BudgetLedger: gave up after {_MAX_ATTEMPTS} concurrent-charge conflicts "
            f"in collaboration {self.collaboration!r}; nothing was charged"
        )

    def _entry(
        self,
        rows: Sequence[Mapping[str, Any]],
        *,
        kind: str,
        seq: int,
        release_id: str,
        epsilon: float,
        delta: float,
        query_fingerprint: str,
        now: datetime,
        charge_id: str,
        content_hash: str | None,
    ) -> dict[str, Any]:
        """The next chain entry after the verified ``rows``."""
        prev = str(rows[-1]["entry_hash"]) if rows else GENESIS_HASH
        micros = (now - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        return make_ledger_entry(
            {
                "collaboration": self.collaboration, "entry_seq": len(rows) + 1, "seq": seq,
                "kind": kind, "release_id": release_id, "epsilon": epsilon, "delta": delta,
                "charged_at_micros": micros, "query_fingerprint": query_fingerprint,
                "total_epsilon": self.total_epsilon, "total_delta": self.total_delta,
                "charge_id": charge_id, "content_hash": content_hash,
            },
            prev,
        )

    def _insert(self, spark: SparkSession, entry: Mapping[str, Any]) -> bool:
        """Compare-and-append ``entry``: one idempotent blind append keyed on its
        ``entry_seq`` (see :meth:`TableRef.append_once`), whose commit metadata is the
        entry's anchor. True if this call appended it."""
        when = datetime.fromtimestamp(entry["charged_at_micros"] / 1e6, tz=UTC)
        values = {**entry, "charged_at": when}
        source = spark.createDataFrame([tuple(values[c] for c in _COLUMNS)], _SCHEMA)
        entry_seq = int(entry["entry_seq"])
        app_id = "cleanjoin-ledger-" + hashlib.sha256(
            self.collaboration.encode("utf-8")
        ).hexdigest()[:32]
        return self._ref.append_once(
            source, app_id=app_id, version=entry_seq,
            marker=anchor(self.collaboration, entry_seq, entry["entry_hash"]),
            landed=lambda: any(
                int(e["entry_seq"]) == entry_seq and e["entry_hash"] == entry["entry_hash"]
                for e in self._entries(spark)
            ),
        )

    # ------------------------------------------------------------------ releases

    def _release_ref(self, release_id: str) -> TableRef:
        digest = hashlib.sha256(
            json.dumps([self.collaboration, release_id]).encode("utf-8")
        ).hexdigest()[:40]
        return self._ref.with_leaf(f"_releases/{digest}", f"_release_{digest}")

    def _store_release(self, release_id: str, df: DataFrame) -> str:
        """Keep the released rows of a charged DP release for replay and record their
        content hash in the chain; return it (not public: only a guarded run does this;
        see :func:`cleanjoin._ledgerrelease.store_release`)."""
        _nonempty(release_id, "BudgetLedger (a guarded run's release): 'release_id'")
        return store_release(self, release_id, df)

    def load_release(self, release_id: str, *, spark: SparkSession | None = None) -> DataFrame | None:
        """The stored released rows of ``release_id``, or ``None`` if none were stored.

        These are the rows as stored; a guarded run replays them only if their content
        hash equals the one the ledger recorded (see :meth:`find`).
        """
        _nonempty(release_id, "BudgetLedger.load_release(): 'release_id'")
        session = self._session(spark, "load_release")
        try:
            frame = self._release_ref(release_id).read(session)
            frame.columns  # noqa: B018 - forces analysis (Connect is lazy)
        except Exception as exc:
            if is_missing(exc):
                return None
            raise
        return cast("DataFrame | None", frame)
