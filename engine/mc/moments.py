"""Deterministic accumulation of antithetic pair means, with an optional control variate.

Sums are formed per block of pairs and added in block order, so totals are bit-identical
whatever the chunk size or thread count (chunks are whole numbers of blocks).

Besides the sums behind the mean and its standard error, each block's central moments of x
(about the block's mean) are merged in block order (Pebay's pairwise formulas) into the
sample's mean, M2, M3 and M4: :meth:`PairMoments.problems` uses them to say where a standard
error cannot be trusted (too few pairs, a sample dominated by a few paths, a control whose
sample mean misses its known mean).
"""

import math

import numpy as np

MIN_PAIRS = 16  # antithetic pairs needed before a standard error is reported
MIN_EFFECTIVE_PAIRS = 5.0  # 3 n / kurtosis: how many pairs carry the sample's fourth moment
MAX_CONTROL_Z = 5.0  # the control's sample mean may miss its known mean by this many stderrs
DETERMINISTIC_REL_SD = 1e-12  # a spread below this (relative to the mean) is rounding noise


class PairMoments:
    """Running sums of x, x^2, c, c^2, x*c over antithetic pair means, for any array shape.

    ``add(x, c)`` takes per-path values (paths on axis 0, in pair order: path 2p and 2p+1).
    ``mean()`` returns the control-variate estimate when a control with known mean was given.
    """

    def __init__(self, shape, block_pairs: int):
        self.block_pairs = block_pairs
        self.n = 0
        self.sums = np.zeros((5, *shape))
        self.central = np.zeros((4, *shape))  # mean, M2, M3, M4 of x, merged in block order
        self.n_merged = 0

    def add(self, x: np.ndarray, c: np.ndarray | None = None) -> None:
        with np.errstate(over="ignore", invalid="ignore"):
            px = 0.5 * (x[0::2] + x[1::2])
            pc = px if c is None else 0.5 * (c[0::2] + c[1::2])
            for s in range(0, px.shape[0], self.block_pairs):
                bx = px[s : s + self.block_pairs]
                bc = pc[s : s + self.block_pairs]
                sx = bx.sum(axis=0)
                self.sums[0] += sx
                self.sums[1] += (bx * bx).sum(axis=0)
                self.sums[2] += bc.sum(axis=0)
                self.sums[3] += (bc * bc).sum(axis=0)
                self.sums[4] += (bx * bc).sum(axis=0)
                nb = bx.shape[0]
                d = bx - sx / nb
                d2 = d * d
                self._merge(nb, sx / nb, d2.sum(axis=0), (d2 * d).sum(axis=0), (d2 * d2).sum(axis=0))
        self.n += px.shape[0]

    def add_block_sums(self, block_sums: np.ndarray, n_pairs: int) -> None:
        """Add per-block sums (blocks x 8 x shape: the 5 sums, then the block's central sums of
        x of order 2, 3, 4) in block order; ``n_pairs`` pairs in all, whole blocks but the last."""
        n_blocks = block_sums.shape[0]
        with np.errstate(over="ignore", invalid="ignore"):
            for blk in range(n_blocks):
                b = block_sums[blk]
                self.sums += b[:5]
                nb = self.block_pairs if blk < n_blocks - 1 else n_pairs - (n_blocks - 1) * self.block_pairs
                self._merge(nb, b[0] / nb, b[5], b[6], b[7])
        self.n += n_pairs

    def _merge(self, nb: int, mean_b, m2b, m3b, m4b) -> None:
        """Pebay's update of (mean, M2, M3, M4) with a block of ``nb`` pairs."""
        na = self.n_merged
        if na == 0:
            self.central[:] = np.stack([np.broadcast_to(v, self.central.shape[1:]) for v in
                                        (mean_b, m2b, m3b, m4b)])
            self.n_merged = nb
            return
        mean_a, m2a, m3a, m4a = self.central
        n = na + nb
        delta = mean_b - mean_a
        d_n = delta / n
        m4 = (m4a + m4b + delta * d_n**3 * na * nb * (na * na - na * nb + nb * nb)
              + 6.0 * d_n**2 * (na * na * m2b + nb * nb * m2a) + 4.0 * d_n * (na * m3b - nb * m3a))
        m3 = m3a + m3b + delta * d_n**2 * na * nb * (na - nb) + 3.0 * d_n * (na * m2b - nb * m2a)
        m2 = m2a + m2b + delta * d_n * na * nb
        self.central[0] = mean_a + d_n * nb
        self.central[1], self.central[2], self.central[3] = m2, m3, m4
        self.n_merged = n

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

    def kurtosis(self) -> np.ndarray:
        """Sample kurtosis of the pair means (3 for a normal sample); NaN where x is constant."""
        _, m2, _, m4 = self.central
        n = self.n
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return np.where(m2 > 0, n * m4 / (m2 * m2), np.nan)

    def problems(self, control_mean=None) -> np.ndarray:
        """Per element: None where the mean and stderr can be reported, else why not.

        A stderr needs ``MIN_PAIRS`` pairs; a sample whose fourth moment is carried by fewer
        than ``MIN_EFFECTIVE_PAIRS`` pairs (3 n / kurtosis) is dominated by a few paths, and its
        stderr is a guess; with a control of known mean, a sample mean of the control more than
        ``MAX_CONTROL_Z`` stderrs from it (or off by more than rounding, if the control does not
        vary) means the paths miss where the distribution's mass is. A sample that does not
        vary (beyond rounding) is deterministic and its zero stderr stands.
        """
        n = self.n
        mean = self.mean(control_mean)
        se = self.stderr(control_mean)
        kurt = self.kurtosis()
        mx, m2 = self.central[0], self.central[1]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            sd = np.sqrt(np.maximum(m2, 0.0) / max(n, 1))
            varies = sd > DETERMINISTIC_REL_SD * np.abs(mx)
            effective = np.where(varies & np.isfinite(kurt), 3.0 * n / kurt, np.inf)
            if control_mean is not None:
                control_mean = np.broadcast_to(np.asarray(control_mean, dtype=float), np.shape(mean))
                _, _, mc, _, vc, _ = self._moments()
                se_c = np.sqrt(vc / max(n, 1))
                gap = np.abs(mc - control_mean)
                z = np.where(se_c > 0, gap / se_c, np.where(gap > 1e-9 * np.abs(control_mean), np.inf, 0.0))
            else:
                z = np.zeros_like(mean)
        out = np.empty(np.shape(mean), dtype=object)
        for idx in np.ndindex(out.shape):
            if not (math.isfinite(mean[idx]) and math.isfinite(se[idx])):
                out[idx] = f"not a finite number ({float(mean[idx])} +/- {float(se[idx])})"
            elif n < MIN_PAIRS:
                out[idx] = f"{2 * n} paths: at least {2 * MIN_PAIRS} are needed for a standard error"
            elif effective[idx] < MIN_EFFECTIVE_PAIRS:
                out[idx] = (f"the sample is dominated by a few paths (kurtosis {kurt[idx]:.3g} over {n} pairs, "
                            f"about {effective[idx]:.1f} effective)")
            elif not z[idx] <= MAX_CONTROL_Z:
                out[idx] = (f"the simulated BTC price averages {mc[idx]:.6g} against its forward "
                            f"{control_mean[idx]:.6g} ({z[idx]:.3g} stderrs): the paths miss where the "
                            "distribution's mass is")
            else:
                out[idx] = None
        return out
