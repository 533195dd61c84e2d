"""The fused Monte Carlo kernel: daily steps of BTC, hashrate and fees, exact retargets and
halvings, reduced on the fly to per-path window averages ("fixings") and per-day moments.

Layout: ``prange`` over blocks of antithetic pairs; inside a block, every pass over the
paths is a flat loop that LLVM vectorises (counter RNG, inverse-CDF normals, exp by 2^k * p).
Rare work (normal tails, jumps, retargets, halvings) runs in scalar fix-up passes.
Block results are reduced by the caller in block order, so sums never depend on threads.

Distributions: each retarget's difficulty (per epoch) and, on requested days, the daily index
and difficulty are counted on the fixed log-ratio grid of :mod:`engine.mc.histogram`. Counts are
integers, so they go to one histogram per *lane* (a lane is a sequence of blocks run by one
thread) and their totals are exact in any merge order; memory is lanes x histograms x bins.
"""

import numpy as np
from numba import njit, prange

from curves import protocol
from curves.units import SATS_PER_BTC, SECONDS_PER_DAY, TWO_POW_32
from engine.mc import rng
from engine.mc.histogram import N_BINS, bin_index

# per-day inputs: columns of ``steps``
S_BTC_DRIFT, S_BTC_VOL, S_HASHRATE_SHIFT, S_LOG_COST = 0, 1, 2, 3
N_STEP_INPUTS = 4
# scalar parameters: entries of ``par`` (per-day units)
(P_H_VOL, P_H_GROWTH, P_H_FEEDBACK, P_EMA_WEIGHT, P_F_KAPPA, P_F_LEVEL, P_F_VOL,
 P_L10, P_L11, P_L20, P_L21, P_L22,
 P_JS_THRESHOLD, P_JS_MEAN, P_JS_STD, P_JH_THRESHOLD, P_JH_MEAN, P_JH_STD,
 P_JF_THRESHOLD, P_JF_MEAN, P_JF_STD, P_FEEDBACK_EVERY_DAYS, P_JH_RECOVERY) = range(23)
N_PARAMS = 23
# initial state: entries of ``init``
(I_LOG_BTC, I_LOG_HASHRATE_HS, I_LOG_FEE, I_DIFFICULTY, I_HEIGHT, I_EPOCH_BLOCKS,
 I_EPOCH_SECONDS, I_HASHPRICE_EMA, I_LOG_HASHRATE_SD, I_INDEX_REF_USD) = range(10)
N_INIT = 10
# window quantities (averages per day over each window); D x blocks over blocks is the
# block-weighted difficulty
Q_HASHPRICE_USD, Q_HASHVALUE_BTC, Q_DIFFICULTY, Q_BTC_USD, Q_BLOCKS, Q_DIFF_X_BLOCKS = range(6)
N_QUANTITIES = 6
# per-path epoch fixings: difficulty and start day (fractional day index) of a requested epoch
EF_DIFFICULTY, EF_START_DAY = range(2)
N_EPOCH_FIXINGS = 2
# per-day moments of antithetic pair means
(D_HP, D_HP2, D_HV, D_HV2, D_BTC, D_BTC2, D_HP_BTC, D_DIFF) = range(8)
N_DAILY = 8
# window pair-mean moment sums: x, x^2, control c (window BTC average), c^2, x*c; then the
# block's central sums of x: (x - block mean)^2, ^3, ^4 (sample-quality checks, engine.mc.moments)
M_X, M_XX, M_C, M_CC, M_XC, M_X2C, M_X3C, M_X4C = range(8)
N_MOMENTS = 8
# per-epoch sums per block, antithetic pairs as the units: x = members of the pair that reach
# the epoch (0, 1 or 2), y = the sum over them of D_k / D_0 - 1; start time s = fractional day index
(E_COUNT, E_REL, E_REL2, E_REL_COUNT, E_COUNT2, E_DAY, E_DAY2) = range(7)
N_EPOCH_SUMS = 7  # sums of x, y, y^2, x*y, x^2, s, s^2
# per-day histograms: quantities, and the two ends of a histogram's exact range
H_INDEX_USD, H_DIFFICULTY = range(2)
N_DAY_HIST = 2
R_MIN, R_MAX = range(2)
# sample-path fields
(SP_HASHPRICE_USD, SP_BTC_USD, SP_DIFFICULTY, SP_HASHRATE_HS, SP_FEE_BTC_PER_BLOCK,
 SP_BLOCKS) = range(6)
N_SAMPLE_FIELDS = 6

_HV_K = SECONDS_PER_DAY * 1e15 / TWO_POW_32
REWARD_K = protocol.BLOCK_INTERVAL_S * 1e15 / TWO_POW_32  # BTC per PH/s per (subsidy / D) per block
_RATE_K = SECONDS_PER_DAY / TWO_POW_32
_FLAG_MASK = np.uint64((1 << rng.JUMP_FLAG_BITS) - 1)
_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
# the protocol's rules, compiled for the kernel (curves.protocol is plain Python)
_subsidy_sats = njit(cache=True)(protocol.subsidy_sats)
_next_halving_height = njit(cache=True)(protocol.next_halving_height)
_retarget_difficulty = njit(cache=True)(protocol.retarget_difficulty)


@njit(cache=True, fastmath=_FASTMATH)
def _fix_rewards(i, h0, h1, c0, slope, rw_target, rw_base, rw_val, rw_lo, n_armed):
    """Record the reward fixings of path ``i`` whose target height falls in (h0, h1], a stretch
    of blocks with one subsidy / difficulty ``slope`` and cumulative sum ``c0`` at ``h0``."""
    for r in range(rw_lo[i], n_armed):
        if np.isnan(rw_val[r, i]) and rw_target[r, i] <= h1:
            rw_val[r, i] = REWARD_K * (c0 + (rw_target[r, i] - h0) * slope - rw_base[r, i])
    while rw_lo[i] < n_armed and not np.isnan(rw_val[rw_lo[i], i]):
        rw_lo[i] += 1


@njit(cache=True, fastmath=_FASTMATH)
def _advance_with_events(i, t, hashrate, btc, fee, d, h, b, s_ep, t_first, sub, halv_at,
                         epoch_idx, ep_ratio, ep_day, d0, out_day, cum_sd, rw_target, rw_base, rw_val,
                         rw_lo, n_armed):
    """Exact piecewise day for one path: retargets and halvings at their fractional times."""
    rem = 1.0
    hv_acc = 0.0
    d_acc = 0.0
    dxb_acc = 0.0
    blocks_acc = 0.0
    while rem > 1e-15:
        rate = hashrate[i] * _RATE_K / d[i]
        to_ret = protocol.RETARGET_BLOCKS - b[i]
        to_halv = halv_at[i] - h[i]
        nxt = min(to_ret, to_halv)
        need = nxt / rate
        hv_now = _HV_K * (sub[i] + fee[i]) / d[i]
        slope = sub[i] / d[i]
        step = rate * rem if need >= rem else nxt
        if rw_lo[i] < n_armed:
            _fix_rewards(i, h[i], h[i] + step, cum_sd[i], slope, rw_target, rw_base, rw_val, rw_lo, n_armed)
        cum_sd[i] += step * slope
        dxb_acc += d[i] * step
        if need >= rem:
            b[i] += rate * rem
            h[i] += rate * rem
            s_ep[i] += rem * SECONDS_PER_DAY
            hv_acc += hv_now * rem
            d_acc += d[i] * rem
            blocks_acc += rate * rem
            rem = 0.0
        else:
            b[i] += nxt
            h[i] += nxt
            s_ep[i] += need * SECONDS_PER_DAY
            hv_acc += hv_now * need
            d_acc += d[i] * need
            blocks_acc += nxt
            rem -= need
            if to_halv <= to_ret:
                h[i] = halv_at[i]
                sub[i] = _subsidy_sats(np.int64(halv_at[i]) + 1) / SATS_PER_BTC
                halv_at[i] += protocol.HALVING_INTERVAL_BLOCKS
            if to_ret <= to_halv:
                new_d = _retarget_difficulty(d[i], s_ep[i] - t_first[i])
                k = epoch_idx[i]
                if k < ep_ratio.shape[0]:
                    ep_ratio[k, i] = new_d / d0
                    ep_day[k, i] = t + 1.0 - rem  # the new epoch starts 1 - rem into day t
                epoch_idx[i] = k + 1
                d[i] = new_d
                b[i] = 0.0
                s_ep[i] = 0.0
                t_first[i] = SECONDS_PER_DAY / (hashrate[i] * _RATE_K / new_d)
    out_day[Q_HASHVALUE_BTC] = hv_acc
    out_day[Q_HASHPRICE_USD] = hv_acc * btc[i]
    out_day[Q_DIFFICULTY] = d_acc
    out_day[Q_BLOCKS] = blocks_acc
    out_day[Q_DIFF_X_BLOCKS] = dxb_acc


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def simulate_chunk(seed, pair_start, n_pairs, block_pairs, steps, par, init, cp_days,
                   win_cp0, win_cp1, win_len, n_samples, n_epochs, store_paths, n_epoch_hist, day_slot,
                   n_lanes, ep_req, rw_day, rw_blocks, window_moments):
    """Simulate pairs [pair_start, pair_start + n_pairs); see ``engine.mc.simulation`` for the driver.

    Epoch k is the k-th retarget after the start (k = 0 the next one); only the first
    ``n_epochs`` are recorded, and the first ``n_epoch_hist`` of them histogrammed. On day t
    with ``day_slot[t] = j >= 0`` the daily index and difficulty go to day histogram j.
    ``n_lanes`` (the thread count, say) only sets how work is split, never the results.
    Per-path fixings (when ``store_paths``): epochs ``ep_req`` (their difficulty and start day;
    NaN where a path has not reached one) and rewards: for each r, the subsidy 1 PH/s earns over
    the ``rw_blocks[r]`` blocks after the close of day ``rw_day[r]`` (-1: from the start; sorted
    by day), NaN where a path has not mined them all. Without ``window_moments`` (and with
    ``store_paths``) the window moments are left at zero and only the per-path values are made.

    Returns (window_values[2*n_pairs or 0, n_windows, N_QUANTITIES] (per path, if ``store_paths``),
    moments[n_blocks, N_MOMENTS, n_windows, N_QUANTITIES] (pair-mean sums, BTC as control;
    central sums of x about the block mean),
    daily[n_blocks, n_days, N_DAILY],
    epochs[n_blocks, n_epochs, N_EPOCH_SUMS], samples[n_samples, n_days, N_SAMPLE_FIELDS],
    epoch_hist[n_lanes, n_epoch_hist, N_BINS] of ln(D_k / D_0), epoch_range[n_lanes, n_epochs, 2],
    day_hist[n_lanes, n_slots, N_DAY_HIST, N_BINS] of ln(index / today's index) and ln(D / D_0),
    day_range[n_lanes, n_slots, N_DAY_HIST, 2], epoch_values[paths, len(ep_req), N_EPOCH_FIXINGS],
    rewards[paths, len(rw_day)]). Path 2p is the "+" member of pair p and 2p+1
    its antithetic twin. Histograms count int32 per lane: at most 2^31 - 1 paths per chunk.
    """
    n_days = steps.shape[0]
    n_cp = cp_days.size
    n_win = win_cp0.size
    n_blocks = (n_pairs + block_pairs - 1) // block_pairs
    n_rows = 2 * n_pairs if store_paths else 0
    win_out = np.empty((n_rows, n_win, N_QUANTITIES))
    n_req = ep_req.size
    n_rw = rw_day.size
    ep_out = np.empty((n_rows, n_req, N_EPOCH_FIXINGS))
    rw_out = np.empty((n_rows, n_rw))
    moments = np.zeros((n_blocks, N_MOMENTS, n_win, N_QUANTITIES))
    daily = np.zeros((n_blocks, n_days, N_DAILY))
    epochs = np.zeros((n_blocks, n_epochs, N_EPOCH_SUMS))
    samples = np.zeros((n_samples, n_days, N_SAMPLE_FIELDS))
    n_lanes = max(1, min(n_lanes, n_blocks))
    n_slots = 0
    for t in range(n_days):
        n_slots = max(n_slots, day_slot[t] + 1)
    epoch_hist = np.zeros((n_lanes, n_epoch_hist, N_BINS), np.int32)
    epoch_range = np.empty((n_lanes, n_epochs, 2))
    epoch_range[:, :, R_MIN] = np.inf
    epoch_range[:, :, R_MAX] = -np.inf
    day_hist = np.zeros((n_lanes, n_slots, N_DAY_HIST, N_BINS), np.int32)
    day_range = np.empty((n_lanes, n_slots, N_DAY_HIST, 2))
    day_range[:, :, :, R_MIN] = np.inf
    day_range[:, :, :, R_MAX] = -np.inf
    d0 = init[I_DIFFICULTY]
    log_d0 = np.log(d0)
    log_index0 = np.log(init[I_INDEX_REF_USD])
    key = rng.seed_key(seed)
    refresh = max(1, np.int64(par[P_FEEDBACK_EVERY_DAYS]))
    sub0 = _subsidy_sats(np.int64(init[I_HEIGHT]) + 1) / SATS_PER_BTC
    halv0 = _next_halving_height(np.int64(init[I_HEIGHT])) - 1.0

    for lane in prange(n_lanes):  # a lane runs blocks lane, lane + n_lanes, ... on one thread
        for blk in range(lane, n_blocks, n_lanes):
            p0 = pair_start + blk * block_pairs
            n = min(block_pairs, pair_start + n_pairs - p0)
            m = 2 * n
            u3 = np.empty((3, n))
            z3 = np.empty((3, n))
            jump_word = np.empty(n, np.uint64)
            e_btc = np.empty(m)
            e_h = np.empty(m)
            e_f = np.empty(m)
            log_btc = np.full(m, init[I_LOG_BTC])
            log_h = np.full(m, init[I_LOG_HASHRATE_HS])
            h_out = np.zeros(m)  # log hashrate offline after a jump (outage, ban), recovering
            log_fee = np.full(m, init[I_LOG_FEE])
            btc = np.empty(m)
            hashrate = np.empty(m)
            fee = np.empty(m)
            bits = np.empty((3, m), np.int64)
            d = np.full(m, init[I_DIFFICULTY])
            h = np.full(m, init[I_HEIGHT])
            b = np.full(m, init[I_EPOCH_BLOCKS])
            s_ep = np.full(m, init[I_EPOCH_SECONDS])
            t_first = np.zeros(m)
            sub = np.full(m, sub0)
            halv_at = np.full(m, halv0)
            ema = np.full(m, init[I_HASHPRICE_EMA])
            h_drift = np.empty(m)
            epoch_idx = np.zeros(m, np.int64)
            ep_ratio = np.empty((n_epochs, m))  # D_k / D_0 and start day of each path's epochs
            ep_day = np.empty((n_epochs, m))
            event = np.zeros(m, np.bool_)
            day_q = np.empty((N_QUANTITIES, m))
            cum = np.zeros((N_QUANTITIES, m))
            cps = np.zeros((n_cp, N_QUANTITIES, m))
            out_day = np.empty(N_QUANTITIES)
            cum_sd = np.zeros(m)  # sum over the blocks mined so far of subsidy / difficulty
            rw_target = np.empty((n_rw, m))
            rw_base = np.empty((n_rw, m))
            rw_val = np.full((n_rw, m), np.nan)
            rw_lo = np.zeros(m, np.int64)
            n_armed = 0
            while n_armed < n_rw and rw_day[n_armed] < 0:
                for i in range(m):
                    rw_target[n_armed, i] = h[i] + rw_blocks[n_armed]
                    rw_base[n_armed, i] = 0.0
                n_armed += 1
            if init[I_LOG_HASHRATE_SD] > 0.0:  # today's hashrate is uncertain: one draw per pair, +/-
                for j in range(n):
                    z0 = rng.inverse_normal_cdf(rng.unit_from_bits(rng.random_bits(
                        key, rng.counter(p0 + j, 0, rng.FACTOR_START_HASHRATE))))
                    log_h[j] += init[I_LOG_HASHRATE_SD] * z0
                    log_h[n + j] -= init[I_LOG_HASHRATE_SD] * z0
            next_cp = 0
            if n_cp > 0 and cp_days[0] < 0:
                next_cp = 1
            for i in range(m):
                h_drift[i] = par[P_H_GROWTH] + par[P_H_FEEDBACK] * (np.log(ema[i]) - steps[0, S_LOG_COST])

            for t in range(n_days):
                # 1. counter RNG -> uniforms -> central inverse-CDF normals (vectorised)
                for f in range(3):
                    for j in range(n):
                        u = rng.unit_from_bits(rng.random_bits(key, rng.counter(p0 + j, t, f)))
                        u3[f, j] = u
                        z3[f, j] = rng.normal_central(u)
                for j in range(n):
                    jump_word[j] = rng.random_bits(key, rng.counter(p0 + j, t, rng.FACTOR_JUMP_FLAGS))
                # 2. tails (scalar, ~4.85% of draws)
                for f in range(3):
                    for j in range(n):
                        u = u3[f, j]
                        if u < rng.P_LOW or u > rng.P_HIGH:
                            z3[f, j] = rng.normal_tail(u)
                # 3. correlated, scaled shocks for both members of each pair
                vol_btc = steps[t, S_BTC_VOL]
                for j in range(n):
                    zs = z3[0, j]
                    zh = par[P_L10] * zs + par[P_L11] * z3[1, j]
                    zf = par[P_L20] * zs + par[P_L21] * z3[1, j] + par[P_L22] * z3[2, j]
                    e_btc[j] = vol_btc * zs
                    e_btc[n + j] = -vol_btc * zs
                    e_h[j] = par[P_H_VOL] * zh
                    e_h[n + j] = -par[P_H_VOL] * zh
                    e_f[j] = par[P_F_VOL] * zf
                    e_f[n + j] = -par[P_F_VOL] * zf
                # 4. jumps (scalar, rare): one flag word per pair, sizes antithetic within the pair
                for j in range(n):
                    w = jump_word[j]
                    fs = np.float64(w & _FLAG_MASK) < par[P_JS_THRESHOLD]
                    fh = np.float64((w >> np.uint64(21)) & _FLAG_MASK) < par[P_JH_THRESHOLD]
                    ff = np.float64((w >> np.uint64(42)) & _FLAG_MASK) < par[P_JF_THRESHOLD]
                    if fs or fh or ff:
                        if fs:
                            zj = rng.inverse_normal_cdf(rng.unit_from_bits(rng.random_bits(
                                key, rng.counter(p0 + j, t, rng.FACTOR_JUMP_SIZE_BTC))))
                            e_btc[j] += par[P_JS_MEAN] + par[P_JS_STD] * zj
                            e_btc[n + j] += par[P_JS_MEAN] - par[P_JS_STD] * zj
                        if fh:
                            zj = rng.inverse_normal_cdf(rng.unit_from_bits(rng.random_bits(
                                key, rng.counter(p0 + j, t, rng.FACTOR_JUMP_SIZE_HASHRATE))))
                            h_out[j] += par[P_JH_MEAN] + par[P_JH_STD] * zj
                            h_out[n + j] += par[P_JH_MEAN] - par[P_JH_STD] * zj
                        if ff:
                            zj = rng.inverse_normal_cdf(rng.unit_from_bits(rng.random_bits(
                                key, rng.counter(p0 + j, t, rng.FACTOR_JUMP_SIZE_FEE))))
                            e_f[j] += par[P_JF_MEAN] + par[P_JF_STD] * zj
                            e_f[n + j] += par[P_JF_MEAN] - par[P_JF_STD] * zj
                # 5. log-state update and exp (vectorised)
                drift_btc = steps[t, S_BTC_DRIFT]
                shift_h = steps[t, S_HASHRATE_SHIFT]
                recover = par[P_JH_RECOVERY]
                for i in range(m):
                    log_btc[i] += drift_btc + e_btc[i]
                    log_h[i] += h_drift[i] + shift_h + e_h[i]
                    log_fee[i] += par[P_F_KAPPA] * (par[P_F_LEVEL] - log_fee[i]) + e_f[i]
                    bits[0, i], btc[i] = rng.exp_split(log_btc[i])
                    bits[1, i], hashrate[i] = rng.exp_split(log_h[i] + h_out[i])
                    h_out[i] -= recover * h_out[i]
                    bits[2, i], fee[i] = rng.exp_split(log_fee[i])
                scale = bits.view(np.float64)
                for i in range(m):
                    btc[i] *= scale[0, i]
                    hashrate[i] *= scale[1, i]
                    fee[i] *= scale[2, i]
                # 6. blocks and the day's index where no retarget or halving falls (vectorised)
                for i in range(m):
                    rate = hashrate[i] * _RATE_K / d[i]
                    ev = (b[i] + rate >= protocol.RETARGET_BLOCKS) or (h[i] + rate >= halv_at[i])
                    event[i] = ev
                    if not ev:
                        b[i] += rate
                        h[i] += rate
                        s_ep[i] += SECONDS_PER_DAY
                        cum_sd[i] += rate * sub[i] / d[i]
                    hv = _HV_K * (sub[i] + fee[i]) / d[i]
                    day_q[Q_HASHVALUE_BTC, i] = hv
                    day_q[Q_HASHPRICE_USD, i] = hv * btc[i]
                    day_q[Q_DIFFICULTY, i] = d[i]
                    day_q[Q_BTC_USD, i] = btc[i]
                    day_q[Q_BLOCKS, i] = rate
                    day_q[Q_DIFF_X_BLOCKS, i] = d[i] * rate
                if n_armed > 0:  # rewards whose last block fell today (scalar; no event today)
                    for i in range(m):
                        if not event[i] and rw_lo[i] < n_armed:
                            rate = day_q[Q_BLOCKS, i]
                            slope = sub[i] / d[i]
                            _fix_rewards(i, h[i] - rate, h[i], cum_sd[i] - rate * slope, slope, rw_target,
                                         rw_base, rw_val, rw_lo, n_armed)
                # 7. exact piecewise days for paths with an event (scalar, ~7% of path-days)
                for i in range(m):
                    if event[i]:
                        _advance_with_events(i, t, hashrate, btc, fee, d, h, b, s_ep, t_first, sub,
                                             halv_at, epoch_idx, ep_ratio, ep_day, d0, out_day, cum_sd,
                                             rw_target, rw_base, rw_val, rw_lo, n_armed)
                        day_q[Q_HASHPRICE_USD, i] = out_day[Q_HASHPRICE_USD]
                        day_q[Q_HASHVALUE_BTC, i] = out_day[Q_HASHVALUE_BTC]
                        day_q[Q_DIFFICULTY, i] = out_day[Q_DIFFICULTY]
                        day_q[Q_BLOCKS, i] = out_day[Q_BLOCKS]
                        day_q[Q_DIFF_X_BLOCKS, i] = out_day[Q_DIFF_X_BLOCKS]
                # rewards counted from the close of today
                while n_armed < n_rw and rw_day[n_armed] == t:
                    for i in range(m):
                        rw_target[n_armed, i] = h[i] + rw_blocks[n_armed]
                        rw_base[n_armed, i] = cum_sd[i]
                    n_armed += 1
                # 8. fixings: running sums per path, the feedback EMA, per-day pair-mean moments
                for q in range(N_QUANTITIES):
                    for i in range(m):
                        cum[q, i] += day_q[q, i]
                ew = par[P_EMA_WEIGHT]
                for i in range(m):
                    ema[i] += ew * (day_q[Q_HASHPRICE_USD, i] - ema[i])
                s_hp = 0.0
                s_hp2 = 0.0
                s_hv = 0.0
                s_hv2 = 0.0
                s_s = 0.0
                s_s2 = 0.0
                s_hps = 0.0
                s_d = 0.0
                for j in range(n):
                    hp = 0.5 * (day_q[Q_HASHPRICE_USD, j] + day_q[Q_HASHPRICE_USD, n + j])
                    hv = 0.5 * (day_q[Q_HASHVALUE_BTC, j] + day_q[Q_HASHVALUE_BTC, n + j])
                    sp = 0.5 * (btc[j] + btc[n + j])
                    s_hp += hp
                    s_hp2 += hp * hp
                    s_hv += hv
                    s_hv2 += hv * hv
                    s_s += sp
                    s_s2 += sp * sp
                    s_hps += hp * sp
                    s_d += 0.5 * (day_q[Q_DIFFICULTY, j] + day_q[Q_DIFFICULTY, n + j])
                daily[blk, t, D_HP] = s_hp
                daily[blk, t, D_HP2] = s_hp2
                daily[blk, t, D_HV] = s_hv
                daily[blk, t, D_HV2] = s_hv2
                daily[blk, t, D_BTC] = s_s
                daily[blk, t, D_BTC2] = s_s2
                daily[blk, t, D_HP_BTC] = s_hps
                daily[blk, t, D_DIFF] = s_d
                slot = day_slot[t]
                if slot >= 0:  # distributions of the day's index and difficulty
                    lo_p = day_range[lane, slot, H_INDEX_USD, R_MIN]
                    hi_p = day_range[lane, slot, H_INDEX_USD, R_MAX]
                    lo_d = day_range[lane, slot, H_DIFFICULTY, R_MIN]
                    hi_d = day_range[lane, slot, H_DIFFICULTY, R_MAX]
                    for i in range(m):
                        xp = np.log(day_q[Q_HASHPRICE_USD, i]) - log_index0
                        xd = np.log(day_q[Q_DIFFICULTY, i]) - log_d0
                        day_hist[lane, slot, H_INDEX_USD, bin_index(xp)] += 1
                        day_hist[lane, slot, H_DIFFICULTY, bin_index(xd)] += 1
                        lo_p = min(lo_p, xp)
                        hi_p = max(hi_p, xp)
                        lo_d = min(lo_d, xd)
                        hi_d = max(hi_d, xd)
                    day_range[lane, slot, H_INDEX_USD, R_MIN] = lo_p
                    day_range[lane, slot, H_INDEX_USD, R_MAX] = hi_p
                    day_range[lane, slot, H_DIFFICULTY, R_MIN] = lo_d
                    day_range[lane, slot, H_DIFFICULTY, R_MAX] = hi_d
                while next_cp < n_cp and cp_days[next_cp] == t:
                    for q in range(N_QUANTITIES):
                        for i in range(m):
                            cps[next_cp, q, i] = cum[q, i]
                    next_cp += 1
                # 9. sample paths for plots (global paths 0..n_samples-1)
                for k in range(n_samples):
                    pair = k // 2
                    if p0 <= pair < p0 + n:
                        i = pair - p0 + (k % 2) * n
                        samples[k, t, SP_HASHPRICE_USD] = day_q[Q_HASHPRICE_USD, i]
                        samples[k, t, SP_BTC_USD] = btc[i]
                        samples[k, t, SP_DIFFICULTY] = day_q[Q_DIFFICULTY, i]
                        samples[k, t, SP_HASHRATE_HS] = hashrate[i]
                        samples[k, t, SP_FEE_BTC_PER_BLOCK] = fee[i]
                        samples[k, t, SP_BLOCKS] = day_q[Q_BLOCKS, i]
                # 10. hashrate feedback drift, refreshed every few days from the hashprice EMA
                if (t + 1) % refresh == 0:
                    lc = steps[t, S_LOG_COST]
                    for i in range(m):
                        h_drift[i] = par[P_H_GROWTH] + par[P_H_FEEDBACK] * (np.log(ema[i]) - lc)

            # window averages: per-path values (when asked) and pair-mean moments, BTC as control
            row0 = 2 * (p0 - pair_start)
            for w in range(n_win):
                c0 = win_cp0[w]
                c1 = win_cp1[w]
                inv = 1.0 / win_len[w]
                if not window_moments:  # the caller wants the per-path values alone
                    for q in range(N_QUANTITIES):
                        for j in range(n):
                            win_out[row0 + 2 * j, w, q] = (cps[c1, q, j] - cps[c0, q, j]) * inv
                            win_out[row0 + 2 * j + 1, w, q] = (cps[c1, q, n + j] - cps[c0, q, n + j]) * inv
                    continue
                for j in range(n):
                    cb = 0.5 * inv * (cps[c1, Q_BTC_USD, j] - cps[c0, Q_BTC_USD, j]
                                      + cps[c1, Q_BTC_USD, n + j] - cps[c0, Q_BTC_USD, n + j])
                    for q in range(N_QUANTITIES):
                        a = (cps[c1, q, j] - cps[c0, q, j]) * inv
                        a2 = (cps[c1, q, n + j] - cps[c0, q, n + j]) * inv
                        if store_paths:
                            win_out[row0 + 2 * j, w, q] = a
                            win_out[row0 + 2 * j + 1, w, q] = a2
                        x = 0.5 * (a + a2)
                        moments[blk, M_X, w, q] += x
                        moments[blk, M_XX, w, q] += x * x
                        moments[blk, M_C, w, q] += cb
                        moments[blk, M_CC, w, q] += cb * cb
                        moments[blk, M_XC, w, q] += x * cb
                for q in range(N_QUANTITIES):
                    mq = moments[blk, M_X, w, q] / n
                    for j in range(n):
                        a = (cps[c1, q, j] - cps[c0, q, j]) * inv
                        a2 = (cps[c1, q, n + j] - cps[c0, q, n + j]) * inv
                        dx = 0.5 * (a + a2) - mq
                        dx2 = dx * dx
                        moments[blk, M_X2C, w, q] += dx2
                        moments[blk, M_X3C, w, q] += dx2 * dx
                        moments[blk, M_X4C, w, q] += dx2 * dx2
            if store_paths:  # per-path epoch and reward fixings, in path order (2p, 2p + 1)
                for j in range(n):
                    for s_ in range(2):
                        i = j + s_ * n
                        row = row0 + 2 * j + s_
                        for r in range(n_req):
                            k = ep_req[r]
                            if k < epoch_idx[i]:
                                ep_out[row, r, EF_DIFFICULTY] = ep_ratio[k, i] * d0
                                ep_out[row, r, EF_START_DAY] = ep_day[k, i]
                            else:
                                ep_out[row, r, EF_DIFFICULTY] = np.nan
                                ep_out[row, r, EF_START_DAY] = np.nan
                        for r in range(n_rw):
                            rw_out[row, r] = rw_val[r, i]
            # epochs: pair sums (a ratio estimator's inputs), exact ranges and histograms
            k_end = 0
            for i in range(m):
                k_end = max(k_end, min(epoch_idx[i], n_epochs))
            for k in range(k_end):
                s_x = 0.0
                s_y = 0.0
                s_yy = 0.0
                s_xy = 0.0
                s_xx = 0.0
                s_s = 0.0
                s_ss = 0.0
                lo = epoch_range[lane, k, R_MIN]
                hi = epoch_range[lane, k, R_MAX]
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
                            lr = np.log(ep_ratio[k, i])
                            lo = min(lo, lr)
                            hi = max(hi, lr)
                            if k < n_epoch_hist:
                                epoch_hist[lane, k, bin_index(lr)] += 1
                    s_x += x
                    s_y += y
                    s_yy += y * y
                    s_xy += x * y
                    s_xx += x * x
                epochs[blk, k, E_COUNT] = s_x
                epochs[blk, k, E_REL] = s_y
                epochs[blk, k, E_REL2] = s_yy
                epochs[blk, k, E_REL_COUNT] = s_xy
                epochs[blk, k, E_COUNT2] = s_xx
                epochs[blk, k, E_DAY] = s_s
                epochs[blk, k, E_DAY2] = s_ss
                epoch_range[lane, k, R_MIN] = lo
                epoch_range[lane, k, R_MAX] = hi
    return (win_out, moments, daily, epochs, samples, epoch_hist, epoch_range, day_hist, day_range, ep_out,
            rw_out)
