"""A guarded query bound to a :class:`~cleanjoin.policy.CollaborationPolicy`: its rules.

:func:`bind` reads the inputs a policy names (with their consent rules and revocation
lists) and returns the :class:`PolicyBinding` that ``GuardedJoin.from_policy`` puts on
the first stage; every later stage carries it through its ``join`` and calls the checks
below in its ``__post_init__``, so a stage built directly or copied with
``dataclasses.replace`` obeys the policy too. Each refusal is a
:class:`~cleanjoin.errors.PolicyViolation` naming the rule (a policy key) and the
argument, never a value.
"""

from __future__ import annotations

import json
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from cleanjoin._compat import UTC
from cleanjoin._table import TableRef
from cleanjoin._typing import DataFrame, SparkSession
from cleanjoin.agg import AggKind, Aggregate
from cleanjoin.consent import ConsentPolicy
from cleanjoin.errors import (
    ConfigurationError,
    InternalError,
    InvalidArgumentError,
    PolicyViolation,
)
from cleanjoin.guard._dominance import Dominance
from cleanjoin.guard._query import DPSpec, InputSchemas, is_df
from cleanjoin.policy import CollaborationPolicy, PartyPolicy

if TYPE_CHECKING:
    from cleanjoin.budget import BudgetLedger

__all__ = [
    "PolicyBinding",
    "auto_release_id",
    "bind",
    "bind_aggregates",
    "check_aggregates",
    "check_dimension_limit",
    "check_dp",
    "check_frames",
    "check_groups",
    "check_join",
    "check_sensitivity",
    "check_threshold",
    "check_unit",
    "is_bound",
    "policy_ledger",
    "policy_unit",
]

_MINT = object()  # only bind() makes a binding
_BOUND: dict[int, weakref.ref[Any]] = {}  # the DataFrames read by bind()


def _register(df: DataFrame) -> None:
    key = id(df)
    _BOUND[key] = weakref.ref(df, lambda _ref: _BOUND.pop(key, None))


def is_bound(df: Any) -> bool:
    """True when ``df`` is an input read by :func:`bind` (it may not leave its policy)."""
    ref = _BOUND.get(id(df))
    return ref is not None and ref() is df


@dataclass(frozen=True, eq=False)
class PolicyBinding:
    """The policy of a guarded query and the inputs it read (made by :func:`bind` only).

    Attributes:
        policy: the collaboration policy.
        parties: the names of the left and right parties.
        left: the left party's input, read from its table.
        right: the right party's input.
        consent: the consent policies of the two sides.
        revoked: the parties' revocation lists (a table, a union of them, or ``None``).
    """

    policy: CollaborationPolicy
    parties: tuple[str, str]
    left: DataFrame = field(repr=False)
    right: DataFrame = field(repr=False)
    consent: tuple[ConsentPolicy, ...]
    revoked: DataFrame | str | None = field(repr=False)
    mint: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.mint is not _MINT:
            raise PolicyViolation(
                "a policy binding is made by GuardedJoin.from_policy only",
                rule="fingerprint", argument="policy",
            )

    @property
    def keys(self) -> tuple[str, str]:
        """The join columns ``(left, right)``: each party's ``join_column``."""
        left, right = (self.policy.parties[p] for p in self.parties)
        return (left.join_column, right.join_column)

    @property
    def fingerprint(self) -> str:
        """The policy's fingerprint."""
        return self.policy.fingerprint

    def owner(self, schemas: InputSchemas, column: str) -> tuple[str, PartyPolicy] | None:
        """The party whose input holds ``column`` (``None``: neither, or both)."""
        side = schemas.side_of(column)
        if side not in ("left", "right"):
            return None
        name = self.parties[0 if side == "left" else 1]
        return name, self.policy.parties[name]

    def violation(self, message: str, *, rule: str, argument: str) -> PolicyViolation:
        """A :class:`PolicyViolation` whose message names the policy and the rule."""
        return PolicyViolation(
            f"{message} (policy {self.policy.name!r}, rule {rule})", rule=rule, argument=argument
        )


# --------------------------------------------------------------------------- binding


def _read(ref: str, arg: str, spark: SparkSession) -> DataFrame:
    table = TableRef.parse(ref, arg=arg, call="GuardedJoin.from_policy")
    try:
        df = table.read(spark)
        df.schema  # noqa: B018 - forces analysis (Spark Connect reads lazily)
    except Exception:
        raise ConfigurationError(
            f"GuardedJoin.from_policy: no readable Delta table {table.describe} for {arg}"
        ) from None
    return df


