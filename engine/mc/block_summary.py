"""What a block of antithetic pairs leaves once simulated: per-path window averages and their
pair-mean moments, per-path epoch and reward fixings, per-epoch sums and histograms; and, on the
days that ask for them, histograms of the daily index and difficulty. Out of the day loop:
:func:`summarise_block` is compiled on its own and called once per block."""

import numpy as np
from numba import njit

from engine.mc import histogram, rng
from engine.mc.layout import (
    E_COUNT,
    E_COUNT2,
    E_DAY,
    E_DAY2,
    E_REL,
    E_REL2,
    E_REL_COUNT,
    EF_DIFFICULTY,
    EF_START_DAY,
    H_DIFFICULTY,
    H_INDEX_USD,
    M_C,
    M_CC,
    M_X,
    M_X2C,
    M_X3C,
    M_X4C,
    M_XC,
    M_XX,
    N_QUANTITIES,
    Q_BTC_USD,
    Q_DIFFICULTY,
    Q_HASHPRICE_USD,
    R_MAX,
    R_MIN,
)

_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
bin_index = njit(inline="always")(histogram.bin_index.py_func)  # compiled into each caller


@njit(inline="always")
def window_values(cps, n, win_cp0, win_cp1, win_len, row0, win_out):
    """Per-path window averages of a block's ``n`` pairs into rows row0.. (path 2j, then 2j + 1)."""
    for w in range(win_cp0.size):
        c0 = win_cp0[w]
        c1 = win_cp1[w]
        inv = 1.0 / win_len[w]
        for q in range(N_QUANTITIES):
            for j in range(n):
                win_out[row0 + 2 * j, w, q] = (cps[c1, q, j] - cps[c0, q, j]) * inv
                win_out[row0 + 2 * j + 1, w, q] = (cps[c1, q, n + j] - cps[c0, q, n + j]) * inv


@njit(inline="always")
def pair_window_mean(cps, q, c0, c1, inv, n, j):
    """Pair j's mean of quantity q averaged over the window between checkpoints c0 and c1."""
    return 0.5 * inv * (cps[c1, q, j] - cps[c0, q, j] + cps[c1, q, n + j] - cps[c0, q, n + j])


@njit(inline="always")
def window_moments(cps, n, win_cp0, win_cp1, win_len, mom):
    """Pair-mean sums of the window averages (BTC's average as the control) and central sums of
    x about the block mean, into ``mom[N_MOMENTS, n_windows, N_QUANTITIES]``."""
    for w in range(win_cp0.size):
        c0 = win_cp0[w]
        c1 = win_cp1[w]
        inv = 1.0 / win_len[w]
        for q in range(N_QUANTITIES):
            s_x = 0.0
            s_xx = 0.0
            s_c = 0.0
            s_cc = 0.0
            s_xc = 0.0
            for j in range(n):
                cb = pair_window_mean(cps, Q_BTC_USD, c0, c1, inv, n, j)
                x = pair_window_mean(cps, q, c0, c1, inv, n, j)
                s_x += x
                s_xx += x * x
                s_c += cb
                s_cc += cb * cb
                s_xc += x * cb
            mq = s_x / n
            s2 = 0.0
            s3 = 0.0
            s4 = 0.0
            for j in range(n):
                dx = pair_window_mean(cps, q, c0, c1, inv, n, j) - mq
                dx2 = dx * dx
                s2 += dx2
                s3 += dx2 * dx
                s4 += dx2 * dx2
            mom[M_X, w, q] = s_x
            mom[M_XX, w, q] = s_xx
            mom[M_C, w, q] = s_c
            mom[M_CC, w, q] = s_cc
            mom[M_XC, w, q] = s_xc
            mom[M_X2C, w, q] = s2
            mom[M_X3C, w, q] = s3
            mom[M_X4C, w, q] = s4


@njit(inline="always")
def path_fixings(n, row0, ep_req, epoch_idx, ep_ratio, ep_day, d0, rw_val, ep_out, rw_out):
    """Per-path epoch fixings (difficulty, start day; NaN where not reached) and reward fixings."""
    for j in range(n):
        for s_ in range(2):
            i = j + s_ * n
            row = row0 + 2 * j + s_
            for r in range(ep_req.size):
                k = ep_req[r]
                if k < epoch_idx[i]:
                    ep_out[row, r, EF_DIFFICULTY] = ep_ratio[k, i] * d0
                    ep_out[row, r, EF_START_DAY] = ep_day[k, i]
                else:
                    ep_out[row, r, EF_DIFFICULTY] = np.nan
                    ep_out[row, r, EF_START_DAY] = np.nan
            for r in range(rw_val.shape[0]):
                rw_out[row, r] = rw_val[r, i]


