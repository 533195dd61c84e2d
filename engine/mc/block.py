"""One block of antithetic pairs, simulated day by day.

Every pass over the block's paths is a flat, branch-free loop that LLVM vectorises: counter
RNG and inverse-CDF normals per pair, the log-state update for both members of each pair, then
exp, blocks and the day's quantities per path. Only jumps, retargets and halvings (a few percent
of path-days) and reward fixings go through scalar code, in :mod:`engine.mc.path_events`.
Per-path state lives in a few arrays grouped by how often it changes (``LG_*``, ``LV_*``, ``CK_*``,
``PR_*``, ``FB_*``), each loop writing to few of them, and every array's rows are padded so that
no two rows lie a multiple of 4 KiB apart (loads stalled behind unrelated stores: "4K aliasing").
"""

import numpy as np
from numba import njit

from curves import protocol
from curves.units import SECONDS_PER_DAY
from engine.mc import rng
from engine.mc.block_summary import day_histograms
from engine.mc.layout import (
    CK_EPOCH_BLOCKS,
    CK_EPOCH_SECONDS,
    CK_EVENT,
    CK_HEIGHT,
    D_BTC,
    D_BTC2,
    D_DIFF,
    D_HP,
    D_HP2,
    D_HP_BTC,
    D_HV,
    D_HV2,
    FB_DRIFT,
    FB_EMA,
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
    LG_BTC,
    LG_FEE,
    LG_HASHRATE,
    LG_HASHRATE_OUT,
    LV_BTC,
    LV_FEE,
    LV_HASHRATE,
    N_CK,
    N_FB,
    N_LG,
    N_LV,
    N_PR,
    N_QUANTITIES,
    P_EMA_WEIGHT,
    P_F_KAPPA,
    P_F_LEVEL,
    P_F_VOL,
    P_FEEDBACK_EVERY_DAYS,
    P_H_FEEDBACK,
    P_H_GROWTH,
    P_H_VOL,
    P_JF_THRESHOLD,
    P_JH_RECOVERY,
    P_JH_THRESHOLD,
    P_JS_MEAN,
    P_JS_STD,
    P_JS_THRESHOLD,
    P_L10,
    P_L11,
    P_L20,
    P_L21,
    P_L22,
    PR_CUM_SD,
    PR_DIFFICULTY,
    PR_HALVING_AT,
    PR_INV_DIFFICULTY,
    PR_SUBSIDY,
    PR_T_FIRST,
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
)
from engine.mc.path_events import HV_K, RATE_K, event_day, fix_rewards

_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
_FLAG_MASK = np.uint64((1 << rng.JUMP_FLAG_BITS) - 1)
_ROW_PAD = 8
# rows after the clock's in step 5's results: the protocol state, and a retarget's time (days
# into the day) and the blocks mined after it
_NX_DIFFICULTY, _NX_INV_DIFFICULTY, _NX_T_FIRST, _NX_NEED, _NX_AFTER = range(N_CK, N_CK + 5)
_N_NX = N_CK + 5  # extra columns per row: row strides of 64 bytes past a multiple of 4 KiB


@njit(inline="always")
def _rows(n_rows, n_cols):
    """A zeroed work array whose rows are padded (see the module's docstring)."""
    return np.zeros((n_rows, n_cols + _ROW_PAD))