def bind(
    policy: Any, *, spark: Any, fingerprint: Any, parties: Any = None
) -> PolicyBinding:
    """Check the approved fingerprint, read both parties' inputs, their consent rules and
    revocation lists (see ``GuardedJoin.from_policy``)."""
    if not isinstance(policy, CollaborationPolicy):
        raise InvalidArgumentError(
            "'policy' in GuardedJoin.from_policy must be a CollaborationPolicy, got "
            f"{type(policy).__name__}"
        )
    if not isinstance(fingerprint, str) or fingerprint != policy.fingerprint:
        shown = f"{fingerprint[:12]}…" if isinstance(fingerprint, str) else type(fingerprint).__name__
        raise PolicyViolation(
            f"GuardedJoin.from_policy: the policy's fingerprint {policy.fingerprint[:12]}… is not "
            f"the approved one ({shown}); both parties approve a policy by its fingerprint",
            rule="fingerprint", argument="fingerprint",
        )
    if spark is None or is_df(spark) or not hasattr(spark, "read"):
        raise InvalidArgumentError("'spark' in GuardedJoin.from_policy must be a SparkSession")
    names = list(policy.parties)
    if parties is None:
        if len(names) != 2:
            raise ConfigurationError(
                f"GuardedJoin.from_policy: policy {policy.name!r} has {len(names)} parties; "
                "name the two to join with parties=(left, right)"
            )
        pair = (names[0], names[1])
    elif (
        isinstance(parties, list | tuple) and len(parties) == 2
        and all(isinstance(p, str) for p in parties) and parties[0] != parties[1]
    ):
        pair = (policy.party(parties[0]).name, policy.party(parties[1]).name)
    else:
        raise InvalidArgumentError(
            "'parties' in GuardedJoin.from_policy must be two different party names (left, right)"
        )
    frames = []
    consent: list[ConsentPolicy] = []
    revoked: list[DataFrame] = []
    revoked_refs: list[str] = []
    for side, name in zip(("left", "right"), pair, strict=True):
        party = policy.parties[name]
        frames.append(_read(party.table, f"parties.{name}.table", spark))
        if party.consent is not None:
            s: Literal["left", "right"] = "left" if side == "left" else "right"
            consent.append(party.consent.to_consent_policy(s, spark))
        if party.revoked is not None:
            revoked_refs.append(party.revoked)
            revoked.append(_read(party.revoked, f"parties.{name}.revoked", spark))
    revocations: DataFrame | str | None = None
    if len(revoked) == 1:
        revocations = revoked_refs[0]
    elif len(revoked) == 2:
        revocations = revoked[0].unionByName(revoked[1], allowMissingColumns=True)
    left, right = frames
    for df in frames:
        _register(df)
    return PolicyBinding(policy, pair, left, right, tuple(consent), revocations, _MINT)


def check_frames(binding: Any, *, left: Any, right: Any) -> None:
    """The first stage's inputs under a policy are the ones ``from_policy`` read; without
    a policy, an input read by ``from_policy`` is refused (it may not leave its policy)."""
    if binding is None:
        for side, df in (("left", left), ("right", right)):
            if is_bound(df):
                raise PolicyViolation(
                    f"GuardedJoin: '{side}' was read under a collaboration policy; a query on it "
                    "must keep its policy (use GuardedJoin.from_policy)",
                    rule="policy", argument=side,
                )
        return
    if not isinstance(binding, PolicyBinding):
        raise PolicyViolation(
            "GuardedJoin: a policy is bound by GuardedJoin.from_policy only",
            rule="policy", argument="policy",
        )
    if left is not binding.left or right is not binding.right:
        raise binding.violation(
            "GuardedJoin: the inputs of a query under a policy are the tables the policy names",
            rule="parties.table", argument="left" if left is not binding.left else "right",
        )


