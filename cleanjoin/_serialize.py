"""One serializer for every report's ``to_dict``: frozen dataclasses to JSON-friendly dicts.

Fields keep their declaration order. Values become JSON-friendly recursively: an object
with its own ``to_dict`` gives that, another dataclass its fields, tuples and lists become
lists, mappings dicts, enums their value, dates and times ISO-8601 text; anything else
(numbers, strings, booleans, ``None``) stays as it is.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Mapping
from enum import Enum
from typing import Any

__all__ = ["plain", "report_dict"]


def plain(value: Any) -> Any:
    """``value`` made JSON-friendly (see the module docstring).

    Example:
        >>> import datetime
        >>> plain({"bounds": (0, 1), "at": datetime.date(2026, 12, 2)})
        {'bounds': [0, 1], 'at': '2026-12-02'}
    """
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):
        return to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return report_dict(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, _dt.date | _dt.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def report_dict(report: Any, *, omit: tuple[str, ...] = (), **values: Any) -> dict[str, Any]:
    """The fields of the dataclass ``report`` as a JSON-friendly dict.

    Args:
        report: a dataclass instance.
        omit: fields left out.
        values: fields whose value is given here instead (already JSON-friendly), and
            extra keys, added at the end.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class R:
        ...     rows: int
        ...     groups: tuple[str, ...]
        ...     seconds: float
        >>> report_dict(R(3, ("a",), 1.23456), seconds=1.235, rate=0.5)
        {'rows': 3, 'groups': ['a'], 'seconds': 1.235, 'rate': 0.5}
    """
    out: dict[str, Any] = {}
    for f in dataclasses.fields(report):
        if f.name in omit:
            continue
        out[f.name] = values.pop(f.name) if f.name in values else plain(getattr(report, f.name))
    out.update(values)
    return out
