"""Deterministic accumulation of antithetic pair means, with an optional control variate.

Sums are formed per block of pairs and added in block order, so totals are bit-identical
whatever the chunk size or thread count (chunks are whole numbers of blocks).

Besides the sums behind the mean and its standard error, each block's central moments of x
(about the block's mean) are merged in block order (Pebay's pairwise formulas) into the
sample's mean, M2, M3 and M4: :meth:`PairMoments.problems` uses them to say where a standard
error cannot be trusted (too few pairs, a sample dominated by a few paths, a control whose
sample mean misses its known mean).

Under randomised QMC (``scrambles=R``: pair p is a point of scramble p mod R, see
:mod:`engine.mc.sobol`) the pairs are not independent and the i.i.d. formula for the stderr does
not hold. Sums of x and c per scramble are then kept too: the mean is unchanged (all pairs
pooled, BTC control with the pooled beta) and its stderr is the spread of the R scramble means
y_s = x_s - beta (c_s - E[c]), sqrt(R' / (R' - 1) sum_s w_s^2 (y_s - y)^2) with weights
w_s = n_s / n over the R' scrambles that hold pairs: the standard deviation of the scramble
means over sqrt(R) when every scramble holds as many pairs.
"""

import math

import numpy as np
from numba import njit

MIN_PAIRS = 16  # antithetic pairs needed before a standard error is reported
MIN_EFFECTIVE_PAIRS = 5.0  # 3 n / kurtosis: how many pairs carry the sample's fourth moment
MAX_CONTROL_Z = 5.0  # the control's sample mean may miss its known mean by this many stderrs
DETERMINISTIC_REL_SD = 1e-12  # a spread below this (relative to the mean) is rounding noise