def check_join(
    binding: PolicyBinding | None,
    *,
    keys: tuple[str, str],
    consent: tuple[ConsentPolicy, ...],
    revoked: Any,
    max_rows_per_key: Any,
    schemas: InputSchemas,
    token_keys: bool = False,
    person_column: str | None = None,
) -> None:
    """The first stage under a policy: exactly the join columns, filters and limit that
    ``from_policy`` set."""
    if binding is None:
        return
    if keys != binding.keys:
        raise binding.violation(
            "GuardedJoin: the join columns are the parties' join_column",
            rule="parties.join_column", argument="on",
        )
    if consent != binding.consent:
        raise binding.violation(
            "GuardedJoin: the consent rules are the parties' own", rule="parties.consent",
            argument="consent",
        )
    if revoked is not binding.revoked:
        raise binding.violation(
            "GuardedJoin: the revocation lists are the parties' own", rule="parties.revoked",
            argument="revoked",
        )
    if max_rows_per_key != binding.policy.max_rows_per_key:
        raise binding.violation(
            "GuardedJoin: the join-explosion limit is the policy's and cannot be changed or "
            "disabled", rule="max_rows_per_key", argument="max_rows_per_key",
        )
    if not token_keys:
        raise binding.violation(
            "GuardedJoin: under a policy the join keys must be spec-v1 tokens (token_keys "
            "cannot be turned off)", rule="key_provenance", argument="token_keys",
        )
    if person_column is not None:
        raise binding.violation(
            "GuardedJoin: under a policy the person columns are the parties' person_column",
            rule="parties.person_column", argument="person_column",
        )
    unit = binding.policy.privacy_unit
    if unit not in keys and schemas.side_of(unit) not in ("left", "right"):
        raise ConfigurationError(
            f"GuardedJoin.from_policy: the policy's privacy_unit {unit!r} is not a column of "
            "exactly one input"
        )


# --------------------------------------------------------------------------- stages


def check_groups(binding: PolicyBinding | None, schemas: InputSchemas, groups: tuple[str, ...]) -> None:
    """Group columns: allowed dimensions of the party that owns each."""
    if binding is None:
        return
    for column in groups:
        owner = binding.owner(schemas, column)
        if owner is None or column not in owner[1].dimensions:
            rule = "dimensions" if owner is None else f"parties.{owner[0]}.dimensions"
            raise binding.violation(
                f"group_by(): column {column!r} is not an allowed dimension", rule=rule,
                argument="group_by",
            )


def _measure_rule(
    binding: PolicyBinding, schemas: InputSchemas, item: Aggregate
) -> tuple[str, tuple[float, float] | None]:
    """The rule path of an aggregate's measure and the owner's bounds (refusing a
    column or an aggregate the owner does not allow)."""
    column = str(item.column)
    owner = binding.owner(schemas, column)
    if owner is None or column not in owner[1].measures:
        rule = "measures" if owner is None else f"parties.{owner[0]}.measures"
        raise binding.violation(
            f"agg(): column {column!r} is not an allowed measure", rule=rule, argument="agg",
        )
    rule = f"parties.{owner[0]}.measures.{column}"
    measure = owner[1].measures[column]
    if item.kind.value not in measure.aggregates:
        raise binding.violation(
            f"agg(): {item.kind.value}({column!r}) is not allowed; allowed: "
            f"{list(measure.aggregates)}", rule=f"{rule}.aggregates", argument="agg",
        )
    return rule, measure.bounds


def bind_aggregates(
    binding: PolicyBinding | None, schemas: InputSchemas, aggregates: tuple[Any, ...]
) -> tuple[Any, ...]:
    """The aggregates with the owner's bounds where the query gives none."""
    if binding is None:
        return aggregates
    out = []
    for item in aggregates:
        if (
            isinstance(item, Aggregate) and item.column is not None and item.bounds is None
            and item.kind is not AggKind.COUNT_DISTINCT and isinstance(item.column, str)
            and schemas.side_of(item.column) in ("left", "right")
        ):
            _rule, bounds = _measure_rule(binding, schemas, item)
            if bounds is not None:
                item = replace(item, bounds=bounds)
        out.append(item)
    return tuple(out)


