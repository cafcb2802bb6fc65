"""A privacy-budget ledger per collaboration, kept in a Delta table.

Every differentially private release spends (ε, δ) from the collaboration's total. The
ledger records each charge (collaboration, release id, ε, δ, time UTC, query
fingerprint, sequence number) in a Delta table — a path or a table name such as
``main.clean_room.budget_ledger`` — so charges survive new sessions and clusters. A charge that would exceed the total raises
:class:`~cleanjoin.errors.BudgetExceeded` before any work, with the requested and
remaining numbers.

Concurrency: Delta blind appends never conflict, so two runs could both read "enough
budget left" and both append. The ledger therefore commits a charge as a
compare-and-append on a per-collaboration sequence number: it reads the charges (the
remaining budget and the next ``seq``), then ``MERGE INTO`` the table inserting its row
only if no row with that ``seq`` exists. If another charge won the race, the MERGE
either fails with a Delta concurrent-modification error or inserts nothing; the ledger
then re-reads, re-checks the total and retries. Two concurrent charges can never
overspend.

Released rows are kept for replay (``store_release``/``load_release``) in Delta tables
in ``<path>_releases/`` (next to the charges table, not inside it: Delta would
take a nested folder for a partition), or, for a ledger given by name, in tables
``<name>_release_<digest>`` of the same schema: re-running a release id returns the
stored rows and charges nothing, so no fresh noise can be averaged away.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from cleanjoin._compat import UTC
from cleanjoin._delta import is_conflict, is_missing
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
)

__all__ = ["BudgetLedger", "Charge", "LedgerConflictError"]

_SCHEMA = (
    "collaboration STRING, seq BIGINT, release_id STRING, epsilon DOUBLE, delta DOUBLE, "
    "charged_at TIMESTAMP, query_fingerprint STRING, total_epsilon DOUBLE, "
    "total_delta DOUBLE, charge_id STRING"
)
_MAX_ATTEMPTS = 25
_TOLERANCE = 1e-12


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
    """

    collaboration: str
    release_id: str
    epsilon: float
    delta: float
    charged_at: datetime
    query_fingerprint: str
    seq: int

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
                    f"CREATE TABLE IF NOT EXISTS {self._ref.sql} ({_SCHEMA}) USING DELTA"
                ).collect()
                self._table_ready = True
                return
            except Exception as exc:
                if not is_conflict(exc):
                    raise
                # another writer is creating the table: back off (capped), then re-check
                time.sleep(backoff(attempt + 1, cap=1.0))

    def _rows(self, spark: SparkSession) -> list[Any]:
        fn = functions_for(spark)
        try:
            frame = self._ref.read(spark)
        except Exception as exc:
            if is_missing(exc):
                return []
            raise
        try:
            return list(
                frame.where(fn.col("collaboration") == fn.lit(self.collaboration))
                .select(
                    "seq", "release_id", "epsilon", "delta", "query_fingerprint",
                    "total_epsilon", "total_delta", "charge_id",
                    fn.unix_micros(fn.col("charged_at")).alias("micros"),
                )
                .collect()
            )
        except Exception as exc:
            if is_missing(exc):
                return []
            raise

    def _charge_of(self, row: Any) -> Charge:
        return Charge(
            collaboration=self.collaboration,
            release_id=row["release_id"],
            epsilon=float(row["epsilon"]),
            delta=float(row["delta"]),
            charged_at=datetime.fromtimestamp(row["micros"] / 1e6, tz=UTC),
            query_fingerprint=row["query_fingerprint"],
            seq=int(row["seq"]),
        )

    def charges(self, *, spark: SparkSession | None = None) -> list[Charge]:
        """Every charge of this collaboration, in ``seq`` order."""
        rows = self._rows(self._session(spark, "charges"))
        return sorted((self._charge_of(r) for r in rows), key=lambda c: c.seq)

    def _remaining_of(self, rows: Sequence[Any]) -> tuple[float, float]:
        spent_e = math.fsum(float(r["epsilon"]) for r in rows)
        spent_d = math.fsum(float(r["delta"]) for r in rows)
        return (max(0.0, self.total_epsilon - spent_e), max(0.0, self.total_delta - spent_d))

    def _check_totals(self, rows: Sequence[Any]) -> None:
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
        """``(ε, δ)`` left for this collaboration."""
        rows = self._rows(self._session(spark, "remaining"))
        self._check_totals(rows)
        return self._remaining_of(rows)

    def find(self, release_id: str, *, spark: SparkSession | None = None) -> Charge | None:
        """The charge of ``release_id``, or ``None`` if it was never charged."""
        _nonempty(release_id, "BudgetLedger.find(): 'release_id'")
        for r in self._rows(self._session(spark, "find")):
            if r["release_id"] == release_id:
                return self._charge_of(r)
        return None

    # ------------------------------------------------------------------ charging

    def check_available(
        self, *, epsilon: float, delta: float, spark: SparkSession | None = None
    ) -> None:
        """Raise :class:`BudgetExceeded` now if charging ``(epsilon, delta)`` would exceed
        the total; writes nothing (:meth:`charge` checks again, atomically).

        Raises:
            BudgetExceeded: with the requested and remaining ε and δ.
        """
        session = self._session(spark, "check_available")
        self._ensure_table(session)
        rows = self._rows(session)
        self._check_totals(rows)
        self._refuse_overspend(rows, float(epsilon), float(delta))

    def _refuse_overspend(self, rows: list[Any], epsilon: float, delta: float) -> None:
        rem_e, rem_d = self._remaining_of(rows)
        if epsilon > rem_e + _TOLERANCE or delta > rem_d + _TOLERANCE:
            raise BudgetExceeded(
                f"Privacy budget exceeded for collaboration {self.collaboration!r}: "
                f"Requested: ε={epsilon:g}, δ={delta:g}. Remaining: ε={rem_e:g}, δ={rem_d:g} "
                f"(total ε={self.total_epsilon:g}, δ={self.total_delta:g})."
            )

    def charge(
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

        Raises:
            BudgetExceeded: the charge would exceed the total (nothing is charged).
            InvalidArgumentError: bad numbers, or ``release_id`` is already charged (use
                :meth:`find` and :meth:`load_release` to replay it).
            ConfigurationError: this ledger's totals differ from the recorded ones.
            LedgerConflictError: lost the race to concurrent charges too many times.
        """
        _nonempty(release_id, "BudgetLedger.charge(): 'release_id'")
        if not isinstance(query_fingerprint, str):
            raise InvalidArgumentError("BudgetLedger.charge(): 'query_fingerprint' must be a string")
        if not _real(epsilon) or epsilon < 0:
            raise InvalidArgumentError(
                f"BudgetLedger.charge(): 'epsilon' must be a finite number >= 0, got {epsilon!r}"
            )
        if not _real(delta) or not 0 <= delta < 1:
            raise InvalidArgumentError(
                f"BudgetLedger.charge(): 'delta' must be a number in [0, 1), got {delta!r}"
            )
        epsilon, delta = float(epsilon), float(delta)
        session = self._session(spark, "charge")
        self._ensure_table(session)
        charge_id = uuid.uuid4().hex
        for attempt in range(_MAX_ATTEMPTS):
            rows = self._rows(session)
            self._check_totals(rows)
            if any(r["release_id"] == release_id for r in rows):
                raise InvalidArgumentError(
                    f"BudgetLedger.charge(): release id {release_id!r} is already charged in "
                    f"collaboration {self.collaboration!r}; replay it with find()/load_release()"
                )
            self._refuse_overspend(rows, epsilon, delta)
            rem_e, rem_d = self._remaining_of(rows)
            seq = max((int(r["seq"]) for r in rows), default=0) + 1
            now = datetime.now(UTC)
            try:
                inserted = self._insert(session, seq, release_id, epsilon, delta,
                                        query_fingerprint, now, charge_id)
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
                        },
                        spark=session,
                    )
                return charge
            time.sleep(backoff(attempt + 1, base=0.02, cap=0.5))
        raise LedgerConflictError(
            f"BudgetLedger.charge(): gave up after {_MAX_ATTEMPTS} concurrent-charge conflicts "
            f"in collaboration {self.collaboration!r}; nothing was charged"
        )

    def _insert(
        self,
        spark: SparkSession,
        seq: int,
        release_id: str,
        epsilon: float,
        delta: float,
        fingerprint: str,
        now: datetime,
        charge_id: str,
    ) -> bool:
        """Compare-and-append: insert the row only if ``seq`` is still free. True if inserted."""
        source = spark.createDataFrame(
            [(self.collaboration, seq, release_id, epsilon, delta, now, fingerprint,
              self.total_epsilon, self.total_delta, charge_id)],
            _SCHEMA,
        )
        view = f"cleanjoin_charge_{charge_id}"  # unique: concurrent charges share a session
        source.createOrReplaceTempView(view)
        try:
            result = spark.sql(
                f"MERGE INTO {self._ref.sql} t USING {view} s "
                "ON t.collaboration = s.collaboration AND t.seq = s.seq "
                "WHEN NOT MATCHED THEN INSERT *"
            ).collect()
        finally:
            spark.catalog.dropTempView(view)
        if result and "num_inserted_rows" in result[0].asDict():
            return int(result[0]["num_inserted_rows"]) == 1
        # No metrics: check whether the row holding ``seq`` is ours.
        return any(
            r["seq"] == seq and r["charge_id"] == charge_id for r in self._rows(spark)
        )

    # ------------------------------------------------------------------ releases

    def _release_ref(self, release_id: str) -> TableRef:
        digest = hashlib.sha256(
            json.dumps([self.collaboration, release_id]).encode("utf-8")
        ).hexdigest()[:40]
        return self._ref.with_leaf(f"_releases/{digest}", f"_release_{digest}")

    def store_release(self, release_id: str, df: DataFrame) -> None:
        """Keep the released rows of ``release_id`` for replay (write-once Delta table).

        ``df`` must be the materialized released rows (as returned by ``dp_aggregate``);
        the release must have been charged first.

        Raises:
            InvalidArgumentError: the release was never charged, or is already stored.
        """
        _nonempty(release_id, "BudgetLedger.store_release(): 'release_id'")
        spark = df.sparkSession
        if self.find(release_id, spark=spark) is None:
            raise InvalidArgumentError(
                f"BudgetLedger.store_release(): release id {release_id!r} was never charged in "
                f"collaboration {self.collaboration!r}"
            )
        meta = json.dumps({"collaboration": self.collaboration, "release_id": release_id})
        try:
            self._release_ref(release_id).save(
                df.write.format("delta").mode("error").option("userMetadata", meta)
            )
        except Exception as exc:
            text = str(exc)
            if any(m in text for m in ("already exist", "PATH_EXISTS", "PATH_ALREADY_EXISTS", "TABLE_OR_VIEW_ALREADY_EXISTS")):
                raise InvalidArgumentError(
                    f"BudgetLedger.store_release(): release id {release_id!r} is already stored"
                ) from None
            raise

    def load_release(self, release_id: str, *, spark: SparkSession | None = None) -> DataFrame | None:
        """The stored released rows of ``release_id``, or ``None`` if none were stored."""
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
