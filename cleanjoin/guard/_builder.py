"""The staged, immutable builder of guarded queries (see :mod:`cleanjoin.guard`):
``GuardedJoin`` → ``GroupedJoin`` → ``AggregatedJoin`` → ``ReadyJoin``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from typing_extensions import Self

from cleanjoin._spark import is_connect
from cleanjoin._typing import DataFrame, SparkSession
from cleanjoin.agg import Aggregate
from cleanjoin.consent import ConsentPolicy
from cleanjoin.errors import ConfigurationError, InvalidArgumentError, NotAllowedError
from cleanjoin.guard import _bound, _margins, _rules
from cleanjoin.guard._disclosure import DisclosureRules
from cleanjoin.guard._dominance import Dominance
from cleanjoin.guard._execute import execute
from cleanjoin.guard._provenance import check_key_options, person_columns
from cleanjoin.guard._query import (
    DEFAULT_MAX_ROWS_PER_KEY,
    DPSpec,
    InputSchemas,
    Query,
    is_df,
)

if TYPE_CHECKING:
    from cleanjoin.audit import AuditLog
    from cleanjoin.budget import BudgetLedger
    from cleanjoin.guard._result import GuardedResult
    from cleanjoin.policy import CollaborationPolicy

__all__ = [
    "AggregatedJoin",
    "GroupedJoin",
    "GuardedJoin",
    "ReadyJoin",
]

# --------------------------------------------------------------------------- stage 1


@dataclass(frozen=True, eq=False)
class GuardedJoin:
    """Stage 1: the two inputs, the join column and the row filters.

    Attributes:
        left: the first party's DataFrame (``"left"`` side of consent policies).
        right: the second party's DataFrame.
        on: the token column, same name on both sides, or a pair ``(left, right)``.
        consent: a :class:`~cleanjoin.consent.ConsentPolicy` or a sequence of them,
            each applied to its own side before the join (nulls never consent).
        revoked: revoked tokens, a DataFrame or a Delta table (path or name) with the revocation
            schema (see :func:`cleanjoin.revocation.load_revocations`); rows whose join
            key is revoked are removed from both sides before the join.
        max_rows_per_key: the most rows a join key may have on each side;
            ``None`` disables the join-explosion guard.
        token_keys: refuse keys not shaped like spec-v1 tokens (always under a policy).
        person_column: a side with this column may not hold a person under several keys
            (under a policy: each party's ``person_column``); see ``docs/disclosure.md``.

    A join bound to a :class:`~cleanjoin.policy.CollaborationPolicy` is made by
    :meth:`from_policy` only; it and every later stage obey the policy's rules.

    Raises:
        InvalidArgumentError: an input is not a DataFrame, bad ``on`` or limit.
        ConfigurationError: the inputs belong to different session kinds.
        ColumnNotFoundError: a join column is missing.
        SchemaMismatchError: the join columns have different types, or a non-token
            column has the same name on both sides (rename it on one side).

    Example:
        >>> GuardedJoin(provider_df, consumer_df, on="card_number_token")  # doctest: +SKIP
    """

    left: DataFrame = field(repr=False)
    right: DataFrame = field(repr=False)
    on: str | tuple[str, str] = field(kw_only=True)
    consent: ConsentPolicy | Sequence[ConsentPolicy] | None = field(default=None, kw_only=True)
    revoked: DataFrame | str | None = field(default=None, kw_only=True, repr=False)
    max_rows_per_key: int | None = field(default=DEFAULT_MAX_ROWS_PER_KEY, kw_only=True)
    token_keys: bool = field(default=False, kw_only=True)
    person_column: str | None = field(default=None, kw_only=True)
    # set by from_policy only (checked in __post_init__); kept by dataclasses.replace
    _binding: _bound.PolicyBinding | None = field(default=None, kw_only=True, repr=False)
    _schemas: InputSchemas = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for side, df in (("left", self.left), ("right", self.right)):
            if not is_df(df):
                raise InvalidArgumentError(
                    f"'{side}' in GuardedJoin must be a DataFrame, got {type(df).__name__}"
                )
        _bound.check_frames(self._binding, left=self.left, right=self.right)
        if is_connect(self.left) != is_connect(self.right):
            raise ConfigurationError(
                "GuardedJoin: 'left' and 'right' belong to different kinds of session "
                "(one classic, one Spark Connect); load both with the same session"
            )
        on = self.on
        if isinstance(on, str):
            pair = (on, on)
        elif isinstance(on, list | tuple) and len(on) == 2 and all(isinstance(c, str) for c in on):
            pair = (on[0], on[1])
        else:
            raise InvalidArgumentError(
                "'on' in GuardedJoin must be a column name or a pair (left_column, right_column)"
            )
        if not all(pair):
            raise InvalidArgumentError("'on' in GuardedJoin must name non-empty columns")
        object.__setattr__(self, "on", on if isinstance(on, str) else pair)
        # each side's schema, read once (under Spark Connect every read is a round trip);
        # the later stages' checks and the executor use it
        left, right = ({f.name: f.dataType for f in df.schema.fields} for df in (self.left, self.right))
        schemas = InputSchemas(left, right, pair)
        object.__setattr__(self, "_schemas", schemas)
        _rules.check_inputs(schemas)
        policies: tuple[ConsentPolicy, ...]
        if self.consent is None:
            policies = ()
        elif isinstance(self.consent, ConsentPolicy):
            policies = (self.consent,)
        elif isinstance(self.consent, list | tuple):
            policies = tuple(self.consent)
        else:
            raise InvalidArgumentError(
                "'consent' in GuardedJoin must be a ConsentPolicy or a list of them, got "
                f"{type(self.consent).__name__}"
            )
        _rules.check_consent(schemas, policies)
        object.__setattr__(self, "consent", policies)
        if self.revoked is not None and not (isinstance(self.revoked, str) or is_df(self.revoked)):
            raise InvalidArgumentError(
                "'revoked' in GuardedJoin must be a DataFrame, a Delta table path or name, or None, got "
                f"{type(self.revoked).__name__}"
            )
        limit = self.max_rows_per_key
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InvalidArgumentError(
                f"'max_rows_per_key' in GuardedJoin must be an integer >= 1 or None, got {limit!r}"
            )
        person = self.person_column
        check_key_options(schemas, self.token_keys, person)
        _bound.check_join(
            self._binding, keys=schemas.keys, consent=policies, revoked=self.revoked,
            max_rows_per_key=limit, schemas=schemas, token_keys=self.token_keys,
            person_column=person,
        )

    @classmethod
    def from_policy(
        cls,
        policy: CollaborationPolicy,
        *,
        spark: SparkSession,
        fingerprint: str,
        parties: tuple[str, str] | None = None,
    ) -> GuardedJoin:
        """The guarded join of a collaboration policy: its inputs, filters and rules.

        Refuses unless ``policy.fingerprint == fingerprint`` (the value both parties
        approved). Reads both parties' tables (path or name) itself, applies each
        party's consent rules and revocation list, joins on each party's
        ``join_column`` with the policy's ``max_rows_per_key``, and binds every later
        stage to the policy:

        * ``group_by`` only on the allowed dimensions of the party owning the column;
        * only allowed (measure, aggregate) pairs; ``count`` is always allowed; an
          aggregate without bounds gets the owner's, tighter bounds are fine, wider
          ones are refused;
        * ``min_cohort`` below the policy's floor is refused (asking for more is fine);
          ``min_cohort()`` without ``n`` asks for the floor (a stage is still run only
          after ``min_cohort``);
        * the privacy unit is the policy's; ε and δ above its ceilings are refused;
          public groups only from its ``dp.public_groups`` list;
        * with ``dp.required``, a run without ``with_dp`` is refused; a DP run charges
          the policy's ledger by itself and needs a ``release_id``; any other ledger
          is refused;
        * the report of a DP run holds no exact counts of people or rows
          (``rows_excluded_by_consent``, ``rows_excluded_by_revocation``,
          ``rows_without_join_key`` and ``revoked_tokens_applied`` are ``None``).

        Every refusal is a :class:`~cleanjoin.errors.PolicyViolation` with ``.rule``
        (the policy key) and ``.argument``; the run's query, report and result carry
        the policy's fingerprint.

        Args:
            policy: the :class:`~cleanjoin.policy.CollaborationPolicy`.
            spark: the session that reads the tables.
            fingerprint: the approved fingerprint of the policy.
            parties: the left and right parties' names (default: the policy's two
                parties in document order).

        Raises:
            PolicyViolation: the fingerprint is not the policy's.
            ConfigurationError: a table cannot be read, or the policy's privacy unit
                is not a column of exactly one input.

        Example:
            >>> policy = CollaborationPolicy.load("fraud-consortium.policy.yaml")  # doctest: +SKIP
            >>> join = GuardedJoin.from_policy(policy, spark=spark,  # doctest: +SKIP
            ...                                fingerprint="9f2c…")
        """
        binding = _bound.bind(policy, spark=spark, fingerprint=fingerprint, parties=parties)
        return cls(
            binding.left, binding.right, on=binding.keys, consent=binding.consent,
            revoked=binding.revoked, max_rows_per_key=policy.max_rows_per_key, token_keys=True,
            _binding=binding,
        )

    # -- helpers used by later stages ---------------------------------------------------

    @property
    def keys(self) -> tuple[str, str]:
        """The join columns as a pair ``(left, right)``."""
        return self._schemas.keys

    @property
    def policies(self) -> tuple[ConsentPolicy, ...]:
        """The consent policies as a tuple."""
        return tuple(self.consent) if isinstance(self.consent, tuple) else ()

    @property
    def policy(self) -> CollaborationPolicy | None:
        """The collaboration policy the query is bound to, or ``None``."""
        return None if self._binding is None else self._binding.policy

    def group_by(
        self, *columns: str, grouping_sets: Sequence[Sequence[str]] | None = None
    ) -> GroupedJoin:
        """Group the joined rows by non-token columns of either side.

        Args:
            columns: the group columns.
            grouping_sets: release margins: one table with a cell per key of each set,
                every set a subset of the group columns and the finest (all of them)
                included, e.g. ``[("a", "b"), ("a",), ()]``. The released rows get the
                marker column ``grouping_id`` (see :meth:`GroupedJoin.rollup`).

        Raises:
            NotAllowedError: a join/token column, or a Column expression.
            ColumnNotFoundError: a column in neither input.
            InvalidArgumentError: invalid grouping sets.

        Example:
            >>> GuardedJoin(l, r, on="t").group_by("mcc", "age_band")  # doctest: +SKIP
            >>> GuardedJoin(l, r, on="t").group_by(  # doctest: +SKIP
            ...     "mcc", "age_band", grouping_sets=[("mcc", "age_band"), ("mcc",), ()])
        """
        call = "GuardedJoin.group_by()"
        group_columns = _rules.flatten(call, columns)
        if grouping_sets is None:
            return GroupedJoin(self, group_columns)
        sets = _margins.grouping_sets(call, group_columns, grouping_sets)
        return GroupedJoin(self, group_columns, grouping_sets=sets)


# --------------------------------------------------------------------------- stage 2


@dataclass(frozen=True, eq=False)
class GroupedJoin:
    """Stage 2: a join with its group columns; next, :meth:`agg`.

    Attributes:
        join: the :class:`GuardedJoin`.
        group_columns: the group columns.
        grouping_sets: the grouping sets of a release with margins (see :meth:`rollup`
            and ``GuardedJoin.group_by(grouping_sets=...)``), or ``None``.
    """

    join: GuardedJoin
    group_columns: tuple[str, ...]
    grouping_sets: tuple[tuple[str, ...], ...] | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        # every stage validates itself, so a stage built directly (or with
        # dataclasses.replace) obeys the same rules as one reached through the builder
        join = _join_of(self.join)
        _rules.check_groups(join._schemas, self.group_columns)
        _bound.check_groups(join._binding, join._schemas, self.group_columns)
        _margins.check_stage_sets(self.group_columns, self.grouping_sets)

    def rollup(self) -> GroupedJoin:
        """Release margins over the group columns in order: for ``group_by(a, b)``, the
        sets ``(a, b)``, ``(a)`` and ``()`` in one table.

        A rolled-up column is null in a margin row; the marker column ``grouping_id``
        (an ``int``, as Spark's ``grouping_id()``: bit ``n - 1 - i`` set when the
        ``i``-th group column is rolled up, so 0 for the finest cells and ``2**n - 1``
        for the grand total) tells a margin from a null value. Every cell of every set
        obeys the minimum cohort, and cells are suppressed as well so that no suppressed
        one can be recomputed from the released cells (``docs/disclosure-margins.md``).
        Not available with ``with_dp`` yet.

        Raises:
            InvalidArgumentError: grouping sets are already set.

        Example:
            >>> GuardedJoin(l, r, on="t").group_by("mcc", "age_band").rollup()  # doctest: +SKIP
        """
        if self.grouping_sets is not None:
            raise InvalidArgumentError(
                "GroupedJoin.rollup(): this grouping already has grouping sets; use either "
                "rollup() or grouping_sets="
            )
        return replace(self, grouping_sets=_margins.rollup_sets(self.group_columns))

    def agg(self, *aggregates: Aggregate) -> AggregatedJoin:
        """The aggregates to release, from :mod:`cleanjoin.agg`.

        Raises:
            NotAllowedError: a raw Column or string expression, or an aggregate of a
                join/token column.
            UnsupportedColumnTypeError: a sum/mean/variance/stddev of a non-numeric column.
            InvalidArgumentError: no aggregates, or clashing output names.

        Example:
            >>> from cleanjoin import agg
            >>> grouped.agg(agg.count().alias("n"), agg.mean("flag", bounds=(0, 1)))  # doctest: +SKIP
        """
        if len(aggregates) == 1 and isinstance(aggregates[0], list | tuple):
            aggregates = tuple(aggregates[0])
        join = self.join
        bound = _bound.bind_aggregates(join._binding, join._schemas, tuple(aggregates))
        unit = _bound.policy_unit(join._binding, join.keys)
        return AggregatedJoin(
            join, self.group_columns, bound, unit, grouping_sets=self.grouping_sets
        )


# --------------------------------------------------------------------------- stage 3/4


@dataclass(frozen=True, eq=False)
class _Aggregated:
    join: GuardedJoin
    group_columns: tuple[str, ...]
    aggregates: tuple[Aggregate, ...]
    unit: str | None = None
    dp: DPSpec | None = None
    grouping_sets: tuple[tuple[str, ...], ...] | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        join = _join_of(self.join)
        schemas, binding = join._schemas, join._binding
        _rules.check_groups(schemas, self.group_columns)
        # the policy's rules first: a column it does not allow is a PolicyViolation
        _bound.check_groups(binding, schemas, self.group_columns)
        _bound.check_aggregates(binding, schemas, self.aggregates)
        _rules.check_aggregates(schemas, self.group_columns, self.aggregates)
        if self.unit is not None:
            _rules.check_unit(schemas, self.group_columns, self.unit)
        if self.dp is not None and not isinstance(self.dp, DPSpec):
            raise InvalidArgumentError("'dp' must be set with .with_dp(...)")
        _bound.check_unit(binding, join.keys, self.unit)
        _bound.check_dp(binding, self.group_columns, self.dp)
        _margins.check_stage_sets(self.group_columns, self.grouping_sets)
        if self.grouping_sets is not None:
            marker = _margins.GROUPING_COLUMN
            if marker in (a.output_name for a in self.aggregates):
                raise InvalidArgumentError(
                    f"GroupedJoin.agg(): with margins the output column {marker!r} is the "
                    "margin marker; give the aggregate another name with .alias()"
                )
            if self.dp is not None:
                raise NotAllowedError(
                    "with_dp(): margins (rollup() or grouping_sets=) are not available with "
                    "differential privacy yet (each grouping set would need its share of the "
                    "budget); run one DP query per grouping set instead"
                )

    def privacy_unit(self, column: str) -> Self:
        """Count cohorts in distinct values of ``column`` (default: the join token).

        Use the column that identifies one person (e.g. an account token when one
        person has several cards). Without DP, a group's cohort is the smaller of its
        distinct units and its distinct join keys, so a unit finer than the join key
        (a transaction id, an amount) can never make the rule weaker than the default.

        Raises:
            ColumnNotFoundError: the column is in neither input.
            SchemaMismatchError: the column is on both sides (ambiguous).
            NotAllowedError: the column is a group column.

        Example:
            >>> query.privacy_unit("account_token")  # doctest: +SKIP
        """
        if not isinstance(column, str) or not column:
            raise InvalidArgumentError("privacy_unit(): 'column' must be a non-empty column name")
        return replace(self, unit=column)

    def with_dp(
        self,
        *,
        epsilon: float,
        delta: float = 0.0,
        max_partitions_contributed: int = 1,
        max_contributions_per_partition: int = 1,
        noise: str = "laplace",
        partition_selection: str = "truncated_geometric",
        public_groups: DataFrame | Sequence[Mapping[str, Any]] | Sequence[tuple[Any, ...]] | None = None,
    ) -> Self:
        """Release with differential privacy (see :class:`cleanjoin.dp.DPParams`).

        ``min_cohort`` becomes pipeline_dp's ``pre_threshold`` of private partition
        selection; ``public_groups`` (a DataFrame with the group columns, or a list)
        skips partition selection.

        Raises:
            InvalidArgumentError, ConfigurationError: invalid DP parameters.

        Example:
            >>> query.with_dp(epsilon=1.0, delta=1e-6, max_partitions_contributed=3)  # doctest: +SKIP
        """
        from cleanjoin.dp import DPParams

        params = DPParams(
            epsilon=epsilon,
            delta=delta,
            max_partitions_contributed=max_partitions_contributed,
            max_contributions_per_partition=max_contributions_per_partition,
            noise=noise,
            partition_selection=partition_selection,
        )
        if public_groups is not None and not is_df(public_groups):
            if isinstance(public_groups, str | bytes) or not isinstance(public_groups, Sequence):
                raise InvalidArgumentError(
                    "with_dp(): 'public_groups' must be a DataFrame or a list of dicts/tuples"
                )
            return replace(self, dp=DPSpec(params, tuple(public_groups)))
        return replace(self, dp=DPSpec(params, public_groups))

    @property
    def unit_column(self) -> str:
        """The privacy-unit column (the left join column unless set)."""
        if self.unit is None or self.unit in self.join.keys:
            return self.join.keys[0]
        return self.unit


@dataclass(frozen=True, eq=False)
class AggregatedJoin(_Aggregated):
    """Stage 3: grouping and aggregates are set; next, :meth:`min_cohort`.

    :meth:`privacy_unit` and :meth:`with_dp` may be called here or on the
    :class:`ReadyJoin`; there is no ``run`` until a minimum cohort is set.
    """

    def min_cohort(self, n: int | None = None) -> ReadyJoin:
        """Release only groups with at least ``n`` distinct privacy units.

        Under a collaboration policy ``n`` may be omitted: the policy's floor applies
        (a smaller ``n`` is refused, a larger one is fine).

        Raises:
            InvalidArgumentError: ``n`` is not an integer >= 1 (or omitted without a policy).
            PolicyViolation: ``n`` is below the policy's floor.

        Example:
            >>> ready = aggregated.min_cohort(100)  # doctest: +SKIP
        """
        return ReadyJoin(
            self.join, self.group_columns, self.aggregates, self.unit, self.dp,
            threshold=_threshold(self.join, n), grouping_sets=self.grouping_sets,
        )


@dataclass(frozen=True, eq=False)
class ReadyJoin(_Aggregated, DisclosureRules):
    """Stage 4: a complete guarded query; :meth:`run` executes it.

    Attributes:
        threshold: the minimum cohort (distinct privacy units per released group).
        dominance_rule, p_percent_rule, dimension_limit: the disclosure rules (see
            :meth:`dominance`, :meth:`p_percent`, :meth:`max_dimension_values`) or ``None``.
    """

    threshold: int = field(default=0, kw_only=True)
    dominance_rule: Dominance | None = field(default=None, kw_only=True)
    p_percent_rule: float | None = field(default=None, kw_only=True)
    dimension_limit: int | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        binding = _join_of(self.join)._binding
        if binding is not None and self.threshold == 0:  # built directly, no threshold given
            object.__setattr__(self, "threshold", binding.policy.min_cohort)
        _rules.check_threshold(self.threshold)
        _bound.check_threshold(binding, self.threshold)
        self._check_disclosure(binding)

    def min_cohort(self, n: int | None = None) -> ReadyJoin:
        """A copy with minimum cohort ``n`` (omitted under a policy: the policy's floor)."""
        return replace(self, threshold=_threshold(self.join, n))

    def to_query(self) -> Query:
        """The plain, frozen description of this query that :meth:`run` executes."""
        join = self.join
        return Query(
            join.left, join.right, join._schemas, join.policies, join.revoked,
            join.max_rows_per_key, self.group_columns, self.aggregates, self.unit, self.dp,
            self.threshold, None if join._binding is None else join._binding.fingerprint,
            grouping_sets=self.grouping_sets, dominance=self.dominance_rule,
            p_percent=self.p_percent_rule, token_keys=join.token_keys,
            person_columns=person_columns(join._binding, join._schemas, join.person_column),
            max_dimension_values=self.dimension_limit,
        )

    def describe(self) -> dict[str, Any]:
        """The query as a JSON-friendly dict (no data; the input of :meth:`fingerprint`)."""
        return self.to_query().describe()

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the canonical JSON of :meth:`describe` (the query fingerprint)."""
        return self.to_query().fingerprint()

    def run(
        self,
        *,
        audit: AuditLog | None = None,
        budget: BudgetLedger | None = None,
        release_id: str | None = None,
    ) -> GuardedResult:
        """Run the query and return the released rows with a report.

        Args:
            audit: an :class:`~cleanjoin.audit.AuditLog`; a ``"guarded_run"`` entry is
                appended (query, counts, content hash of the released rows).
            budget: a :class:`~cleanjoin.budget.BudgetLedger`. A DP run is checked
                before any Spark job, charged after the join-explosion check and before
                the DP computation. A threshold run is a recorded threshold release
                (ε = 0, nothing spent): it is checked against the earlier recorded
                threshold releases over the same inputs and filters, suppressing more
                cells so that no subtraction of one release from another isolates fewer
                than ``min_cohort`` people (``docs/disclosure.md``; the count is
                ``report.groups_suppressed_refinement``), then recorded.
            release_id: the release's identity; required with ``budget``. A release id in
                the ledger replays its stored rows (same query only; no charge, no compute).

        Under a collaboration policy (:meth:`GuardedJoin.from_policy`) a run uses the
        policy's ledger by itself: ``budget`` may be omitted, any other ledger is
        refused; a DP run needs a ``release_id``; with ``refinement_guard`` (the
        default) every threshold run is recorded and checked (an ``auto-…`` release id
        when none is given); with ``dp.required`` a run without DP is refused
        (:class:`~cleanjoin.errors.PolicyViolation`).

        Raises:
            InvalidArgumentError: ``budget`` without ``release_id``, or a release id
                already used by a different query.
            BudgetExceeded: the ledger cannot pay for the release (nothing computed).
            JoinExplosionError: a join key has too many rows on one side.

        Example:
            >>> result = ready.run()  # doctest: +SKIP
            >>> result.report.groups_released  # doctest: +SKIP
            42
        """
        if release_id is not None and (not isinstance(release_id, str) or not release_id):
            raise InvalidArgumentError("run(): 'release_id' must be a non-empty string")
        binding = _join_of(self.join)._binding
        refinement_guard = True
        if binding is not None:
            budget = _bound.policy_ledger(
                binding, dp=self.dp, budget=budget, release_id=release_id
            )
            refinement_guard = binding.policy.refinement_guard
            if budget is not None and self.dp is None and release_id is None:
                release_id = _bound.auto_release_id()  # refinement_guard: all recorded
        if budget is not None and release_id is None:
            raise InvalidArgumentError(
                "run(): 'budget' needs a 'release_id' (it names the release in the ledger "
                "and makes re-runs replay instead of spending twice)"
            )
        return execute(
            self.to_query(), audit=audit, budget=budget, release_id=release_id,
            refinement_guard=refinement_guard,
        )


def _threshold(join: GuardedJoin, n: int | None) -> int:
    """``n`` checked (``None`` under a policy: the policy's floor)."""
    policy = _join_of(join).policy
    if n is None and policy is not None:
        return policy.min_cohort
    return _rules.check_threshold(n)


def _join_of(join: Any) -> GuardedJoin:
    """The ``join`` of a later stage, which must be a :class:`GuardedJoin`."""
    if not isinstance(join, GuardedJoin):
        raise InvalidArgumentError(
            f"a query stage needs a GuardedJoin as 'join', got {type(join).__name__}"
        )
    return join
