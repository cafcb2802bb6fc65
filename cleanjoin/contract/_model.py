"""Output contracts: the model, its review and the CLI handler.

The public names are re-exported by :mod:`cleanjoin.contract`; import them from there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from cleanjoin._typing import DataFrame
from cleanjoin.contract._load import is_yaml, json_data, read_text, yaml_data
from cleanjoin.contract._scan import scan_values
from cleanjoin.errors import InvalidArgumentError, NotAllowedError

CONTRACT_FORMAT = "cleanjoin.output_contract/v1"
"""The ``format`` field of a contract's JSON document."""

COHORT_COUNT_TYPES = ("tinyint", "smallint", "int", "bigint")
"""The Spark types a ``cohort_count`` column may have (a count of people is an integer)."""


class ColumnRole(Enum):
    """What an output column is. ``ColumnRole("measure")`` accepts the string alias."""

    DIMENSION = "dimension"
    MEASURE = "measure"
    COHORT_COUNT = "cohort_count"

    @classmethod
    def parse(cls, value: ColumnRole | str) -> ColumnRole:
        """Accept a ``ColumnRole`` or its string alias, with a precise error otherwise."""
        if isinstance(value, ColumnRole):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            options = ", ".join(f'"{r.value}"' for r in cls)
            raise InvalidArgumentError(
                f'Unknown column role "{value}". Available options are {options}.'
            ) from None


def _is_token_name(name: str) -> bool:
    lowered = name.lower()
    return lowered == "token" or lowered.endswith("_token")


def _normalize_type(spark_type: str) -> str:
    return "".join(spark_type.split()).lower()


@dataclass(frozen=True)
class ContractColumn:
    """One allowed output column.

    Attributes:
        name: the column name.
        type: the Spark type as ``DataType.simpleString()`` writes it (``"string"``,
            ``"bigint"``, ``"double"``, ``"decimal(10,2)"``...); compared without spaces
            and case.
        role: ``"dimension"`` (a group key), ``"measure"`` (an aggregate) or
            ``"cohort_count"`` (a group size, every value must reach the minimum cohort).

    Example:
        >>> ContractColumn("n", "BIGINT", "cohort_count").type
        'bigint'
    """

    name: str
    type: str
    role: ColumnRole | str = ColumnRole.MEASURE

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidArgumentError("ContractColumn: 'name' must be a non-empty string")
        if _is_token_name(self.name):
            raise NotAllowedError(
                f"ContractColumn: column {self.name!r} is a token column; tokens are never "
                "released, so a contract cannot allow one"
            )
        if not isinstance(self.type, str) or not self.type.strip():
            raise InvalidArgumentError(
                f"ContractColumn {self.name!r}: 'type' must be a Spark type name such as 'bigint'"
            )
        object.__setattr__(self, "type", _normalize_type(self.type))
        object.__setattr__(self, "role", ColumnRole.parse(self.role))
        if self.role is ColumnRole.COHORT_COUNT and self.type not in COHORT_COUNT_TYPES:
            raise InvalidArgumentError(
                f"ContractColumn {self.name!r}: a cohort_count column must have an integer "
                f"type ({', '.join(COHORT_COUNT_TYPES)}), got {self.type}"
            )

    @property
    def role_name(self) -> str:
        """The role as its string alias."""
        return ColumnRole.parse(self.role).value

    def to_dict(self) -> dict[str, str]:
        """A JSON-friendly dict."""
        return {"name": self.name, "type": self.type, "role": self.role_name}


class _Report(Protocol):
    min_cohort: int


class _Reviewable(Protocol):
    """What :meth:`OutputContract.review` needs: ``.df`` and ``.report`` (a guard result)."""

    @property
    def df(self) -> DataFrame: ...

    @property
    def report(self) -> Any: ...


