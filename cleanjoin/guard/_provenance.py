"""Checks on the inputs before a guarded run: key provenance and the quasi-identifier guard.

* **Key provenance** (``GuardedJoin(..., token_keys=True)``, always under a policy): every
  non-null join key has the shape of a spec-v1 token, 64 lower-case hexadecimal
  characters. Made-up people (``"fake-1"``, ...) padding a segment over the floor are
  refused with their count. With a person column (``person_column=``, or each party's
  ``person_column`` under a policy), a side may not hold one person under several keys
  (which would count one person as several units).
* **Quasi-identifier guard** (``ReadyJoin.max_dimension_values(n)``, a policy's
  ``max_dimension_values``, default 1000): a group column whose distinct values exceed
  the limit *and* 5 % of its side's rows is refused (a timestamp to the second, a
  customer id: nearly one group per person). Distinct values are counted with
  ``approx_count_distinct`` (relative error about 5 %) in the same job as the key check;
  a column whose estimate is within 10 % of the limit is counted exactly.

One job per side (row count, malformed keys, estimates), one more per person column and
per column near the limit. Errors name the side, the column and counts, never a value.
"""

from __future__ import annotations

from typing import Any

from cleanjoin._spark import functions_for
from cleanjoin.errors import ColumnNotFoundError, InvalidArgumentError, NotAllowedError
from cleanjoin.guard._observe import q

__all__ = ["QI_SHARE", "TOKEN_PATTERN", "check_inputs", "check_key_options", "person_columns"]

TOKEN_PATTERN = "^[0-9a-f]{64}$"
"""The shape of a spec-v1 token: 64 lower-case hexadecimal characters."""

QI_SHARE = 0.05
"""A dimension is refused only when its distinct values also exceed this share of its
side's rows (a small table may have many values, each shared by many rows)."""

_NEAR = 0.10  # estimates this close to the limit are counted exactly


def check_key_options(schemas: Any, token_keys: Any, person: Any) -> None:
    """``GuardedJoin``'s ``token_keys`` (a bool) and ``person_column`` (a column or None)."""
    if not isinstance(token_keys, bool):
        raise InvalidArgumentError("'token_keys' in GuardedJoin must be True or False")
    if person is None:
        return
    if not isinstance(person, str) or not person:
        raise InvalidArgumentError("'person_column' in GuardedJoin must be a column name")
    if schemas.side_of(person) is None:
        raise ColumnNotFoundError(
            f"GuardedJoin: person_column {person!r} is in neither input ({schemas.columns()})"
        )


def person_columns(binding: Any, schemas: Any, person: str | None) -> tuple[tuple[str, str], ...]:
    """``(side, column)``: the person column of each side that has one (under a policy,
    each party's ``person_column``; else ``person``, on every side that has it)."""
    sides = (("left", schemas.left), ("right", schemas.right))
    if binding is not None:
        found = []
        for (side, schema), name in zip(sides, binding.parties, strict=True):
            column = binding.policy.parties[name].person_column
            if column is not None and column in schema:
                found.append((side, column))
        return tuple(found)
    if person is None:
        return ()
    return tuple((side, person) for side, schema in sides if person in schema)


def check_inputs(query: Any) -> None:
    """Refuse the run before it starts when a rule above is broken.

    Raises:
        NotAllowedError: malformed join keys (their count), a person under several
            keys (the number of such persons), or a dimension with too many values.
    """
    limit = query.max_dimension_values
    persons = dict(query.person_columns)
    if not query.token_keys and limit is None and not persons:
        return
    for index, side in enumerate(("left", "right")):
        df = query.left if side == "left" else query.right
        key = query.keys[index]
        schema = query.schemas.left if side == "left" else query.schemas.right
        dims = [c for c in query.group_columns if c in schema] if limit is not None else []
        if not query.token_keys and not dims and side not in persons:
            continue
        F = functions_for(df)
        k = F.col(q(key))
        exprs = [F.count(F.lit(1)).alias("rows")]
        if query.token_keys:
            bad = k.isNotNull() & ~k.cast("string").rlike(TOKEN_PATTERN)
            exprs.append(F.count(F.when(bad, F.lit(1))).alias("bad"))
        exprs += [F.approx_count_distinct(F.col(q(c))).alias(f"d{i}") for i, c in enumerate(dims)]
        row = df.agg(*exprs).collect()[0]
        rows = int(row["rows"] or 0)
        if query.token_keys and int(row["bad"] or 0):
            raise NotAllowedError(
                f"GuardedJoin: {int(row['bad'])} row(s) of the {side} input have a join key "
                f"({key!r}) that is not a spec-v1 token (64 lower-case hex characters); keys "
                "must come from cleanjoin.tokenize, so made-up people cannot pad a group"
            )
        for i, column in enumerate(dims):
            estimate = int(row[f"d{i}"] or 0)
            if limit is None or estimate <= limit * (1 - _NEAR):
                continue
            distinct = estimate
            if estimate <= limit * (1 + _NEAR):
                distinct = int(df.agg(F.countDistinct(F.col(q(column)))).collect()[0][0] or 0)
            if distinct > limit and distinct > QI_SHARE * rows:
                raise NotAllowedError(
                    f"group_by(): dimension {column!r} has about {distinct} distinct values "
                    f"(more than the limit of {limit} and than {QI_SHARE:.0%} of the {side} "
                    f"input's {rows} rows): nearly one group per person, a quasi-identifier; "
                    "group on a coarser column (a band, a date, a prefix)"
                )
        if side in persons:
            person = persons[side]
            p = F.col(q(person))
            several = (
                df.where(k.isNotNull() & p.isNotNull())
                .groupBy(p).agg(F.countDistinct(k).alias("keys"))
                .where(F.col("keys") > 1).count()
            )
            if several:
                raise NotAllowedError(
                    f"GuardedJoin: {several} person(s) of the {side} input (column {person!r}) "
                    f"appear under several join keys ({key!r}); one person must be one key, "
                    "or one person would count as several"
                )
