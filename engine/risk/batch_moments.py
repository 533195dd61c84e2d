"""Per-path means and co-moments per batch of paths, accumulated chunk by chunk, bit-identical
for any chunking.

Paths are cut into segments at fixed block boundaries (every ``block_paths`` paths, counted from
the first path) and at the batch edges of :func:`engine.risk.pnl_stats.batch_edges`; each
segment's mean and co-moments are formed in path order, then merged into its batch in segment
order (Chan's pairwise update). Chunks made of whole blocks therefore give the same figures
whatever their size, and the batches serve the batch-means standard errors of
:mod:`engine.risk.pnl_stats`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.risk.pnl_stats import batch_edges


class BatchMoments:
    """Count, mean per column and co-moment (sum of products of deviations) per column pair."""

    def __init__(self, n_paths: int, n_cols: int, pairs, block_paths: int):
        self.edges = np.array(batch_edges(n_paths), np.int64)
        self.block_paths = block_paths
        pairs = np.array(list(pairs), np.int64).reshape(-1, 2)
        self.pi, self.pj = pairs[:, 0].copy(), pairs[:, 1].copy()
        n_b = self.edges.size - 1
        self.n = np.zeros(n_b)
        self.mean = np.zeros((n_b, n_cols))
        self.com = np.zeros((n_b, pairs.shape[0]))

    @classmethod
    def variances(cls, n_paths: int, n_cols: int, block_paths: int) -> BatchMoments:
        return cls(n_paths, n_cols, [(j, j) for j in range(n_cols)], block_paths)

    def add(self, x: np.ndarray, row0: int) -> None:
        """Rows of ``x`` (paths x columns) are paths ``row0``, ``row0`` + 1, ... ."""
        row1 = row0 + x.shape[0]
        first = -(-row0 // self.block_paths) * self.block_paths
        cuts = set(range(first, row1, self.block_paths)) | {row0, row1}
        cuts |= {int(e) for e in self.edges if row0 < e < row1}
        cuts = np.array(sorted(cuts), np.int64)
        batch = np.searchsorted(self.edges, cuts[:-1], side="right") - 1
        _merge_segments(np.ascontiguousarray(x, dtype=float), cuts - row0, batch, self.pi, self.pj,
                        self.n, self.mean, self.com)

    def total(self) -> tuple[float, np.ndarray, np.ndarray]:
        """(count, means, co-moments) over all paths: the batches merged in order."""
        n, mean, com = 0.0, np.zeros(self.mean.shape[1]), np.zeros(self.com.shape[1])
        for b in range(self.n.size):
            n, mean, com = _chan(n, mean, com, self.n[b], self.mean[b], self.com[b], self.pi, self.pj)
        return n, mean, com


def _chan(na, ma, ca, nb, mb, cb, pi, pj):
    if nb == 0:
        return na, ma, ca
    if na == 0:
        return nb, mb.copy(), cb.copy()
    n = na + nb
    d = mb - ma
    return n, ma + d * (nb / n), ca + cb + d[pi] * d[pj] * (na * nb / n)


@njit(cache=True, nogil=True)
def _merge_segments(x, cuts, batch, pi, pj, n_acc, mean_acc, com_acc):
    c, p = x.shape[1], pi.size
    m = np.empty(c)
    s = np.empty(p)
    for g in range(cuts.size - 1):
        a, e = cuts[g], cuts[g + 1]
        nb = e - a
        if nb <= 0:
            continue
        for j in range(c):
            t = 0.0
            for i in range(a, e):
                t += x[i, j]
            m[j] = t / nb
        for k in range(p):
            t = 0.0
            for i in range(a, e):
                t += (x[i, pi[k]] - m[pi[k]]) * (x[i, pj[k]] - m[pj[k]])
            s[k] = t
        b = batch[g]
        na = n_acc[b]
        if na == 0:
            for j in range(c):
                mean_acc[b, j] = m[j]
            for k in range(p):
                com_acc[b, k] = s[k]
        else:
            n = na + nb
            w = na * nb / n
            for k in range(p):
                com_acc[b, k] += s[k] + (m[pi[k]] - mean_acc[b, pi[k]]) * (m[pj[k]] - mean_acc[b, pj[k]]) * w
            for j in range(c):
                mean_acc[b, j] += (m[j] - mean_acc[b, j]) * (nb / n)
        n_acc[b] = na + nb
