"""Private partition selection: the share of groups kept matches the strategy's keep
probability, for every strategy, with groups in the transition region.

Each release has 3 levels of K = 400 groups; the groups of a level all have n_j privacy
units (each unit in 2 groups, l0 = max_partitions_contributed = 2, one row per group),
with n_j chosen here so the strategy's keep probability p_j (from pipeline_dp's
``partition_selection`` module, i.e. PyDP, at the analytic ε and δ of the selection) is
near 0.2, 0.5 and 0.8. ``min_cohort`` = pre_threshold = 10 lies well below every n_j, so
it decides nothing; it shifts PyDP's keep probability, which the reference includes.

The analytic budget: ε = 2 and δ = 1e-5 split equally (NaiveBudgetAccountant) between
the count's mechanism and the selection: selection ε = 1; with Laplace noise all of δ
goes to the selection, with Gaussian noise half of it (5e-6).

The number kept at each level is Binomial(K, p_j); the band is its central
1 − 10⁻⁸/3 interval (exact binomial quantiles), so a correct implementation fails with
probability < 10⁻⁸ per test. A plain ``units >= min_cohort`` filter (keeps all) or the
selection run with 10× its ε both leave the band at some level with probability
> 1 − 10⁻⁹ (checked without Spark by ``test_bands_reject_a_plain_threshold_and_10x_epsilon``).
Classic mode only: selection runs in the same ``mapInPandas`` step in both modes.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from scipy import stats

from cleanjoin import agg
from cleanjoin.dp import DPParams, dp_aggregate

K, L0, MIN_COHORT = 400, 2, 10
EPSILON, DELTA = 2.0, 1e-5
ALPHA = 1e-8
TARGETS = (0.2, 0.5, 0.8)
CASES = {  # strategy → noise of the count
    "truncated_geometric": "laplace",
    "laplace_thresholding": "laplace",
    "gaussian_thresholding": "gaussian",
}


def selection_budget(noise: str) -> tuple[float, float]:
    """(ε, δ) of the selection: half of ε; all of δ (Laplace) or half of it (Gaussian)."""
    return EPSILON / 2, DELTA if noise == "laplace" else DELTA / 2


def keep_probability(strategy: str, epsilon: float, delta: float) -> Any:
    import pipeline_dp
    from pipeline_dp import partition_selection

    enum = {
        "truncated_geometric": pipeline_dp.PartitionSelectionStrategy.TRUNCATED_GEOMETRIC,
        "laplace_thresholding": pipeline_dp.PartitionSelectionStrategy.LAPLACE_THRESHOLDING,
        "gaussian_thresholding": pipeline_dp.PartitionSelectionStrategy.GAUSSIAN_THRESHOLDING,
    }[strategy]
    s = partition_selection.create_partition_selection_strategy(enum, epsilon, delta, L0,
                                                                MIN_COHORT)
    return s.probability_of_keep


@functools.cache
def levels(strategy: str) -> tuple[tuple[int, float], ...]:
    """(n_j, p_j): the unit counts whose keep probability is nearest each target."""
    prob = keep_probability(strategy, *selection_budget(CASES[strategy]))
    table = [(n, float(prob(n))) for n in range(MIN_COHORT, 200)]
    chosen = [min(table, key=lambda t, target=target: abs(t[1] - target)) for target in TARGETS]
    assert len({n for n, _ in chosen}) == 3, chosen
    assert all(0.05 < p < 0.95 for _, p in chosen), chosen
    return tuple(chosen)


def band(p: float) -> tuple[int, int]:
    a = ALPHA / len(TARGETS) / 2
    return int(stats.binom.ppf(a, K, p)), int(stats.binom.isf(a, K, p))


def outside_probability(p_alt: float, p: float) -> float:
    """P(Binomial(K, p_alt) lands outside the band of p)."""
    lo, hi = band(p)
    inside = stats.binom.cdf(hi, K, p_alt) - stats.binom.cdf(lo - 1, K, p_alt)
    return float(1 - inside)


@pytest.mark.parametrize("strategy", list(CASES))
def test_bands_reject_a_plain_threshold_and_10x_epsilon(strategy: str) -> None:
    """Power: a plain threshold keeps every group (p = 1); 10× the selection's ε moves
    p_j. Each leaves the band of some level with probability > 1 − 10⁻⁹."""
    eps, delta = selection_budget(CASES[strategy])
    loose = keep_probability(strategy, 10 * eps, delta)
    miss_threshold = min(outside_probability(1.0, p) for _, p in levels(strategy))
    miss_loose = max(outside_probability(float(loose(n)), p) for n, p in levels(strategy))
    assert miss_threshold > 1 - 1e-9
    assert miss_loose > 1 - 1e-9


def _joined(spark: Any, sizes: list[int]) -> Any:
    from cleanjoin._spark import functions_for

    fn = functions_for(spark)
    parts = []
    for j, n in enumerate(sizes):
        # n·K (unit, group) pairs; unit = pair // 2 is in 2 consecutive groups
        parts.append(spark.range(n * K).select(
            fn.concat(fn.lit(f"L{j}-"), fn.floor(fn.col("id") / L0).cast("string")).alias("u"),
            fn.concat(fn.lit(f"L{j}-"), (fn.col("id") % K).cast("string")).alias("g"),
        ))
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out


@pytest.mark.parametrize("strategy", list(CASES))
def test_share_kept_matches_the_keep_probability(spark_classic: Any, strategy: str) -> None:
    """Kept groups per level ~ Binomial(400, p_j), p_j from PyDP's strategy at the
    analytic (ε, δ); failure probability < 10⁻⁸; a plain threshold or 10× ε fails with
    probability > 1 − 10⁻⁹. Classic mode only (same mapInPandas step in both modes)."""
    noise = CASES[strategy]
    lv = levels(strategy)
    joined = _joined(spark_classic, [n for n, _ in lv])
    params = DPParams(epsilon=EPSILON, delta=DELTA, max_partitions_contributed=L0,
                      noise=noise, partition_selection=strategy)
    released, report = dp_aggregate(joined, unit="u", group_by=["g"],
                                    aggregates=[agg.count().alias("n")], params=params,
                                    min_cohort=MIN_COHORT)
    names = [r["g"] for r in released.collect()]
    eps, delta = selection_budget(noise)
    ps = report.partition_selection
    assert ps is not None
    assert (ps.strategy, ps.max_partitions_contributed, ps.pre_threshold) == (
        strategy, L0, MIN_COHORT)
    assert ps.epsilon == pytest.approx(eps, rel=1e-12)
    assert ps.delta == pytest.approx(delta, rel=1e-12)
    assert report.groups_released == len(names)
    for j, (n, p) in enumerate(lv):
        kept = sum(name.startswith(f"L{j}-") for name in names)
        lo, hi = band(p)
        assert lo <= kept <= hi, (
            f"{strategy}: {kept} of {K} groups of {n} units kept, expected {K * p:.1f} "
            f"(band [{lo}, {hi}])"
        )