class PairMoments:
    """Running sums of x, x^2, c, c^2, x*c over antithetic pair means, for any array shape.

    ``add(x, c)`` takes per-path values (paths on axis 0, in pair order: path 2p and 2p+1).
    ``mean()`` returns the control-variate estimate when a control with known mean was given.
    ``scrambles=R > 0``: the pairs are randomised QMC points, pair p of scramble p mod R (pairs are
    added in order from pair 0), and ``stderr()`` is formed from the R scramble means.
    """

    def __init__(self, shape, block_pairs: int, scrambles: int = 0):
        self.block_pairs = block_pairs
        self.n = 0
        self.sums = np.zeros((5, *shape))
        self.central = np.zeros((4, *shape))  # mean, M2, M3, M4 of x, merged in block order
        self.n_merged = 0
        self.scrambles = int(scrambles)
        self.scramble_sums = np.zeros((self.scrambles, 2, *shape))  # x and c summed per scramble
        self.scramble_pairs = np.zeros(self.scrambles, dtype=np.int64)

    def add(self, x: np.ndarray, c: np.ndarray | None = None) -> None:
        shape = self.sums.shape[1:]
        x2, c2 = _as_rows(x), (None if c is None else _as_rows(c))
        c2 = x2 if c2 is None else c2
        if x2.T.flags.c_contiguous and c2.T.flags.c_contiguous:  # values x paths in memory
            sums = block_sums_t(x2.T, c2.T, self.block_pairs)
        else:
            sums = block_sums(x2, c2, self.block_pairs)
        scr = None
        if self.scrambles:
            scr = scramble_block_sums(x2, c2, self.block_pairs, self.n, self.scrambles)
            scr = scr.reshape(scr.shape[0], self.scrambles, 2, *shape)
        self.add_block_sums(sums.reshape(sums.shape[0], 8, *shape), x.shape[0] // 2, scr)

    def add_block_sums(self, block_sums: np.ndarray, n_pairs: int, scramble_sums: np.ndarray | None = None) -> None:
        """Add per-block sums (blocks x 8 x shape: the 5 sums, then the block's central sums of
        x of order 2, 3, 4) in block order; ``n_pairs`` pairs in all, whole blocks but the last.
        With scrambles, ``scramble_sums`` (blocks x R x 2 x shape: x and c per scramble) too."""
        n_blocks = block_sums.shape[0]
        if self.scrambles:
            if scramble_sums is None or scramble_sums.shape[:2] != (n_blocks, self.scrambles):
                raise ValueError(f"randomised QMC moments need the sums of each of the {self.scrambles} scrambles")
            for blk in range(n_blocks):
                self.scramble_sums += scramble_sums[blk]
            first = self.n
            self.scramble_pairs += _pairs_per_scramble(first, first + n_pairs, self.scrambles)
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
        if self.scrambles:
            return self._scramble_stderr(control_mean, vc, cov)
        if control_mean is None:
            return np.sqrt(vx / n)
        r2 = np.divide(cov * cov, vc, out=np.zeros_like(cov), where=vc > 0)
        return np.sqrt(np.maximum(vx - r2, 0.0) / n)

    def _scramble_stderr(self, control_mean, vc, cov) -> np.ndarray:
        """The stderr of the mean from the spread of the scramble means (see the module's docstring)."""
        ns = self.scramble_pairs
        used = ns > 0
        r_eff = int(used.sum())
        shape = self.sums.shape[1:]
        if r_eff < 2:
            return np.full(shape, np.nan)
        k = (slice(None),) + (None,) * len(shape)
        with np.errstate(over="ignore", invalid="ignore"):
            xs = self.scramble_sums[used, 0] / ns[used][k]
            y = xs
            if control_mean is not None:
                beta = np.divide(cov, vc, out=np.zeros_like(cov), where=vc > 0)
                y = xs - beta * (self.scramble_sums[used, 1] / ns[used][k] - control_mean)
            w = (ns[used] / ns.sum())[k]
            y_bar = (w * y).sum(axis=0)
            var = r_eff / (r_eff - 1) * (w * w * (y - y_bar) ** 2).sum(axis=0)
        return np.sqrt(var)

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
            elif self.scrambles and n < 2 * self.scrambles:
                out[idx] = (f"{2 * n} paths: with {self.scrambles} scrambles at least {4 * self.scrambles} "
                            "are needed for a standard error")
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


def _pairs_per_scramble(first: int, end: int, scrambles: int) -> np.ndarray:
    """How many of pairs first..end-1 belong to each scramble (pair p: scramble p mod R)."""
    s = np.arange(scrambles)
    return np.maximum((end - 1 - s) // scrambles - (first - 1 - s) // scrambles, 0)


def _as_rows(a: np.ndarray) -> np.ndarray:
    """``a`` as (paths, values) float64, without a copy when it is already 2-D (any layout)."""
    a = np.asarray(a, dtype=np.float64)
    return a if a.ndim == 2 else np.ascontiguousarray(a).reshape(a.shape[0], -1)


@njit(cache=True, nogil=True)
def block_sums(x, c, block_pairs):
    """Per block of ``block_pairs`` antithetic pairs (paths 2p, 2p+1 on axis 0 of ``x`` and ``c``):
    the sums of x, x^2, c, c^2, x*c over pair means, then the central sums of x of order 2, 3, 4
    about the block's mean, as :meth:`PairMoments.add_block_sums` takes them."""
    n_pairs, n = x.shape[0] // 2, x.shape[1]
    n_blocks = (n_pairs + block_pairs - 1) // block_pairs
    out = np.zeros((n_blocks, 8, n))
    px = np.empty(n)
    pc = np.empty(n)
    for b in range(n_blocks):
        p0 = b * block_pairs
        p1 = min(n_pairs, p0 + block_pairs)
        o = out[b]
        for p in range(p0, p1):
            for k in range(n):
                px[k] = 0.5 * (x[2 * p, k] + x[2 * p + 1, k])
                pc[k] = 0.5 * (c[2 * p, k] + c[2 * p + 1, k])
            for k in range(n):
                o[0, k] += px[k]
                o[1, k] += px[k] * px[k]
                o[2, k] += pc[k]
                o[3, k] += pc[k] * pc[k]
                o[4, k] += px[k] * pc[k]
        for k in range(n):
            px[k] = o[0, k] / (p1 - p0)  # the block's mean, as block_sums_t forms it
        for p in range(p0, p1):
            for k in range(n):
                d = 0.5 * (x[2 * p, k] + x[2 * p + 1, k]) - px[k]
                d2 = d * d
                o[5, k] += d2
                o[6, k] += d2 * d
                o[7, k] += d2 * d2
    return out


@njit(cache=True, nogil=True)
def block_sums_t(x_t, c_t, block_pairs):
    """:func:`block_sums` of values laid out values x paths."""
    n, n_pairs = x_t.shape[0], x_t.shape[1] // 2
    n_blocks = (n_pairs + block_pairs - 1) // block_pairs
    out = np.zeros((n_blocks, 8, n))
    for k in range(n):
        xk, ck = x_t[k], c_t[k]
        for b in range(n_blocks):
            p0 = b * block_pairs
            p1 = min(n_pairs, p0 + block_pairs)
            s0 = s1 = s2 = s3 = s4 = 0.0
            for p in range(p0, p1):
                px = 0.5 * (xk[2 * p] + xk[2 * p + 1])
                pc = 0.5 * (ck[2 * p] + ck[2 * p + 1])
                s0 += px
                s1 += px * px
                s2 += pc
                s3 += pc * pc
                s4 += px * pc
            mean = s0 / (p1 - p0)
            m2 = m3 = m4 = 0.0
            for p in range(p0, p1):
                d = 0.5 * (xk[2 * p] + xk[2 * p + 1]) - mean
                d2 = d * d
                m2 += d2
                m3 += d2 * d
                m4 += d2 * d2
            o = out[b]
            o[0, k], o[1, k], o[2, k], o[3, k], o[4, k] = s0, s1, s2, s3, s4
            o[5, k], o[6, k], o[7, k] = m2, m3, m4
    return out


@njit(cache=True, nogil=True)
def scramble_block_sums(x, c, block_pairs, first_pair, scrambles):
    """Per block of ``block_pairs`` pairs (as :func:`block_sums`), the sums of the pair means of x
    and of c per scramble (pair ``first_pair + p``: scramble (first_pair + p) mod R)."""
    n_pairs, n = x.shape[0] // 2, x.shape[1]
    n_blocks = (n_pairs + block_pairs - 1) // block_pairs
    out = np.zeros((n_blocks, scrambles, 2, n))
    for b in range(n_blocks):
        for p in range(b * block_pairs, min(n_pairs, (b + 1) * block_pairs)):
            o = out[b, (first_pair + p) % scrambles]
            for k in range(n):
                o[0, k] += 0.5 * (x[2 * p, k] + x[2 * p + 1, k])
                o[1, k] += 0.5 * (c[2 * p, k] + c[2 * p + 1, k])
    return out