@njit(inline="always")
def _initial_state(key, p0, n, init, sub0, halv0, lg, ck, pr, fb):
    """Every path of the block at today's state (subsidy ``sub0`` until height ``halv0``); with an
    uncertain hashrate, one draw per pair, +/-."""
    d0 = init[I_DIFFICULTY]
    for i in range(2 * n):
        lg[LG_BTC, i] = init[I_LOG_BTC]
        lg[LG_HASHRATE, i] = init[I_LOG_HASHRATE_HS]  # LG_HASHRATE_OUT: log hashrate offline after a jump
        lg[LG_FEE, i] = init[I_LOG_FEE]
        ck[CK_EPOCH_BLOCKS, i] = init[I_EPOCH_BLOCKS]
        ck[CK_HEIGHT, i] = init[I_HEIGHT]
        ck[CK_EPOCH_SECONDS, i] = init[I_EPOCH_SECONDS]
        pr[PR_DIFFICULTY, i] = d0
        pr[PR_INV_DIFFICULTY, i] = 1.0 / d0
        pr[PR_SUBSIDY, i] = sub0
        pr[PR_HALVING_AT, i] = halv0
        fb[FB_EMA, i] = init[I_HASHPRICE_EMA]
    if init[I_LOG_HASHRATE_SD] > 0.0:
        day0 = p0 - p0  # day 0 (typed like the day index: one compiled _normal_at)
        for j in range(n):
            z0 = _normal_at(key, p0 + j, day0, rng.FACTOR_START_HASHRATE)
            lg[LG_HASHRATE, j] += init[I_LOG_HASHRATE_SD] * z0
            lg[LG_HASHRATE, n + j] -= init[I_LOG_HASHRATE_SD] * z0


@njit(cache=True, nogil=True)
def _normal_at(key, pair, t, factor):
    """The normal keyed on (pair, day, factor), for scalar code. Not inlined: it keeps the loop
    over pairs that calls it from being vectorised with every pair's jump computed under a mask."""
    return rng.normal_from_bits(rng.random_bits(key, rng.counter(pair, t, factor)))


@njit(inline="always")
def _jump(key, p0, n, j, t, lg, par):
    """Jumps of pair j on day t (its flag word fired): BTC, hashrate offline and fee in turn, each
    on its 21-bit flag against its threshold, sizes antithetic within the pair, added to the logs."""
    w = rng.random_bits(key, rng.counter(p0 + j, t, rng.FACTOR_JUMP_FLAGS))
    for f in range(3):  # (threshold, mean, std) of each jump sit in consecutive entries of par
        if np.float64((w >> np.uint64(rng.JUMP_FLAG_BITS * f)) & _FLAG_MASK) < par[P_JS_THRESHOLD + 3 * f]:
            z = _normal_at(key, p0 + j, t, rng.FACTOR_JUMP_SIZE_BTC + f)
            row = LG_BTC if f == 0 else (LG_HASHRATE_OUT if f == 1 else LG_FEE)
            lg[row, j] += par[P_JS_MEAN + 3 * f] + par[P_JS_STD + 3 * f] * z
            lg[row, n + j] += par[P_JS_MEAN + 3 * f] - par[P_JS_STD + 3 * f] * z


@njit(cache=True, nogil=True)
def _samples(p0, n, t, lv, dq, samples):
    """Sample paths for plots (global paths 0..len(samples) - 1) on day t."""
    for k in range(samples.shape[0]):
        pair = k // 2
        if p0 <= pair < p0 + n:
            i = pair - p0 + (k % 2) * n
            samples[k, t, SP_HASHPRICE_USD] = dq[Q_HASHPRICE_USD, i]
            samples[k, t, SP_BTC_USD] = lv[LV_BTC, i]
            samples[k, t, SP_DIFFICULTY] = dq[Q_DIFFICULTY, i]
            samples[k, t, SP_HASHRATE_HS] = lv[LV_HASHRATE, i]
            samples[k, t, SP_FEE_BTC_PER_BLOCK] = lv[LV_FEE, i]
            samples[k, t, SP_BLOCKS] = dq[Q_BLOCKS, i]


@njit(inline="always")
def _refresh_drift(fb, par, log_cost, m):
    """Hashrate drift from the feedback EMA of the hashprice against the marginal cost."""
    for i in range(m):
        fb[FB_DRIFT, i] = par[P_H_GROWTH] + par[P_H_FEEDBACK] * (rng.log(fb[FB_EMA, i]) - log_cost)


