"""The output contract itself: :class:`OutputContract`, its canonical form and fingerprint.

Its columns are :class:`~cleanjoin.contract.ContractColumn` objects; text and files are read
by :mod:`cleanjoin.contract._load`, a result is checked by :mod:`cleanjoin.contract._review`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cleanjoin.contract._columns import ColumnRole, ContractColumn
from cleanjoin.contract._load import is_yaml, json_data, read_text, yaml_data
from cleanjoin.contract._review import Review, Reviewable, dp_used, draft_columns, review_reasons
from cleanjoin.errors import InvalidArgumentError

CONTRACT_FORMAT = "cleanjoin.output_contract/v1"
"""The ``format`` field of a contract's JSON document."""


@dataclass(frozen=True)
class OutputContract:
    """A pre-approved description of a releasable result.

    Attributes:
        columns: the allowed output columns, in order (see :class:`ContractColumn`).
        min_cohort: the minimum cohort (distinct privacy units) the run must enforce;
            also the lowest value a ``cohort_count`` column may hold.
        dp_required: when True, only differentially private runs are approved.
        name: optional contract name.
        version: optional contract version.
        policy: when set, the fingerprint of the collaboration policy a result must have
            been released under (``GuardedResult.policy``); ``None`` accepts any result,
            a policy-bound one or not. Left out of :meth:`to_dict` when ``None``.

    Raises:
        InvalidArgumentError: no columns, duplicate names, ``min_cohort`` < 1.
        NotAllowedError: a token column.
    """

    columns: tuple[ContractColumn, ...]
    min_cohort: int
    dp_required: bool = False
    name: str | None = None
    version: str | None = None
    policy: str | None = None

    def __post_init__(self) -> None:
        cols = tuple(self.columns)
        if not cols:
            raise InvalidArgumentError("OutputContract: 'columns' must list at least one column")
        for col in cols:
            if not isinstance(col, ContractColumn):
                raise InvalidArgumentError(
                    "OutputContract: 'columns' must hold ContractColumn objects, "
                    f"got {type(col).__name__}"
                )
        names = [c.name for c in cols]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidArgumentError(f"OutputContract: duplicate column names {dupes}")
        object.__setattr__(self, "columns", cols)
        if isinstance(self.min_cohort, bool) or not isinstance(self.min_cohort, int):
            raise InvalidArgumentError(
                f"OutputContract: 'min_cohort' must be an integer >= 1, got {self.min_cohort!r}"
            )
        if self.min_cohort < 1:
            raise InvalidArgumentError(
                f"OutputContract: 'min_cohort' must be an integer >= 1, got {self.min_cohort}"
            )
        if not isinstance(self.dp_required, bool):
            raise InvalidArgumentError("OutputContract: 'dp_required' must be True or False")
        if self.policy is not None and (
            not isinstance(self.policy, str) or len(self.policy) != 64
            or not set(self.policy) <= set("0123456789abcdef")
        ):
            raise InvalidArgumentError(
                "OutputContract: 'policy' must be a policy fingerprint (64 lowercase hex "
                "digits) or None"
            )
        for attr in ("name", "version"):
            value = getattr(self, attr)
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidArgumentError(
                    f"OutputContract: {attr!r} must be a non-empty string or None"
                )

    # ------------------------------------------------------------------ serialization

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (the content the fingerprint covers)."""
        out: dict[str, Any] = {
            "format": CONTRACT_FORMAT,
            "name": self.name,
            "version": self.version,
            "min_cohort": self.min_cohort,
            "dp_required": self.dp_required,
            "columns": [c.to_dict() for c in self.columns],
        }
        if self.policy is not None:  # absent, not null: older contracts keep their fingerprint
            out["policy"] = self.policy
        return out

    def to_json(self, *, indent: int | None = 2) -> str:
        """The contract as JSON (keys sorted, so equal contracts give equal text)."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutputContract:
        """The contract described by :meth:`to_dict`'s output.

        Raises:
            InvalidArgumentError: unknown format or keys, missing fields, invalid values.
        """
        if not isinstance(data, Mapping):
            raise InvalidArgumentError("OutputContract.from_dict: expected a JSON object")
        known = {"format", "name", "version", "min_cohort", "dp_required", "columns", "policy"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidArgumentError(
                f"OutputContract.from_dict: unknown keys {unknown}; expected {sorted(known)}"
            )
        fmt = data.get("format", CONTRACT_FORMAT)
        if fmt != CONTRACT_FORMAT:
            raise InvalidArgumentError(
                f"OutputContract.from_dict: unsupported format {fmt!r}; expected {CONTRACT_FORMAT!r}"
            )
        for required in ("columns", "min_cohort"):
            if required not in data:
                raise InvalidArgumentError(f"OutputContract.from_dict: {required!r} is required")
        raw_columns = data["columns"]
        if not isinstance(raw_columns, list):
            raise InvalidArgumentError("OutputContract.from_dict: 'columns' must be a list")
        columns = []
        for item in raw_columns:
            if not isinstance(item, Mapping) or set(item) - {"name", "type", "role"}:
                raise InvalidArgumentError(
                    "OutputContract.from_dict: each column must be an object with keys "
                    "'name', 'type' and 'role'"
                )
            missing = [k for k in ("name", "type", "role") if k not in item]
            if missing:
                label = f"column {item['name']!r}" if "name" in item else "a column"
                raise InvalidArgumentError(
                    f"OutputContract.from_dict: {label} has no {missing} (each column needs "
                    "'name', 'type' and 'role': dimension, measure, cohort_count or grouping)"
                )
            columns.append(ContractColumn(item["name"], item["type"], item["role"]))
        version = data.get("version")
        if isinstance(version, float):
            raise InvalidArgumentError(
                f"OutputContract.from_dict: 'version' must be a string, got the number {version!r} "
                "(in YAML, quote it: version: \"1.10\")"
            )
        return cls(
            columns=tuple(columns),
            min_cohort=data["min_cohort"],
            dp_required=data.get("dp_required", False),
            name=data.get("name"),
            version=str(version) if isinstance(version, int) else version,
            policy=data.get("policy"),
        )

    @classmethod
    def from_json(cls, text: str) -> OutputContract:
        """Parse :meth:`to_json`'s output.

        Raises:
            InvalidArgumentError: invalid JSON or an invalid contract.
        """
        return cls.from_dict(json_data(text))

    def to_yaml(self) -> str:
        """The contract as YAML (the same fields as :meth:`to_json`, ``format`` first).

        Example:
            >>> c = OutputContract(columns=(ContractColumn("n", "bigint", "cohort_count"),),
            ...                    min_cohort=10, version="1")
            >>> print(c.to_yaml())
            format: cleanjoin.output_contract/v1
            name: null
            version: '1'
            min_cohort: 10
            dp_required: false
            columns:
            - name: n
              type: bigint
              role: cohort_count
            <BLANKLINE>
        """
        import yaml

        return str(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))

    @classmethod
    def from_yaml(cls, text: str) -> OutputContract:
        """Parse a YAML contract (:meth:`to_yaml`'s output, or a hand-written file).

        Only plain YAML data is read (a ``yaml.SafeLoader``: no tags, no objects), and
        a key given twice is an error (YAML would keep the last one silently, so a
        reviewer reading the file could see another value than the one loaded).

        Raises:
            InvalidArgumentError: invalid YAML or an invalid contract.

        Example:
            >>> OutputContract.from_yaml('''
            ... # approved by the data-sharing board
            ... min_cohort: 100
            ... columns:
            ...   - {name: merchant_category_code, type: string, role: dimension}
            ...   - {name: record_count, type: bigint, role: cohort_count}
            ... ''').min_cohort
            100
        """
        return cls.from_dict(yaml_data(text))

    def save(self, path: str | Path) -> Path:
        """Write the contract to ``path``: YAML for ``.yaml``/``.yml``, JSON otherwise.

        Returns:
            The path written.
        """
        target = Path(path)
        text = self.to_yaml() if is_yaml(target) else self.to_json() + "\n"
        target.write_text(text, encoding="utf-8")
        return target

    @classmethod
    def load(cls, path: str | Path) -> OutputContract:
        """Read a contract file: YAML for ``.yaml``/``.yml``, JSON otherwise.

        Raises:
            InvalidArgumentError: the file is missing, unreadable, or not a valid contract.
        """
        source = Path(path)
        text = read_text(source)
        return cls.from_yaml(text) if is_yaml(source) else cls.from_json(text)

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the contract's canonical compact JSON.

        Example:
            >>> c = OutputContract(columns=(ContractColumn("n", "bigint", "cohort_count"),),
            ...                    min_cohort=10)
            >>> c.fingerprint() == OutputContract.from_json(c.to_json()).fingerprint()
            True
        """
        canonical = json.dumps(
            self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    @classmethod
    def from_result(
        cls,
        result: Reviewable,
        *,
        min_cohort: int | None = None,
        dp_required: bool | None = None,
        name: str | None = None,
        version: str | None = None,
        roles: Mapping[str, ColumnRole | str] | None = None,
        policy: str | None = None,
    ) -> OutputContract:
        """Draft a contract from a guarded result (to review, edit and approve by hand).

        Group columns become dimensions, ``agg.count()`` outputs cohort counts, other
        aggregates measures and the margin marker ``grouping_id`` of a release with
        margins the ``"grouping"`` role; ``roles`` overrides any of them. ``min_cohort`` and
        ``dp_required`` default to what the run used; ``policy`` (a policy fingerprint,
        e.g. ``result.policy``) is required of reviewed results only when given.

        Example:
            >>> OutputContract.from_result(result, name="segments").to_json()  # doctest: +SKIP
        """
        columns = draft_columns(result, roles=roles)
        report = result.report
        return cls(
            columns=columns,
            min_cohort=int(report.min_cohort) if min_cohort is None else min_cohort,
            dp_required=dp_used(report) if dp_required is None else dp_required,
            name=name,
            version=version,
            policy=policy,
        )

    # ------------------------------------------------------------------ review

    def column(self, name: str) -> ContractColumn:
        """The contract column called ``name``."""
        for col in self.columns:
            if col.name == name:
                return col
        raise InvalidArgumentError(f"OutputContract.column(): no column named {name!r}")

    def review(self, result: Reviewable) -> Review:
        """Check ``result`` (a ``GuardedResult``) against the contract.

        Runs at most one Spark job (over the small released result) for the value
        checks. Never echoes row values.

        Returns:
            A :class:`Review` with every rejection reason.

        Example:
            >>> review = contract.review(result)  # doctest: +SKIP
            >>> review.approved, review.reasons  # doctest: +SKIP
            (False, ("column 'card_number' is not allowed by the contract",))
        """
        if not hasattr(result, "df") or not hasattr(result, "report"):
            raise InvalidArgumentError(
                "OutputContract.review(): 'result' must be a GuardedResult (with .df and "
                f".report), got {type(result).__name__}"
            )
        reasons = review_reasons(
            result, columns=self.columns, min_cohort=self.min_cohort, dp_required=self.dp_required
        )
        released_under = getattr(result.report, "policy", None)
        if self.policy is not None and released_under != self.policy:
            under = (
                "without a collaboration policy" if released_under is None
                else f"under policy {str(released_under)[:12]}…"
            )
            reasons.append(
                f"the contract requires policy {self.policy[:12]}…; the result was released {under}"
            )
        return Review(
            approved=not reasons, reasons=tuple(reasons), contract_fingerprint=self.fingerprint()
        )