def check_aggregates(
    binding: PolicyBinding | None, schemas: InputSchemas, aggregates: Any
) -> None:
    """Only allowed (measure, aggregate) pairs, with bounds within the owner's."""
    if binding is None or not isinstance(aggregates, tuple):
        return
    for item in aggregates:
        if not isinstance(item, Aggregate) or item.kind is AggKind.COUNT:
            # count is always allowed (the cohort rule still applies); anything else
            # than an aggregate is refused by the guard's own rules
            continue
        rule, bounds = _measure_rule(binding, schemas, item)
        if item.kind is AggKind.COUNT_DISTINCT or bounds is None:
            continue
        if item.bounds is None:
            raise binding.violation(
                f"agg(): {item.kind.value}({item.column!r}) needs bounds within the owner's",
                rule=f"{rule}.bounds", argument="bounds",
            )
        lo, hi = item.bounds
        if lo < bounds[0] or hi > bounds[1]:
            raise binding.violation(
                f"agg(): the bounds of {item.kind.value}({item.column!r}) are wider than the "
                "owner's (tighter bounds are fine)", rule=f"{rule}.bounds", argument="bounds",
            )


def policy_unit(binding: PolicyBinding | None, keys: tuple[str, str]) -> str | None:
    """The privacy unit a stage starts with: the policy's (``None``: the join column)."""
    if binding is None or binding.policy.privacy_unit in keys:
        return None
    return binding.policy.privacy_unit


def check_unit(binding: PolicyBinding | None, keys: tuple[str, str], unit: str | None) -> None:
    """The privacy unit is the policy's."""
    if binding is None:
        return
    wanted = binding.policy.privacy_unit
    given = keys[0] if unit is None or unit in keys else unit
    expected = keys[0] if wanted in keys else wanted
    if given != expected:
        raise binding.violation(
            f"privacy_unit(): the privacy unit is the policy's ({wanted!r})",
            rule="privacy_unit", argument="privacy_unit",
        )


