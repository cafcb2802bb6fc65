"""Noise of every aggregate under both mechanisms, pinned to the analytic scale.

One release per mechanism (Laplace, Gaussian) of all five aggregates over G = 1000 public
groups, with contribution limits l0 = max_partitions_contributed = 3 and
linf = max_contributions_per_partition = 2. The data are built so the bounded truth of
every group is known exactly, whichever rows the salted hashes keep: each group has
m = 40 privacy units; each unit is in at most 3 groups and has 3 rows in each, all with
the same value (2.5 for half the units of a group, 7.5 for the other half). So per group:
count = m·linf = 80, sum = 400, mean = 5, variance = 6.25, stddev = 2.5.

The analytic scales are computed here from ε, δ, l0, linf and the bounds, never read from
the mechanism: cleanjoin splits (ε, δ) equally (pipeline_dp's NaiveBudgetAccountant)
among the noisy quantities of all aggregates — count 1, sum 1, mean 2 (count, normalized
sum), variance and stddev 3 each (count, normalized sum, normalized sum of squares) —
10 here, so ε_q = ε/10 and δ_q = δ/10. A quantity with Linf sensitivity s_q (count:
linf; sum: linf·max|bound|; normalized sum: linf·(hi−lo)/2; normalized sum of squares:
linf·((hi−lo)/2)²/2) gets Laplace noise of scale b = l0·s_q/ε_q, or Gaussian noise of
the analytic Gaussian mechanism (Balle & Wang) with Δ₂ = √l0·s_q, solved in
``tests/_dpstats.py`` independently of PyDP.

Each test compares the mean absolute error over the 1000 groups with a band: the
Chernoff bound of the error's distribution at the analytic scales (estimated from 2·10⁵
seeded simulated releases, with the same post-processing: rounding and clamping of
counts at 0, the mean's denominator max(1, noisy count), clamping to the bounds). A
correct implementation leaves the band with probability < 10⁻⁸ (Chernoff, both tails).
With every scale 1.5× (or 1/1.5×) the analytic one, the same bound says the statistic
stays inside the band with probability < 10⁻⁹ — :func:`test_bands_are_strict_and_powerful`
checks both numbers without Spark. The per-case numbers are in the test's docstring.

Statistical tests run in classic mode only: the noise is drawn in one ``mapInPandas``
step by pipeline_dp/PyDP on the executor, the same code in both modes (the Connect mode
is covered by the smaller tests in ``test_dp.py``).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest
from _dpstats import chernoff_band, chernoff_tail, gaussian_sigma

from cleanjoin import agg
from cleanjoin.dp import DPParams, DPReport, dp_aggregate

G, M, L0, LINF = 1000, 40, 3, 2
EPSILON, DELTA = 10.0, 1e-5
N_QUANTITIES = 10  # count 1 + sum 1 + mean 2 + variance 3 + stddev 3
EPS_Q, DELTA_Q = EPSILON / N_QUANTITIES, DELTA / N_QUANTITIES
BOUNDS = (0.0, 10.0)  # mean, variance, stddev
SUM_BOUNDS = (-20.0, 10.0)  # max|bound| = 20 is the lower bound
ALPHA = 1e-8
REFERENCE_DRAWS = 200_000

C = M * LINF  # bounded count per group
TRUTH = {"count": float(C), "sum": 5.0 * C, "mean": 5.0, "variance": 6.25, "stddev": 2.5}
HALF = (BOUNDS[1] - BOUNDS[0]) / 2
MID = BOUNDS[0] + HALF
NSS = C * (6.25 - HALF * HALF / 2)  # sum((x - mid)² - half²/2) over the kept rows
KINDS = ("count", "sum", "mean", "variance", "stddev")
NOISES = ("laplace", "gaussian")

# Linf sensitivity (per unit, per group) of every noisy quantity.
LINF_Q = {
    "count": float(LINF),
    "sum": LINF * max(abs(b) for b in SUM_BOUNDS),
    "normalized_sum": LINF * HALF,
    "normalized_sum_of_squares": LINF * HALF * HALF / 2,
}
QUANTITIES = {
    "count": ("count",),
    "sum": ("sum",),
    "mean": ("count", "normalized_sum"),
    "variance": ("count", "normalized_sum", "normalized_sum_of_squares"),
    "stddev": ("count", "normalized_sum", "normalized_sum_of_squares"),
}


def analytic_sensitivity(noise: str, quantity: str) -> float:
    """L1 = l0·Linf (Laplace) or L2 = √l0·Linf (Gaussian)."""
    factor = L0 if noise == "laplace" else math.sqrt(L0)
    return factor * LINF_Q[quantity]


def analytic_stddev(noise: str, quantity: str) -> float:
    """Standard deviation of the noise on ``quantity``: √2·b (Laplace) or σ (Gaussian)."""
    sens = analytic_sensitivity(noise, quantity)
    if noise == "laplace":
        return math.sqrt(2) * sens / EPS_Q
    return gaussian_sigma(EPS_Q, DELTA_Q, sens)


def _noise(rng: np.random.Generator, noise: str, quantity: str, scale: float, n: int) -> Any:
    sd = analytic_stddev(noise, quantity) * scale
    if noise == "laplace":
        return rng.laplace(0.0, sd / math.sqrt(2), n)
    return rng.normal(0.0, sd, n)


def simulate_errors(noise: str, kind: str, scale: float, n: int, seed: int) -> Any:
    """Released minus true value of ``n`` simulated groups, every noise scale × ``scale``."""
    rng = np.random.default_rng(seed)
    if kind == "count":
        released = np.maximum(0.0, np.round(C + _noise(rng, noise, "count", scale, n)))
        return released - C
    if kind == "sum":
        return _noise(rng, noise, "sum", scale, n)
    count = np.maximum(1.0, C + _noise(rng, noise, "count", scale, n))
    mean_n = _noise(rng, noise, "normalized_sum", scale, n) / count  # true normalized sum 0
    if kind == "mean":
        return np.clip(MID + mean_n, *BOUNDS) - TRUTH["mean"]
    nss = NSS + _noise(rng, noise, "normalized_sum_of_squares", scale, n)
    var = np.clip(HALF * HALF / 2 + nss / count - mean_n**2, 0.0, HALF * HALF)
    if kind == "variance":
        return var - TRUTH["variance"]
    return np.sqrt(var) - TRUTH["stddev"]


@functools.cache
def band_and_power(noise: str, kind: str) -> tuple[float, float, float, float]:
    """(lo, hi, power bound at 1.5×, power bound at 1/1.5×) of the mean absolute error."""
    seed = 1000 * NOISES.index(noise) + 10 * KINDS.index(kind)
    ref = np.abs(simulate_errors(noise, kind, 1.0, REFERENCE_DRAWS, seed))
    band = chernoff_band(ref, G, ALPHA)
    wide = np.abs(simulate_errors(noise, kind, 1.5, REFERENCE_DRAWS, seed + 1))
    narrow = np.abs(simulate_errors(noise, kind, 1 / 1.5, REFERENCE_DRAWS, seed + 2))
    return (*band, chernoff_tail(wide, G, band), chernoff_tail(narrow, G, band))


# ---------------------------------------------------------------- Spark: one release each


def _joined(spark: Any) -> Any:
    from cleanjoin._spark import functions_for

    fn = functions_for(spark)
    i = fn.floor(fn.col("id") / (LINF + 1))  # one (unit, group) pair per i, LINF+1 rows
    return spark.range(G * M * (LINF + 1)).select(
        fn.floor(i / L0).cast("string").alias("u"),
        (i % G).cast("string").alias("g"),
        fn.when(fn.floor(i / G) % 2 == 0, 2.5).otherwise(7.5).alias("v"),
    )


_RELEASES: dict[str, tuple[dict[str, list[float]], DPReport]] = {}


@pytest.fixture(scope="module")
def release(spark_classic: Any) -> Any:
    """``release(noise)``: per aggregate kind, released minus true per group, and the report."""

    def get(noise: str) -> tuple[dict[str, list[float]], DPReport]:
        if noise not in _RELEASES:
            joined = _joined(spark_classic)
            aggs = [
                agg.count().alias("count"),
                agg.sum("v", bounds=SUM_BOUNDS).alias("sum"),
                agg.mean("v", bounds=BOUNDS).alias("mean"),
                agg.variance("v", bounds=BOUNDS).alias("variance"),
                agg.stddev("v", bounds=BOUNDS).alias("stddev"),
            ]
            params = DPParams(epsilon=EPSILON, delta=DELTA if noise == "gaussian" else 0.0,
                              max_partitions_contributed=L0,
                              max_contributions_per_partition=LINF, noise=noise)
            df, report = dp_aggregate(joined, unit="u", group_by=["g"], aggregates=aggs,
                                      params=params, min_cohort=1,
                                      public_groups=[(str(g),) for g in range(G)])
            rows = df.collect()
            assert len(rows) == G
            errors = {k: [float(r[k]) - TRUTH[k] for r in rows] for k in KINDS}
            _RELEASES[noise] = (errors, report)
        return _RELEASES[noise]

    return get


# ---------------------------------------------------------------- pure: the bands


@pytest.mark.parametrize("noise", NOISES)
@pytest.mark.parametrize("kind", KINDS)
def test_bands_are_strict_and_powerful(noise: str, kind: str) -> None:
    """The band of each noise test: a correct release leaves it with probability < 10⁻⁸
    (by construction), and one with all noise scales 1.5× or 1/1.5× the analytic ones
    stays inside it with probability < 10⁻⁹ (Chernoff bounds on simulated references)."""
    lo, hi, wide, narrow = band_and_power(noise, kind)
    ref_mean = float(np.mean(np.abs(simulate_errors(noise, kind, 1.0, 50_000, 7))))
    assert lo < ref_mean < hi
    assert wide < 1e-9, (lo, hi, wide)
    assert narrow < 1e-9, (lo, hi, narrow)


def test_analytic_gaussian_sigma_matches_the_known_value() -> None:
    """The independent Balle & Wang solver gives σ ≈ 3.884 for ε = 1, δ = 5e-6, Δ₂ = 1,
    and PyDP's σ (what pipeline_dp uses) is never below it and within 0.1% of it."""
    from pipeline_dp import dp_computations

    sigma = gaussian_sigma(1.0, 5e-6, 1.0)
    assert sigma == pytest.approx(3.88414, abs=1e-4)
    for eps, delta, l2 in ((1.0, 5e-6, 1.0), (1.0, 1e-6, math.sqrt(3) * 2), (0.5, 1e-7, 7.0)):
        pydp = dp_computations.compute_sigma(eps, delta, l2)
        exact = gaussian_sigma(eps, delta, l2)
        assert exact <= pydp <= exact * 1.001