@dataclass(frozen=True)
class Review:
    """The verdict of :meth:`OutputContract.review`.

    Attributes:
        approved: True when the result complies with the contract.
        reasons: every reason for a rejection (empty when approved); column names,
            types, counts and thresholds only, never a row value.
        contract_fingerprint: the :meth:`OutputContract.fingerprint` reviewed against.

    Example:
        >>> Review(approved=False, reasons=("column 'x' is not allowed by the contract",),
        ...        contract_fingerprint="0" * 64).approved
        False
    """

    approved: bool
    reasons: tuple[str, ...]
    contract_fingerprint: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "reasons", tuple(self.reasons))
        if self.approved and self.reasons:
            raise InvalidArgumentError("Review: an approved review cannot have reasons")
        if not self.approved and not self.reasons:
            raise InvalidArgumentError("Review: a rejected review needs at least one reason")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {
            "approved": self.approved,
            "reasons": list(self.reasons),
            "contract_fingerprint": self.contract_fingerprint,
        }

    def __str__(self) -> str:
        head = "approved" if self.approved else f"rejected ({len(self.reasons)} reason(s))"
        lines = [f"Contract review {self.contract_fingerprint[:12]}: {head}"]
        lines += [f"  - {reason}" for reason in self.reasons]
        return "\n".join(lines)


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

    Raises:
        InvalidArgumentError: no columns, duplicate names, ``min_cohort`` < 1.
        NotAllowedError: a token column.
    """

    columns: tuple[ContractColumn, ...]
    min_cohort: int
    dp_required: bool = False
    name: str | None = None
    version: str | None = None

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
        for attr in ("name", "version"):
            value = getattr(self, attr)
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidArgumentError(
                    f"OutputContract: {attr!r} must be a non-empty string or None"
                )

    # ------------------------------------------------------------------ serialization

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (the content the fingerprint covers)."""
        return {
            "format": CONTRACT_FORMAT,
            "name": self.name,
            "version": self.version,
            "min_cohort": self.min_cohort,
            "dp_required": self.dp_required,
            "columns": [c.to_dict() for c in self.columns],
        }

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
        known = {"format", "name", "version", "min_cohort", "dp_required", "columns"}
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
                    "'name', 'type' and 'role': dimension, measure or cohort_count)"
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
        result: _Reviewable,
        *,
        min_cohort: int | None = None,
        dp_required: bool | None = None,
        name: str | None = None,
        version: str | None = None,
        roles: Mapping[str, ColumnRole | str] | None = None,
    ) -> OutputContract:
        """Draft a contract from a guarded result (to review, edit and approve by hand).

        Group columns become dimensions, ``agg.count()`` outputs cohort counts and other
        aggregates measures; ``roles`` overrides any of them. ``min_cohort`` and
        ``dp_required`` default to what the run used.

        Example:
            >>> OutputContract.from_result(result, name="segments").to_json()  # doctest: +SKIP
        """
        report = result.report
        group_by = set(getattr(report, "group_by", ()) or ())
        kinds = {
            str(a.get("name")): str(a.get("kind"))
            for a in (getattr(report, "aggregates", ()) or ())
            if isinstance(a, Mapping)
        }
        overrides = dict(roles or {})
        columns = []
        for fld in result.df.schema.fields:
            if fld.name in overrides:
                role: ColumnRole | str = overrides.pop(fld.name)
            elif fld.name in group_by:
                role = ColumnRole.DIMENSION
            elif kinds.get(fld.name) == "count" and not _dp_used(report):
                # a DP count is noisy: it can fall below the threshold by chance, so it is
                # a measure, not a cohort count
                role = ColumnRole.COHORT_COUNT
            elif fld.name in kinds:
                role = ColumnRole.MEASURE
            else:
                role = ColumnRole.DIMENSION
            columns.append(ContractColumn(fld.name, fld.dataType.simpleString(), role))
        if overrides:
            raise InvalidArgumentError(
                f"OutputContract.from_result: 'roles' names columns not in the result: "
                f"{sorted(overrides)}"
            )
        return cls(
            columns=tuple(columns),
            min_cohort=int(report.min_cohort) if min_cohort is None else min_cohort,
            dp_required=_dp_used(report) if dp_required is None else dp_required,
            name=name,
            version=version,
        )

    # ------------------------------------------------------------------ review

    def column(self, name: str) -> ContractColumn:
        """The contract column called ``name``."""
        for col in self.columns:
            if col.name == name:
                return col
        raise InvalidArgumentError(f"OutputContract.column(): no column named {name!r}")

    def review(self, result: _Reviewable) -> Review:
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
        df = result.df
        report = result.report
        reasons: list[str] = []
        fields = {f.name: f for f in df.schema.fields}
        expected = {c.name: c for c in self.columns}

        for name in fields:
            if name not in expected:
                reasons.append(f"column {name!r} is not allowed by the contract")
        for name in expected:
            if name not in fields:
                reasons.append(f"column {name!r} required by the contract is missing")
        for name, col in expected.items():
            if name in fields:
                actual = _normalize_type(fields[name].dataType.simpleString())
                if actual != col.type:
                    reasons.append(
                        f"column {name!r} has type {actual}, the contract expects {col.type}"
                    )

        run_min = getattr(report, "min_cohort", None)
        if not isinstance(run_min, int):
            reasons.append("the result's report does not state the minimum cohort it enforced")
        elif run_min < self.min_cohort:
            reasons.append(
                f"the run's minimum cohort {run_min} is lower than the contract's {self.min_cohort}"
            )
        if self.dp_required and not _dp_used(report):
            reasons.append("the contract requires differential privacy, and the run did not use it")

        from pyspark.sql.types import NumericType

        cohort_cols = [
            n for n, c in expected.items()
            if c.role is ColumnRole.COHORT_COUNT and n in fields
            and isinstance(fields[n].dataType, NumericType)
        ]
        dimensions = {n for n, c in expected.items() if c.role is ColumnRole.DIMENSION}
        reasons += scan_values(
            df,
            cohort_columns=cohort_cols,
            dimensions={n for n in fields if n in dimensions or n not in expected},
            min_cohort=self.min_cohort,
        )
        return Review(
            approved=not reasons, reasons=tuple(reasons), contract_fingerprint=self.fingerprint()
        )