def _group_key(group: Any, columns: tuple[str, ...]) -> str | None:
    if isinstance(group, Mapping):
        mapping = dict(group)
    elif isinstance(group, list | tuple) and len(group) == len(columns):
        mapping = dict(zip(columns, group, strict=True))
    else:
        return None
    if sorted(mapping) != sorted(columns):
        return None
    try:
        return json.dumps(mapping, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return None


def check_dp(binding: PolicyBinding | None, groups: tuple[str, ...], dp: DPSpec | None) -> None:
    """DP parameters within the ceilings; public groups only from the policy's list."""
    if binding is None or dp is None:
        return
    rules = binding.policy.dp
    if dp.params.epsilon > rules.max_epsilon:
        raise binding.violation(
            f"with_dp(): epsilon above the policy's ceiling of {rules.max_epsilon:g} per release",
            rule="dp.max_epsilon", argument="epsilon",
        )
    if dp.params.delta > rules.max_delta:
        raise binding.violation(
            f"with_dp(): delta above the policy's ceiling of {rules.max_delta:g} per release",
            rule="dp.max_delta", argument="delta",
        )
    given = dp.public_groups
    if given is None:
        return
    if is_df(given) or not isinstance(given, list | tuple):
        raise binding.violation(
            "with_dp(): under a policy, public groups are a list taken from the policy's "
            "dp.public_groups (not a DataFrame)", rule="dp.public_groups", argument="public_groups",
        )
    allowed = {json.dumps(dict(g), sort_keys=True) for g in rules.public_groups}
    for number, group in enumerate(given):
        if _group_key(group, groups) not in allowed:
            raise binding.violation(
                f"with_dp(): public group #{number} is not in the policy's dp.public_groups",
                rule="dp.public_groups", argument="public_groups",
            )


def check_threshold(binding: PolicyBinding | None, n: int) -> None:
    """The minimum cohort is at least the policy's floor."""
    if binding is not None and n < binding.policy.min_cohort:
        raise binding.violation(
            f"min_cohort(): below the policy's floor of {binding.policy.min_cohort} (asking for "
            "more is fine)", rule="min_cohort", argument="min_cohort",
        )


def check_sensitivity(
    binding: PolicyBinding | None, rule: Dominance | None, p: float | None
) -> tuple[Dominance | None, float | None]:
    """The dominance and p % rules of a stage: the policy's always apply (filled in when
    the query sets none); a query may only tighten them (``n`` at least and ``k`` at most
    the policy's; ``p`` at least the policy's)."""
    if binding is None:
        return rule, p
    policy = binding.policy
    if policy.dominance is not None:
        floor = Dominance(policy.dominance.n, policy.dominance.k)
        if rule is None:
            rule = floor
        elif not rule.at_least_as_strict_as(floor):
            raise binding.violation(
                f"dominance(): weaker than the policy's rule (n={floor.n}, k={floor.k:g}); a "
                "query may only ask for n at least and k at most the policy's",
                rule="dominance", argument="dominance",
            )
    if policy.p_percent is not None:
        if p is None:
            p = float(policy.p_percent)
        elif p < policy.p_percent:
            raise binding.violation(
                f"p_percent(): below the policy's p of {policy.p_percent:g} (a larger p is "
                "fine)", rule="p_percent", argument="p_percent",
            )
    return rule, p


def check_dimension_limit(binding: PolicyBinding | None, limit: int | None) -> int | None:
    """The quasi-identifier limit: the policy's applies (filled in when the query sets
    none); a query may lower it, not raise it."""
    if binding is None:
        return limit
    ceiling = binding.policy.max_dimension_values
    if limit is None:
        return int(ceiling)
    if limit > ceiling:
        raise binding.violation(
            f"max_dimension_values(): above the policy's limit of {ceiling} (a lower limit is "
            "fine)", rule="max_dimension_values", argument="max_dimension_values",
        )
    return limit


def auto_release_id() -> str:
    """The release id of a threshold run under a policy with ``refinement_guard`` that
    names none (every such run is recorded): the time and 8 random hex digits, a value
    the audit's leak scanner accepts (no long run of digits, hex or base64).

    Example:
        >>> auto_release_id().startswith("auto-")
        True
    """
    return f"auto-{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%fZ}-{uuid.uuid4().hex[:8]}"


def policy_ledger(
    binding: PolicyBinding, *, dp: DPSpec | None, budget: Any, release_id: str | None
) -> BudgetLedger | None:
    """The ledger a run under a policy charges or records a threshold release in (its
    own), refusing a run the policy does not allow: no DP when DP is required, another
    ledger, DP without a release id. A threshold run gets the ledger when the policy has
    a budget and either ``refinement_guard`` is on (every threshold release is recorded)
    or it names a ``release_id``."""
    policy = binding.policy
    spec = policy.budget
    if dp is None:
        if policy.dp.required:
            raise binding.violation(
                "run(): the policy requires differential privacy; call .with_dp(...)",
                rule="dp.required", argument="with_dp",
            )
        if spec is None:
            if budget is not None:
                raise binding.violation(
                    "run(): the policy has no budget ledger; do not pass 'budget'",
                    rule="budget.ledger", argument="budget",
                )
            return None
        _check_ledger(binding, budget)
        if budget is None and release_id is None and not policy.refinement_guard:
            return None  # an unrecorded threshold run (the refinement guard is off)
        # a threshold release is recorded in the policy's ledger (ε = 0: nothing spent)
        return _ledger_of(binding)
    if spec is None:
        raise binding.violation(
            "run(): the policy has no budget, so it allows no DP release", rule="budget",
            argument="with_dp",
        )
    _check_ledger(binding, budget)
    if release_id is None:
        raise binding.violation(
            "run(): a DP release under a policy needs a 'release_id' (it names the charge in "
            "the policy's ledger)", rule="budget", argument="release_id",
        )
    return _ledger_of(binding)


def _check_ledger(binding: PolicyBinding, budget: Any) -> None:
    """Refuse a ``budget`` that is not the policy's own ledger."""
    from cleanjoin.budget import BudgetLedger

    policy = binding.policy
    spec = policy.budget
    if budget is not None and not (
        spec is not None
        and isinstance(budget, BudgetLedger)
        and budget.path == spec.ledger.rstrip("/")
        and budget.collaboration == policy.name
        and budget.total == (spec.total_epsilon, spec.total_delta)
    ):
        raise binding.violation(
            "run(): under a policy the budget is the policy's ledger; another ledger (path, "
            "collaboration or totals) is refused", rule="budget.ledger", argument="budget",
        )


def _ledger_of(binding: PolicyBinding) -> BudgetLedger:
    """The policy's ledger (the policy has a budget)."""
    from cleanjoin.budget import BudgetLedger

    policy = binding.policy
    spec = policy.budget
    if spec is None:  # pragma: no cover - callers check
        raise InternalError("policy binding: a ledger asked for a policy without a budget")
    return BudgetLedger(
        spec.ledger, collaboration=policy.name, total_epsilon=spec.total_epsilon,
        total_delta=spec.total_delta, spark=binding.left.sparkSession,
    )
