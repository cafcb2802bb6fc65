"""Reference statistics for the DP tests (numpy/scipy; never used by cleanjoin itself).

* :func:`gaussian_sigma`: the analytic Gaussian mechanism (Balle & Wang 2018, Theorem 8),
  solved independently of PyDP: the smallest σ with
  ``Φ(Δ/2σ − εσ/Δ) − e^ε Φ(−Δ/2σ − εσ/Δ) ≤ δ``.
* :func:`chernoff_band`: an interval that the mean of ``n`` i.i.d. copies of a variable
  leaves with probability at most ``alpha`` — the Chernoff bound
  ``P(mean ≥ μ + t) ≤ exp(−n·I(t))`` on each side, with the cumulant generating function
  estimated from a large seeded reference sample of the variable.
* :func:`chernoff_tail`: the same bound for the probability that the mean of ``n`` copies
  of another variable (an alternative, e.g. noise 1.5× too large) lands inside a band.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats

_LAMBDAS = np.geomspace(1e-3, 4.0, 64)


def gaussian_sigma(epsilon: float, delta: float, l2_sensitivity: float) -> float:
    """σ of the analytic Gaussian mechanism (Balle & Wang), independent of PyDP."""

    def excess(sigma: float) -> float:
        a = l2_sensitivity / (2 * sigma)
        b = epsilon * sigma / l2_sensitivity
        return float(stats.norm.cdf(a - b) - math.exp(epsilon) * stats.norm.cdf(-a - b) - delta)

    return float(optimize.brentq(excess, 1e-6 * l2_sensitivity, 1e6 * l2_sensitivity,
                                 xtol=1e-14, rtol=1e-14))


def _cgf(z: np.ndarray) -> np.ndarray:
    """log E[exp(λ z)] for every λ of the grid (z standardized)."""
    out = np.empty(len(_LAMBDAS))
    for i, lam in enumerate(_LAMBDAS):
        v = lam * z
        top = v.max()
        out[i] = top + math.log(np.mean(np.exp(v - top)))
    return out


def _rate(cgf: np.ndarray, t: float) -> float:
    """sup over λ > 0 of λ t − K(λ) (the Chernoff exponent of a deviation t)."""
    return float(max(0.0, np.max(_LAMBDAS * t - cgf)))


def _deviation(cgf: np.ndarray, n: int, alpha: float) -> float:
    """The smallest t (in sd units) with exp(−n I(t)) ≤ alpha."""
    target = math.log(1 / alpha) / n
    lo, hi = 0.0, 50.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if _rate(cgf, mid) >= target:
            hi = mid
        else:
            lo = mid
    return hi


def chernoff_band(reference: np.ndarray, n: int, alpha: float) -> tuple[float, float]:
    """[lo, hi] that the mean of n draws leaves with probability ≤ alpha (alpha/2 a side)."""
    mu, sd = float(reference.mean()), float(reference.std())
    z = (reference - mu) / sd
    up = _deviation(_cgf(z), n, alpha / 2)
    down = _deviation(_cgf(-z), n, alpha / 2)
    return mu - down * sd, mu + up * sd


def chernoff_tail(reference: np.ndarray, n: int, band: tuple[float, float]) -> float:
    """Bound on P(mean of n draws ∈ band) for a variable whose mean lies outside it."""
    mu, sd = float(reference.mean()), float(reference.std())
    z = (reference - mu) / sd
    lo, hi = band
    if mu > hi:
        return math.exp(-n * _rate(_cgf(-z), (mu - hi) / sd))
    if mu < lo:
        return math.exp(-n * _rate(_cgf(z), (lo - mu) / sd))
    return 1.0
