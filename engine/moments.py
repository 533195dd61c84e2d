"""Deterministic accumulation of antithetic pair means, with an optional control variate.

Sums are formed per block of pairs and added in block order, so totals are bit-identical
whatever the chunk size or thread count (chunks are whole numbers of blocks).
"""

import numpy as np


class PairMoments:
    """Running sums of x, x^2, c, c^2, x*c over antithetic pair means, for any array shape.

    ``add(x, c)`` takes per-path values (paths on axis 0, in pair order: path 2p and 2p+1).
    ``mean()`` returns the control-variate estimate when a control with known mean was given.
    """

    def __init__(self, shape, block_pairs: int):
        self.block_pairs = block_pairs
        self.n = 0
        self.sums = np.zeros((5, *shape))

    def add(self, x: np.ndarray, c: np.ndarray | None = None) -> None:
        px = 0.5 * (x[0::2] + x[1::2])
        pc = px if c is None else 0.5 * (c[0::2] + c[1::2])
        for s in range(0, px.shape[0], self.block_pairs):
            bx = px[s : s + self.block_pairs]
            bc = pc[s : s + self.block_pairs]
            self.sums[0] += bx.sum(axis=0)
            self.sums[1] += (bx * bx).sum(axis=0)
            self.sums[2] += bc.sum(axis=0)
            self.sums[3] += (bc * bc).sum(axis=0)
            self.sums[4] += (bx * bc).sum(axis=0)
        self.n += px.shape[0]

    def add_block_sums(self, block_sums: np.ndarray, n_pairs: int) -> None:
        """Add per-block sums (blocks x 5 x shape) in block order; ``n_pairs`` pairs in all."""
        for blk in range(block_sums.shape[0]):
            self.sums += block_sums[blk]
        self.n += n_pairs

    def _moments(self):
        n = self.n
        mx, mc = self.sums[0] / n, self.sums[2] / n
        vx = np.maximum(self.sums[1] / n - mx * mx, 0.0) * n / max(n - 1, 1)
        vc = np.maximum(self.sums[3] / n - mc * mc, 0.0) * n / max(n - 1, 1)
        cov = (self.sums[4] / n - mx * mc) * n / max(n - 1, 1)
        return n, mx, mc, vx, vc, cov

    def mean(self, control_mean=None) -> np.ndarray:
        n, mx, mc, vx, vc, cov = self._moments()
        if control_mean is None:
            return mx
        beta = np.divide(cov, vc, out=np.zeros_like(cov), where=vc > 0)
        return mx - beta * (mc - control_mean)

    def stderr(self, control_mean=None) -> np.ndarray:
        n, mx, mc, vx, vc, cov = self._moments()
        if control_mean is None:
            return np.sqrt(vx / n)
        r2 = np.divide(cov * cov, vc, out=np.zeros_like(cov), where=vc > 0)
        return np.sqrt(np.maximum(vx - r2, 0.0) / n)
