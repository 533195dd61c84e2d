"""Fixed-grid histograms of per-path values, merged exactly, and the quantiles and tail means
read from them.

Each value is quantised to an integer number of ``unit`` (a cent of USD, a satoshi) and counted
in one of ``bins`` equal bins over a range known in advance, with the bin's sum of quantised
values beside its count. Counts and sums are int64, so totals are exact and the same in any
order of paths, chunks or threads. A quantile interpolates linearly within its bin, so it is
within one bin width (range / bins, the grid's resolution) of the sample's own order statistic;
the tail mean below it (the lowest ceil(p n) of n paths) takes the quantile's bin in
proportion, within a bin width of the sample's own.

>>> g = Grid(lo=0.0, hi=100.0, unit=0.01, bins=1000)
>>> h = g.empty(1)
>>> g.add(h, np.arange(1, 101, dtype=float)[:, None])
>>> round(quantile(g, h[0][0], 0.05), 6), round(tail_mean(g, h[0][0], h[1][0], 0.05), 6)
(5.0005, 3.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Grid:
    """``bins`` equal bins over [lo, hi] (in value units), values quantised to ``unit``."""

    lo: float
    hi: float
    unit: float
    bins: int

    @property
    def q_lo(self) -> int:
        return math.floor(self.lo / self.unit)

    @property
    def q_span(self) -> int:
        return max(math.ceil(self.hi / self.unit) - self.q_lo, 1) + 1

    @property
    def resolution(self) -> float:
        """One bin's width in value units."""
        return self.q_span * self.unit / self.bins

    def edges(self) -> np.ndarray:
        return (self.q_lo + np.arange(self.bins + 1) * (self.q_span / self.bins)) * self.unit

    def empty(self, columns: int) -> tuple[np.ndarray, np.ndarray]:
        """(counts, sums), each columns x bins int64 zeros."""
        return np.zeros((columns, self.bins), np.int64), np.zeros((columns, self.bins), np.int64)

    def add(self, hist: tuple[np.ndarray, np.ndarray], x: np.ndarray) -> None:
        """Count the rows of ``x`` (paths x columns, every column on this grid)."""
        n = x.shape[1]
        add_rows(np.ascontiguousarray(x, dtype=float), np.full(n, 1.0 / self.unit), np.full(n, self.q_lo, np.int64),
                 np.full(n, self.q_span, np.int64), self.bins, 0, np.zeros(x.shape[0], np.int64), *hist,
                 np.zeros((1, n, self.bins), np.int64), np.zeros((1, n, self.bins), np.int64),
                 np.zeros((1, n), np.int64), np.zeros((1, n), np.int64))

    def check_sums(self, n_paths: int) -> None:
        """Refuse a grid whose int64 sums could overflow over ``n_paths`` paths."""
        q_max = max(abs(self.q_lo), abs(self.q_lo + self.q_span))
        if q_max * max(n_paths, 1) >= INT64_MAX or self.q_span * self.bins >= INT64_MAX:
            raise OverflowError(f"a histogram over [{self.lo}, {self.hi}] in units of {self.unit} overflows int64 "
                                f"sums over {n_paths} paths")


@njit(cache=True, nogil=True)
def add_rows(x, inv_unit, q_lo, q_span, bins, coarse_shift, batch_of_row, counts, sums, b_counts, b_sums,
             b_negative, b_nonpositive):
    """Per row and column: quantise, count on the column's grid (clipped to its ends) with the sum,
    and on the row's batch's coarse grid (``bins >> coarse_shift`` bins); count values < 0 and <= 0."""
    n, c = x.shape
    for i in range(n):
        b = batch_of_row[i]
        for j in range(c):
            v = x[i, j]
            q = np.int64(math.floor(v * inv_unit[j] + 0.5))
            k = (q - q_lo[j]) * bins // q_span[j]
            k = min(max(k, 0), bins - 1)
            counts[j, k] += 1
            sums[j, k] += q
            kc = k >> coarse_shift
            b_counts[b, j, kc] += 1
            b_sums[b, j, kc] += q
            if v < 0.0:
                b_negative[b, j] += 1
            if v <= 0.0:
                b_nonpositive[b, j] += 1


def _locate(counts: np.ndarray, p: float) -> tuple[int, float, float]:
    """(bin, paths taken from it, paths below it) holding the lowest ceil(p n) of n paths (the
    paths at or below the sample's inverted-CDF p-quantile)."""
    cum = np.concatenate(([0], np.cumsum(counts)))
    target = max(math.ceil(min(max(p, 0.0), 1.0) * cum[-1]), 1)
    b = int(np.searchsorted(cum[1:], target, side="left"))
    b = min(b, counts.size - 1)
    while counts[b] == 0 and b < counts.size - 1:
        b += 1
    return b, target - cum[b], float(cum[b])


def quantile(grid: Grid, counts: np.ndarray, p: float, bins: int | None = None) -> float:
    """The p-quantile, interpolated within its bin (``bins``: the histogram's own bin count, a
    coarsening of the grid's); NaN when empty."""
    if counts.sum() == 0:
        return math.nan
    edges = _edges(grid, bins or counts.size)
    b, take, _ = _locate(counts, p)
    frac = min(max(take / counts[b], 0.0), 1.0) if counts[b] else 0.0
    return float(edges[b] + frac * (edges[b + 1] - edges[b]))


def tail_mean(grid: Grid, counts: np.ndarray, sums: np.ndarray, p: float) -> float:
    """Mean of the lowest fraction p of the values: whole bins below the p-quantile's bin and its
    bin's sum in proportion to the paths taken from it; NaN when empty."""
    total = counts.sum()
    if total == 0:
        return math.nan
    b, take, below = _locate(counts, p)
    part = sums[b] * (take / counts[b]) if counts[b] else 0.0
    mass = below + take
    return float((int(sums[:b].sum()) + part) / mass * grid.unit)


def _edges(grid: Grid, bins: int) -> np.ndarray:
    return (grid.q_lo + np.arange(bins + 1) * (grid.q_span / bins)) * grid.unit
