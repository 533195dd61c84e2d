"""A plain, vectorised NumPy implementation of the engine's model: the baseline the kernel is
compared against, and an independent statistical check of ``engine.mc.kernel.simulate_chunk``.

It reads the same inputs (``engine.mc.simulation.build_inputs``: per-day BTC drift and vol, hashrate
shift, log marginal cost; scalar parameters; initial state) and simulates the same dynamics:

* three correlated daily shocks (BTC, hashrate, fee) from ``numpy.random.Generator``, in
  antithetic pairs (paths ``j`` and ``n + j`` of a chunk get ``+z`` and ``-z``);
* Bernoulli jumps per pair and factor with daily probability ``threshold / 2^21`` (drawn as a
  binomial count and a uniformly chosen subset of pairs, which has the same law), normal log sizes
  ``mean +/- std * z`` for the two members of the pair;
* log BTC, log hashrate (growth + feedback drift refreshed every 7 days from the hashprice EMA),
  mean-reverting log fee; fluid blocks ``H * 86400 / (D * 2^32)`` a day;
* retargets when the epoch's blocks reach 2016 and halvings, at their exact fractional times within
  the day (a vectorised piecewise step on the subset of paths with an event, repeated while some
  path still has another event that day), with the clamped 2016-block timespan rule;
* the daily index (hashprice, USD/PH/day), its EMA, and window averages per path, reduced to the
  mean and standard error over antithetic pair means (raw, and with the per-path BTC window average
  as a control variate whose mean is the known forward, as ``SimulationRun.window_mean`` does).

Bookkeeping is lazy where it can be: a path's height ``h`` is the only block counter advanced every
day; the epoch's block count is ``h - epoch start``; epoch seconds are an offset plus 86,400 * day,
so paths without an event cost two passes for the block logic. Everything is float64; numbers are
not bit-identical to the kernel (different RNG) but have the same distribution.

>>> from curves.market import Market
>>> from engine.mc.model import ModelParams
>>> w, _, n_days = monthly_windows(Market.default().asof, 1)
>>> r = simulate_numpy(Market.default(), ModelParams.default(), n_days=n_days, n_paths=2_000,
...                    windows=w, seed=1)
>>> r.hashprice_mean.shape, bool(r.hashprice_stderr[0] > 0)
((1,), True)
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from curves import protocol
from curves.market import Market
from curves.units import SATS_PER_BTC, SECONDS_PER_DAY, TWO_POW_32
from engine.mc import kernel as K
from engine.mc import rng as krng
from engine.mc.model import ModelParams
from engine.mc.simulation import build_inputs, window_checkpoints

DAY_S = float(SECONDS_PER_DAY)
RATE_K = SECONDS_PER_DAY / TWO_POW_32  # blocks per day per (H/s / difficulty)
HV_K = SECONDS_PER_DAY * 1e15 / TWO_POW_32  # BTC per PH-day per (BTC per block / difficulty)
RETARGET_BLOCKS = float(protocol.RETARGET_BLOCKS)
HALVING_BLOCKS = float(protocol.HALVING_INTERVAL_BLOCKS)


def monthly_windows(asof: dt.date, n_months: int):
    """Calendar-month windows after ``asof`` as inclusive day indices (day 0 = as-of + 1).

    Returns (windows, month labels 'YYYY-MM', n_days). The first window starts the day after the
    as-of date and ends at the end of that month; for an as-of at a month end, n_months windows
    are whole calendar months ending ``n_months`` months later (2026-01-31 + 36 -> 1,096 days).
    """
    windows, labels = [], []
    start = asof + dt.timedelta(days=1)
    for _ in range(n_months):
        last = calendar.monthrange(start.year, start.month)[1]
        end = dt.date(start.year, start.month, last)
        windows.append(((start - asof).days - 1, (end - asof).days - 1))
        labels.append(f"{start.year:04d}-{start.month:02d}")
        start = end + dt.timedelta(days=1)
    return windows, labels, windows[-1][1] + 1


def _subsidy_btc(height_after: np.ndarray) -> np.ndarray:
    """Vectorised ``protocol.subsidy_sats(height) / SATS_PER_BTC`` for float heights."""
    halvings = height_after.astype(np.int64) // protocol.HALVING_INTERVAL_BLOCKS
    sats = np.right_shift(np.int64(protocol.INITIAL_SUBSIDY_SATS), np.minimum(halvings, 63))
    return np.where(halvings >= 64, 0, sats) / SATS_PER_BTC


@dataclass
class NumpyResult:
    """Window estimates over antithetic pair means; ``*_cv`` use BTC as control variate."""

    windows: list[tuple[int, int]]
    n_paths: int
    hashprice_mean: np.ndarray
    hashprice_stderr: np.ndarray
    hashprice_mean_cv: np.ndarray
    hashprice_stderr_cv: np.ndarray
    btc_mean: np.ndarray
    btc_stderr: np.ndarray
    seconds: float


class _PairSums:
    """Sums of x, x^2, c, c^2, x*c over pair means (per window); same estimators as the engine."""

    def __init__(self, n_win: int):
        self.s = np.zeros((5, n_win))
        self.n = 0

    def add(self, x: np.ndarray, c: np.ndarray) -> None:  # (n_win, n_pairs) each
        self.s[0] += x.sum(axis=1)
        self.s[1] += np.einsum("wp,wp->w", x, x)
        self.s[2] += c.sum(axis=1)
        self.s[3] += np.einsum("wp,wp->w", c, c)
        self.s[4] += np.einsum("wp,wp->w", x, c)
        self.n += x.shape[1]

    def stats(self, control_mean: np.ndarray):
        n = self.n
        k = n / max(n - 1, 1)
        mx, mc = self.s[0] / n, self.s[2] / n
        vx = np.maximum(self.s[1] / n - mx * mx, 0.0) * k
        vc = np.maximum(self.s[3] / n - mc * mc, 0.0) * k
        cov = (self.s[4] / n - mx * mc) * k
        beta = np.divide(cov, vc, out=np.zeros_like(cov), where=vc > 0)
        r2 = np.divide(cov * cov, vc, out=np.zeros_like(cov), where=vc > 0)
        return (mx, np.sqrt(vx / n), mx - beta * (mc - control_mean),
                np.sqrt(np.maximum(vx - r2, 0.0) / n), mc, np.sqrt(vc / n))


def _simulate_chunk(gen, n, steps, par, init, cp_days, out_cps):
    """Simulate ``n`` antithetic pairs (2n paths) over all days; fills out_cps[n_cp, 2, 2n] with
    running sums of (hashprice, BTC) per path at the checkpoint days."""
    n_days = steps.shape[0]
    m = 2 * n
    phi = 1.0 - par[K.P_F_KAPPA]  # fee: x = log fee - level; x <- (1 - kappa) x + shock
    f_bar = math.exp(par[K.P_F_LEVEL])
    hvk_f = HV_K * f_bar  # hashvalue = HV_K (sub + F) / D = hvk_f / D * (e^x + sub / f_bar)
    ew = par[K.P_EMA_WEIGHT]
    growth, feedback = par[K.P_H_GROWTH], par[K.P_H_FEEDBACK]
    refresh = max(1, int(par[K.P_FEEDBACK_EVERY_DAYS]))
    jumps = [(f, par[thr] / krng.JUMP_FLAG_SCALE, par[mu], par[sd]) for f, thr, mu, sd in (
        (0, K.P_JS_THRESHOLD, K.P_JS_MEAN, K.P_JS_STD),
        (1, K.P_JH_THRESHOLD, K.P_JH_MEAN, K.P_JH_STD),
        (2, K.P_JF_THRESHOLD, K.P_JF_MEAN, K.P_JF_STD)) if par[thr] > 0]

    # shock loadings: E = A @ Z with A lower triangular (row 0 gets the day's BTC vol)
    a = np.zeros((3, 3))
    a[1, 0], a[1, 1] = par[K.P_H_VOL] * par[K.P_L10], par[K.P_H_VOL] * par[K.P_L11]
    a[2, 0], a[2, 1], a[2, 2] = (par[K.P_F_VOL] * par[K.P_L20], par[K.P_F_VOL] * par[K.P_L21],
                                 par[K.P_F_VOL] * par[K.P_L22])

    z = np.empty((3, n))
    e = np.empty((3, n))
    lg = np.empty((3, m))  # log BTC, log hashrate, fee deviation x
    lg[0] = init[K.I_LOG_BTC]
    lg[1] = init[K.I_LOG_HASHRATE_HS]
    if init[K.I_LOG_HASHRATE_SD] > 0:  # today's hashrate drawn per pair, +/- (antithetic)
        z0 = gen.standard_normal(n) * init[K.I_LOG_HASHRATE_SD]
        lg[1, :n] += z0
        lg[1, n:] -= z0
    lg[2] = init[K.I_LOG_FEE] - par[K.P_F_LEVEL]
    ex = np.empty((3, m))  # BTC, hashrate, e^x
    btc, hashrate, fee_e = ex[0], ex[1], ex[2]
    d0 = init[K.I_DIFFICULTY]
    h0 = init[K.I_HEIGHT]
    d = np.full(m, d0)
    rk = np.full(m, RATE_K / d0)
    hvk = np.full(m, hvk_f / d0)
    sub_f = np.full(m, protocol.subsidy_sats(int(h0) + 1) / SATS_PER_BTC / f_bar)
    h = np.full(m, h0)
    ret_at = np.full(m, h0 + RETARGET_BLOCKS - init[K.I_EPOCH_BLOCKS])
    halv_at = np.full(m, protocol.next_halving_height(int(h0)) - 1.0)
    nxt_at = np.minimum(ret_at, halv_at)
    s_off = np.full(m, init[K.I_EPOCH_SECONDS])  # epoch seconds at the start of day t: s_off + DAY_S t
    t_first = np.zeros(m)
    ema = np.full(m, init[K.I_HASHPRICE_EMA])
    h_out = np.zeros(m)  # log hashrate offline after a jump, recovering
    h_drift = np.full(m, growth + feedback * (math.log(init[K.I_HASHPRICE_EMA]) - steps[0, K.S_LOG_COST]))
    rate = np.empty(m)
    hp = np.empty(m)
    tmp = np.empty(m)
    ev = np.empty(m, dtype=bool)
    cum = np.zeros((2, m))  # running sums of hashprice and BTC
    n_cp = cp_days.size
    next_cp = 0
    if n_cp and cp_days[0] < 0:
        out_cps[0] = 0.0
        next_cp = 1

    for t in range(n_days):
        # shocks: 3 normals per pair, correlated and scaled in one 3x3 product; antithetic +/-
        gen.standard_normal(out=z)
        a[0, 0] = steps[t, K.S_BTC_VOL]
        np.matmul(a, z, out=e)
        lg[2] *= phi
        lg[:, :n] += e
        lg[:, n:] -= e
        lg[0] += steps[t, K.S_BTC_DRIFT]
        lg[1] += h_drift
        if steps[t, K.S_HASHRATE_SHIFT] != 0.0:
            lg[1] += steps[t, K.S_HASHRATE_SHIFT]
        for f, p, mu, sd in jumps:  # one flag per pair; sizes mu +/- sd z within the pair
            k = gen.binomial(n, p)
            if k:
                j = gen.choice(n, size=k, replace=False)
                zj = sd * gen.standard_normal(k)
                target = h_out if f == 1 else lg[f]  # hashrate jumps go offline, then recover
                target[j] += mu + zj
                target[n + j] += mu - zj
        lg[1] += h_out
        np.exp(lg, out=ex)
        lg[1] -= h_out
        h_out *= 1.0 - par[K.P_JH_RECOVERY]

        # blocks; paths crossing a retarget or halving today are redone piecewise below
        np.multiply(hashrate, rk, out=rate)
        h += rate
        np.greater_equal(h, nxt_at, out=ev)
        np.add(fee_e, sub_f, out=hp)
        hp *= hvk
        hp *= btc
        idx = np.flatnonzero(ev)
        if idx.size:
            _events(idx, t, btc, hashrate, fee_e, rate, h, d, rk, hvk, sub_f, ret_at, halv_at,
                    nxt_at, s_off, t_first, hp, hvk_f, f_bar)

        # fixings, EMA, checkpoints, feedback drift
        cum[0] += hp
        cum[1] += btc
        np.subtract(hp, ema, out=tmp)
        tmp *= ew
        ema += tmp
        while next_cp < n_cp and cp_days[next_cp] == t:
            out_cps[next_cp] = cum
            next_cp += 1
        if (t + 1) % refresh == 0:
            np.log(ema, out=h_drift)
            h_drift *= feedback
            h_drift += growth - feedback * steps[t, K.S_LOG_COST]


def _events(idx, t, btc, hashrate, fee_e, rate, h, d, rk, hvk, sub_f, ret_at, halv_at, nxt_at,
            s_off, t_first, hp, hvk_f, f_bar):
    """Exact piecewise day for the paths ``idx``: the same steps as the kernel's
    ``_advance_with_events``, vectorised over the paths that still have time left in the day."""
    k = idx.size
    hh = h[idx] - rate[idx]  # height at the start of the day
    hr = hashrate[idx]
    fe = fee_e[idx]
    dd = d[idx]
    sf = sub_f[idx]
    ra = ret_at[idx]
    ha = halv_at[idx]
    s = s_off[idx] + DAY_S * t
    tf = t_first[idx]
    rem = np.ones(k)
    hv_acc = np.zeros(k)
    a = np.arange(k)
    while a.size:
        da = dd[a]
        r = hr[a] * RATE_K / da
        hha = hh[a]
        to_ret = ra[a] - hha
        to_halv = ha[a] - hha
        nxt = np.minimum(to_ret, to_halv)
        need = nxt / r
        rm = rem[a]
        fin = need >= rm
        step = np.where(fin, rm, need)
        hh[a] = hha + np.where(fin, r * rm, nxt)
        s[a] += step * DAY_S
        hv_acc[a] += (hvk_f / da) * (fe[a] + sf[a]) * step
        rem[a] = np.where(fin, 0.0, rm - need)
        go = ~fin
        g = a[go]
        if not g.size:
            break
        to_ret, to_halv = to_ret[go], to_halv[go]
        gh = g[to_halv <= to_ret]
        if gh.size:
            hh[gh] = ha[gh]
            sf[gh] = _subsidy_btc(ha[gh] + 1.0) / f_bar
            ha[gh] += HALVING_BLOCKS
        gr = g[to_ret <= to_halv]
        if gr.size:
            span = np.clip(s[gr] - tf[gr], protocol.MIN_TIMESPAN_S, protocol.MAX_TIMESPAN_S)
            new_d = dd[gr] * (protocol.TARGET_TIMESPAN_S / span)
            dd[gr] = new_d
            ra[gr] = hh[gr] + RETARGET_BLOCKS
            s[gr] = 0.0
            tf[gr] = DAY_S * new_d / (hr[gr] * RATE_K)
        a = g[rem[g] > 1e-15]
    h[idx] = hh
    d[idx] = dd
    rk[idx] = RATE_K / dd
    hvk[idx] = hvk_f / dd
    sub_f[idx] = sf
    ret_at[idx] = ra
    halv_at[idx] = ha
    nxt_at[idx] = np.minimum(ra, ha)
    s_off[idx] = s - DAY_S * (t + 1)
    t_first[idx] = tf
    hp[idx] = hv_acc * btc[idx]


def simulate_numpy(market: Market, model: ModelParams, *, n_days: int, n_paths: int,
                   windows: Sequence[tuple[int, int]], seed: int = 42, chunk_pairs: int = 8192,
                   hashrate_shift_per_day: np.ndarray | None = None) -> NumpyResult:
    """Window averages of hashprice (USD/PH/day) and BTC over ``n_paths`` (rounded up to pairs).

    Paths are simulated in chunks of ``chunk_pairs`` pairs (the working set then stays in cache);
    one ``np.random.default_rng(seed)`` feeds all chunks in order.
    """
    _, fwd, steps, par, init = build_inputs(market, model, n_days, hashrate_shift_per_day)
    windows = list(windows)
    cp, cp0, cp1, wlen = window_checkpoints(windows, n_days)
    control = np.array([fwd[s:e + 1].mean() for s, e in windows])
    n_pairs = (n_paths + 1) // 2
    gen = np.random.default_rng(seed)
    sums = _PairSums(len(windows))
    t0 = time.perf_counter()
    for start in range(0, n_pairs, chunk_pairs):
        n = min(chunk_pairs, n_pairs - start)
        cps = np.empty((cp.size, 2, 2 * n))
        _simulate_chunk(gen, n, steps, par, init, cp, cps)
        win = (cps[cp1] - cps[cp0]) / wlen[:, None, None]  # (n_win, 2, 2n)
        pair = 0.5 * (win[:, :, :n] + win[:, :, n:])
        sums.add(pair[:, 0], pair[:, 1])
    seconds = time.perf_counter() - t0
    mx, sx, mcv, scv, mb, sb = sums.stats(control)
    return NumpyResult(windows, 2 * n_pairs, mx, sx, mcv, scv, mb, sb, seconds)
