"""The outcome of a guarded run: :class:`GuardReport` (counts only) and
:class:`GuardedResult` (the released rows and the review-gated writer)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cleanjoin._serialize import report_dict
from cleanjoin._table import TableRef
from cleanjoin._typing import DataFrame
from cleanjoin.contract import OutputContract, Review
from cleanjoin.errors import InternalError, InvalidArgumentError, NotAllowedError
from cleanjoin.guard._query import DEFAULT_MAX_ROWS_PER_KEY
from cleanjoin.guard._write import write_delta

if TYPE_CHECKING:
    from cleanjoin.audit import AuditLog
    from cleanjoin.dp import DPParams, DPReport

__all__ = ["GuardReport", "GuardedResult", "ReplayedRelease", "seal"]

_SIDES = ("left", "right")
_WRITE_MODES = ("overwrite", "append", "error", "errorifexists")


@dataclass(frozen=True)
class ReplayedRelease:
    """A release replayed from the budget ledger (no charge, no compute).

    Attributes:
        epsilon: ε the ledger recorded for the release when it was first computed.
        delta: δ the ledger recorded for it.
        params: the DP parameters of the query that replays it (the query fingerprint
            matches the recorded release's).
        public_groups: that query's public groups as its description holds them
            (``None``, ``"dataframe"`` or the list of groups).
    """

    epsilon: float
    delta: float
    params: DPParams
    public_groups: str | list[Any] | None = None

    @property
    def noise(self) -> str:
        """The noise kind."""
        return self.params.noise_kind.value

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict: the query's DP parameters with the recorded ε and δ."""
        out = dict(self.params.fingerprint_dict())
        out["public_groups"] = self.public_groups
        out.update({"replayed": True, "epsilon": self.epsilon, "delta": self.delta})
        return out


@dataclass(frozen=True)
class GuardReport:
    """What a guarded run did. Counts only: never which groups were removed.

    Attributes:
        run_id: unique id of the run (a UUID).
        group_by: the group columns.
        aggregates: each aggregate's description (name, kind, column, bounds).
        min_cohort: the minimum cohort enforced (distinct privacy units).
        privacy_unit: the column counted as one person.
        groups_released: released groups (rows of ``result.df``).
        groups_suppressed: groups removed for having too few privacy units (``None``
            with DP, where partition selection decides and the count is not released).
        rows_excluded_by_consent: rows removed by consent policies per side
            (``None`` without policies).
        rows_excluded_by_revocation: rows removed because their token is revoked, per
            side (``None`` without revocations).
        rows_without_join_key: rows with a null join key, per side (they never join).
        revoked_tokens_applied: distinct revoked tokens checked (``None`` without).
        max_rows_per_key: the join-explosion limit (``None``: disabled).
        query_fingerprint: SHA-256 of the query description.
        dp: the :class:`~cleanjoin.dp.DPReport` of a DP release computed by this run,
            or ``None`` (no DP, or a replay).
        release_id: the release id given to ``run``.
        replayed: True when the rows were replayed from the budget ledger.
        budget_charged: ``{"epsilon", "delta"}`` charged by this run, or ``None``.
        seconds: wall time of the run.
        replay: what the ledger recorded of a replayed release, or ``None``.
        policy: the fingerprint of the collaboration policy the run was bound to, or
            ``None`` (a run without a policy).
        groups_suppressed_secondary: with margins (``rollup()``, ``grouping_sets=``), the
            cells suppressed although they reach the minimum cohort, so that no cell in
            ``groups_suppressed`` can be recomputed from the released ones; ``None``
            without margins (``groups_suppressed`` then counts the cells of every set
            below the minimum cohort).
        groups_suppressed_dominance: the groups that reach the minimum cohort but were
            suppressed because a few privacy units hold most of a sum-type measure (the
            (n, k) dominance or p % rule, :meth:`ReadyJoin.dominance`,
            :meth:`ReadyJoin.p_percent`); ``None`` when no such rule applied (a count,
            never which groups).
        groups_suppressed_refinement: for a recorded threshold release
            (``run(budget=..., release_id=...)``, or any threshold run under a policy with
            ``refinement_guard``), the cells that reach the minimum cohort but were
            suppressed so that no earlier recorded release, subtracted from this one (or
            this one from it), isolates fewer than ``min_cohort`` people
            (``docs/disclosure.md``); ``None`` when the guard did not run (a count, never
            which groups).
    """

    run_id: str
    group_by: tuple[str, ...]
    aggregates: tuple[Mapping[str, Any], ...]
    min_cohort: int
    privacy_unit: str
    groups_released: int
    groups_suppressed: int | None
    rows_excluded_by_consent: Mapping[str, int] | None = None
    rows_excluded_by_revocation: Mapping[str, int] | None = None
    rows_without_join_key: Mapping[str, int] | None = None
    revoked_tokens_applied: int | None = None
    max_rows_per_key: int | None = DEFAULT_MAX_ROWS_PER_KEY
    query_fingerprint: str = ""
    dp: DPReport | None = None
    release_id: str | None = None
    replayed: bool = False
    budget_charged: Mapping[str, float] | None = None
    seconds: float = 0.0
    replay: ReplayedRelease | None = None
    policy: str | None = None
    groups_suppressed_secondary: int | None = None
    groups_suppressed_dominance: int | None = None
    groups_suppressed_refinement: int | None = None

    def __post_init__(self) -> None:
        if (
            self.groups_released < 0 or (self.groups_suppressed or 0) < 0
            or (self.groups_suppressed_secondary or 0) < 0
            or (self.groups_suppressed_dominance or 0) < 0
            or (self.groups_suppressed_refinement or 0) < 0
        ):
            raise InternalError("GuardReport: negative group count")
        if self.dp is not None and self.replay is not None:
            raise InternalError("GuardReport: a replayed release has no DP report of its own")
        object.__setattr__(self, "group_by", tuple(self.group_by))
        object.__setattr__(self, "aggregates", tuple(self.aggregates))

    @property
    def dp_used(self) -> bool:
        """True when the release is differentially private."""
        return self.dp is not None or self.replay is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return report_dict(
            self, omit=("replay",), aggregates=[dict(a) for a in self.aggregates],
            dp=self._dp_dict(), seconds=round(self.seconds, 3),
        )

    def __str__(self) -> str:
        lines = [f"Guarded run {self.run_id}"]
        if self.release_id is not None:
            lines.append(f"  release id          : {self.release_id}")
        if self.replayed:
            lines.append("  replayed            : yes, stored release returned (no charge, no compute)")
        lines.append(f"  groups released     : {self.groups_released}")
        if self.groups_suppressed is not None:
            lines.append(
                f"  groups suppressed   : {self.groups_suppressed} (fewer than {self.min_cohort} "
                f"distinct {self.privacy_unit})"
            )
        if self.groups_suppressed_secondary is not None:
            lines.append(
                f"  groups suppressed   : {self.groups_suppressed_secondary} more (secondary: "
                "so that no suppressed cell follows from the margins)"
            )
        if self.groups_suppressed_dominance is not None:
            lines.append(
                f"  groups suppressed   : {self.groups_suppressed_dominance} more (dominance / "
                "p % rule: a few people hold most of a sum)"
            )
        if self.groups_suppressed_refinement is not None:
            lines.append(
                f"  groups suppressed   : {self.groups_suppressed_refinement} more (refinement: "
                "so that no earlier release minus this one isolates a small group)"
            )
        lines.append(f"  min cohort          : {self.min_cohort} distinct privacy units")
        lines.append(f"  privacy unit        : {self.privacy_unit}")
        lines.append(f"  group by            : {', '.join(self.group_by)}")
        lines.append("  aggregates          :")
        for a in self.aggregates:
            column = f"({a.get('column')})" if a.get("column") else "()"
            bounds = f", bounds {list(a['bounds'])}" if a.get("bounds") is not None else ""
            lines.append(f"    {a.get('name')} = {a.get('kind')}{column}{bounds}")
        for label, counts in (
            ("excluded by consent", self.rows_excluded_by_consent),
            ("excluded (revoked)", self.rows_excluded_by_revocation),
            ("rows w/o join key", self.rows_without_join_key),
        ):
            if counts is not None:
                text = ", ".join(f"{side} {counts[side]:,}" for side in _SIDES if side in counts)
                lines.append(f"  {label:<20}: {text}")
        if self.revoked_tokens_applied is not None:
            lines.append(f"  revoked tokens      : {self.revoked_tokens_applied:,} applied")
        limit = "off" if self.max_rows_per_key is None else f"{self.max_rows_per_key:,} per side"
        lines.append(f"  max rows per key    : {limit}")
        if self.budget_charged is not None:
            lines.append(
                f"  budget charged      : ε={self.budget_charged['epsilon']:g}, "
                f"δ={self.budget_charged['delta']:g}"
            )
        lines += self._dp_lines()
        lines.append(f"  query fingerprint   : {self.query_fingerprint[:16]}…")
        return "\n".join(lines)

    def _dp_dict(self) -> dict[str, Any] | None:
        """The ``dp`` entry of :meth:`to_dict`: the DP report, the replayed release, or None."""
        part = self.dp if self.dp is not None else self.replay
        return None if part is None else json.loads(json.dumps(part.to_dict(), default=str))

    def _dp_lines(self) -> list[str]:
        """The differential-privacy lines of :meth:`__str__`."""
        part = self.dp if self.dp is not None else self.replay
        if part is None:
            return ["  differential privacy: no"]
        lines = [f"  differential privacy: ε={part.epsilon}, δ={part.delta}, {part.noise} noise"]
        for a in self.dp.aggregates if self.dp is not None else ():
            bounds = None if a.bounds is None else list(a.bounds)
            lines.append(
                f"    {a.name}: ε={_num(a.epsilon)}, δ={_num(a.delta)}, "
                f"noise stddev={_num(a.stddev)}, bounds={bounds}"
            )
        return lines


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else str(value)


@dataclass(frozen=True, eq=False)
class GuardedResult:
    """The released rows of a guarded run, its report, and the review-gated writer.

    Attributes:
        df: the released rows only (materialized: reading it never recomputes the join).
        report: the :class:`GuardReport`.
    """

    df: DataFrame = field(repr=False)
    report: GuardReport
    # set only by a guarded run (ReadyJoin.run); a result built by hand, or copied with
    # dataclasses.replace, is unsealed: it can be reviewed but not written
    _sealed: bool = field(default=False, init=False, repr=False, compare=False)

    @property
    def run_id(self) -> str:
        """The run's unique id."""
        return self.report.run_id

    @property
    def release_id(self) -> str | None:
        """The release id given to ``run``, if any."""
        return self.report.release_id

    @property
    def policy(self) -> str | None:
        """The fingerprint of the collaboration policy of the run, or ``None`` without one."""
        return self.report.policy

    def review(self, contract: OutputContract) -> Review:
        """``contract.review(self)``."""
        return contract.review(self)

    def write_delta(
        self,
        path: str,
        *,
        contract: OutputContract,
        mode: str = "overwrite",
        audit: AuditLog | None = None,
    ) -> int:
        """Review against ``contract``, then write the released rows as one Delta commit.

        A rejected result raises :class:`~cleanjoin.errors.ContractViolation` (with
        ``.reasons``) and writes nothing: an existing table keeps its version and data.
        Only a result returned by :meth:`ReadyJoin.run` can be written: one built by
        hand (or copied with ``dataclasses.replace``) raises ``NotAllowedError``, so a
        commit's metadata can only claim a contract for rows a guarded run released.
        An approved result is written with the DataFrame writer in one commit whose
        ``userMetadata`` is compact JSON with the contract fingerprint, the run id, the
        release id, the collaboration policy's fingerprint (``None`` without one), the
        query fingerprint, the content hash of the written rows, the write mode and
        (with ``audit``) the audit log's head: the seal that
        :func:`cleanjoin.verify_output` checks.

        Args:
            path: a Delta table path (anything with ``/`` or a ``scheme:``) or a table name
                (``catalog.schema.table`` or ``schema.table``; parts may be backquoted).
            contract: the :class:`~cleanjoin.contract.OutputContract` to review against.
            mode: ``"overwrite"`` (default), ``"append"`` or ``"error"``.
            audit: appends ``"contract_review"`` and ``"delta_write"`` entries.

        Returns:
            The new table version.

        Example:
            >>> version = result.write_delta("/gold/segments", contract=contract)  # doctest: +SKIP
            >>> version = result.write_delta("main.gold.segments", contract=contract)  # doctest: +SKIP
        """
        if not self._sealed:
            raise NotAllowedError(
                "write_delta: this result was not returned by a guarded run (ReadyJoin.run); "
                "a GuardedResult built by hand or copied with dataclasses.replace can be "
                "reviewed, never written"
            )
        if not isinstance(contract, OutputContract):
            raise InvalidArgumentError(
                "'contract' in write_delta must be an OutputContract, got "
                f"{type(contract).__name__}"
            )
        if not isinstance(path, str) or not path:
            raise InvalidArgumentError("'path' in write_delta must be a non-empty path or table name")
        target = TableRef.parse(path, arg="path", call="write_delta")
        if mode not in _WRITE_MODES:
            options = ", ".join(f'"{m}"' for m in _WRITE_MODES)
            raise InvalidArgumentError(
                f'Unknown mode "{mode}" in write_delta. Available options are {options}.'
            )
        return write_delta(self, target, contract=contract, mode=mode, audit=audit)


def seal(result: GuardedResult) -> GuardedResult:
    """``result``, marked as released by a guarded run (``write_delta`` needs the mark)."""
    object.__setattr__(result, "_sealed", True)
    return result