@njit(inline="always")
def epoch_sums(n, epoch_idx, ep_ratio, ep_day, n_epoch_hist, epochs, hist, rng_):
    """Per-epoch pair sums (a ratio estimator's inputs) into ``epochs[n_epochs, N_EPOCH_SUMS]``;
    exact ranges and histogram counts of ln(D_k / D_0) into the lane's ``rng_`` and ``hist``."""
    n_epochs = ep_ratio.shape[0]
    k_end = 0
    for i in range(2 * n):
        k_end = max(k_end, min(epoch_idx[i], n_epochs))
    for k in range(k_end):
        s_x = 0.0
        s_y = 0.0
        s_yy = 0.0
        s_xy = 0.0
        s_xx = 0.0
        s_s = 0.0
        s_ss = 0.0
        lo = rng_[k, R_MIN]
        hi = rng_[k, R_MAX]
        for j in range(n):
            x = 0.0
            y = 0.0
            for i in (j, n + j):
                if k < epoch_idx[i]:
                    x += 1.0
                    y += ep_ratio[k, i] - 1.0
                    s = ep_day[k, i]
                    s_s += s
                    s_ss += s * s
                    lr = rng.log(ep_ratio[k, i])
                    lo = min(lo, lr)
                    hi = max(hi, lr)
                    if k < n_epoch_hist:
                        hist[k, bin_index(lr)] += 1
            s_x += x
            s_y += y
            s_yy += y * y
            s_xy += x * y
            s_xx += x * x
        epochs[k, E_COUNT] = s_x
        epochs[k, E_REL] = s_y
        epochs[k, E_REL2] = s_yy
        epochs[k, E_REL_COUNT] = s_xy
        epochs[k, E_COUNT2] = s_xx
        epochs[k, E_DAY] = s_s
        epochs[k, E_DAY2] = s_ss
        rng_[k, R_MIN] = lo
        rng_[k, R_MAX] = hi


@njit(cache=True, nogil=True)
def day_histograms(dq, m, log_index0, log_d0, hist, rng_):
    """Counts of ln(index / today's index) and ln(D / D_0) over a block's ``m`` paths on one day,
    into ``hist[N_DAY_HIST, N_BINS]`` with exact ranges in ``rng_[N_DAY_HIST, 2]``."""
    lo_p = rng_[H_INDEX_USD, R_MIN]
    hi_p = rng_[H_INDEX_USD, R_MAX]
    lo_d = rng_[H_DIFFICULTY, R_MIN]
    hi_d = rng_[H_DIFFICULTY, R_MAX]
    for i in range(m):
        xp = np.log(dq[Q_HASHPRICE_USD, i]) - log_index0
        xd = np.log(dq[Q_DIFFICULTY, i]) - log_d0
        hist[H_INDEX_USD, bin_index(xp)] += 1
        hist[H_DIFFICULTY, bin_index(xd)] += 1
        lo_p = min(lo_p, xp)
        hi_p = max(hi_p, xp)
        lo_d = min(lo_d, xd)
        hi_d = max(hi_d, xd)
    rng_[H_INDEX_USD, R_MIN] = lo_p
    rng_[H_INDEX_USD, R_MAX] = hi_p
    rng_[H_DIFFICULTY, R_MIN] = lo_d
    rng_[H_DIFFICULTY, R_MAX] = hi_d


@njit(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")
def summarise_block(cps, epoch_idx, ep_ratio, ep_day, rw_val, n, windows, d0, paths, mom, epoch_out):
    """Reduce a simulated block (what ``engine.mc.block.simulate_block`` returns) of ``n`` pairs.

    ``windows``: (checkpoint before, checkpoint at the end, length in days) per window;
    ``paths``: None, or (first row, requested epochs, window values, epoch values, rewards) for
    the per-path values; ``mom``: None, or the block's window moments; ``epoch_out``: (epochs
    histogrammed, the block's epoch sums, the lane's epoch histogram and ranges). None skips
    that code when compiling."""
    win_cp0, win_cp1, win_len = windows
    if paths is not None:
        row0, ep_req, win_out, ep_out, rw_out = paths
        window_values(cps, n, win_cp0, win_cp1, win_len, row0, win_out)
        path_fixings(n, row0, ep_req, epoch_idx, ep_ratio, ep_day, d0, rw_val, ep_out, rw_out)
    if mom is not None:
        window_moments(cps, n, win_cp0, win_cp1, win_len, mom)
    n_epoch_hist, epochs, hist, rng_ = epoch_out
    epoch_sums(n, epoch_idx, ep_ratio, ep_day, n_epoch_hist, epochs, hist, rng_)


@njit(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")
def scramble_sums(cps, n, p0, scrambles, windows, out):
    """Sums of the pair means of the window averages (x) and of the BTC window average (the
    control c) per scramble (pair p in scramble p mod R) into ``out[R, 2, n_windows, N_QUANTITIES]``
    (randomised QMC: the spread of the scramble means gives the stderr)."""
    win_cp0, win_cp1, win_len = windows
    for w in range(win_cp0.size):
        c0 = win_cp0[w]
        c1 = win_cp1[w]
        inv = 1.0 / win_len[w]
        for q in range(N_QUANTITIES):
            for j in range(n):
                s = (p0 + j) % scrambles
                cb = pair_window_mean(cps, Q_BTC_USD, c0, c1, inv, n, j)
                x = pair_window_mean(cps, q, c0, c1, inv, n, j)
                out[s, 0, w, q] += x
                out[s, 1, w, q] += cb
