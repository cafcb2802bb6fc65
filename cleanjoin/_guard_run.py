"""Execution of guarded queries and review-gated Delta writes (internal to cleanjoin.guard).

Measured design choices (local[2], both session modes):

* Row counts for the report (consent, revocation, null keys, groups released and
  suppressed) come from Spark *observations* on the plan itself, so they cost no
  extra job.
* The join-explosion check never lets the join multiply rows, and reads the big side
  only once when it can. Checks before the join's stage fail the query with
  ``raise_error`` (so the join never produces exploded rows); a failing one stops the
  attempt at its first row.

  1. *fast* (first attempt): the right side's rows per key, counted by a window on the
     key over the right side's own rows just before the join — over the limit fails
     with :class:`JoinExplosionError`; two or more rows for a key mean the right side
     may repeat a key, and the query is re-run in mode 2. The window's shuffle is the
     one a sort-merge join needs anyway (Spark reuses it), and when the right side is
     small enough to broadcast it runs inside the broadcast's own job, so the check
     adds no job of its own. With at most one row per key on the right, the join cannot
     multiply rows, so the left side is not read twice: its bound is an observation in
     the query's own scan (a count-min sketch of the key's hash = rows per bucket of
     65,536; a bucket's count is at least that of every key in it, so no bucket over
     the limit proves no key is), and only when that bound exceeds the limit is the
     left side counted exactly, as its own job, before anything is stored or returned.
  2. *bucket*: both sides' rows per bucket of ``pmod(xxhash64(key), 65536)``, scalar
     subqueries in the plan (run once before the join's stage; a side is not shuffled
     for them beyond one row per bucket and partition); a bucket over the limit re-runs
     the query in mode 3.
  3. *exact*: both sides' rows per key, in the plan; :class:`JoinExplosionError` only if
     a key really exceeds the limit.

  Measured on 2M provider rows (2026-11-26, local[2], warm JVM): the exact subquery
  alone 1.6-2.0 s, the bound 0.8-1.0 s, the hand-written query ~4.1 s. A window count on
  the *left* key (the first design) cost ~50 % more than the hand-written query, because
  it forces a shuffle of the big side where the join would otherwise be a broadcast join.
  On the 100,000-row right side, the window costs ~0.15 s where the scalar subquery it
  replaced (rows per key hash, top 1) cost ~0.35 s: the subquery was two more jobs whose
  latency the join's stage waited for. The error names the side and the limit only.
* Distinct privacy units per group, when the unit is the join key and the fast check
  proved the right side has one row per key: bits of dense ids given to the right rows
  (:func:`_bitset_grouped`, exact). On 2M provider rows (2026-12-01) the hand-written
  ``countDistinct`` query took 4.0-4.9 s, the seed's row-count query (no distinct count)
  1.6-1.9 s and the same query with unit bitsets 2.5-2.7 s: ``countDistinct`` shuffles one
  row per (group, unit), ~1.5M here, the bitsets one per (group, block of 512 ids).
  Blocks of 4, 8 and 16 words measured 2.69, 2.63 and 2.84 s.
* Otherwise on ``xxhash64`` of the unit, not on the 64-character token: the
  distinct-count shuffle moves 8 bytes per (group, unit) instead of the string (2M rows:
  hand-written query 4.55 s -> 3.70 s with the same change).
  Two units sharing a hash count as one, which can only lower a group's unit count —
  the cohort rule gets stricter, never weaker (probability about n² / 2⁶⁵ per group).
* The released result is materialized once: ``localCheckpoint`` on classic Spark;
  collect + ``createDataFrame`` on Spark Connect, where a checkpoint does not deliver
  observed metrics to the client.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cleanjoin._spark import functions_for, window_for
from cleanjoin._typing import Column, DataFrame, SparkSession
from cleanjoin.agg import AggKind, Aggregate
from cleanjoin.contract import OutputContract
from cleanjoin.errors import (
    ConfigurationError,
    ContractViolation,
    InternalError,
    InvalidArgumentError,
    JoinExplosionError,
)
from cleanjoin.guard import GuardedResult, GuardReport, ReadyJoin
from cleanjoin.session import is_connect

if TYPE_CHECKING:
    from cleanjoin.audit import AuditLog
    from cleanjoin.budget import BudgetLedger

_SIDES = ("left", "right")
_ROLE = {
    "left": "left DataFrame (first argument of GuardedJoin)",
    "right": "right DataFrame (second argument of GuardedJoin)",
}
_EXPLOSION_MARK = "CLEANJOIN_JOIN_EXPLOSION_"
_BOUND_MARK = "CLEANJOIN_JOIN_BOUND_"
_NOT_UNIQUE_MARK = "CLEANJOIN_JOIN_NOT_UNIQUE_"
_BUCKETS = 65536
_OK = "__cj_consent_ok"
_UNITS = "__cj_units"
_ROWS = "__cj_rows_per_key"
_HASH = "__cj_key_hash"
_ID = "__cj_unit_id"
_WORDS = 8  # 64-bit words per block of a unit bitset: a block holds 512 consecutive ids
_BLOCK_SHIFT = 9  # log2(64 * _WORDS)
_OBSERVATION_TIMEOUT_S = 60.0


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


# --------------------------------------------------------------------------- helpers


def observation_for(df: DataFrame, label: str) -> Any:
    """A fresh ``Observation`` of the kind matching ``df`` (classic or Connect)."""
    name = f"cj_{label}_{uuid.uuid4().hex[:12]}"
    if is_connect(df):
        from pyspark.sql.connect.observation import Observation as ConnectObservation

        return ConnectObservation(name)
    from pyspark.sql.observation import Observation as ClassicObservation

    return ClassicObservation(name)


def observed(observation: Any, *, timeout: float = _OBSERVATION_TIMEOUT_S) -> dict[str, Any] | None:
    """The metrics of an observation whose query has run, or ``None`` if unavailable.

    Classic ``Observation.get`` blocks until the observed plan runs; the bounded wait
    keeps a plan that never ran from hanging the caller (the count is then unknown).
    """
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        value = pool.submit(lambda: observation.get).result(timeout=timeout)
    except Exception:  # a missing metric only makes a count unknown
        return None
    finally:
        pool.shutdown(wait=False)
    return dict(value) if value else None


def _most_rows(frame: DataFrame, key: str, *, tier: str) -> DataFrame:
    """At most one row: the most rows of ``frame`` per key (``tier`` "key") or per bucket
    of :data:`_BUCKETS` ("bucket": a bucket's count is at least that of every key in it)."""
    F = functions_for(frame)
    k = F.col(_q(key))
    by = {"key": k, "bucket": F.pmod(F.xxhash64(k), F.lit(_BUCKETS))}[tier]
    # top-1 rather than max(): its plan collects each partition's top row to the driver
    # instead of shuffling for a final aggregate, one stage (~0.1 s) less. No row for an
    # empty frame.
    counts = frame.groupBy(by.alias("k")).agg(F.count(F.lit(1)).alias("most")).select("most")
    return counts.orderBy(F.col("most").desc()).limit(1)


def unique_or_fail(frame: DataFrame, side: str, key: str, limit: int) -> DataFrame:
    """``frame`` (a side's filtered rows, null keys removed) failing the query while it is
    computed, before the join's stage, when a key has more than ``limit`` rows (explosion
    mark: exact, the final answer) or two or more (not-unique mark: the query is re-run
    with both sides checked before the join).

    The rows per key are a window count on the key: a sort-merge join reuses the
    window's shuffle and sort, and a broadcast side runs it inside the broadcast's job.
    """
    F = functions_for(frame)
    k = F.col(_q(key))
    rows = F.col(_ROWS)
    counted = frame.withColumn(_ROWS, F.count(F.lit(1)).over(window_for(frame).partitionBy(k)))
    check = (
        F.when(rows > F.lit(limit), F.raise_error(F.lit(f"{_EXPLOSION_MARK}{side}")))
        .when(rows > F.lit(1), F.raise_error(F.lit(f"{_NOT_UNIQUE_MARK}{side}")))
        .otherwise(F.lit(True))
    )
    return counted.filter(check).drop(_ROWS)


def explosion_check(
    joined: DataFrame, sides: Mapping[str, tuple[DataFrame, str]], key: str, limit: int
) -> DataFrame:
    """``joined`` with a check that fails the query, before the join's stage, when a side
    may have or has more than ``limit`` rows for a key.

    ``sides`` maps a side to its (filtered, null keys removed) rows and its tier:
    "bucket" fails with the bound mark when a bucket exceeds the limit; "key" fails with
    the explosion mark when a key does. Each side's count is a scalar subquery, run once
    before the join's stage, so the join never produces the exploded rows and the side is
    not shuffled for it beyond one row per bucket and partition. (Measured alternative,
    2026-11-26: the counts as a one-row check cross-joined (broadcast) into the left side
    let the check's stages run alongside the right side's broadcast, but the nested-loop
    join over every left row cost as much.)
    """
    F = functions_for(joined)
    check = None
    for side, (frame, tier) in sides.items():
        most = F.coalesce(_most_rows(frame, key, tier=tier).scalar(), F.lit(0))  # empty: null
        mark = _EXPLOSION_MARK if tier == "key" else _BOUND_MARK
        fail = F.raise_error(F.lit(f"{mark}{side}"))
        cond = most > F.lit(limit)
        check = F.when(cond, fail) if check is None else check.when(cond, fail)
    if check is None:
        return joined
    return joined.filter(check.otherwise(F.lit(True)))


def not_unique(exc: BaseException) -> bool:
    """True when a Spark failure is the fast check finding a repeated key on a side."""
    return _NOT_UNIQUE_MARK in str(exc)


def bound_exceeded(exc: BaseException) -> bool:
    """True when a Spark failure is the explosion check's bucket bound (tier 1)."""
    return _BOUND_MARK in str(exc)


def explosion_error(exc: BaseException, limit: int | None) -> JoinExplosionError | None:
    """The :class:`JoinExplosionError` a Spark failure stands for, if it is the guard's."""
    text = str(exc)
    for side in _SIDES:
        if f"{_EXPLOSION_MARK}{side}" in text:
            return _explosion(side, limit)
    return None


def _explosion(side: str, limit: int | None) -> JoinExplosionError:
    return JoinExplosionError(
        f"GuardedJoin: the {_ROLE[side]} has a join key with more than {limit:,} rows "
        f"(max_rows_per_key={limit}); the join would multiply rows. Deduplicate or "
        "aggregate that side first, or raise max_rows_per_key"
    )


def _value(F: Any, aggregate: Aggregate, query: ReadyJoin) -> Column:
    """An aggregate's input: its column clamped to its bounds (as double), a boolean as 0/1
    (the type read from the inputs' schemas, which GuardedJoin holds: no round trip)."""
    if aggregate.column is None:
        raise InternalError(f"aggregate {aggregate.output_name!r} has no column")
    col = F.col(_q(aggregate.column))
    if aggregate.bounds is not None:
        lo, hi = aggregate.bounds
        return F.least(F.greatest(col.cast("double"), F.lit(float(lo))), F.lit(float(hi)))
    if query.join._dtype(aggregate.column).typeName() == "boolean":
        return col.cast("int")
    return col


def agg_column(df: DataFrame, aggregate: Aggregate, query: ReadyJoin) -> Column:
    """The Spark expression of an allowed aggregate (values clamped to its bounds)."""
    F = functions_for(df)
    kind = aggregate.kind
    name = aggregate.output_name
    if kind is AggKind.COUNT:
        return F.count(F.lit(1)).alias(name)
    if kind is AggKind.COUNT_DISTINCT and aggregate.column is not None:
        return F.countDistinct(F.col(_q(aggregate.column))).alias(name)
    value = _value(F, aggregate, query)
    if kind is AggKind.SUM:
        return F.sum(value).alias(name)
    if kind is AggKind.MEAN:
        return F.avg(value).alias(name)
    if kind is AggKind.VARIANCE:
        return F.var_pop(value).alias(name)
    if kind is AggKind.STDDEV:
        return F.stddev_pop(value).alias(name)
    raise InternalError(f"unhandled aggregate kind {kind!r}")


# --------------------------------------------------------------------------- unit bitsets

_MERGEABLE = frozenset({AggKind.COUNT, AggKind.SUM, AggKind.MEAN, AggKind.VARIANCE, AggKind.STDDEV})


def bitset_units(query: ReadyJoin) -> bool:
    """True when a query's distinct units can be counted as bits of dense unit ids.

    That needs the unit to be the join key (each right row then stands for one unit,
    once the fast check has proved the right side has one row per key), no DP (which
    bounds contributions per unit itself), and aggregates that merge exactly across the
    blocks of ids (count, sum, mean, variance, stddev of booleans, integers, floats, or
    clamped values: their two-level result has the type of the one-level aggregate).
    """
    from pyspark.sql import types

    primitive = (types.BooleanType, types.ByteType, types.ShortType, types.IntegerType,
                 types.LongType, types.FloatType, types.DoubleType)
    if query.dp is not None or query.unit_column != query.join.keys[0]:
        return False
    for a in query.aggregates:
        if a.kind not in _MERGEABLE:
            return False
        if a.column is not None and a.bounds is None and not isinstance(query.join._dtype(a.column), primitive):
            return False
    return True


def _bitset_grouped(plan: _Plan, query: ReadyJoin) -> DataFrame:
    """Per group: the distinct units (``_UNITS``) and the aggregates, counted on the units'
    dense ids (see :func:`bitset_units`) in two levels.

    Level 1 groups by (group, block of 512 consecutive ids): a block's units are a bitset
    of eight 64-bit ``bit_or`` words, so the aggregation keeps one row per group and block
    instead of one per group and unit (what ``countDistinct`` shuffles), and each aggregate
    keeps its mergeable parts (sums, counts; for variance the block's mean and squared
    deviations). Level 2 groups by group: the units are the bits set, the aggregates merge
    the blocks' parts (variance by the parallel formula, around the group's mean, read
    with a window over the level-1 rows, which share the level-2 shuffle). Exact: an id
    stands for one unit, and a unit has one id.
    """
    joined = plan.joined
    F = functions_for(joined)
    groups = [F.col(_q(c)) for c in query.group_columns]
    # SQL text: one call per expression instead of one per node (~0.1 s less per run)
    uid = _q(_ID)
    level1: list[Column] = [
        F.expr(f"bit_or(CASE WHEN (shiftright({uid}, 6) & {_WORDS - 1}) = {i} "
               f"THEN shiftleft(1L, CAST({uid} & 63 AS INT)) END) AS __cj_w{i}")
        for i in range(_WORDS)
    ]
    bits = " + ".join(f"coalesce(bit_count(__cj_w{i}), 0)" for i in range(_WORDS))
    level2: list[Column] = [F.expr(f"sum({bits}) AS {_UNITS}")]
    spread: dict[str, Column] = {}  # a variance's group mean, over the level-1 rows
    for i, a in enumerate(query.aggregates):
        name, part = a.output_name, f"__cj_a{i}"
        if a.kind is AggKind.COUNT:
            level1.append(F.count(F.lit(1)).alias(part))
            level2.append(F.sum(F.col(part)).alias(name))
            continue
        value = _value(F, a, query)
        n = F.col(f"{part}_n")
        if a.kind is AggKind.SUM:
            level1.append(F.sum(value).alias(part))
            level2.append(F.sum(F.col(part)).alias(name))
            continue
        level1.append(F.count(value).alias(f"{part}_n"))
        if a.kind is AggKind.MEAN:
            level1.append(F.sum(value.cast("double")).alias(part))
            level2.append(F.when(F.sum(n) > 0, F.sum(F.col(part)) / F.sum(n)).alias(name))
            continue
        # variance, stddev: a block's count n, mean m and squared deviations m2 merge
        # around the group's mean g as sum(m2 + n (m - g)^2) / sum(n)
        level1.append(F.avg(value).alias(f"{part}_m"))
        level1.append((F.var_pop(value) * F.count(value)).alias(f"{part}_m2"))
        window = window_for(joined).partitionBy(*groups)
        total = F.sum(n).over(window)
        spread[f"{part}_g"] = F.when(total > 0, F.sum(n * F.col(f"{part}_m")).over(window) / total)
        d = F.col(f"{part}_m") - F.col(f"{part}_g")
        var = F.when(F.sum(n) > 0, F.sum(F.col(f"{part}_m2") + n * d * d) / F.sum(n))
        level2.append((var if a.kind is AggKind.VARIANCE else F.sqrt(var)).alias(name))
    blocks = joined.groupBy(*groups, F.expr(f"shiftright({uid}, {_BLOCK_SHIFT}) AS __cj_block")).agg(*level1)
    for column, expr in spread.items():
        blocks = blocks.withColumn(column, expr)
    return blocks.groupBy(*groups).agg(*level2)


def materialize(df: DataFrame) -> DataFrame:
    """Compute ``df`` once and return a DataFrame over the stored rows."""
    if is_connect(df):
        rows = df.collect()
        return df.sparkSession.createDataFrame(rows, schema=df.schema)
    return df.localCheckpoint(eager=True)


def _int(metrics: Mapping[str, Any] | None, name: str) -> int | None:
    if metrics is None:
        return None
    value = metrics.get(name)
    return 0 if value is None else int(value)


# --------------------------------------------------------------------------- plan


@dataclass
class _Side:
    frame: DataFrame
    obs_in: Any
    obs_kept: Any
    has_policy: bool
    bounded: bool = False  # obs_in carries the explosion bound (a count-min sketch)


@dataclass
class _Plan:
    joined: DataFrame
    key: str
    unit: str
    sides: dict[str, _Side]
    obs_tokens: Any
    ids: bool = False  # joined carries _ID: a dense id per unit (see bitset_units)
    seen: dict[int, dict[str, Any] | None] = field(default_factory=dict)

    def metrics(self, observation: Any) -> dict[str, Any] | None:
        """An observation's metrics, fetched once (the sketch is 512 KiB)."""
        if id(observation) not in self.seen:
            self.seen[id(observation)] = observed(observation)
        return self.seen[id(observation)]


def _side(
    query: ReadyJoin, side: str, tokens: DataFrame | None, key: str, unit: str,
    *, observe: bool = True, bound: bool = False,
) -> tuple[_Side, Any]:
    join = query.join
    df = join.left if side == "left" else join.right
    source_key = join.keys[0 if side == "left" else 1]
    F = functions_for(df)
    wanted = [*query.group_columns, *(a.column for a in query.aggregates if a.column), unit]
    needed = [c for c in dict.fromkeys(wanted) if c != key and c in df.columns]
    cols = [F.col(_q(source_key)).alias(key), *(F.col(_q(c)) for c in needed)]
    policies = [p for p in join.policies if p.side == side]
    if policies:
        condition = policies[0].condition(df)
        for policy in policies[1:]:
            condition = condition & policy.condition(df)
        cols.append(F.coalesce(condition, F.lit(False)).alias(_OK))
    frame = df.select(*cols)
    ok = F.col(_OK) if policies else F.lit(True)
    # counts of non-null values only (rows - consented = excluded, consented - keyed =
    # null keys): a count(column) costs ~0.2 s less per 2M rows than a sum(CASE WHEN)
    metrics = [F.count(F.lit(1)).alias("rows")]
    if policies:
        metrics.append(F.count(F.when(ok, F.lit(1))).alias("consented"))
        metrics.append(F.count(F.when(ok, F.col(_q(key)))).alias("keyed"))
    else:
        metrics.append(F.count(F.col(_q(key))).alias("keyed"))
    if bound and observe:
        # the explosion bound, in this scan: a one-row count-min sketch is the rows per
        # hash bucket (see _sketch_bound). Counted before the consent and revocation
        # filters, it bounds the kept rows too. It sketches the key's 32-bit hash (keys
        # sharing one share a bucket: still a bound; null keys are not counted), computed
        # as a column of the scan's own generated projection: the sketch aggregate
        # evaluates its input row by row without code generation (hashing inside it cost
        # ~0.2 s more per 2M rows). (Measured, not kept: reading the sketch's largest cell
        # inside Spark so the observation returns one number: the expression is evaluated
        # once per task, which cost more than fetching the 512 KiB sketch, ~0.06-0.1 s.)
        k = F.col(_q(key))
        frame = frame.withColumn(_HASH, F.when(k.isNotNull(), F.hash(k)))
        width = F.lit(2.0 / _BUCKETS)  # width = ceil(2 / eps) = _BUCKETS, depth 1
        metrics.append(F.count_min_sketch(F.col(_HASH), width, F.lit(0.5), F.lit(7)).alias("sketch"))
    obs_in = observation_for(df, f"{side}_in") if observe else None
    if observe:
        frame = frame.observe(obs_in, *metrics)
    frame = frame.filter(ok & F.col(_q(key)).isNotNull())
    if policies:
        frame = frame.drop(_OK)
    if bound and observe:
        frame = frame.drop(_HASH)
    obs_kept = None
    obs_tokens = None
    if tokens is not None:
        revoked = tokens.withColumnRenamed("token", key)
        if side == "left" and observe:
            obs_tokens = observation_for(df, "tokens")
            revoked = revoked.observe(obs_tokens, F.count(F.lit(1)).alias("tokens"))
        frame = frame.join(revoked, on=key, how="left_anti")
        if observe:
            obs_kept = observation_for(df, f"{side}_kept")
            frame = frame.observe(obs_kept, F.count(F.lit(1)).alias("rows"))
    return _Side(frame, obs_in, obs_kept, bool(policies), bound and observe), obs_tokens


def check_explosion_now(query: ReadyJoin, tokens: DataFrame | None) -> None:
    """Run the join-explosion check as its own jobs (bound first, exact only if needed).

    Used before a budget charge, so a join that would explode is refused before any
    budget is spent (the in-plan check would fail only after the charge).

    Raises:
        JoinExplosionError: a key has more than ``max_rows_per_key`` rows on a side.
    """
    limit = query.join.max_rows_per_key
    if limit is None:
        return
    key = query.join.keys[0]
    unit = query.unit_column
    sides = {s: _side(query, s, tokens, key, unit, observe=False)[0].frame for s in _SIDES}
    for tier in ("bucket", "key"):
        over = []
        for side, frame in sides.items():
            row = _most_rows(frame, key, tier=tier).collect()
            most = row[0][0] if row else None
            if most is not None and int(most) > limit:
                over.append(side)
        if not over:
            return
    raise _explosion(over[0], limit)


def _sketch_bound(sketch: bytes) -> int:
    """The most rows any key can have, from a serialized Spark count-min sketch: the
    smallest, over the sketch's rows, of the row's largest cell (each row counts the
    rows per hash bucket, and a bucket's count is at least every key's in it)."""
    import struct

    _version, _total, depth, width = struct.unpack_from(">iqii", sketch, 0)
    offset = 4 + 8 + 4 + 4 + 8 * depth  # header, then one hash seed per row
    best = None
    for i in range(depth):
        cells = struct.unpack_from(f">{width}q", sketch, offset + 8 * width * i)
        best = max(cells) if best is None else min(best, max(cells))
    return 0 if best is None else int(best)


def check_bound_after(plan: _Plan, query: ReadyJoin, tokens: DataFrame | None) -> None:
    """After the query ran: the bound observed on a side's scan; only if it exceeds the
    limit (or did not arrive) is the side checked exactly, as its own job.

    Raises:
        JoinExplosionError: a key of that side has more than ``max_rows_per_key`` rows.
    """
    limit = query.join.max_rows_per_key
    for side, info in plan.sides.items():
        if not info.bounded or limit is None:
            continue
        metrics = plan.metrics(info.obs_in)
        sketch = metrics.get("sketch") if metrics else None
        if sketch is not None and _sketch_bound(bytes(sketch)) <= limit:
            continue
        frame = _side(query, side, tokens, plan.key, plan.unit, observe=False)[0].frame
        exact = _most_rows(frame, plan.key, tier="key").collect()
        if exact and int(exact[0][0] or 0) > limit:
            raise _explosion(side, limit)


_CHECKS: dict[str, dict[str, str]] = {
    # mode -> side -> tier of its in-plan check (see explosion_check)
    "fast": {},  # the right side by unique_or_fail, the left side's bound observed in the scan
    "bucket": {"left": "bucket", "right": "bucket"},
    "exact": {"left": "key", "right": "key"},
}


def build_plan(query: ReadyJoin, tokens: DataFrame | None, *, mode: str | None = "bucket") -> _Plan:
    """The joined rows (consent, null-key, revocation and explosion checks applied).

    ``mode`` picks the explosion check (module docstring): "fast" (right side unique, see
    :func:`unique_or_fail`; left side's bound observed in the query's own scan, see
    :func:`check_bound_after`),
    "bucket" or "exact" (both sides in the plan, before the join), or None (no check:
    :func:`check_explosion_now` already ran, or no limit).
    """
    join = query.join
    key = join.keys[0]
    unit = query.unit_column
    limit = join.max_rows_per_key
    mode = mode if limit is not None else None
    left, obs_tokens = _side(query, "left", tokens, key, unit, bound=mode == "fast")
    right, _ = _side(query, "right", tokens, key, unit)
    right_rows = right.frame
    ids = False
    if limit is not None and mode == "fast":
        right_rows = unique_or_fail(right_rows, "right", key, limit)
        ids = bitset_units(query)
        if ids:
            # the right side has one row per key (the query fails otherwise), so a row
            # id is a key id: dense within each partition, distinct across partitions
            right_rows = right_rows.withColumn(_ID, functions_for(right_rows).monotonically_increasing_id())
    joined = left.frame.join(right_rows, on=key, how="inner")
    if limit is not None and mode is not None:
        # the check's subqueries read the same filtered sides, without observations
        # (an observation may appear only once in a plan)
        checks = {
            side: (_side(query, side, tokens, key, unit, observe=False)[0].frame, tier)
            for side, tier in _CHECKS[mode].items()
        }
        joined = explosion_check(joined, checks, key, limit)
    wanted = [*query.group_columns, *(a.column for a in query.aggregates if a.column)]
    if ids:
        wanted.append(_ID)  # the unit is the key, counted by its id
    else:
        wanted.append(unit)
        if unit != key:
            wanted.append(key)  # the cohort is never larger than the distinct join keys
    joined = joined.select(*(_q(c) for c in dict.fromkeys(wanted)))
    return _Plan(joined, key, unit, {"left": left, "right": right}, obs_tokens, ids)


def _hashed_grouped(plan: _Plan, query: ReadyJoin) -> DataFrame:
    """Per group: the distinct units (``_UNITS``, counted on their 64-bit hash) and the
    aggregates, in one ``groupBy``."""
    joined = plan.joined
    F = functions_for(joined)

    def distinct(name: str) -> Column:
        # distinct values counted on a 64-bit hash (null stays null, so it is never a unit)
        col = F.col(_q(name))
        return F.countDistinct(F.when(col.isNotNull(), F.xxhash64(col)))

    units = distinct(plan.unit)
    if plan.unit != plan.key:
        # a unit finer than the join key (a transaction id, an amount) must not make the
        # rule weaker than the default: the cohort is the smaller of the two counts
        units = F.least(units, distinct(plan.key))
    exprs = [units.alias(_UNITS)]
    exprs += [agg_column(joined, a, query) for a in query.aggregates]
    return joined.groupBy(*(F.col(_q(c)) for c in query.group_columns)).agg(*exprs)


def _aggregate(plan: _Plan, query: ReadyJoin) -> tuple[DataFrame, int, int | None]:
    joined = plan.joined
    F = functions_for(joined)
    n = query.threshold
    grouped = _bitset_grouped(plan, query) if plan.ids else _hashed_grouped(plan, query)
    obs = observation_for(joined, "groups")
    grouped = grouped.observe(
        obs,
        F.count(F.lit(1)).alias("groups"),
        F.sum(F.when(F.col(_UNITS) >= F.lit(n), 1).otherwise(0)).alias("released"),
    )
    names = [*query.group_columns, *(a.output_name for a in query.aggregates)]
    released = grouped.filter(F.col(_UNITS) >= F.lit(n)).select(*(_q(c) for c in names))
    df = materialize(released)
    metrics = observed(obs)
    released_n = _int(metrics, "released")
    groups_n = _int(metrics, "groups")
    if released_n is None or groups_n is None:  # pragma: no cover - metrics always arrive
        return df, int(df.count()), None
    return df, released_n, groups_n - released_n


# --------------------------------------------------------------------------- run


def _counts(plan: _Plan) -> tuple[dict[str, int] | None, dict[str, int] | None, dict[str, int], int | None]:
    consent: dict[str, int] = {}
    revoked: dict[str, int] = {}
    null_key: dict[str, int] = {}
    for side, info in plan.sides.items():
        m_in = plan.metrics(info.obs_in)
        rows = _int(m_in, "rows")
        consented = _int(m_in, "consented") if info.has_policy else rows
        keyed = _int(m_in, "keyed")
        excluded = None if rows is None or consented is None else rows - consented
        nulls = None if consented is None or keyed is None else consented - keyed
        if info.has_policy and excluded is not None:
            consent[side] = excluded
        if nulls is not None:
            null_key[side] = nulls
        if info.obs_kept is not None:
            kept = _int(observed(info.obs_kept), "rows")
            if rows is not None and kept is not None and excluded is not None and nulls is not None:
                revoked[side] = rows - excluded - nulls - kept
    any_policy = any(info.has_policy for info in plan.sides.values())
    any_tokens = plan.obs_tokens is not None
    tokens = _int(observed(plan.obs_tokens), "tokens") if any_tokens else None
    return (consent if any_policy else None, revoked if any_tokens else None, null_key, tokens)


def execute(
    query: ReadyJoin,
    *,
    audit: AuditLog | None,
    budget: BudgetLedger | None,
    release_id: str | None,
) -> GuardedResult:
    """Run a guarded query (see :meth:`cleanjoin.guard.ReadyJoin.run`)."""
    started = time.monotonic()
    run_id = str(uuid.uuid4())
    join = query.join
    spark = join.left.sparkSession
    fingerprint = query.fingerprint()
    unit_name = query.unit or join.keys[0]
    common: dict[str, Any] = {
        "run_id": run_id,
        "group_by": query.group_columns,
        "aggregates": tuple(a.describe() for a in query.aggregates),
        "min_cohort": query.threshold,
        "privacy_unit": unit_name,
        "max_rows_per_key": join.max_rows_per_key,
        "query_fingerprint": fingerprint,
        "release_id": release_id,
    }
    if budget is not None and release_id is not None:
        charge = budget.find(release_id, spark=spark)
        if charge is not None:
            result = _replay(query, budget, release_id, charge, spark, common, started)
            _audit_run(audit, query, result, spark)
            return result

    tokens = None
    if join.revoked is not None:
        from cleanjoin.revocation import load_revocations

        tokens = load_revocations(join.revoked, spark=spark)
    dp_spec = query.dp
    charging = budget is not None and release_id is not None and dp_spec is not None
    if charging and budget is not None and dp_spec is not None:
        # an overspend is refused before any work; a join that would explode is refused
        # before the charge, so it costs no budget
        budget.check_available(
            epsilon=dp_spec.params.epsilon, delta=dp_spec.params.delta, spark=spark
        )
        check_explosion_now(query, tokens)
    # explosion check: "fast" first; a repeated key on the right side re-runs the query
    # with both sides' bound in the plan, a bound over the limit with the exact check
    mode = None if charging or join.max_rows_per_key is None else "fast"
    plan = build_plan(query, tokens, mode=mode)
    if dp_spec is not None:
        from cleanjoin.dp._validate import validate_dp_query

        validate_dp_query(
            plan.joined, unit=plan.unit, group_by=query.group_columns,
            aggregates=query.aggregates, params=dp_spec.params, min_cohort=query.threshold,
            public_groups=dp_spec.public_groups,
        )
    charged = None
    if charging and budget is not None and release_id is not None and dp_spec is not None:
        budget.charge(
            release_id, epsilon=dp_spec.params.epsilon, delta=dp_spec.params.delta,
            query_fingerprint=fingerprint, spark=spark, audit=audit,
        )
        charged = {"epsilon": dp_spec.params.epsilon, "delta": dp_spec.params.delta}

    dp_dict = None
    for _attempt in range(3):
        try:
            if dp_spec is not None:
                from cleanjoin.dp import dp_aggregate

                df, dp_report = dp_aggregate(
                    plan.joined, unit=plan.unit, group_by=query.group_columns,
                    aggregates=query.aggregates, params=dp_spec.params,
                    min_cohort=query.threshold, public_groups=dp_spec.public_groups,
                )
                released, suppressed = int(dp_report.groups_released), None
                dp_dict = dp_report.to_dict()
            else:
                df, released, suppressed = _aggregate(plan, query)
            break
        except Exception as exc:
            if mode == "fast" and not_unique(exc):
                # the right side repeats a key: the join may multiply rows, so the left
                # side must be checked before the join too
                mode = "bucket"
                plan = build_plan(query, tokens, mode=mode)
                continue
            if mode == "bucket" and bound_exceeded(exc):
                # some bucket holds more rows than the limit: decide with the exact check
                mode = "exact"
                plan = build_plan(query, tokens, mode=mode)
                continue
            error = explosion_error(exc, join.max_rows_per_key)
            if error is not None:
                raise error from None
            raise
    else:  # pragma: no cover - the exact attempt either returns or raises
        raise InternalError("GuardedJoin: the explosion check did not settle")
    check_bound_after(plan, query, tokens)  # before anything is stored or returned
    if budget is not None and release_id is not None:
        budget.store_release(release_id, df)
    consent, revoked, null_key, tokens_n = _counts(plan)
    report = GuardReport(
        **common,
        groups_released=released,
        groups_suppressed=suppressed,
        rows_excluded_by_consent=consent,
        rows_excluded_by_revocation=revoked,
        rows_without_join_key=null_key,
        revoked_tokens_applied=tokens_n,
        dp=dp_dict,
        budget_charged=charged,
        seconds=time.monotonic() - started,
    )
    result = _sealed(GuardedResult(df, report))
    _audit_run(audit, query, result, spark)
    return result


def _replay(
    query: ReadyJoin,
    budget: BudgetLedger,
    release_id: str,
    charge: Any,
    spark: SparkSession,
    common: dict[str, Any],
    started: float,
) -> GuardedResult:
    stored_fp = getattr(charge, "query_fingerprint", None)
    if stored_fp is not None and stored_fp != common["query_fingerprint"]:
        raise InvalidArgumentError(
            f"run(): release_id {release_id!r} was already spent on a different query "
            f"(fingerprint {str(stored_fp)[:12]}…, this query {common['query_fingerprint'][:12]}…); "
            "use a new release_id for a new query"
        )
    df = budget.load_release(release_id, spark=spark)
    if df is None:
        raise ConfigurationError(
            f"run(): release_id {release_id!r} was charged but its rows were not stored (the "
            "charging run did not finish); its budget is spent, use a new release_id"
        )
    dp = dict(query.dp.describe()) if query.dp is not None else {}
    dp.update({"replayed": True, "epsilon": float(charge.epsilon), "delta": float(charge.delta)})
    report = GuardReport(
        **common,
        groups_released=int(df.count()),
        groups_suppressed=None,
        dp=dp,
        replayed=True,
        seconds=time.monotonic() - started,
    )
    return _sealed(GuardedResult(df, report))


def _sealed(result: GuardedResult) -> GuardedResult:
    """``result``, marked as released by a guarded run (``write_delta`` needs the mark)."""
    object.__setattr__(result, "_sealed", True)
    return result


def _audit_run(audit: AuditLog | None, query: ReadyJoin, result: GuardedResult, spark: Any) -> None:
    if audit is None:
        return
    from cleanjoin.audit import content_hash

    report = result.report.to_dict()
    parameters = {
        "run_id": report["run_id"],
        "release_id": report["release_id"],
        "query": query.describe(),
        "query_fingerprint": report["query_fingerprint"],
        "groups_released": report["groups_released"],
        "groups_suppressed": report["groups_suppressed"],
        "rows_excluded_by_consent": report["rows_excluded_by_consent"],
        "rows_excluded_by_revocation": report["rows_excluded_by_revocation"],
        "rows_without_join_key": report["rows_without_join_key"],
        "revoked_tokens_applied": report["revoked_tokens_applied"],
        "replayed": report["replayed"],
        "budget_charged": report["budget_charged"],
        "dp": report["dp"],
    }
    output = {
        "run_id": report["run_id"],
        "rows": report["groups_released"],
        "content_hash": content_hash(result.df),
    }
    audit.append("guarded_run", parameters, output=output, spark=spark)


# --------------------------------------------------------------------------- Delta write


def _is_path(target: str) -> bool:
    return "/" in target or "\\" in target or (":" in target and not target.startswith("`"))


def _history_ref(target: str) -> str:
    if _is_path(target):
        return "delta.`" + target.replace("`", "``") + "`"
    return target


def _written_version(spark: SparkSession, target: str, metadata: str) -> int:
    F = functions_for(spark)
    history = spark.sql(f"DESCRIBE HISTORY {_history_ref(target)}")
    rows = (
        history.filter(F.col("userMetadata") == F.lit(metadata))
        .agg(F.max("version").alias("v"))
        .collect()
    )
    if not rows or rows[0]["v"] is None:
        raise InternalError(
            "write_delta: the commit was written but not found in the table history"
        )
    return int(rows[0]["v"])


def write_delta(
    result: GuardedResult,
    target: str,
    *,
    contract: OutputContract,
    mode: str,
    audit: AuditLog | None,
) -> int:
    """Review, then write (see :meth:`cleanjoin.guard.GuardedResult.write_delta`)."""
    df = result.df
    spark = df.sparkSession
    review = contract.review(result)
    fingerprint = review.contract_fingerprint
    if audit is not None:
        audit.append(
            "contract_review",
            {
                "run_id": result.run_id,
                "release_id": result.release_id,
                "contract_fingerprint": fingerprint,
                "contract_name": contract.name,
                "contract_version": contract.version,
                "approved": review.approved,
                "reasons": list(review.reasons),
            },
            spark=spark,
        )
    if not review.approved:
        reasons = "\n  - ".join(review.reasons)
        raise ContractViolation(
            f"write_delta: contract {contract.name or 'unnamed'!r} ({fingerprint[:12]}…) "
            f"rejected the result of run {result.run_id}; nothing was written. "
            f"{len(review.reasons)} reason(s):\n  - {reasons}",
            review.reasons,
        )
    meta: dict[str, Any] = {
        "cleanjoin": "guarded_result",
        "contract_fingerprint": fingerprint,
        "contract_name": contract.name,
        "contract_version": contract.version,
        "run_id": result.run_id,
        "release_id": result.release_id,
        "write_id": str(uuid.uuid4()),
    }
    if audit is not None:
        meta.update(audit.commit_metadata(spark=spark))
    text = json.dumps(meta, sort_keys=True, separators=(",", ":"))
    writer = df.write.format("delta").mode(mode).option("userMetadata", text)
    if _is_path(target):
        writer.save(target)
    else:
        writer.saveAsTable(target)
    version = _written_version(spark, target, text)
    if audit is not None:
        from cleanjoin.audit import content_hash

        place = "path" if _is_path(target) else "table"
        audit.append(
            "delta_write",
            {
                "run_id": result.run_id,
                "release_id": result.release_id,
                "contract_fingerprint": fingerprint,
                "mode": mode,
                place: target,
                "version": version,
            },
            output={place: target, "version": version, "content_hash": content_hash(df)},
            spark=spark,
        )
    return version
