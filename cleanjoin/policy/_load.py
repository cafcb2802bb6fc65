"""Validation of a policy document (a dict) into the policy's parts, and the file loaders.

Every problem is a :class:`~cleanjoin.errors.ConfigurationError` naming the key path
(``parties.provider.measures.txn_count_1h.bounds``) and what was expected; values are
never repeated (a policy may name tables and columns, not hold data, but a mistyped key
may hold anything).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cleanjoin._names import is_token_name
from cleanjoin._table import TableRef
from cleanjoin.consent import DEFAULT_REGION_COLUMN, ConsentPolicy
from cleanjoin.errors import CleanJoinError, ConfigurationError
from cleanjoin.policy._model import (
    BOUNDED_AGGREGATES,
    MEASURE_AGGREGATES,
    AgreementsPolicy,
    BudgetPolicy,
    DominancePolicy,
    DPPolicy,
    MeasurePolicy,
    PartyConsent,
    PartyPolicy,
)

__all__ = ["POLICY_FORMAT", "json_document", "parse", "read_text", "yaml_document"]

POLICY_FORMAT = "cleanjoin.policy/v1"
"""The ``format`` of a collaboration policy document."""

_CALL = "CollaborationPolicy"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MISSING = object()

_TOP = {
    "format", "name", "version", "description", "parties", "privacy_unit", "min_cohort",
    "max_rows_per_key", "dp", "budget", "dominance", "p_percent", "refinement_guard",
    "max_dimension_values", "outputs",
}
_PARTY = {
    "table", "join_column", "dimensions", "measures", "consent", "revoked", "person_column",
}
_MEASURE = {"aggregates", "bounds"}
_CONSENT = {"consent_column", "allowed_values", "region_column", "allowed_regions", "agreements"}
_AGREEMENTS = {"table", "region_column", "status_column", "active_value"}
_DP = {"required", "max_epsilon", "max_delta", "public_groups"}
_BUDGET = {"ledger", "total_epsilon", "total_delta"}
_DOMINANCE = {"n", "k"}


def _fail(path: str, problem: str) -> ConfigurationError:
    return ConfigurationError(f"{_CALL}: {path}: {problem}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _mapping(value: Any, path: str, known: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path or "the document", f"must be a mapping, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise _fail(path or "the document", f"keys must be strings, got {type(key).__name__}")
    unknown = sorted(set(value) - known)
    if unknown:
        raise _fail(
            path or "the document", f"unknown keys {unknown}; expected some of {sorted(known)}"
        )
    return value


def _required(data: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in data or data[key] is None:
        raise _fail(_join(path, key), "is required")
    return data[key]


def _name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, f"must be a non-empty column name, got {type(value).__name__}")
    return value


def _names(value: Any, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise _fail(path, f"must be a list of column names, got {type(value).__name__}")
    names = [_name(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if len(set(names)) != len(names):
        raise _fail(path, "names a column twice")
    return tuple(sorted(names))


def _int(value: Any, path: str, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _fail(path, f"must be an integer >= {low}")
    return value


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(path, "must be a finite number")
    return float(value)


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, f"must be true or false, got {type(value).__name__}")
    return value


def _table(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, f"must be a Delta path or a table name, got {type(value).__name__}")
    try:
        return TableRef.parse(value, arg=path, call=_CALL).given
    except CleanJoinError as exc:
        raise _fail(path, f"is not a Delta path or a table name ({exc})") from None


def _bounds(value: Any, path: str) -> tuple[float, float] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise _fail(path, "must be a pair [lower, upper]")
    lo, hi = (_number(v, f"{path}[{i}]") for i, v in enumerate(value))
    if not lo < hi:
        raise _fail(path, "must have lower < upper")
    return (lo, hi)


def _measure(value: Any, path: str) -> MeasurePolicy:
    data = _mapping(value, path, _MEASURE)
    kinds = _required(data, "aggregates", path)
    apath = _join(path, "aggregates")
    if not isinstance(kinds, list | tuple) or not kinds:
        raise _fail(apath, "must be a non-empty list of aggregates")
    for i, kind in enumerate(kinds):
        if kind == "count":
            raise _fail(f"{apath}[{i}]", "'count' needs no measure: it is always allowed")
        if kind not in MEASURE_AGGREGATES:
            raise _fail(
                f"{apath}[{i}]", f"unknown aggregate; available options are {list(MEASURE_AGGREGATES)}"
            )
    if len(set(kinds)) != len(kinds):
        raise _fail(apath, "names an aggregate twice")
    bounds = _bounds(data.get("bounds"), _join(path, "bounds"))
    if bounds is None and BOUNDED_AGGREGATES & set(kinds):
        raise _fail(
            _join(path, "bounds"),
            "is required when sum, mean, variance or stddev is allowed (the owner fixes them)",
        )
    return MeasurePolicy(tuple(sorted(kinds)), bounds)


def _consent(value: Any, path: str) -> PartyConsent | None:
    if value is None:
        return None
    data = _mapping(value, path, _CONSENT)
    defaults = PartyConsent()
    column = data.get("consent_column", defaults.consent_column)
    values_given = data.get("allowed_values", _MISSING)
    values: Any = defaults.allowed_values if values_given is _MISSING else values_given
    if column is None:
        if values_given not in (_MISSING, None, [], ()):
            raise _fail(_join(path, "allowed_values"), "needs 'consent_column'")
        values = ()
    else:
        column = _name(column, _join(path, "consent_column"))
        if not isinstance(values, list | tuple):
            raise _fail(_join(path, "allowed_values"), "must be a list of values")
    region = data.get("region_column")
    region = None if region is None else _name(region, _join(path, "region_column"))
    regions = data.get("allowed_regions")
    agreements = None
    if data.get("agreements") is not None:
        apath = _join(path, "agreements")
        adata = _mapping(data["agreements"], apath, _AGREEMENTS)
        if regions is not None:
            raise _fail(_join(path, "allowed_regions"), "must be absent when 'agreements' is set")
        agreements = AgreementsPolicy(
            table=_table(_required(adata, "table", apath), _join(apath, "table")),
            region_column=(
                None if adata.get("region_column") is None
                else _name(adata["region_column"], _join(apath, "region_column"))
            ),
            status_column=_name(
                adata.get("status_column", "agreement_status"), _join(apath, "status_column")
            ),
            active_value=_name(adata.get("active_value", "ACTIVE"), _join(apath, "active_value")),
        )
        if region is None:
            region = DEFAULT_REGION_COLUMN
    elif regions is not None:
        if not isinstance(regions, list | tuple):
            raise _fail(_join(path, "allowed_regions"), "must be a list of region names")
        regions = tuple(sorted(set(regions), key=str))
    try:  # the consent module's own rules, on a stand-in side
        ConsentPolicy(
            side="left", consent_column=column, allowed_values=tuple(values),
            region_column=region,
            allowed_regions=(
                frozenset() if agreements is not None
                else None if regions is None else frozenset(regions)
            ),
        )
    except CleanJoinError as exc:
        raise _fail(path, f"is not a valid consent policy ({exc})") from None
    return PartyConsent(
        consent_column=column, allowed_values=tuple(dict.fromkeys(values)), region_column=region,
        allowed_regions=regions, agreements=agreements,
    )


def _party(name: Any, value: Any, path: str) -> PartyPolicy:
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(path, "must be a party name of letters, digits, '_', '.' or '-'")
    data = _mapping(value, path, _PARTY)
    join_column = _name(_required(data, "join_column", path), _join(path, "join_column"))
    dims = _names(data.get("dimensions"), _join(path, "dimensions"))
    measures_in = data.get("measures") or {}
    mpath = _join(path, "measures")
    if not isinstance(measures_in, Mapping):
        raise _fail(mpath, f"must be a mapping of column to rules, got {type(measures_in).__name__}")
    measures = {}
    for column in sorted(measures_in, key=str):
        cpath = f"{mpath}.{column}"
        measures[_name(column, cpath)] = _measure(measures_in[column], cpath)
    for column in (*dims, *measures):
        where = "dimensions" if column in dims else f"measures.{column}"
        if column == join_column or is_token_name(column):
            raise _fail(_join(path, where), "a join or token column is never released")
    person = data.get("person_column")
    revoked = data.get("revoked")
    return PartyPolicy(
        name=name,
        table=_table(_required(data, "table", path), _join(path, "table")),
        join_column=join_column,
        dimensions=dims,
        measures=measures,
        consent=_consent(data.get("consent"), _join(path, "consent")),
        revoked=None if revoked is None else _table(revoked, _join(path, "revoked")),
        person_column=None if person is None else _name(person, _join(path, "person_column")),
    )


def _group(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not value:
        raise _fail(path, "must be a non-empty mapping of group column to value")
    out: dict[str, Any] = {}
    for key in sorted(value, key=str):
        item = value[key]
        _name(key, path)
        if item is not None and (
            not isinstance(item, str | int | float | bool)
            or (isinstance(item, float) and not math.isfinite(item))
        ):
            raise _fail(f"{path}.{key}", "must be a string, a number, a boolean or null")
        out[key] = item
    return out


def _dp(value: Any) -> DPPolicy:
    if value is None:
        return DPPolicy()
    data = _mapping(value, "dp", _DP)
    base = DPPolicy()
    eps = _number(data.get("max_epsilon", base.max_epsilon), "dp.max_epsilon")
    if eps <= 0:
        raise _fail("dp.max_epsilon", "must be > 0")
    delta = _number(data.get("max_delta", base.max_delta), "dp.max_delta")
    if not 0 <= delta < 1:
        raise _fail("dp.max_delta", "must be in [0, 1)")
    groups_in = data.get("public_groups") or []
    if not isinstance(groups_in, list | tuple):
        raise _fail("dp.public_groups", "must be a list of groups")
    groups = [_group(g, f"dp.public_groups[{i}]") for i, g in enumerate(groups_in)]
    unique = {json.dumps(g, sort_keys=True): g for g in groups}
    return DPPolicy(
        required=_bool(data.get("required", base.required), "dp.required"),
        max_epsilon=eps,
        max_delta=delta,
        public_groups=tuple(unique[k] for k in sorted(unique)),
    )


def _budget(value: Any, dp: DPPolicy) -> BudgetPolicy | None:
    if value is None:
        if dp.required:
            raise _fail("budget", "is required when dp.required is true")
        return None
    data = _mapping(value, "budget", _BUDGET)
    total_eps = _number(_required(data, "total_epsilon", "budget"), "budget.total_epsilon")
    total_delta = _number(_required(data, "total_delta", "budget"), "budget.total_delta")
    if total_eps <= 0:
        raise _fail("budget.total_epsilon", "must be > 0")
    if not 0 <= total_delta < 1:
        raise _fail("budget.total_delta", "must be in [0, 1)")
    if dp.max_epsilon > total_eps:
        raise _fail("dp.max_epsilon", "must not exceed budget.total_epsilon")
    if dp.max_delta > total_delta:
        raise _fail("dp.max_delta", "must not exceed budget.total_delta")
    return BudgetPolicy(
        ledger=_table(_required(data, "ledger", "budget"), "budget.ledger"),
        total_epsilon=total_eps,
        total_delta=total_delta,
    )


def _dominance(data: Mapping[str, Any]) -> DominancePolicy | None:
    if "dominance" not in data:
        return DominancePolicy()
    value = data["dominance"]
    if value is None:
        return None
    rules = _mapping(value, "dominance", _DOMINANCE)
    base = DominancePolicy()
    k = _number(rules.get("k", base.k), "dominance.k")
    if not 0 < k <= 1:
        raise _fail("dominance.k", "must be in (0, 1]")
    return DominancePolicy(n=_int(rules.get("n", base.n), "dominance.n", low=1), k=k)


def _p_percent(data: Mapping[str, Any]) -> float | None:
    if "p_percent" not in data:
        return 10.0
    if data["p_percent"] is None:
        return None
    p = _number(data["p_percent"], "p_percent")
    if not 0 < p <= 100:
        raise _fail("p_percent", "must be in (0, 100]")
    return p


def _outputs(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise _fail("outputs", "must be a list of output contract fingerprints")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not _HEX64.match(item):
            raise _fail(f"outputs[{i}]", "must be a contract fingerprint (64 lowercase hex)")
    return tuple(sorted(set(value)))


def parse(document: Any) -> dict[str, Any]:
    """The validated fields of a :class:`CollaborationPolicy`, defaults filled in.

    Raises:
        ConfigurationError: the first problem, naming its key path.
    """
    data = _mapping(document, "", _TOP)
    fmt = _required(data, "format", "")
    if fmt != POLICY_FORMAT:
        raise _fail("format", f"must be {POLICY_FORMAT!r}")
    name = _required(data, "name", "")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail("name", "must be a name of letters, digits, '_', '.' or '-'")
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        raise _fail("description", "must be a string")
    parties_in = _required(data, "parties", "")
    if not isinstance(parties_in, Mapping) or len(parties_in) < 2:
        raise _fail("parties", "must be a mapping of at least two parties")
    parties = {
        str(key): _party(key, value, f"parties.{key}") for key, value in parties_in.items()
    }
    unit = _name(_required(data, "privacy_unit", ""), "privacy_unit")
    dp = _dp(data.get("dp"))
    return {
        "name": name,
        "version": _int(data.get("version", 1), "version", low=1),
        "description": description,
        "parties": parties,
        "privacy_unit": unit,
        "min_cohort": _int(_required(data, "min_cohort", ""), "min_cohort", low=1),
        "max_rows_per_key": _int(data.get("max_rows_per_key", 10_000), "max_rows_per_key", low=1),
        "dp": dp,
        "budget": _budget(data.get("budget"), dp),
        "dominance": _dominance(data),
        "p_percent": _p_percent(data),
        "refinement_guard": _bool(data.get("refinement_guard", True), "refinement_guard"),
        "max_dimension_values": _int(
            data.get("max_dimension_values", 1000), "max_dimension_values", low=1
        ),
        "outputs": _outputs(data.get("outputs")),
    }


# --------------------------------------------------------------------------- formats


def yaml_document(text: str) -> Any:
    """The document of a YAML policy: safe loading, YAML 1.2 floats (``1e-6`` is a number),
    and a key given twice refused.

    Raises:
        ConfigurationError: the text is not YAML, or repeats a key.
    """
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(
            r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)"
            r"|\.[0-9_]+(?:[eE][-+][0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+0123456789."),
    )

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in out:
                raise ConfigurationError(
                    f"{_CALL}: the key {key!r} is given twice (line {key_node.start_mark.line + 1})"
                )
            out[key] = loader.construct_object(value_node, deep=True)
        return out

    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigurationError(f"{_CALL}.from_yaml: the text is not valid YAML{where}") from None


def json_document(text: str) -> Any:
    """The document of a JSON policy, a key given twice refused."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ConfigurationError(f"{_CALL}: the key {key!r} is given twice")
            out[key] = value
        return out

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"{_CALL}.load: the text is not valid JSON (line {exc.lineno})"
        ) from None


def read_text(path: str | Path) -> Any:
    """The document of a policy file, by its suffix (``.yaml``, ``.yml`` or ``.json``).

    Raises:
        ConfigurationError: an unknown suffix, or a file that cannot be read or parsed.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise ConfigurationError(
            f'{_CALL}.load: unknown policy file suffix "{suffix}". Available options are '
            '".yaml", ".yml", ".json".'
        )
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"{_CALL}.load: cannot read the policy file ({exc.strerror})") from None
    return json_document(text) if suffix == ".json" else yaml_document(text)