@njit(cache=True, nogil=True)
def _arm_rewards(day, n_armed, rewards, ck, pr, rw_target, rw_base, m):
    """Start counting the rewards due from the close of ``day`` (-1: from the start); returns
    how many are counting."""
    rw_day, rw_blocks = rewards
    while n_armed < rw_day.size and rw_day[n_armed] == day:
        for i in range(m):
            rw_target[n_armed, i] = ck[CK_HEIGHT, i] + rw_blocks[n_armed]
            rw_base[n_armed, i] = pr[PR_CUM_SD, i]
        n_armed += 1
    return n_armed


@njit(cache=True, nogil=True)
def _rewards_today(m, ck, pr, dq, rw_target, rw_base, rw_val, rw_lo, n_armed):
    """Subsidy / difficulty summed over the day's blocks, and the rewards whose last block fell
    today, on paths without an event (those are done in ``event_day``)."""
    for i in range(m):
        if ck[CK_EVENT, i] == 0.0:
            rate = dq[Q_BLOCKS, i]
            slope = pr[PR_SUBSIDY, i] * pr[PR_INV_DIFFICULTY, i]
            c0 = pr[PR_CUM_SD, i]
            pr[PR_CUM_SD, i] = c0 + rate * slope
            if rw_lo[i] < n_armed:
                fix_rewards(i, ck[CK_HEIGHT, i] - rate, ck[CK_HEIGHT, i], c0, slope, rw_target, rw_base, rw_val,
                            rw_lo, n_armed)


