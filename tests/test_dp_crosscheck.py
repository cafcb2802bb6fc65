"""Cross-check against pipeline_dp's own ``DPEngine.aggregate`` (LocalBackend).

Same small data through both engines: 2000 public groups; each privacy unit has rows in
3 groups (4 rows in each) while l0 = 2 and linf = 2, so both contribution bounds drop
data (a unit keeps 2 of its 3 groups, 2 of its 4 rows there; values 0..9 clamped to
[0, 8]). Per group, cleanjoin's released values and pipeline_dp's (after cleanjoin's
documented post-processing: counts rounded and at least 0, means clamped to the bounds)
must have the same distribution: a two-sample Kolmogorov–Smirnov test at alpha = 10⁻⁸ (a
correct pair fails with probability ≤ 10⁻⁸; KS is conservative for the discrete counts).
This checks agreement of bounding and noise with the reference engine; the power against
wrong scales (1.5×) is pinned in ``test_dp_noise.py``.
Classic mode only: the engines are compared, not the Spark modes.
"""

from __future__ import annotations

from typing import Any

import pytest
from scipy import stats

from cleanjoin import agg
from cleanjoin.dp import DPParams, dp_aggregate

G, UNITS_PER_GROUP, L0, LINF = 2000, 4, 2, 2
ROWS_PER_PAIR, GROUPS_PER_UNIT = 4, 3
ALPHA = 1e-8
BOUNDS = (0.0, 8.0)


def _rows() -> list[tuple[str, str, float]]:
    rows = []
    pairs = G * UNITS_PER_GROUP
    for i in range(pairs):
        u, g = i // GROUPS_PER_UNIT, i % G
        rows.extend((f"u{u}", f"g{g}", float((i + k) % 10)) for k in range(ROWS_PER_PAIR))
    return rows


def _pipeline_dp(rows: list[tuple[str, str, float]], metric: str, noise: str,
                 epsilon: float, delta: float) -> list[float]:
    import pipeline_dp

    accountant = pipeline_dp.NaiveBudgetAccountant(total_epsilon=epsilon, total_delta=delta)
    engine = pipeline_dp.DPEngine(accountant, pipeline_dp.LocalBackend())
    params = pipeline_dp.AggregateParams(
        metrics=[getattr(pipeline_dp.Metrics, metric.upper())],
        noise_kind=(pipeline_dp.NoiseKind.LAPLACE if noise == "laplace"
                    else pipeline_dp.NoiseKind.GAUSSIAN),
        max_partitions_contributed=L0,
        max_contributions_per_partition=LINF,
        min_value=BOUNDS[0], max_value=BOUNDS[1],
    )
    extractors = pipeline_dp.DataExtractors(
        privacy_id_extractor=lambda r: r[0], partition_extractor=lambda r: r[1],
        value_extractor=lambda r: r[2])
    result = engine.aggregate(rows, params, extractors,
                              public_partitions=[f"g{g}" for g in range(G)])
    accountant.compute_budgets()
    return [float(getattr(m, metric)) for _, m in result]


CASES = [("count", "laplace", 1.0, 0.0), ("sum", "gaussian", 1.0, 1e-6),
         ("mean", "laplace", 8.0, 0.0)]


@pytest.mark.parametrize(("metric", "noise", "epsilon", "delta"), CASES)
def test_same_distribution_as_pipeline_dp_engine(
    spark_classic: Any, metric: str, noise: str, epsilon: float, delta: float
) -> None:
    """KS two-sample test at alpha = 10⁻⁸ between cleanjoin and DPEngine per-group output.

    Bounded truth per group: 2.67 kept units × 2 rows = 5.33 rows on average.
    count/Laplace ε = 1: b = l0·linf/ε = 4 (sd 5.66);
    sum/Gaussian ε = 1, δ = 10⁻⁶: σ = σ(1, 10⁻⁶, √2·2·8) ≈ 95.6;
    mean/Laplace ε = 8 (4 per quantity in both engines: count, normalized sum).
    Failure probability of a correct pair: ≤ 10⁻⁸.
    """
    rows = _rows()
    ours_df, report = dp_aggregate(
        spark_classic.createDataFrame(rows, "u string, g string, v double"),
        unit="u", group_by=["g"],
        aggregates=[getattr(agg, metric)(*([] if metric == "count" else ["v"]),
                                        **({} if metric == "count" else {"bounds": BOUNDS}))
                    .alias("x")],
        params=DPParams(epsilon=epsilon, delta=delta, max_partitions_contributed=L0,
                        max_contributions_per_partition=LINF, noise=noise),
        min_cohort=1, public_groups=[(f"g{g}",) for g in range(G)],
    )
    ours = [float(r["x"]) for r in ours_df.collect()]
    theirs = _pipeline_dp(rows, metric, noise, epsilon, delta)
    if metric == "count":  # cleanjoin's post-processing of counts
        theirs = [float(max(0, round(v))) for v in theirs]
    if metric == "mean":  # cleanjoin clamps the mean to its bounds
        theirs = [min(BOUNDS[1], max(BOUNDS[0], v)) for v in theirs]
    assert len(ours) == len(theirs) == G
    assert report.aggregate("x").epsilon == pytest.approx(epsilon)
    result = stats.ks_2samp(ours, theirs)
    assert result.pvalue > ALPHA, (metric, noise, result)