# ---------------------------------------------------------------- Spark: the noise


@pytest.mark.parametrize("noise", NOISES)
@pytest.mark.parametrize("kind", KINDS)
def test_noise_matches_the_analytic_scale(release: Any, noise: str, kind: str) -> None:
    """Mean |released − truth| over 1000 groups lies in the band of the analytic scales.

    l0 = 3, linf = 2, ε_q = 1 per quantity (ε = 10 over 10 quantities), δ_q = 1e-6.
    Analytic noise stddev per quantity (Laplace √2·l0·s_q/ε_q; Gaussian σ(ε_q, δ_q,
    √3·s_q)), s_q the Linf sensitivity:

    ============================  ============  ======  ========  ==========
    quantity                      s_q           L1      Laplace   Gaussian σ
    ============================  ============  ======  ========  ==========
    count                         2             6       8.485     14.63
    sum (bounds −20..10)          40            120     169.7     292.7
    normalized_sum (0..10)        10            30      42.43     73.17
    normalized_sum_of_squares     25            75      106.1     182.9
    ============================  ============  ======  ========  ==========

    Failure probability of a correct implementation: < 10⁻⁸ per case (Chernoff band).
    Probability that an implementation with every scale 1.5× (or 1/1.5×) the analytic
    one passes: < 10⁻⁹ per case (see test_bands_are_strict_and_powerful). Classic mode
    only: the noise step is the same code in both modes.
    """
    errors, report = release(noise)
    lo, hi, _, _ = band_and_power(noise, kind)
    stat = float(np.mean(np.abs(errors[kind])))
    assert lo <= stat <= hi, (
        f"{noise} {kind}: mean |error| {stat:.4g} outside [{lo:.4g}, {hi:.4g}] of the "
        f"analytic scale"
    )
    # The report: every quantity's budget, sensitivity and stddev are the analytic ones.
    item = report.aggregate(kind)
    assert [m.quantity for m in item.mechanisms] == list(QUANTITIES[kind])
    for m in item.mechanisms:
        assert m.noise == noise
        assert m.epsilon == pytest.approx(EPS_Q, rel=1e-12)
        assert m.delta == pytest.approx(DELTA_Q if noise == "gaussian" else 0.0, rel=1e-12)
        assert m.sensitivity == pytest.approx(analytic_sensitivity(noise, m.quantity), rel=1e-12)
        expected = analytic_stddev(noise, m.quantity)
        assert expected * (1 - 1e-12) <= m.stddev <= expected * 1.001, (m.quantity, m.stddev)
    assert item.epsilon == pytest.approx(EPS_Q * len(QUANTITIES[kind]))


@pytest.mark.parametrize("noise", NOISES)
def test_noise_is_centred_and_independent_across_aggregates(release: Any, noise: str) -> None:
    """The sum's noise has mean 0 and is uncorrelated with the count's (separate draws).

    Mean of 1000 draws of sd s: |mean| > 6.3 s/√1000 has probability < 10⁻⁸ (Chernoff
    bound for Laplace noise; < 3·10⁻¹⁰ for Gaussian). The sample correlation of 1000
    independent pairs exceeds 0.25 in absolute value with probability < 10⁻¹² (about
    7.9 standard errors); a shared draw (correlation 1) always fails.
    """
    errors, _ = release(noise)
    s = errors["sum"]
    sd = analytic_stddev(noise, "sum")
    assert abs(float(np.mean(s))) <= 6.3 * sd / math.sqrt(G)
    r = float(np.corrcoef(errors["count"], s)[0, 1])
    assert abs(r) < 0.25
