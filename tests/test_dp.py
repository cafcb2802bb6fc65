"""Tests of cleanjoin.dp: DP aggregates with pipeline_dp mechanisms.

The statistical tests use fixed sizes and tolerances derived from the distributions:
the sample standard deviation ``s`` of ``n`` i.i.d. noise draws has a relative
standard error of about ``sqrt((kurtosis - 1) / n) / 2`` (Laplace: kurtosis 6; Gaussian:
kurtosis 3). The bands are 6 of those standard errors wide, so a correct
implementation fails less than once in 10^8 runs, while a noise scale off by 20% fails.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest
from _dpstats import gaussian_sigma

from cleanjoin import agg
from cleanjoin.dp import DPParams, NoiseKind, PartitionSelection, dp_aggregate
from cleanjoin.dp._plan import _plan
from cleanjoin.dp._table import _bounded_group_table
from cleanjoin.dp._validate import validate_dp_query
from cleanjoin.errors import (
    ColumnNotFoundError,
    ConfigurationError,
    InvalidArgumentError,
    NotAllowedError,
    UnsupportedColumnTypeError,
)

# ---------------------------------------------------------------- pure: parameters


def test_params_validate_and_accept_aliases() -> None:
    p = DPParams(epsilon=1, delta=1e-6, noise="Normal", partition_selection="laplace")
    assert p.noise is NoiseKind.GAUSSIAN
    assert str(p.noise) == "gaussian"
    assert p.partition_selection is PartitionSelection.LAPLACE_THRESHOLDING
    assert isinstance(p.epsilon, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.epsilon = 2.0  # type: ignore[misc]
    with pytest.raises(
        InvalidArgumentError,
        match=re.escape('Unknown mechanism "foo". Available options are "laplace", "gaussian".'),
    ):
        DPParams(epsilon=1.0, noise="foo")
    for bad in (0.0, -1.0, math.inf, math.nan, True):
        with pytest.raises(InvalidArgumentError, match=re.escape("'epsilon' must be a finite number > 0")):
            DPParams(epsilon=bad)
    for bad_delta in (1.0, -0.1, math.nan):
        with pytest.raises(InvalidArgumentError, match=re.escape("'delta' must be a number in [0, 1)")):
            DPParams(epsilon=1.0, delta=bad_delta)
    with pytest.raises(InvalidArgumentError, match=re.escape("'max_partitions_contributed' must be")):
        DPParams(epsilon=1.0, max_partitions_contributed=0)
    with pytest.raises(InvalidArgumentError, match=re.escape("'max_contributions_per_partition'")):
        DPParams(epsilon=1.0, max_contributions_per_partition=1.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=re.escape("Gaussian noise needs 'delta' > 0")):
        DPParams(epsilon=1.0, noise=NoiseKind.GAUSSIAN)
    assert json.loads(json.dumps(p.fingerprint_dict())) == {
        "epsilon": 1.0, "delta": 1e-6, "max_partitions_contributed": 1,
        "max_contributions_per_partition": 1, "noise": "gaussian",
        "partition_selection": "laplace_thresholding",
    }


def test_budget_split_is_pipeline_dp_naive_accounting() -> None:
    aggs = [agg.count().alias("n"), agg.mean("v", bounds=(0, 1)).alias("m")]
    lap = _plan(aggs, DPParams(epsilon=2.0, delta=1e-6), private_selection=True, min_cohort=5)
    # 3 mechanisms (count; mean: count + normalized sum) + selection: ε/4 each;
    # Laplace uses no δ, so all of δ goes to partition selection.
    eps = [m.epsilon for a in lap.aggs for m in a.mechs]
    assert eps == pytest.approx([0.5, 0.5, 0.5])
    assert all(m.delta == 0 for a in lap.aggs for m in a.mechs)
    assert lap.selection is not None
    assert lap.selection.epsilon == pytest.approx(0.5)
    assert lap.selection.delta == pytest.approx(1e-6)
    assert lap.selection.pre_threshold == 5
    gauss = _plan(aggs, DPParams(epsilon=2.0, delta=4e-6, noise="gaussian"),
                  private_selection=False, min_cohort=5)
    assert [m.delta for a in gauss.aggs for m in a.mechs] == pytest.approx([4e-6 / 3] * 3)
    assert gauss.selection is None


class _Schema:
    """Just enough of a DataFrame for schema-only validation."""

    dtypes: ClassVar[list[tuple[str, str]]] = [
        ("u", "string"), ("g", "string"), ("v", "double"), ("s", "string")]


def test_validation_refuses_unsafe_queries() -> None:
    p = DPParams(epsilon=1.0, delta=1e-6)

    def check(aggregates: list[Any], **kw: Any) -> None:
        opts: dict[str, Any] = {"unit": "u", "group_by": ["g"], "params": p, "min_cohort": 5}
        opts.update(kw)
        validate_dp_query(_Schema(), aggregates=aggregates, **opts)

    check([agg.count(), agg.count_distinct("u"), agg.mean("v", bounds=(0, 1))])
    with pytest.raises(NotAllowedError, match=re.escape("agg.count_distinct('s') is not allowed")):
        check([agg.count_distinct("s")])
    with pytest.raises(ConfigurationError, match=re.escape("agg.sum('v') needs 'bounds'")):
        check([agg.sum("v")])
    with pytest.raises(UnsupportedColumnTypeError, match=re.escape("needs a numeric column, got string")):
        check([agg.sum("s", bounds=(0, 1))])
    with pytest.raises(ColumnNotFoundError, match=re.escape("column 'nope' is not in the joined rows")):
        check([agg.count()], group_by=["nope"])
    with pytest.raises(NotAllowedError, match=re.escape("cannot group by the privacy unit")):
        check([agg.count()], group_by=["u"])
    with pytest.raises(ConfigurationError, match=re.escape("private partition selection needs 'delta' > 0")):
        check([agg.count()], params=DPParams(epsilon=1.0))
    check([agg.count()], params=DPParams(epsilon=1.0), public_groups=[("a",)])
    with pytest.raises(InvalidArgumentError, match=re.escape("output column names must be unique")):
        check([agg.count().alias("n"), agg.count_distinct("u").alias("n")])


def test_no_python_randomness_on_the_noise_path() -> None:
    root = Path(__file__).resolve().parents[1] / "cleanjoin"
    for name in (*sorted(p.relative_to(root).as_posix() for p in (root / "dp").glob("*.py")), "budget.py"):
        tree = ast.parse((root / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                mods = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(m == "random" or m.startswith("numpy") for m in mods), name
            if isinstance(node, ast.Attribute):
                assert node.attr not in ("rdd", "sparkContext", "_jvm", "_jdf"), name


# ---------------------------------------------------------------- Spark helpers


def _uniform_groups(spark: Any, groups: int, units: int) -> Any:
    """``groups`` groups of ``units`` units, one row each; v alternates 0/1, w in [0, 10]."""
    fn = _functions(spark)
    return spark.range(groups * units).select(
        fn.col("id").cast("string").alias("u"),
        (fn.col("id") % groups).cast("string").alias("g"),
        (fn.col("id") % 2).cast("double").alias("v"),
        ((fn.col("id") * 7) % 11).cast("double").alias("w"),
    )


def _functions(obj: Any) -> Any:
    from cleanjoin._spark import functions_for

    return functions_for(obj)


def _errors(spark: Any, released: Any, joined: Any, pairs: dict[str, str]) -> dict[str, list[float]]:
    """Released minus true value per group, for each (released column → truth expression)."""
    fn = _functions(spark)
    truth = joined.groupBy("g").agg(
        fn.count(fn.lit(1)).alias("t_n"), fn.sum("w").alias("t_sum"), fn.avg("v").alias("t_mean")
    )
    rows = released.join(truth, on="g").collect()
    return {k: [float(r[k]) - float(r[t]) for r in rows] for k, t in pairs.items()}


def _sd(xs: list[float]) -> float:
    mean = sum(xs) / len(xs)
    return math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


# ---------------------------------------------------------------- statistical acceptance


def test_laplace_noise_matches_reported_stddev(spark_classic: Any) -> None:
    groups, units = 2000, 20
    joined = _uniform_groups(spark_classic, groups, units)
    public = joined.select("g").distinct()
    aggs = [agg.count().alias("n"), agg.sum("w", bounds=(0, 10)).alias("s"),
            agg.mean("v", bounds=(0, 1)).alias("m")]
    released, report = dp_aggregate(joined, unit="u", group_by=["g"], aggregates=aggs,
                                     params=DPParams(epsilon=4.0), min_cohort=5,
                                     public_groups=public)
    assert report.groups_released == groups
    assert report.partition_selection is None
    err = _errors(spark_classic, released, joined, {"n": "t_n", "s": "t_sum", "m": "t_mean"})
    band = 6 * math.sqrt(5 / groups) / 2  # relative; Laplace kurtosis 6
    # Counts are rounded to integers: add the rounding variance 1/12.
    n_sd = math.sqrt(report.aggregate("n").stddev ** 2 + 1 / 12)
    assert report.aggregate("n").stddev == pytest.approx(math.sqrt(2) / 1.0)  # b = 1/ε, ε = 1
    assert _sd(err["n"]) == pytest.approx(n_sd, rel=band)
    assert report.aggregate("s").stddev == pytest.approx(math.sqrt(2) * 10)
    assert _sd(err["s"]) == pytest.approx(report.aggregate("s").stddev, rel=band)
    # The mean is not checked here: with an even number of groups v is constant per
    # group (0 or 1), so clamping to the bounds cuts half its noise; the mean's noise is
    # pinned to its analytic scale in test_dp_noise.py.
    assert {m.quantity for m in report.aggregate("m").mechanisms} == {"count", "normalized_sum"}
    # Bounded tails: P(|Laplace(b)| > 30 b) = e^-30 per draw, < 2e-10 over 2000 draws.
    assert all(abs(e) < 30 * 10 for e in err["s"])
    text = str(report)
    assert "ε=4" in text
    assert "groups released: 2000" in text
    assert json.loads(json.dumps(report.to_dict()))["aggregates"][0]["name"] == "n"


def test_gaussian_noise_matches_reported_stddev(spark: Any) -> None:
    groups, units = 2000, 10
    joined = _uniform_groups(spark, groups, units)
    aggs = [agg.count().alias("n"), agg.sum("w", bounds=(0, 10)).alias("s")]
    params = DPParams(epsilon=2.0, delta=1e-5, noise="gaussian")
    released, report = dp_aggregate(joined, unit="u", group_by=["g"], aggregates=aggs,
                                     params=params, min_cohort=1,
                                     public_groups=joined.select("g").distinct())
    err = _errors(spark, released, joined, {"n": "t_n", "s": "t_sum"})
    band = 6 / math.sqrt(2 * groups)  # Gaussian kurtosis 3
    n = report.aggregate("n")
    assert n.noise == "gaussian"
    assert n.epsilon == pytest.approx(1.0)
    assert n.delta == pytest.approx(5e-6)
    # The analytic Gaussian mechanism (Balle & Wang) for ε = 1, δ = 5e-6, Δ₂ = 1 (count)
    # and Δ₂ = 10 (sum), not the mechanism's own report.
    sigma = gaussian_sigma(1.0, 5e-6, 1.0)
    assert sigma == pytest.approx(3.884, abs=1e-3)
    assert _sd(err["n"]) == pytest.approx(math.sqrt(sigma**2 + 1 / 12), rel=band)
    assert _sd(err["s"]) == pytest.approx(10 * sigma, rel=band)
    assert report.aggregate("s").stddev == pytest.approx(10 * sigma, rel=1e-3)


def test_heavy_unit_changes_counts_by_at_most_the_bounds(spark_classic: Any) -> None:
    fn = _functions(spark_classic)
    base = spark_classic.range(200).select(
        fn.concat(fn.lit("u"), (fn.col("id") % 40).cast("string")).alias("u"),
        (fn.col("id") % 5).cast("string").alias("g"),
        fn.lit(3.0).alias("w"),
    )
    heavy = spark_classic.range(10_000).select(
        fn.lit("H").alias("u"), (fn.col("id") % 5).cast("string").alias("g"),
        fn.lit(1000.0).alias("w"),
    )
    params = DPParams(epsilon=1.0, delta=1e-6, max_partitions_contributed=2,
                      max_contributions_per_partition=3)
    aggs = [agg.count().alias("n"), agg.count_distinct("u").alias("units"),
            agg.sum("w", bounds=(0, 5)).alias("s")]
    plan = _plan(aggs, params, private_selection=True, min_cohort=1)

    def table(df: Any) -> dict[str, Any]:
        t = _bounded_group_table(df, unit="u", group_by=["g"], plan=plan, params=params,
                                 public=None, salt=11)
        return {r["g"]: r for r in t.collect()}

    without, with_heavy = table(base), table(base.unionByName(heavy))
    cols = {a.agg.output_name: a.column(a.mechs[0].quantity) for a in plan.aggs}
    changed = [g for g in with_heavy if with_heavy[g]["__cj_units"] != without[g]["__cj_units"]]
    assert len(changed) == 2  # the heavy unit reaches exactly max_partitions_contributed groups
    for g, row in with_heavy.items():
        assert 0 <= row[cols["n"]] - without[g][cols["n"]] <= 3
        assert 0 <= row[cols["units"]] - without[g][cols["units"]] <= 1
        assert 0 <= row[cols["s"]] - without[g][cols["s"]] <= 3 * 5.0
    # Each base unit has 5 rows in one group; 3 are kept (max_contributions_per_partition).
    assert sum(row[cols["n"]] for row in without.values()) == 40 * 3


def test_bounded_table_totals_match_the_bounding_rules(spark: Any) -> None:
    # unit i has rows in (i % 6) + 1 groups (one of them the null group), 4 rows in each;
    # with at most 3 groups per unit and 2 rows per group the totals are fixed, whichever
    # groups and rows the salted hashes keep
    rows = [
        (f"u{i}", None if g == 0 else f"g{g}", 7.0)
        for i in range(60) for g in range(i % 6 + 1) for _ in range(4)
    ]
    df = spark.createDataFrame(rows, "u string, g string, w double")
    params = DPParams(epsilon=1.0, delta=1e-6, max_partitions_contributed=3,
                      max_contributions_per_partition=2)
    aggs = [agg.count().alias("n"), agg.sum("w", bounds=(0, 5)).alias("s")]
    plan = _plan(aggs, params, private_selection=True, min_cohort=1)
    cols = {a.agg.output_name: a.column(a.mechs[0].quantity) for a in plan.aggs}
    for salt in (1, 2):
        t = _bounded_group_table(df, unit="u", group_by=["g"], plan=plan, params=params,
                                 public=None, salt=salt).collect()
        kept_groups = sum(min(3, i % 6 + 1) for i in range(60))
        assert sum(r["__cj_units"] for r in t) == kept_groups
        assert sum(r[cols["n"]] for r in t) == kept_groups * 2
        assert sum(r[cols["s"]] for r in t) == kept_groups * 2 * 5.0
        assert {r["g"] for r in t} <= {None, *(f"g{g}" for g in range(1, 6))}


def test_single_unit_groups_are_essentially_never_released(spark_classic: Any) -> None:
    fn = _functions(spark_classic)
    single = spark_classic.range(2000 * 3).select(  # 2000 groups with one unit, 3 rows
        (fn.col("id") % 2000).cast("string").alias("u"),
        fn.concat(fn.lit("solo-"), (fn.col("id") % 2000).cast("string")).alias("g"),
    )
    below = spark_classic.range(10 * 150).select(  # 10 groups of 150 units < min_cohort
        fn.concat(fn.lit("b"), fn.col("id").cast("string")).alias("u"),
        fn.concat(fn.lit("below-"), (fn.col("id") % 10).cast("string")).alias("g"),
    )
    big = spark_classic.range(20 * 200).select(  # 20 groups of 200 units
        fn.concat(fn.lit("c"), fn.col("id").cast("string")).alias("u"),
        fn.concat(fn.lit("big-"), (fn.col("id") % 20).cast("string")).alias("g"),
    )
    joined = single.unionByName(below).unionByName(big)
    released, report = dp_aggregate(joined, unit="u", group_by=["g"],
                                    aggregates=[agg.count().alias("n")],
                                    params=DPParams(epsilon=1.0, delta=1e-6), min_cohort=160)
    names = [r["g"] for r in released.collect()]
    # P(a one-unit group is kept) <= δ: expected 0.002 of 2000; >= 2 has probability ~2e-6.
    assert sum(n.startswith("solo-") for n in names) <= 1
    assert not any(n.startswith("below-") for n in names)  # pre_threshold = min_cohort
    assert sum(n.startswith("big-") for n in names) >= 18
    assert report.groups_released == len(names)
    ps = report.partition_selection
    assert ps is not None
    assert (ps.strategy, ps.pre_threshold) == ("truncated_geometric", 160)


# ---------------------------------------------------------------- behaviour, both modes


def test_public_groups_release_empty_groups_and_drop_others(spark: Any) -> None:
    joined = spark.createDataFrame(
        [("u1", "a", 1.0), ("u2", "a", 0.0), ("u3", "b", 1.0)], "u string, g string, v double"
    )
    released, report = dp_aggregate(
        joined, unit="u", group_by=["g"],
        aggregates=[agg.count().alias("n"), agg.mean("v", bounds=(0, 1)).alias("m")],
        params=DPParams(epsilon=1.0), min_cohort=100,
        public_groups=[{"g": "a"}, {"g": "zzz"}],
    )
    rows = {r["g"]: r for r in released.collect()}
    assert set(rows) == {"a", "zzz"}
    assert report.groups_released == 2
    assert released.columns == ["g", "n", "m"]
    assert all(r["n"] >= 0 and 0.0 <= r["m"] <= 1.0 for r in rows.values())
    assert dict(released.dtypes) == {"g": "string", "n": "bigint", "m": "double"}
    # Materialized once: reading again gives the same noisy values.
    assert sorted(released.collect()) == sorted(rows.values())


def test_fresh_noise_per_release(spark_classic: Any) -> None:
    joined = _uniform_groups(spark_classic, 3, 5)
    kw: dict[str, Any] = {"unit": "u", "group_by": ["g"], "min_cohort": 1,
                          "aggregates": [agg.sum("w", bounds=(0, 10)).alias("s")],
                          "params": DPParams(epsilon=1.0), "public_groups": [("0",), ("1",), ("2",)]}
    first, _ = dp_aggregate(joined, **kw)
    second, _ = dp_aggregate(joined, **kw)
    assert sorted(first.collect()) != sorted(second.collect())


def test_global_aggregate_without_groups(spark_classic: Any) -> None:
    joined = _uniform_groups(spark_classic, 4, 25)
    released, report = dp_aggregate(
        joined, unit="u", group_by=[], aggregates=[agg.stddev("w", bounds=(0, 10)).alias("sd"),
                                                   agg.variance("w", bounds=(0, 10)).alias("var")],
        params=DPParams(epsilon=5.0), min_cohort=10,
    )
    (row,) = released.collect()
    # Noise is added: a noiseless release would give the exact population variance
    # (continuous noise makes equality a probability-0 event). The variance's noise is
    # pinned to its analytic scale in test_dp_noise.py.
    ws = [float((i * 7) % 11) for i in range(100)]
    exact = sum(w * w for w in ws) / 100 - (sum(ws) / 100) ** 2
    assert abs(row["var"] - exact) > 1e-9
    assert abs(row["sd"] - math.sqrt(exact)) > 1e-9
    assert report.public_groups
    assert report.partition_selection is None
    assert [m.quantity for m in report.aggregate("var").mechanisms] == [
        "count", "normalized_sum", "normalized_sum_of_squares"]


# ---------------------------------------------------------------- end to end through the guard


def test_guarded_dp_run_charges_once_and_replays(spark: Any, delta_path: str) -> None:
    from cleanjoin.budget import BudgetLedger
    from cleanjoin.errors import BudgetExceeded
    from cleanjoin.guard import GuardedJoin

    fn = _functions(spark)
    left = spark.range(300).select(
        fn.concat(fn.lit("t"), (fn.col("id") % 60).cast("string")).alias("card_number_token"),
        (fn.col("id") % 3).cast("string").alias("mcc"),
    )
    right = spark.range(60).select(
        fn.concat(fn.lit("t"), fn.col("id").cast("string")).alias("card_number_token"),
        (fn.col("id") % 2).cast("double").alias("fraud"),
    )
    ledger = BudgetLedger(delta_path, collaboration="c", total_epsilon=1.5, total_delta=1e-5,
                          spark=spark)
    query = (
        GuardedJoin(left, right, on="card_number_token")
        .group_by("mcc")
        .agg(agg.count().alias("n"), agg.mean("fraud", bounds=(0, 1)).alias("rate"))
        .min_cohort(5)
        .with_dp(epsilon=1.0, max_contributions_per_partition=5,
                 public_groups=[("0",), ("1",), ("2",), ("9",)])
    )
    first = query.run(budget=ledger, release_id="weekly-1")
    rows = sorted(first.df.collect())
    assert [r["mcc"] for r in rows] == ["0", "1", "2", "9"]
    assert "card_number_token" not in first.df.columns
    assert ledger.remaining()[0] == pytest.approx(0.5)
    again = query.run(budget=ledger, release_id="weekly-1")  # replay: same rows, no charge
    assert sorted(again.df.collect()) == rows
    assert ledger.remaining()[0] == pytest.approx(0.5)
    with pytest.raises(BudgetExceeded, match=re.escape("Requested: ε=1, δ=0. Remaining: ε=0.5")):
        query.run(budget=ledger, release_id="weekly-2")


def test_exploding_dp_run_is_refused_before_the_charge(spark: Any, delta_path: str) -> None:
    from cleanjoin.budget import BudgetLedger
    from cleanjoin.errors import BudgetExceeded, JoinExplosionError
    from cleanjoin.guard import GuardedJoin

    fn = _functions(spark)
    left = spark.range(40).select(
        fn.lit("hot").alias("card_number_token"), (fn.col("id") % 2).cast("string").alias("mcc")
    )
    right = spark.createDataFrame([("hot", 1.0)], "card_number_token string, fraud double")
    ledger = BudgetLedger(delta_path, collaboration="c", total_epsilon=1.0, total_delta=1e-5,
                          spark=spark)

    def query(limit: int, epsilon: float) -> Any:
        return (
            GuardedJoin(left, right, on="card_number_token", max_rows_per_key=limit)
            .group_by("mcc").agg(agg.count().alias("n")).min_cohort(1)
            .with_dp(epsilon=epsilon, public_groups=[("0",), ("1",)])
        )

    with pytest.raises(JoinExplosionError, match=re.escape("max_rows_per_key=39")):
        query(39, 1.0).run(budget=ledger, release_id="r1")
    assert ledger.find("r1") is None  # nothing spent: the run can be fixed and retried
    assert ledger.remaining()[0] == pytest.approx(1.0)
    with pytest.raises(BudgetExceeded, match=re.escape("Requested: ε=2")):
        query(39, 2.0).run(budget=ledger, release_id="r1")  # overspend wins: no work first
    released = query(40, 1.0).run(budget=ledger, release_id="r1")
    assert sorted(r["mcc"] for r in released.df.collect()) == ["0", "1"]
    assert ledger.remaining()[0] == pytest.approx(0.0)
