"""The stderr of a sum of control-variate estimates that share their paths.

Each trade's estimate is ``mean(x_i) - beta_i (mean(c_i) - mu_i)`` with its own control. Their
sum is the mean of ``Y = X - sum_i beta_i c_i`` per path (``X = sum_i x_i``), whose variance
needs the cross moments of the controls and of X with each control:
``Var Y = Var X - 2 sum_i beta_i Cov(X, c_i) + sum_ij beta_i beta_j Cov(c_i, c_j)``.
The sums are formed per block of pairs and added in block order (bit-identical for any chunk
size), over antithetic pair means as :class:`~engine.mc.moments.PairMoments` does.

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> c = rng.normal(size=(4_000, 1, 2))
>>> x = c + 0.1 * rng.normal(size=(4_000, 1, 2))
>>> j = JointMoments(1, 2, block_pairs=256)
>>> j.add(x.sum(axis=2), c)
>>> j.n
2000
"""

from __future__ import annotations

import numpy as np

MAX_JOINT_TRADES = 256  # cross moments grow with the square of the trades: beyond this, none are kept


class JointMoments:
    """Sums of X c_i and c_i c_j over pair means, per measure (``n_measures`` x ``n_trades``)."""

    def __init__(self, n_measures: int, n_trades: int, block_pairs: int):
        self.block_pairs = block_pairs
        self.n = 0
        self.xc = np.zeros((n_measures, n_trades))
        self.cc = np.zeros((n_measures, n_trades, n_trades))

    def add(self, total: np.ndarray, c: np.ndarray) -> None:
        """``total`` (paths x measures) the per-path sums X, ``c`` (paths x measures x trades) the
        controls, paths in pair order."""
        with np.errstate(over="ignore", invalid="ignore"):
            px = 0.5 * (total[0::2] + total[1::2])
            pc = 0.5 * (c[0::2] + c[1::2])
            for s in range(0, px.shape[0], self.block_pairs):
                bx, bc = px[s:s + self.block_pairs], pc[s:s + self.block_pairs]
                self.xc += np.einsum("bm,bmt->mt", bx, bc)
                self.cc += np.einsum("bmt,bmu->mtu", bc, bc)
        self.n += px.shape[0]

    def total_stderr(self, sum_x, sum_x2, sum_c, beta) -> np.ndarray:
        """Per measure: the stderr of ``mean(X) - sum_i beta_i (mean(c_i) - mu_i)``, from the sums
        of X, X^2 and c_i (:class:`PairMoments` ``sums``) and each trade's ``beta``."""
        n = self.n
        k = n / max(n - 1, 1)
        mx, mc = sum_x / n, sum_c / n
        var_x = np.maximum(sum_x2 / n - mx * mx, 0.0) * k
        cov_xc = (self.xc / n - mx[:, None] * mc) * k
        cov_cc = (self.cc / n - mc[:, :, None] * mc[:, None, :]) * k
        var_y = var_x - 2.0 * np.einsum("mt,mt->m", beta, cov_xc) + np.einsum("mt,mtu,mu->m", beta, cov_cc, beta)
        return np.sqrt(np.maximum(var_y, 0.0) / n)
