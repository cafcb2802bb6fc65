"""The columns of an output contract: their role and their allowed Spark type.

A :class:`ContractColumn` names one column a released result may have; a token column
(``token`` or ``*_token``) can never be one, since tokens are never released.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from cleanjoin._choice import parse_choice
from cleanjoin._names import is_token_name
from cleanjoin.errors import InvalidArgumentError, NotAllowedError

COHORT_COUNT_TYPES = ("tinyint", "smallint", "int", "bigint")
"""The Spark types a ``cohort_count`` column may have (a count of people is an integer)."""

GROUPING_COLUMN = "grouping_id"
"""The margin marker of a release with margins (``group_by(...).rollup()`` or
``grouping_sets=``): an ``int`` naming each row's grouping set as Spark's ``grouping_id()``
does (bit ``n - 1 - i`` set when the ``i``-th of the ``n`` group columns is rolled up, so
0 is the finest set), which tells a margin row's null from a null value. Its contract
role is ``"grouping"``."""


class ColumnRole(Enum):
    """What an output column is. ``ColumnRole("measure")`` accepts the string alias."""

    DIMENSION = "dimension"
    MEASURE = "measure"
    COHORT_COUNT = "cohort_count"
    GROUPING = "grouping"

    @classmethod
    def parse(cls, value: ColumnRole | str) -> ColumnRole:
        """Accept a ``ColumnRole`` or its string alias, with a precise error otherwise."""
        return parse_choice(cls, value, what="column role")


def normalize_type(spark_type: str) -> str:
    """A Spark type name as compared: without spaces, in lower case."""
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
            ``"cohort_count"`` (a group size, every value must reach the minimum cohort)
            or ``"grouping"`` (the margin marker :data:`GROUPING_COLUMN` of a release
            with margins; an integer type).

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
        if is_token_name(self.name):
            raise NotAllowedError(
                f"ContractColumn: column {self.name!r} is a token column; tokens are never "
                "released, so a contract cannot allow one"
            )
        if not isinstance(self.type, str) or not self.type.strip():
            raise InvalidArgumentError(
                f"ContractColumn {self.name!r}: 'type' must be a Spark type name such as 'bigint'"
            )
        object.__setattr__(self, "type", normalize_type(self.type))
        object.__setattr__(self, "role", ColumnRole.parse(self.role))
        if self.role is ColumnRole.COHORT_COUNT and self.type not in COHORT_COUNT_TYPES:
            raise InvalidArgumentError(
                f"ContractColumn {self.name!r}: a cohort_count column must have an integer "
                f"type ({', '.join(COHORT_COUNT_TYPES)}), got {self.type}"
            )
        if self.role is ColumnRole.GROUPING and self.type not in COHORT_COUNT_TYPES:
            raise InvalidArgumentError(
                f"ContractColumn {self.name!r}: a grouping column must have an integer "
                f"type ({', '.join(COHORT_COUNT_TYPES)}), got {self.type}"
            )

    @property
    def role_name(self) -> str:
        """The role as its string alias."""
        return ColumnRole.parse(self.role).value

    def to_dict(self) -> dict[str, str]:
        """A JSON-friendly dict."""
        return {"name": self.name, "type": self.type, "role": self.role_name}

