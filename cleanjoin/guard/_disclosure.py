"""The disclosure rules of the last builder stage: dominance, p % and the
quasi-identifier limit (:class:`DisclosureRules`, a mixin of ``ReadyJoin``)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from typing_extensions import Self

from cleanjoin.errors import InvalidArgumentError
from cleanjoin.guard import _bound
from cleanjoin.guard._dominance import Dominance, check_p_percent

if TYPE_CHECKING:
    from cleanjoin.guard._bound import PolicyBinding

__all__ = ["DisclosureRules"]


class DisclosureRules:
    """The methods of ``ReadyJoin`` that set the dominance, p % and quasi-identifier rules
    (its fields ``dominance_rule``, ``p_percent_rule`` and ``dimension_limit``)."""

    dominance_rule: Dominance | None
    p_percent_rule: float | None
    dimension_limit: int | None

    def _check_disclosure(self, binding: PolicyBinding | None) -> None:
        """Validate the rules and apply the policy's (called by ``__post_init__``)."""
        rule = self.dominance_rule
        if rule is not None and not isinstance(rule, Dominance):
            raise InvalidArgumentError("'dominance_rule' must be set with .dominance(n=..., k=...)")
        p = None if self.p_percent_rule is None else check_p_percent(self.p_percent_rule)
        rule, p = _bound.check_sensitivity(binding, rule, p)
        object.__setattr__(self, "dominance_rule", rule)
        object.__setattr__(self, "p_percent_rule", p)
        limit: Any = self.dimension_limit
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InvalidArgumentError(
                f"max_dimension_values(): 'n' must be an integer >= 1, got {limit!r}"
            )
        object.__setattr__(self, "dimension_limit", _bound.check_dimension_limit(binding, limit))

    def max_dimension_values(self, n: int = 1000) -> Self:
        """A copy that refuses, before the run, a group column with more than ``n``
        distinct values that are also more than 5 % of its side's rows (a
        quasi-identifier: a timestamp to the second, a customer id), with
        :class:`~cleanjoin.errors.NotAllowedError` naming the column.

        Under a policy its ``max_dimension_values`` (default 1000) always applies; a
        query may lower it, not raise it.

        Raises:
            InvalidArgumentError: ``n`` is not an integer >= 1.
            PolicyViolation: ``n`` is above the policy's limit.

        Example:
            >>> ready.max_dimension_values(500)  # doctest: +SKIP
        """
        return replace(self,  # type: ignore[type-var]
             dimension_limit=n)

    def dominance(self, n: int = 2, k: float = 0.85) -> Self:
        """A copy that also suppresses groups where ``n`` privacy units hold more than
        ``k`` of a sum-type measure's total (the (n, k) dominance rule, threshold mode).

        Each unit's contribution to every sum, mean, variance and stddev of a group is
        the sum of its clamped values there (absolute values; see
        ``docs/disclosure.md``); a group is suppressed when its ``n`` largest
        contributions add up to more than ``k`` of the total. Suppressed groups are
        counted in ``report.groups_suppressed_dominance`` and take part in secondary
        suppression with margins. Under a policy its rule always applies and may only be
        tightened (``n`` at least, ``k`` at most the policy's). Not applied with DP,
        which bounds each person's influence itself.

        Raises:
            InvalidArgumentError: ``n`` is not an integer >= 1 or ``k`` not in (0, 1].
            PolicyViolation: the rule is weaker than the policy's.

        Example:
            >>> ready.dominance(n=2, k=0.85)  # doctest: +SKIP
        """
        return replace(self,  # type: ignore[type-var]
             dominance_rule=Dominance(n, k))

    def p_percent(self, p: float = 10) -> Self:
        """A copy that also suppresses groups where the total minus its two largest
        contributions estimates the largest to within ``p`` % (the p % rule).

        Sensitive when ``(total - c1 - c2) < p / 100 * c1`` for any sum-type measure,
        contributions as for :meth:`dominance`. Under a policy ``p`` may only be raised.

        Raises:
            InvalidArgumentError: ``p`` is not in (0, 100].
            PolicyViolation: ``p`` is below the policy's.

        Example:
            >>> ready.p_percent(10)  # doctest: +SKIP
        """
        return replace(self,  # type: ignore[type-var]
             p_percent_rule=check_p_percent(p))

