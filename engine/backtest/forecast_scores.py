"""Scoring rules for forecasts given as predictive samples: PIT, CRPS, central-interval hits,
coverage, and the Diebold-Mariano comparison of two forecasts' losses.

**Scores** (:func:`score_samples`). From the predictive sample ``x_1..x_n`` and the realised
``y``: PIT = (#{x < y} + #{x = y}/2) / n; the 50% / 90% central intervals are the sample
quantiles (linear interpolation) 25-75% and 5-95%; CRPS of the sample's empirical
distribution ``mean|x - y| - (1/2n^2) sum|x_i - x_j|`` (the double sum by sorting, O(n log n)).

>>> import numpy as np
>>> round(float(crps_sample(np.array([0.0, 1.0]), 0.0)), 3)  # 0.5 - 0.25
0.25
"""

from __future__ import annotations

import math

import numpy as np

from engine.calibration.newey_west import mean_and_stderr

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
PIT_BINS = 10


def crps_sample(samples: np.ndarray, y) -> np.ndarray:
    """CRPS of the empirical distribution of ``samples`` (last axis) at the outcome ``y``.

    ``E|X - y| - E|X - X'|/2`` with ``X, X'`` drawn independently from the sample (the
    ``i = j`` pairs included, i.e. the CRPS of the step-function CDF). For sorted ``x``,
    ``sum_ij |x_i - x_j| = 2 sum_i (2i - n - 1) x_(i)`` (1-based ``i``). Lower is better.
    """
    x = np.sort(np.asarray(samples, dtype=float), axis=-1)
    y = np.asarray(y, dtype=float)
    n = x.shape[-1]
    term1 = np.mean(np.abs(x - y[..., None]), axis=-1)
    w = 2.0 * np.arange(1, n + 1) - n - 1.0
    term2 = np.sum(w * x, axis=-1) / (n * n)  # = E|X - X'| / 2
    return term1 - term2


def pit_sample(samples: np.ndarray, y) -> np.ndarray:
    """Probability integral transform: the sample's CDF at ``y``, ties counted half."""
    x = np.asarray(samples, dtype=float)
    y = np.asarray(y, dtype=float)[..., None]
    return (np.sum(x < y, axis=-1) + 0.5 * np.sum(x == y, axis=-1)) / x.shape[-1]


def score_samples(samples: np.ndarray, y) -> dict:
    """Quantiles (:data:`QUANTILES`), mean, PIT, CRPS and interval hits of a predictive sample."""
    x = np.asarray(samples, dtype=float)
    y = np.asarray(y, dtype=float)
    q = np.quantile(x, QUANTILES, axis=-1)
    return {
        "mean": x.mean(axis=-1),
        "quantiles": q,
        "pit": pit_sample(x, y),
        "crps": crps_sample(x, y),
        "in50": (q[1] <= y) & (y <= q[3]),
        "in90": (q[0] <= y) & (y <= q[4]),
    }


def coverage_summary(pit: np.ndarray, in50: np.ndarray, in90: np.ndarray) -> dict:
    """Coverage of the 50% / 90% intervals and the PIT histogram (:data:`PIT_BINS` bins)."""
    counts, _ = np.histogram(np.clip(pit, 0.0, 1.0), bins=PIT_BINS, range=(0.0, 1.0))
    return {"coverage_50": float(np.mean(in50)), "coverage_90": float(np.mean(in90)),
            "pit_histogram": [int(c) for c in counts]}


def diebold_mariano(loss_a: np.ndarray, loss_b: np.ndarray, lags: int) -> tuple[float, float]:
    """Mean of ``loss_a - loss_b`` and its t statistic with a Newey-West (Bartlett) variance."""
    m, se = mean_and_stderr(np.asarray(loss_a, float) - np.asarray(loss_b, float), lags)
    return m, (m / se if se > 0 else math.nan)
