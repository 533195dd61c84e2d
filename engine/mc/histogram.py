"""A fixed grid for histograms of log ratios, and quantiles and CDFs read from it.

The kernel counts per-path values x = ln(value / reference) (a difficulty against today's
difficulty, the daily index against today's index) on one grid shared by every histogram:

* bins of width ``BIN_WIDTH_LOG`` = 2^-8 (about 0.39% in the value) over [-4, 4] (a factor of
  e^4 = 55 either way), plus an underflow bin (-inf, -4) and an overflow bin [4, inf);
* integer counts, so merged totals are exact in any order (threads, chunks, machines);
* beside each histogram, the exact smallest and largest x seen: they replace the open ends of
  the under/overflow bins and clip the bins they fall in.

Quantiles interpolate linearly within a bin (the CDF is piecewise linear between the clipped
edges): with a smooth density the error is a small fraction of a bin, and a point mass (every
path with the same value) returns that value exactly.

>>> counts = np.zeros(N_BINS, np.int64)
>>> counts[bin_index(0.1)] = 10
>>> float(quantile(counts, 0.1, 0.1, 0.5))
0.1
>>> float(cdf_mid(counts, 0.1, 0.1, 0.1))
0.5
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

LOG_MIN = -4.0
LOG_MAX = 4.0
BIN_WIDTH_LOG = 2.0**-8
N_INNER = int(round((LOG_MAX - LOG_MIN) / BIN_WIDTH_LOG))  # 2,048
N_BINS = N_INNER + 2  # bin 0: underflow, bins 1..N_INNER: the grid, last: overflow
_INV_WIDTH = 1.0 / BIN_WIDTH_LOG


@njit(cache=True)
def bin_index(x: float) -> int:
    """Bin of a log ratio ``x`` on the shared grid (NaN counts as underflow)."""
    if not x >= LOG_MIN:
        return 0
    if x >= LOG_MAX:
        return N_INNER + 1
    return min(1 + int((x - LOG_MIN) * _INV_WIDTH), N_INNER)


def _clipped_edges(lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Left and right edges of every bin, the open ends replaced by, and all clipped to, [lo, hi]."""
    inner = LOG_MIN + BIN_WIDTH_LOG * np.arange(N_INNER + 1)
    edges = np.concatenate(([lo], inner, [hi]))
    edges = np.clip(edges, lo, hi)
    return edges[:-1], edges[1:]


def quantile(counts: np.ndarray, lo: float, hi: float, probs) -> np.ndarray:
    """Quantiles (log ratios) at ``probs`` in [0, 1] of one histogram with range [lo, hi].

    A float for a scalar ``probs``, else an array; NaN when the histogram is empty.
    """
    counts = np.asarray(counts, dtype=np.int64)
    scalar = np.ndim(probs) == 0
    probs = np.atleast_1d(np.asarray(probs, dtype=float))
    total = int(counts.sum())
    if total == 0:
        return math.nan if scalar else np.full(probs.shape, np.nan)
    left, right = _clipped_edges(lo, hi)
    cum = np.concatenate(([0], np.cumsum(counts)))
    out = np.empty(probs.shape)
    for i, p in enumerate(probs):
        target = min(max(p, 0.0), 1.0) * total
        b = int(np.searchsorted(cum[1:], target, side="left"))  # first bin with cum >= target
        b = min(b, counts.size - 1)
        while counts[b] == 0 and b < counts.size - 1:
            b += 1
        frac = (target - cum[b]) / counts[b] if counts[b] else 0.0
        out[i] = left[b] + min(max(frac, 0.0), 1.0) * (right[b] - left[b])
    return float(out[0]) if scalar else out


def _cdf(counts: np.ndarray, left: np.ndarray, right: np.ndarray, y: float, strict: bool) -> float:
    """Mass at or below ``y`` (strictly below when ``strict``) under the interpolated histogram."""
    width = right - left
    with np.errstate(invalid="ignore", divide="ignore"):
        inside = np.clip((y - left) / width, 0.0, 1.0)
    point = (y > left) if strict else (y >= left)  # zero-width bins are point masses
    return float((counts * np.where(width > 0, inside, point)).sum())


def cdf_mid(counts: np.ndarray, lo: float, hi: float, x: float, tie: float = 0.0) -> float:
    """Mid-distribution CDF at ``x``: P(X < x - tie) + P(|X - x| <= tie) / 2.

    Values within ``tie`` of ``x`` count as ties, half below and half above: a point mass at
    (or within ``tie`` of) ``x`` gives 0.5. NaN when the histogram is empty.
    """
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0 or not math.isfinite(x):
        return math.nan
    left, right = _clipped_edges(lo, hi)
    below = _cdf(counts, left, right, x - tie, strict=True)
    at_or_below = _cdf(counts, left, right, x + tie, strict=False)
    return 0.5 * (below + at_or_below) / total


def mean_log(counts: np.ndarray, lo: float, hi: float) -> float:
    """Mean log ratio under the interpolated histogram (a check on the bin mapping)."""
    counts = np.asarray(counts, dtype=np.int64)
    left, right = _clipped_edges(lo, hi)
    return float((counts * 0.5 * (left + right)).sum() / counts.sum())