@njit(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")
def simulate_block(seed, p0, n, steps, par, init, sub0, halv0, cp_days, rewards, want_daily, want_dxb, n_epochs,
                   daily, samples, hists, normals=None):
    """Pairs p0..p0+n-1 over all days, today's subsidy being ``sub0`` BTC until height ``halv0``:
    the block's per-day pair-mean sums into ``daily`` (when ``want_daily``), its sample paths
    (``samples``) and day histograms (``hists``: ``(day_slot, day_hist, day_range)``, the lane's).
    ``rewards`` is ``(rw_day, rw_blocks)``. Each of the last three may be None: the code for it is
    then not compiled (what a run needs is compiled on first use). ``normals[t, f, j]``, when
    given, are the daily shocks of the three factors (``engine.mc.sobol``); None draws them from
    the counter RNG (and the other code is not compiled).

    Returns what :mod:`engine.mc.block_summary` reduces: the per-path running sums of the window
    quantities at each checkpoint, ``cps[n_checkpoints, N_QUANTITIES, >= 2n]`` (D x blocks left
    at zero unless ``want_dxb``), each path's epoch count, ``D_k / D_0`` and start day of its
    first ``n_epochs`` epochs, and its reward fixings (NaN where not reached)."""
    n_days = steps.shape[0]
    m = 2 * n
    key = rng.seed_key(seed)
    n_rw = 0
    if rewards is not None:
        n_rw = rewards[0].size
    nq = N_QUANTITIES if want_dxb else Q_DIFF_X_BLOCKS  # D x blocks is the last quantity
    n_cp = cp_days.size
    d0 = init[I_DIFFICULTY]
    refresh = max(1, np.int64(par[P_FEEDBACK_EVERY_DAYS]))
    thr_s = par[P_JS_THRESHOLD]
    thr_h = par[P_JH_THRESHOLD]
    thr_f = par[P_JF_THRESHOLD]
    any_jumps = par[P_JS_THRESHOLD] > 0 or par[P_JH_THRESHOLD] > 0 or par[P_JF_THRESHOLD] > 0

    z = _rows(4, n)  # three normals, and > 0 where the pair's jump word fires
    lg = _rows(N_LG, m)
    lv = _rows(N_LV, m)
    ck = _rows(N_CK, m)
    pr = _rows(N_PR, m)
    fb = _rows(N_FB, m)
    dq = _rows(N_QUANTITIES, m)
    cum = _rows(N_QUANTITIES, m)
    cps = np.zeros((n_cp, N_QUANTITIES, m + _ROW_PAD))
    epoch_idx = np.zeros(m, np.int64)
    ev_list = np.zeros(m + 1, np.int64)
    nx = _rows(_N_NX, m)  # step 5's results: the clock (CK_*), then _NX_*
    inv_d0 = 1.0 / d0
    fast_gate = -1.0  # retarget days in the vectorised step: not while rewards are counted
    if rewards is None:
        fast_gate = 0.0
    ep_ratio = np.empty((n_epochs, m))  # D_k / D_0 and start day of each path's epochs
    ep_day = np.empty((n_epochs, m))
    rw_target = np.empty((n_rw, m))
    rw_base = np.empty((n_rw, m))
    rw_val = np.full((n_rw, m), np.nan)
    rw_lo = np.zeros(m, np.int64)

    _initial_state(key, p0, n, init, sub0, halv0, lg, ck, pr, fb)
    n_armed = 0
    if rewards is not None:
        n_armed = _arm_rewards(-1, n_armed, rewards, ck, pr, rw_target, rw_base, m)
    next_cp = 1 if n_cp > 0 and cp_days[0] < 0 else 0
    _refresh_drift(fb, par, steps[0, S_LOG_COST], m)

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
        # 1. counter RNG -> normals (factor by factor: one compiled copy of the transform), and
        # which pairs jump today (branch-free; vectorised)
        if normals is None:
            for f in range(3):
                for j in range(n):
                    z[f, j] = rng.normal_from_bits(rng.random_bits(key, rng.counter(p0 + j, t, f)))
        else:
            for f in range(3):
                for j in range(n):
                    z[f, j] = normals[t, f, j]
        if any_jumps:
            for j in range(n):
                w = rng.random_bits(key, rng.counter(p0 + j, t, rng.FACTOR_JUMP_FLAGS))
                z[3, j] = max(thr_s - np.float64(w & _FLAG_MASK),
                              thr_h - np.float64((w >> np.uint64(21)) & _FLAG_MASK),
                              thr_f - np.float64((w >> np.uint64(42)) & _FLAG_MASK), 0.0)
        # 2. correlated shocks, +/- within each pair, into the logs (vectorised)
        vol_btc = steps[t, S_BTC_VOL]
        drift_btc = steps[t, S_BTC_DRIFT]
        shift_h = steps[t, S_HASHRATE_SHIFT]
        for j in range(n):
            zs = z[0, j]
            e_btc = vol_btc * zs
            e_h = h_vol * (l10 * zs + l11 * z[1, j])
            e_f = f_vol * (l20 * zs + l21 * z[1, j] + l22 * z[2, j])
            k = n + j
            lg[LG_BTC, j] += drift_btc + e_btc
            lg[LG_BTC, k] += drift_btc - e_btc
            lg[LG_HASHRATE, j] += fb[FB_DRIFT, j] + shift_h + e_h
            lg[LG_HASHRATE, k] += fb[FB_DRIFT, k] + shift_h - e_h
            lg[LG_FEE, j] += kappa * (level - lg[LG_FEE, j]) + e_f
            lg[LG_FEE, k] += kappa * (level - lg[LG_FEE, k]) - e_f
        # 3. jumps (scalar, rare)
        if any_jumps:
            for j in range(n):
                if z[3, j] > 0.0:
                    _jump(key, p0, n, j, t, lg, par)
        # 4. levels (vectorised; one compiled copy of exp): BTC, hashrate (less what is offline), fee
        for r in range(N_LV):
            src = LG_FEE if r == LV_FEE else r  # LV_BTC, LV_HASHRATE sit at the rows of their logs
            offline = 1.0 if r == LV_HASHRATE else 0.0
            for i in range(m):
                lv[r, i] = rng.exp(lg[src, i] + offline * lg[LG_HASHRATE_OUT, i])
        for i in range(m):
            lg[LG_HASHRATE_OUT, i] -= recover * lg[LG_HASHRATE_OUT, i]
        # 5. blocks and the day's quantities (vectorised). A day with nothing but one retarget is
        # done here too, in two stretches at the old and new difficulty; the paths whose day
        # holds a halving, two retargets or a reward fixing, or falls within 1e-9 of one, are
        # left to the exact scalar day (step 6).
        for i in range(m):
            d = pr[PR_DIFFICULTY, i]
            inv_d = pr[PR_INV_DIFFICULTY, i]
            b = ck[CK_EPOCH_BLOCKS, i]
            h = ck[CK_HEIGHT, i]
            hashrate_k = lv[LV_HASHRATE, i] * RATE_K
            rate = hashrate_k * inv_d
            # does a retarget or halving fall today? (in floats: a boolean "or" stops the vectoriser)
            over = max(b + rate - protocol.RETARGET_BLOCKS, h + rate - pr[PR_HALVING_AT, i])
            # the retarget: its time, the new difficulty, the blocks mined after it today
            inv_hashrate_k = 1.0 / hashrate_k
            to_ret = protocol.RETARGET_BLOCKS - b
            need = to_ret * d * inv_hashrate_k  # days to the retarget
            rem = 1.0 - need
            span = min(max(ck[CK_EPOCH_SECONDS, i] + need * SECONDS_PER_DAY - pr[PR_T_FIRST, i],
                           protocol.MIN_TIMESPAN_S), protocol.MAX_TIMESPAN_S)
            inv_span = 1.0 / span
            d_new = d * protocol.TARGET_TIMESPAN_S * inv_span
            inv_d_new = span * inv_d * (1.0 / protocol.TARGET_TIMESPAN_S)
            after = hashrate_k * inv_d_new * rem
            one_retarget = min(min(b + rate - protocol.RETARGET_BLOCKS, protocol.RETARGET_BLOCKS - after - 1e-9),
                               min(pr[PR_HALVING_AT, i] - h - to_ret - after - 1e-9, fast_gate))
            quiet = 1.0 if over < 0.0 else 0.0
            fast = 1.0 if one_retarget >= 0.0 else 0.0  # implies over >= 0
            nx[CK_EVENT, i] = 1.0 - quiet + fast  # 0 quiet, 1 for the scalar day, 2 done here
            # blends of the two outcomes (fast is 0 or 1; a select here stops the vectoriser)
            slow = 1.0 - fast
            nx[CK_EPOCH_BLOCKS, i] = fast * after + slow * (b + quiet * rate)
            nx[CK_HEIGHT, i] = h + fast * (to_ret + after) + quiet * rate
            nx[CK_EPOCH_SECONDS, i] = (fast * rem * SECONDS_PER_DAY
                                       + slow * (ck[CK_EPOCH_SECONDS, i] + quiet * SECONDS_PER_DAY))
            nx[_NX_DIFFICULTY, i] = fast * d_new + slow * d
            nx[_NX_INV_DIFFICULTY, i] = fast * inv_d_new + slow * inv_d
            nx[_NX_T_FIRST, i] = fast * SECONDS_PER_DAY * d_new * inv_hashrate_k + slow * pr[PR_T_FIRST, i]
            nx[_NX_NEED, i] = need
            nx[_NX_AFTER, i] = after
        for i in range(m):  # the day's quantities (a loop of their own: one with every store
            # above and these would have too many arrays for the vectoriser's overlap checks)
            fast = max(nx[CK_EVENT, i] - 1.0, 0.0)
            slow = 1.0 - fast
            d = pr[PR_DIFFICULTY, i]
            inv_d = pr[PR_INV_DIFFICULTY, i]
            d_new = nx[_NX_DIFFICULTY, i]
            need = nx[_NX_NEED, i]
            rem = 1.0 - need
            to_ret = protocol.RETARGET_BLOCKS - ck[CK_EPOCH_BLOCKS, i]
            after = nx[_NX_AFTER, i]
            btc = lv[LV_BTC, i]
            rate = lv[LV_HASHRATE, i] * RATE_K * inv_d
            hv = HV_K * (pr[PR_SUBSIDY, i] + lv[LV_FEE, i]) * (
                fast * (inv_d * need + nx[_NX_INV_DIFFICULTY, i] * rem) + slow * inv_d)
            dq[Q_HASHVALUE_BTC, i] = hv
            dq[Q_HASHPRICE_USD, i] = hv * btc
            dq[Q_DIFFICULTY, i] = fast * (d * need + d_new * rem) + slow * d
            dq[Q_BTC_USD, i] = btc
            dq[Q_BLOCKS, i] = fast * (to_ret + after) + slow * rate
            dq[Q_DIFF_X_BLOCKS, i] = fast * (d * to_ret + d_new * after) + slow * d * rate
        for r in range(N_CK):
            for i in range(m):
                ck[r, i] = nx[r, i]
        for i in range(m):
            pr[PR_DIFFICULTY, i] = nx[_NX_DIFFICULTY, i]
            pr[PR_INV_DIFFICULTY, i] = nx[_NX_INV_DIFFICULTY, i]
            pr[PR_T_FIRST, i] = nx[_NX_T_FIRST, i]
        if rewards is not None:
            _rewards_today(m, ck, pr, dq, rw_target, rw_base, rw_val, rw_lo, n_armed)
        # 6. the new epochs of step 5's retargets, and exact piecewise days for the rest (scalar)
        n_ev = 0
        for i in range(m):  # the paths with an event, listed without a data-dependent branch
            ev_list[n_ev] = i
            n_ev += np.int64(min(ck[CK_EVENT, i], 1.0))
        for e in range(n_ev):
            i = ev_list[e]
            if ck[CK_EVENT, i] == 2.0:
                k = epoch_idx[i]
                if k < n_epochs:
                    ep_ratio[k, i] = pr[PR_DIFFICULTY, i] * inv_d0
                    ep_day[k, i] = t + 1.0 - (1.0 - nx[_NX_NEED, i])  # 1 - rem into day t
                epoch_idx[i] = k + 1
            else:
                event_day(lv, ck, pr, dq, i, t, epoch_idx, ep_ratio, ep_day, d0, rw_target, rw_base, rw_val,
                          rw_lo, n_armed)
        if rewards is not None:  # rewards counted from the close of today
            n_armed = _arm_rewards(t, n_armed, rewards, ck, pr, rw_target, rw_base, m)
        # 7. running sums per path, the feedback EMA, per-day pair-mean sums (vectorised)
        for q in range(nq):
            for i in range(m):
                cum[q, i] += dq[q, i]
        for i in range(m):
            fb[FB_EMA, i] += ew * (dq[Q_HASHPRICE_USD, i] - fb[FB_EMA, i])
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
        if hists is not None:  # distributions of the day's index and difficulty
            slot = hists[0][t]
            if slot >= 0:
                day_histograms(dq, m, np.log(init[I_INDEX_REF_USD]), np.log(d0), hists[1][slot], hists[2][slot])
        while next_cp < n_cp and cp_days[next_cp] == t:
            for q in range(nq):
                for i in range(m):
                    cps[next_cp, q, i] = cum[q, i]
            next_cp += 1
        if samples is not None:
            _samples(p0, n, t, lv, dq, samples)
        if (t + 1) % refresh == 0:  # the feedback drift, refreshed every few days
            _refresh_drift(fb, par, steps[t, S_LOG_COST], m)

    return cps, epoch_idx, ep_ratio, ep_day, rw_val
