""":class:`CollaborationPolicy`: the rules both data owners approve, as one document."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from typing_extensions import Self

from cleanjoin.errors import ConfigurationError
from cleanjoin.policy._canonical import fingerprint_of, to_dict
from cleanjoin.policy._load import json_document, parse, read_text, yaml_document
from cleanjoin.policy._model import BudgetPolicy, DominancePolicy, DPPolicy, PartyPolicy

__all__ = ["CollaborationPolicy"]


@dataclass(frozen=True, eq=False)
class CollaborationPolicy:
    """A collaboration's rules, set by the data owners (``format: cleanjoin.policy/v1``).

    Load one with :meth:`load` (``.yaml``, ``.yml`` or ``.json``), :meth:`from_yaml` or
    :meth:`from_dict`; bind a query to it with
    :meth:`cleanjoin.guard.GuardedJoin.from_policy`. Every key and its default:
    ``docs/policy.md``.

    The :attr:`fingerprint` is the SHA-256 (hex) of the policy's canonical JSON: every
    default filled in first, so an omitted default and an explicit one hash the same;
    sets (dimensions, aggregates, regions, public groups, outputs) sorted; numbers typed
    (``1`` and ``1.0`` as a bound are the same); keys sorted, except the order of
    ``parties`` (the first party is the join's left side). The YAML and the JSON of one
    policy have one fingerprint; any change of meaning changes it. Both organizations
    approve the fingerprint, and a notebook passes it to ``from_policy``.

    Attributes:
        name: the collaboration's name (also the budget ledger's collaboration).
        version: the policy's version (an integer >= 1).
        description: free text, or ``None``.
        parties: the parties by name, in document order (the first is the left side).
        privacy_unit: the column counted as one person.
        min_cohort: the floor of the minimum cohort (a query may ask for more).
        max_rows_per_key: the join-explosion limit (it cannot be disabled).
        dp: the differential-privacy rules.
        budget: the privacy budget and its ledger, or ``None`` (then no DP release).
        dominance: the (n, k) dominance rule, or ``None`` (default n=2, k=0.85).
        p_percent: the p-percent rule's p, or ``None`` (default 10).
        refinement_guard: record every threshold run in the policy's ledger and
            suppress cells against the earlier recorded releases (default true; see
            ``docs/disclosure.md``).
        max_dimension_values: the most distinct values of one dimension (default 1000).
        outputs: the allowed output contract fingerprints, or ``None`` (any).

    Raises:
        ConfigurationError: the document is invalid; the message names the key path.

    Example:
        >>> policy = CollaborationPolicy.from_dict({
        ...     "format": "cleanjoin.policy/v1", "name": "demo", "privacy_unit": "t",
        ...     "min_cohort": 10, "parties": {
        ...         "a": {"table": "s.a", "join_column": "t", "dimensions": ["mcc"]},
        ...         "b": {"table": "s.b", "join_column": "t"}}})
        >>> policy.min_cohort, policy.dp.required, len(policy.fingerprint)
        (10, False, 64)
    """

    name: str
    version: int
    description: str | None
    parties: Mapping[str, PartyPolicy]
    privacy_unit: str
    min_cohort: int
    max_rows_per_key: int
    dp: DPPolicy
    budget: BudgetPolicy | None
    dominance: DominancePolicy | None
    p_percent: float | None
    refinement_guard: bool
    max_dimension_values: int
    outputs: tuple[str, ...] | None
    _fingerprint: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            document = to_dict(self)
        except (AttributeError, TypeError):
            raise ConfigurationError(
                "CollaborationPolicy: build a policy with load(), from_yaml() or from_dict()"
            ) from None
        parse(document)  # the same rules as a loaded document
        object.__setattr__(self, "parties", MappingProxyType(dict(self.parties)))
        object.__setattr__(self, "_fingerprint", fingerprint_of(document))

    # -- loading ------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> Self:
        """The policy of a document (a dict as read from YAML or JSON).

        Raises:
            ConfigurationError: unknown keys, a wrong format, or an invalid value (the
                message names the key path, e.g. ``parties.provider.measures.x.bounds``).
        """
        return cls(**parse(document))

    @classmethod
    def from_yaml(cls, text: str) -> Self:
        """The policy of a YAML document (safe loading; a repeated key is refused)."""
        if not isinstance(text, str):
            raise ConfigurationError(
                f"CollaborationPolicy.from_yaml: 'text' must be a string, got {type(text).__name__}"
            )
        return cls.from_dict(yaml_document(text))

    @classmethod
    def from_json(cls, text: str) -> Self:
        """The policy of a JSON document."""
        if not isinstance(text, str):
            raise ConfigurationError(
                f"CollaborationPolicy.from_json: 'text' must be a string, got {type(text).__name__}"
            )
        return cls.from_dict(json_document(text))

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """The policy of a ``.yaml``, ``.yml`` or ``.json`` file.

        Example:
            >>> CollaborationPolicy.load("examples/fraud-consortium.policy.yaml")  # doctest: +SKIP
        """
        return cls.from_dict(read_text(path))

    # -- the canonical form -------------------------------------------------------------

    @property
    def fingerprint(self) -> str:
        """SHA-256 (hex) of the canonical JSON (defaults filled in; see the class)."""
        return self._fingerprint

    def to_dict(self) -> dict[str, Any]:
        """The canonical document: every key, defaults filled in (loads back to an equal
        policy with the same fingerprint)."""
        return to_dict(self)

    def to_json(self, *, indent: int | None = 2) -> str:
        """The canonical document as JSON."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_yaml(self) -> str:
        """The canonical document as YAML (document order of keys)."""
        import yaml

        return str(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))

    # -- reading ------------------------------------------------------------------------

    def party(self, name: str) -> PartyPolicy:
        """The party called ``name``.

        Raises:
            ConfigurationError: no such party.
        """
        if name not in self.parties:
            raise ConfigurationError(
                f"CollaborationPolicy {self.name!r}: no party {name!r}; parties are "
                f"{list(self.parties)}"
            )
        return self.parties[name]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CollaborationPolicy) and other.fingerprint == self.fingerprint

    def __hash__(self) -> int:
        return hash(self._fingerprint)

    def __repr__(self) -> str:
        return (
            f"CollaborationPolicy(name={self.name!r}, version={self.version}, "
            f"parties={list(self.parties)}, fingerprint={self._fingerprint[:12]}…)"
        )
