"""Seeded randomness as Spark expressions: every random choice of synth comes from here.

A *seeded uniform* is ``xxhash64(seed, salt, key) / 2**53``: the same arguments give the
same value in classic Spark and in Spark Connect, whatever the partitioning.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from types import ModuleType
from typing import Any

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
    return F.pmod(hashed, F.lit(_TWO53)).cast("double") / F.lit(float(_TWO53))


def choose(F: ModuleType, u: Column, options: Sequence[tuple[Any, float]]) -> Column:
    """Pick an option by cumulative weights on uniform ``u`` (weights are normalized)."""
    total = sum(w for _, w in options)
    expr: Any = None
    cumulative = 0.0
    for value, weight in options[:-1]:
        cumulative += weight / total
        cond = u < F.lit(cumulative)
        expr = F.when(cond, F.lit(value)) if expr is None else expr.when(cond, F.lit(value))
    last = F.lit(options[-1][0])
    return last if expr is None else expr.otherwise(last)


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
        return spark.range(n)
    check_count(owner, "partitions", partitions, minimum=1)
    return spark.range(0, n, 1, partitions)
