"""The rare, scalar parts of a simulated day: retargets and halvings at their fractional times,
and the reward fixings whose last block falls in a stretch of blocks. Inlined where called: a
compiled call that takes arrays costs two atomic reference-count updates per array."""

import numpy as np
from numba import njit

from curves import protocol
from curves.units import SATS_PER_BTC, SECONDS_PER_DAY, TWO_POW_32
from engine.mc.layout import (
    CK_EPOCH_BLOCKS,
    CK_EPOCH_SECONDS,
    CK_HEIGHT,
    LV_BTC,
    LV_FEE,
    LV_HASHRATE,
    PR_CUM_SD,
    PR_DIFFICULTY,
    PR_HALVING_AT,
    PR_INV_DIFFICULTY,
    PR_SUBSIDY,
    PR_T_FIRST,
    Q_BLOCKS,
    Q_DIFF_X_BLOCKS,
    Q_DIFFICULTY,
    Q_HASHPRICE_USD,
    Q_HASHVALUE_BTC,
)

HV_K = SECONDS_PER_DAY * 1e15 / TWO_POW_32  # BTC per PH/s per day per (BTC per block / D)
REWARD_K = protocol.BLOCK_INTERVAL_S * 1e15 / TWO_POW_32  # BTC per PH/s per (subsidy / D) per block
RATE_K = SECONDS_PER_DAY / TWO_POW_32  # blocks per day per (H/s / D)
_ERR = "numpy"  # float division by zero gives inf, not an exception: divisions vectorise
# the protocol's rules, compiled into the event day (curves.protocol is plain Python)
_subsidy_sats = njit(inline="always")(protocol.subsidy_sats)
_retarget_difficulty = njit(inline="always")(protocol.retarget_difficulty)


@njit(inline="always", error_model=_ERR)
def fix_rewards(i, h0, h1, c0, slope, rw_target, rw_base, rw_val, rw_lo, n_armed):
    """Record the reward fixings of path ``i`` whose target height falls in (h0, h1], a stretch
    of blocks with one subsidy / difficulty ``slope`` and cumulative sum ``c0`` at ``h0``."""
    for r in range(rw_lo[i], n_armed):
        if np.isnan(rw_val[r, i]) and rw_target[r, i] <= h1:
            rw_val[r, i] = REWARD_K * (c0 + (rw_target[r, i] - h0) * slope - rw_base[r, i])
    while rw_lo[i] < n_armed and not np.isnan(rw_val[rw_lo[i], i]):
        rw_lo[i] += 1


@njit(inline="always", error_model=_ERR)
def event_day(lv, ck, pr, dq, i, t, epoch_idx, ep_ratio, ep_day, d0, rw_target, rw_base, rw_val, rw_lo, n_armed):
    """Exact piecewise day for path ``i`` with a retarget or halving: each stretch between events
    at its own difficulty and subsidy. Updates the path's epoch clock ``ck`` and protocol state
    ``pr``, writes the day's quantities to ``dq[:, i]`` and records each new epoch's D / D_0 and
    start day."""
    hashrate = lv[LV_HASHRATE, i]
    fee = lv[LV_FEE, i]
    b = ck[CK_EPOCH_BLOCKS, i]
    h = ck[CK_HEIGHT, i]
    s_ep = ck[CK_EPOCH_SECONDS, i]
    d = pr[PR_DIFFICULTY, i]
    inv_d = pr[PR_INV_DIFFICULTY, i]
    sub = pr[PR_SUBSIDY, i]
    halv_at = pr[PR_HALVING_AT, i]
    cum_sd = pr[PR_CUM_SD, i]
    rem = 1.0
    hv_acc = 0.0
    d_acc = 0.0
    dxb_acc = 0.0
    blocks_acc = 0.0
    while rem > 1e-15:
        rate = hashrate * RATE_K * inv_d
        to_ret = protocol.RETARGET_BLOCKS - b
        to_halv = halv_at - h
        nxt = min(to_ret, to_halv)
        need = nxt / rate
        slope = sub * inv_d
        hit = need < rem  # an event ends this stretch before the day does
        span = need if hit else rem  # days in this stretch
        step = nxt if hit else rate * rem  # blocks in this stretch
        if n_armed > 0 and rw_lo[i] < n_armed:
            fix_rewards(i, h, h + step, cum_sd, slope, rw_target, rw_base, rw_val, rw_lo, n_armed)
        cum_sd += step * slope
        dxb_acc += d * step
        hv_acc += HV_K * (sub + fee) * inv_d * span
        d_acc += d * span
        blocks_acc += step
        b += step
        h += step
        s_ep += span * SECONDS_PER_DAY
        rem = rem - span if hit else 0.0
        if hit:
            if to_halv <= to_ret:
                h = halv_at
                sub = _subsidy_sats(np.int64(halv_at) + 1) / SATS_PER_BTC
                halv_at += protocol.HALVING_INTERVAL_BLOCKS
            if to_ret <= to_halv:
                d_new = _retarget_difficulty(d, s_ep - pr[PR_T_FIRST, i])
                k = epoch_idx[i]
                if k < ep_ratio.shape[0]:
                    ep_ratio[k, i] = d_new / d0
                    ep_day[k, i] = t + 1.0 - rem  # the new epoch starts 1 - rem into day t
                epoch_idx[i] = k + 1
                d = d_new
                inv_d = 1.0 / d_new
                b = 0.0
                s_ep = 0.0
                pr[PR_T_FIRST, i] = SECONDS_PER_DAY / (hashrate * RATE_K * inv_d)
    ck[CK_EPOCH_BLOCKS, i] = b
    ck[CK_HEIGHT, i] = h
    ck[CK_EPOCH_SECONDS, i] = s_ep
    pr[PR_DIFFICULTY, i] = d
    pr[PR_INV_DIFFICULTY, i] = inv_d
    pr[PR_SUBSIDY, i] = sub
    pr[PR_HALVING_AT, i] = halv_at
    pr[PR_CUM_SD, i] = cum_sd
    dq[Q_HASHVALUE_BTC, i] = hv_acc
    dq[Q_HASHPRICE_USD, i] = hv_acc * lv[LV_BTC, i]
    dq[Q_DIFFICULTY, i] = d_acc
    dq[Q_BLOCKS, i] = blocks_acc
    dq[Q_DIFF_X_BLOCKS, i] = dxb_acc
