"""Reading contract text: JSON, YAML (safe loading, a key given twice refused) and files.

Each function returns the plain data a contract is built from, which
:meth:`OutputContract.from_dict <cleanjoin.contract.OutputContract.from_dict>`
validates. Errors name the ``OutputContract`` method the caller used and where the text
is wrong (line, column, exception type), never a value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cleanjoin.errors import InvalidArgumentError


def is_yaml(path: Path) -> bool:
    """Whether ``path`` names a YAML file (``.yaml``/``.yml``, any case)."""
    return path.suffix.lower() in (".yaml", ".yml")


def read_text(path: Path) -> str:
    """The text of a contract file (for :meth:`OutputContract.load`)."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(
            f"OutputContract.load: cannot read {str(path)!r} ({type(exc).__name__})"
        ) from None


def json_data(text: str) -> Any:
    """The data of a JSON contract (for :meth:`OutputContract.from_json`)."""
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"OutputContract.from_json: not valid JSON ({type(exc).__name__})"
        ) from None


def yaml_data(text: str) -> Any:
    """The data of a YAML contract (for :meth:`OutputContract.from_yaml`).

    Example:
        >>> yaml_data("min_cohort: 1\\nmin_cohort: 2\\n")
        Traceback (most recent call last):
        ...
        cleanjoin.errors.InvalidArgumentError: OutputContract.from_yaml: key 'min_cohort' is given twice (line 2)
    """
    import yaml

    if not isinstance(text, str):
        raise InvalidArgumentError(
            f"OutputContract.from_yaml: expected YAML text, got {type(text).__name__}"
        )
    try:
        return yaml.load(text, Loader=_unique_keys_loader())  # a SafeLoader subclass
    except _DuplicateKeyError as exc:
        raise InvalidArgumentError(f"OutputContract.from_yaml: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InvalidArgumentError(
            f"OutputContract.from_yaml: not valid YAML{where} ({type(exc).__name__})"
        ) from None


class _DuplicateKeyError(ValueError):
    """A YAML mapping names a key twice (internal to :meth:`OutputContract.from_yaml`)."""


def _unique_keys_loader() -> Any:
    """A ``yaml.SafeLoader`` subclass that refuses a key given twice in one mapping."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _value in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    line = key_node.start_mark.line + 1
                    raise _DuplicateKeyError(f"key {key!r} is given twice (line {line})")
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader

