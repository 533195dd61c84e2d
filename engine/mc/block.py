"""One block of antithetic pairs, simulated day by day.

Every pass over the block's paths is a flat, branch-free loop that LLVM vectorises: counter
RNG and inverse-CDF normals per pair, the log-state update for both members of each pair, then
exp, blocks and the day's quantities per path. Only jumps, retargets and halvings (a few percent
of path-days) and reward fixings go through scalar code, in :mod:`engine.mc.path_events`.
Per-path state lives in the rows of one array (``X_*``) so the loops touch few base pointers.
"""

import numpy as np
from numba import njit

from curves import protocol
from curves.units import SATS_PER_BTC, SECONDS_PER_DAY
from engine.mc import rng
from engine.mc.block_summary import day_histograms, epoch_sums, path_fixings, window_moments, window_values
from engine.mc.layout import (
    D_BTC,
    D_BTC2,
    D_DIFF,
    D_HP,
    D_HP2,
    D_HP_BTC,
    D_HV,
    D_HV2,
    I_DIFFICULTY,
    I_EPOCH_BLOCKS,
    I_EPOCH_SECONDS,
    I_HASHPRICE_EMA,
    I_HEIGHT,
    I_INDEX_REF_USD,
    I_LOG_BTC,
    I_LOG_FEE,
    I_LOG_HASHRATE_HS,
    I_LOG_HASHRATE_SD,
    N_QUANTITIES,
    N_STATE,
    P_EMA_WEIGHT,
    P_F_KAPPA,
    P_F_LEVEL,
    P_F_VOL,
    P_FEEDBACK_EVERY_DAYS,
    P_H_FEEDBACK,
    P_H_GROWTH,
    P_H_VOL,
    P_JF_MEAN,
    P_JF_STD,
    P_JF_THRESHOLD,
    P_JH_MEAN,
    P_JH_RECOVERY,
    P_JH_STD,
    P_JH_THRESHOLD,
    P_JS_MEAN,
    P_JS_STD,
    P_JS_THRESHOLD,
    P_L10,
    P_L11,
    P_L20,
    P_L21,
    P_L22,
    Q_BLOCKS,
    Q_BTC_USD,
    Q_DIFF_X_BLOCKS,
    Q_DIFFICULTY,
    Q_HASHPRICE_USD,
    Q_HASHVALUE_BTC,
    S_BTC_DRIFT,
    S_BTC_VOL,
    S_HASHRATE_SHIFT,
    S_LOG_COST,
    SP_BLOCKS,
    SP_BTC_USD,
    SP_DIFFICULTY,
    SP_FEE_BTC_PER_BLOCK,
    SP_HASHPRICE_USD,
    SP_HASHRATE_HS,
    X_BTC,
    X_CUM_SD,
    X_DIFFICULTY,
    X_EMA,
    X_EPOCH_BLOCKS,
    X_EPOCH_SECONDS,
    X_EVENT,
    X_FEE,
    X_HALVING_AT,
    X_HASHRATE,
    X_HASHRATE_DRIFT,
    X_HASHRATE_OUT,
    X_HEIGHT,
    X_INV_DIFFICULTY,
    X_LOG_BTC,
    X_LOG_FEE,
    X_LOG_HASHRATE,
    X_SUBSIDY,
    X_T_FIRST,
)
from engine.mc.path_events import HV_K, RATE_K, event_day, fix_rewards, next_halving_height, subsidy_sats

_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
_FLAG_MASK = np.uint64((1 << rng.JUMP_FLAG_BITS) - 1)


@njit(cache=True, nogil=True)
def _jumps(key, p0, n, t, words, st, par, thr_s, thr_h, thr_f):
    """Jumps (rare): one flag word per pair, sizes antithetic within the pair, added to the logs."""
    for j in range(n):
        w = words[j]
        fs = (w & _FLAG_MASK) < thr_s
        fh = ((w >> np.uint64(21)) & _FLAG_MASK) < thr_h
        ff = ((w >> np.uint64(42)) & _FLAG_MASK) < thr_f
        if fs or fh or ff:
            if fs:
                z = rng.normal_from_bits(rng.random_bits(key, rng.counter(p0 + j, t, rng.FACTOR_JUMP_SIZE_BTC)))
                st[X_LOG_BTC, j] += par[P_JS_MEAN] + par[P_JS_STD] * z
                st[X_LOG_BTC, n + j] += par[P_JS_MEAN] - par[P_JS_STD] * z
            if fh:
                z = rng.normal_from_bits(rng.random_bits(key, rng.counter(p0 + j, t, rng.FACTOR_JUMP_SIZE_HASHRATE)))
                st[X_HASHRATE_OUT, j] += par[P_JH_MEAN] + par[P_JH_STD] * z
                st[X_HASHRATE_OUT, n + j] += par[P_JH_MEAN] - par[P_JH_STD] * z
            if ff:
                z = rng.normal_from_bits(rng.random_bits(key, rng.counter(p0 + j, t, rng.FACTOR_JUMP_SIZE_FEE)))
                st[X_LOG_FEE, j] += par[P_JF_MEAN] + par[P_JF_STD] * z
                st[X_LOG_FEE, n + j] += par[P_JF_MEAN] - par[P_JF_STD] * z


@njit(cache=True, nogil=True)
def _samples(p0, n, t, st, dq, samples):
    """Sample paths for plots (global paths 0..len(samples) - 1) on day t."""
    for k in range(samples.shape[0]):
        pair = k // 2
        if p0 <= pair < p0 + n:
            i = pair - p0 + (k % 2) * n
            samples[k, t, SP_HASHPRICE_USD] = dq[Q_HASHPRICE_USD, i]
            samples[k, t, SP_BTC_USD] = st[X_BTC, i]
            samples[k, t, SP_DIFFICULTY] = dq[Q_DIFFICULTY, i]
            samples[k, t, SP_HASHRATE_HS] = st[X_HASHRATE, i]
            samples[k, t, SP_FEE_BTC_PER_BLOCK] = st[X_FEE, i]
            samples[k, t, SP_BLOCKS] = dq[Q_BLOCKS, i]


@njit(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")
def _refresh_drift(st, par, log_cost, m):
    """Hashrate drift from the feedback EMA of the hashprice against the marginal cost."""
    for i in range(m):
        st[X_HASHRATE_DRIFT, i] = par[P_H_GROWTH] + par[P_H_FEEDBACK] * (rng.log(st[X_EMA, i]) - log_cost)


@njit(cache=True, nogil=True)
def _arm_rewards(r, st, rw_blocks, rw_target, rw_base, m):
    for i in range(m):
        rw_target[r, i] = st[X_HEIGHT, i] + rw_blocks[r]
        rw_base[r, i] = st[X_CUM_SD, i]


@njit(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")
def simulate_block(key, p0, n, steps, par, init, cp_days, win_cp0, win_cp1, win_len, day_slot,
                   ep_req, rw_day, rw_blocks, store_paths, want_moments, want_daily, want_dxb,
                   n_epoch_hist, row0, win_out, mom, daily, epochs, samples, epoch_hist, epoch_range,
                   day_hist, day_range, ep_out, rw_out):
    """Pairs p0..p0+n-1 over all days; writes this block's slices of the kernel's outputs (see
    ``engine.mc.kernel.simulate_chunk``) and adds its counts to the lane's histograms.

    ``want_daily``: the per-day pair-mean sums; ``want_dxb``: the D x blocks window quantity
    (else left at zero); reward sums run only when ``rw_day`` asks for fixings."""
    n_days = steps.shape[0]
    m = 2 * n
    n_epochs = epochs.shape[0]
    n_rw = rw_day.size
    nq = N_QUANTITIES if want_dxb else Q_DIFF_X_BLOCKS  # D x blocks is the last quantity
    n_cp = cp_days.size
    d0 = init[I_DIFFICULTY]
    sub0 = subsidy_sats(np.int64(init[I_HEIGHT]) + 1) / SATS_PER_BTC
    halv0 = next_halving_height(np.int64(init[I_HEIGHT])) - 1.0
    refresh = max(1, np.int64(par[P_FEEDBACK_EVERY_DAYS]))
    thr_s = np.uint64(par[P_JS_THRESHOLD])
    thr_h = np.uint64(par[P_JH_THRESHOLD])
    thr_f = np.uint64(par[P_JF_THRESHOLD])
    any_jumps = par[P_JS_THRESHOLD] > 0 or par[P_JH_THRESHOLD] > 0 or par[P_JF_THRESHOLD] > 0
    has_samples = 2 * p0 < samples.shape[0]

    z = np.empty((3, n))
    words = np.empty(n, np.uint64)
    st = np.empty((N_STATE, m))
    dq = np.zeros((N_QUANTITIES, m))
    cum = np.zeros((N_QUANTITIES, m))
    cps = np.zeros((n_cp, N_QUANTITIES, m))
    epoch_idx = np.zeros(m, np.int64)
    ep_ratio = np.empty((n_epochs, m))  # D_k / D_0 and start day of each path's epochs
    ep_day = np.empty((n_epochs, m))
    rw_target = np.empty((n_rw, m))
    rw_base = np.empty((n_rw, m))
    rw_val = np.full((n_rw, m), np.nan)
    rw_lo = np.zeros(m, np.int64)

    for i in range(m):
        st[X_LOG_BTC, i] = init[I_LOG_BTC]
        st[X_LOG_HASHRATE, i] = init[I_LOG_HASHRATE_HS]
        st[X_HASHRATE_OUT, i] = 0.0  # log hashrate offline after a jump (outage, ban), recovering
        st[X_LOG_FEE, i] = init[I_LOG_FEE]
        st[X_DIFFICULTY, i] = d0
        st[X_INV_DIFFICULTY, i] = 1.0 / d0
        st[X_HEIGHT, i] = init[I_HEIGHT]
        st[X_EPOCH_BLOCKS, i] = init[I_EPOCH_BLOCKS]
        st[X_EPOCH_SECONDS, i] = init[I_EPOCH_SECONDS]
        st[X_T_FIRST, i] = 0.0
        st[X_SUBSIDY, i] = sub0
        st[X_HALVING_AT, i] = halv0
        st[X_EMA, i] = init[I_HASHPRICE_EMA]
        st[X_CUM_SD, i] = 0.0  # sum over the blocks mined so far of subsidy / difficulty
    if init[I_LOG_HASHRATE_SD] > 0.0:  # today's hashrate is uncertain: one draw per pair, +/-
        for j in range(n):
            z0 = rng.normal_from_bits(rng.random_bits(key, rng.counter(p0 + j, 0, rng.FACTOR_START_HASHRATE)))
            st[X_LOG_HASHRATE, j] += init[I_LOG_HASHRATE_SD] * z0
            st[X_LOG_HASHRATE, n + j] -= init[I_LOG_HASHRATE_SD] * z0
    n_armed = 0
    while n_armed < n_rw and rw_day[n_armed] < 0:
        _arm_rewards(n_armed, st, rw_blocks, rw_target, rw_base, m)
        n_armed += 1
    next_cp = 1 if n_cp > 0 and cp_days[0] < 0 else 0
    _refresh_drift(st, par, steps[0, S_LOG_COST], m)

    h_vol = par[P_H_VOL]
    f_vol = par[P_F_VOL]
    l10 = par[P_L10]
    l11 = par[P_L11]
    l20 = par[P_L20]
    l21 = par[P_L21]
    l22 = par[P_L22]
    kappa = par[P_F_KAPPA]
    level = par[P_F_LEVEL]
    recover = par[P_JH_RECOVERY]
    ew = par[P_EMA_WEIGHT]
    for t in range(n_days):
        # 1. counter RNG -> normals, per pair (vectorised), and the jump flag words
        for j in range(n):
            c = rng.counter(p0 + j, t, 0)
            z[0, j] = rng.normal_from_bits(rng.random_bits(key, c | np.uint64(rng.FACTOR_BTC)))
            z[1, j] = rng.normal_from_bits(rng.random_bits(key, c | np.uint64(rng.FACTOR_HASHRATE)))
            z[2, j] = rng.normal_from_bits(rng.random_bits(key, c | np.uint64(rng.FACTOR_FEE)))
        if any_jumps:
            for j in range(n):
                words[j] = rng.random_bits(key, rng.counter(p0 + j, t, rng.FACTOR_JUMP_FLAGS))
        # 2. correlated shocks, +/- within each pair, into the log state (vectorised)
        vol_btc = steps[t, S_BTC_VOL]
        drift_btc = steps[t, S_BTC_DRIFT]
        shift_h = steps[t, S_HASHRATE_SHIFT]
        for j in range(n):
            zs = z[0, j]
            zh = l10 * zs + l11 * z[1, j]
            zf = l20 * zs + l21 * z[1, j] + l22 * z[2, j]
            e_btc = vol_btc * zs
            e_h = h_vol * zh
            e_f = f_vol * zf
            k = n + j
            st[X_LOG_BTC, j] += drift_btc + e_btc
            st[X_LOG_BTC, k] += drift_btc - e_btc
            st[X_LOG_HASHRATE, j] += st[X_HASHRATE_DRIFT, j] + shift_h + e_h
            st[X_LOG_HASHRATE, k] += st[X_HASHRATE_DRIFT, k] + shift_h - e_h
            st[X_LOG_FEE, j] += kappa * (level - st[X_LOG_FEE, j]) + e_f
            st[X_LOG_FEE, k] += kappa * (level - st[X_LOG_FEE, k]) - e_f
        # 3. jumps (scalar, rare)
        if any_jumps:
            _jumps(key, p0, n, t, words, st, par, thr_s, thr_h, thr_f)
        # 4. levels, blocks and the day's quantities where no retarget or halving falls (vectorised)
        for i in range(m):
            btc = rng.exp(st[X_LOG_BTC, i])
            hashrate = rng.exp(st[X_LOG_HASHRATE, i] + st[X_HASHRATE_OUT, i])
            fee = rng.exp(st[X_LOG_FEE, i])
            st[X_HASHRATE_OUT, i] -= recover * st[X_HASHRATE_OUT, i]
            st[X_BTC, i] = btc
            st[X_HASHRATE, i] = hashrate
            st[X_FEE, i] = fee
            d = st[X_DIFFICULTY, i]
            inv_d = st[X_INV_DIFFICULTY, i]
            rate = hashrate * RATE_K * inv_d
            ev = ((st[X_EPOCH_BLOCKS, i] + rate >= protocol.RETARGET_BLOCKS)
                  | (st[X_HEIGHT, i] + rate >= st[X_HALVING_AT, i]))
            keep = 0.0 if ev else 1.0
            st[X_EVENT, i] = 1.0 - keep
            st[X_EPOCH_BLOCKS, i] += keep * rate
            st[X_HEIGHT, i] += keep * rate
            st[X_EPOCH_SECONDS, i] += keep * SECONDS_PER_DAY
            hv = HV_K * (st[X_SUBSIDY, i] + fee) * inv_d
            dq[Q_HASHVALUE_BTC, i] = hv
            dq[Q_HASHPRICE_USD, i] = hv * btc
            dq[Q_DIFFICULTY, i] = d
            dq[Q_BTC_USD, i] = btc
            dq[Q_BLOCKS, i] = rate
            dq[Q_DIFF_X_BLOCKS, i] = d * rate
        if n_rw > 0:  # subsidy / difficulty summed over the blocks, and rewards whose last block fell today
            for i in range(m):
                if st[X_EVENT, i] == 0.0:
                    rate = dq[Q_BLOCKS, i]
                    slope = st[X_SUBSIDY, i] * st[X_INV_DIFFICULTY, i]
                    c0 = st[X_CUM_SD, i]
                    st[X_CUM_SD, i] = c0 + rate * slope
                    if rw_lo[i] < n_armed:
                        fix_rewards(i, st[X_HEIGHT, i] - rate, st[X_HEIGHT, i], c0, slope, rw_target, rw_base,
                                    rw_val, rw_lo, n_armed)
        # 5. exact piecewise days for paths with an event (scalar, ~7% of path-days)
        for i in range(m):
            if st[X_EVENT, i] != 0.0:
                event_day(st, dq, i, t, epoch_idx, ep_ratio, ep_day, d0, rw_target, rw_base, rw_val, rw_lo,
                          n_armed)
        while n_armed < n_rw and rw_day[n_armed] == t:  # rewards counted from the close of today
            _arm_rewards(n_armed, st, rw_blocks, rw_target, rw_base, m)
            n_armed += 1
        # 6. running sums per path, the feedback EMA, per-day pair-mean sums (vectorised)
        for q in range(nq):
            for i in range(m):
                cum[q, i] += dq[q, i]
        for i in range(m):
            st[X_EMA, i] += ew * (dq[Q_HASHPRICE_USD, i] - st[X_EMA, i])
        if want_daily:
            s_hp = 0.0
            s_hp2 = 0.0
            s_hv = 0.0
            s_hv2 = 0.0
            s_s = 0.0
            s_s2 = 0.0
            s_hps = 0.0
            s_d = 0.0
            for j in range(n):
                hp = 0.5 * (dq[Q_HASHPRICE_USD, j] + dq[Q_HASHPRICE_USD, n + j])
                hv = 0.5 * (dq[Q_HASHVALUE_BTC, j] + dq[Q_HASHVALUE_BTC, n + j])
                sp = 0.5 * (dq[Q_BTC_USD, j] + dq[Q_BTC_USD, n + j])
                s_hp += hp
                s_hp2 += hp * hp
                s_hv += hv
                s_hv2 += hv * hv
                s_s += sp
                s_s2 += sp * sp
                s_hps += hp * sp
                s_d += 0.5 * (dq[Q_DIFFICULTY, j] + dq[Q_DIFFICULTY, n + j])
            daily[t, D_HP] = s_hp
            daily[t, D_HP2] = s_hp2
            daily[t, D_HV] = s_hv
            daily[t, D_HV2] = s_hv2
            daily[t, D_BTC] = s_s
            daily[t, D_BTC2] = s_s2
            daily[t, D_HP_BTC] = s_hps
            daily[t, D_DIFF] = s_d
        slot = day_slot[t]
        if slot >= 0:  # distributions of the day's index and difficulty
            day_histograms(dq, m, np.log(init[I_INDEX_REF_USD]), np.log(d0), day_hist[slot], day_range[slot])
        while next_cp < n_cp and cp_days[next_cp] == t:
            cps[next_cp] = cum
            next_cp += 1
        if has_samples:
            _samples(p0, n, t, st, dq, samples)
        if (t + 1) % refresh == 0:  # the feedback drift, refreshed every few days
            _refresh_drift(st, par, steps[t, S_LOG_COST], m)

    if store_paths:
        window_values(cps, n, win_cp0, win_cp1, win_len, row0, win_out)
        path_fixings(n, row0, ep_req, epoch_idx, ep_ratio, ep_day, d0, rw_val, ep_out, rw_out)
    if want_moments:
        window_moments(cps, n, win_cp0, win_cp1, win_len, mom)
    epoch_sums(n, epoch_idx, ep_ratio, ep_day, n_epoch_hist, epochs, epoch_hist, epoch_range)