def _cli_check(args: Any) -> int:
    import sys

    try:
        contract = OutputContract.load(args.file)
    except InvalidArgumentError as exc:
        print(f"invalid contract: {exc}", file=sys.stderr)
        return 3
    fingerprint = contract.fingerprint()
    print(f"contract     : {contract.name or 'unnamed'} (version {contract.version or '-'})")
    print(f"min cohort   : {contract.min_cohort} distinct privacy units")
    print(f"DP required  : {'yes' if contract.dp_required else 'no'}")
    print("columns      :")
    for col in contract.columns:
        print(f"  {col.name} {col.type} ({col.role_name})")
    print(f"fingerprint  : {fingerprint}")
    if args.fingerprint is not None:
        expected = args.fingerprint.strip().lower()
        if expected != fingerprint:
            print(
                f"MISMATCH: expected fingerprint {expected[:16]}…, the file has "
                f"{fingerprint[:16]}… (the contracts differ)",
                file=sys.stderr,
            )
            return 1
        print("fingerprint matches the approved one")
    return 0


def register_cli(subparsers: Any) -> None:
    """Add ``cleanjoin contract check``."""
    contract = subparsers.add_parser("contract", help="inspect output contract files")
    verbs = contract.add_subparsers(dest="contract_command", required=True)
    check = verbs.add_parser(
        "check",
        help="validate a contract file (.json, .yaml) and print its fingerprint; exit 1 when "
        "--fingerprint differs, 3 on an invalid file (no Spark needed)",
    )
    check.add_argument("file", help="the contract file")
    check.add_argument(
        "--fingerprint", default=None,
        help="the approved contract's fingerprint (as both parties signed off on it)",
    )
    check.set_defaults(func=_cli_check)


def _dp_used(report: Any) -> bool:
    used = getattr(report, "dp_used", None)
    if isinstance(used, bool):
        return used
    return getattr(report, "dp", None) is not None
