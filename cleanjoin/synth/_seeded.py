"""Seeded randomness as Spark expressions: every random choice of synth comes from here,
and the ``CASE WHEN`` chains that turn uniforms into values.

A *seeded uniform* is ``xxhash64(seed, salt, key) / 2**53``: the same arguments give the
same value in classic Spark and in Spark Connect, whatever the partitioning.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any, cast

from cleanjoin._typing import Column, DataFrame, SparkSession
from cleanjoin.synth._checks import check_count

_TWO53 = 2**53


def seed_int(seed: int, salt: str, modulus: int) -> int:
    """A seeded integer in ``[0, modulus)`` from ``(seed, salt)``, computed on the driver."""
    digest = hashlib.sha256(f"cleanjoin.synth:{seed}:{salt}".encode()).digest()
    return int.from_bytes(digest[:16], "big") % modulus


def uniform(F: ModuleType, seed: int, salt: str, key: Column) -> Column:
    """A seeded uniform double in [0, 1) from ``(seed, salt, key)``."""
    hashed = F.xxhash64(F.lit(seed), F.lit(salt), key)
    return cast("Column", F.pmod(hashed, F.lit(_TWO53)).cast("double") / F.lit(float(_TWO53)))


def cases(F: ModuleType, branches: Iterable[tuple[Column, Column]]) -> Any:
    """``F.when(c1, v1).when(c2, v2)...`` over the ``(condition, value)`` pairs, with no
    ``otherwise`` (callers add theirs); ``None`` when there are no pairs."""
    expr: Any = None
    for cond, value in branches:
        expr = F.when(cond, value) if expr is None else expr.when(cond, value)
    return expr


def thresholds(
    F: ModuleType, u: Column, shares: Sequence[tuple[Any, float]], otherwise: Any
) -> Column:
    """The first value whose cumulative share exceeds uniform ``u``, else ``otherwise``."""
    branches = []
    cumulative = 0.0
    for value, share in shares:
        cumulative += share
        branches.append((u < F.lit(cumulative), F.lit(value)))
    expr = cases(F, branches)
    return cast("Column", F.lit(otherwise) if expr is None else expr.otherwise(F.lit(otherwise)))


def choose(F: ModuleType, u: Column, options: Sequence[tuple[Any, float]]) -> Column:
    """Pick an option by cumulative weights on uniform ``u`` (weights are normalized)."""
    total = sum(w for _, w in options)
    return thresholds(F, u, [(v, w / total) for v, w in options[:-1]], options[-1][0])


def with_uniforms(
    df: DataFrame, F: ModuleType, key: str, seed: int, salts: Sequence[str]
) -> DataFrame:
    """``df`` plus one staged uniform column ``_u_<salt>`` per salt (hash once, use often)."""
    return df.select(
        "*", *[uniform(F, seed, salt, F.col(key)).alias(f"_u_{salt}") for salt in salts]
    )


def spark_range(spark: SparkSession, n: int, partitions: int | None, owner: str) -> DataFrame:
    """``spark.range(n)``, with ``partitions`` partitions when given: the ids a generator starts from."""
    if partitions is None:
        return cast("DataFrame", spark.range(n))
    check_count(owner, "partitions", partitions, minimum=1)
    return cast("DataFrame", spark.range(0, n, 1, partitions))
