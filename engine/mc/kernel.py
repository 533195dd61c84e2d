"""The fused Monte Carlo kernel: daily steps of BTC, hashrate and fees, exact retargets and
halvings, reduced on the fly to per-path window averages ("fixings") and per-day moments.

Paths go in blocks of antithetic pairs (:mod:`engine.mc.block` simulates one and
:mod:`engine.mc.block_summary` reduces it). A *lane* runs blocks lane, lane + n_lanes, ... on one
plain Python thread; the compiled functions release the GIL. Each is compiled on its own (a
compiled function that calls another re-optimises the callee's code with its own), which keeps
the first run's compile short. Block results are reduced by the caller in block order, so
sums never depend on threads.

Distributions: each retarget's difficulty (per epoch) and, on requested days, the daily index
and difficulty are counted on the fixed log-ratio grid of :mod:`engine.mc.histogram`. Counts are
integers, so they go to one histogram per lane and their totals are exact in any merge order;
memory is lanes x histograms x bins.
"""

import threading

import numpy as np

from curves import protocol
from curves.units import SATS_PER_BTC
from engine.mc.block import simulate_block
from engine.mc.block_summary import scramble_sums, summarise_block
from engine.mc.histogram import N_BINS
from engine.mc.layout import *  # noqa: F403  (the layout is part of this module's interface)
from engine.mc.layout import (
    I_DIFFICULTY,
    I_HEIGHT,
    N_DAILY,
    N_EPOCH_FIXINGS,
    N_EPOCH_SUMS,
    N_MOMENTS,
    N_QUANTITIES,
    N_SAMPLE_FIELDS,
    Q_DIFF_X_BLOCKS,
    R_MAX,
    R_MIN,
)
from engine.mc.path_events import REWARD_K  # noqa: F401  (BTC per PH/s per (subsidy / D) per block)
from engine.mc.sobol import block_normals


def _ints(a):
    return np.ascontiguousarray(a, dtype=np.int64)


def _floats(a):
    return np.ascontiguousarray(a, dtype=np.float64)


def simulate_chunk(seed, pair_start, n_pairs, block_pairs, steps, par, init, cp_days,
                   win_cp0, win_cp1, win_len, n_samples, n_epochs, store_paths, n_epoch_hist, day_slot,
                   n_lanes, ep_req, rw_day, rw_blocks, window_moments, daily=True, difficulty_x_blocks=True,
                   sobol=None):
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
    rewards[paths, len(rw_day)], scramble_sums (see ``sobol``)). Path 2p is the "+" member of pair p and 2p+1
    its antithetic twin. Histograms count int32 per lane: at most 2^31 - 1 paths per chunk.
    ``daily=False`` leaves ``daily`` at zero and ``difficulty_x_blocks=False`` the D x blocks
    quantity (its window values NaN, its moments zero): neither is then computed.
    ``sobol``: None (the daily shocks from the counter RNG), or ``engine.mc.sobol.kernel_tables``
    (scrambled Sobol points through a Brownian bridge); then a twelfth output,
    scramble_sums[n_blocks, R, 2, n_windows, N_QUANTITIES] (pair-mean sums of x and of the BTC
    control per scramble; with ``window_moments``), else that array has R = 0.
    """
    n_days = steps.shape[0]
    n_win = len(win_cp0)
    n_blocks = (n_pairs + block_pairs - 1) // block_pairs
    n_rows = 2 * n_pairs if store_paths else 0
    n_lanes = max(1, min(int(n_lanes), n_blocks))
    n_slots = int(np.max(day_slot, initial=-1)) + 1
    win_out = np.empty((n_rows, n_win, N_QUANTITIES))
    ep_out = np.empty((n_rows, len(ep_req), N_EPOCH_FIXINGS))
    rw_out = np.empty((n_rows, len(rw_day)))
    moments = np.zeros((n_blocks, N_MOMENTS, n_win, N_QUANTITIES))
    daily_sums = np.zeros((n_blocks, n_days, N_DAILY))
    epochs = np.zeros((n_blocks, n_epochs, N_EPOCH_SUMS))
    samples = np.zeros((n_samples, n_days, N_SAMPLE_FIELDS))
    epoch_hist = np.zeros((n_lanes, n_epoch_hist, N_BINS), np.int32)
    epoch_range = np.empty((n_lanes, n_epochs, 2))
    epoch_range[..., R_MIN] = np.inf
    epoch_range[..., R_MAX] = -np.inf
    day_hist = np.zeros((n_lanes, n_slots, 2, N_BINS), np.int32)
    day_range = np.empty((n_lanes, n_slots, 2, 2))
    day_range[..., R_MIN] = np.inf
    day_range[..., R_MAX] = -np.inf
    steps, par, init, win_len, rw_blocks = (_floats(a) for a in (steps, par, init, win_len, rw_blocks))
    cp_days, win_cp0, win_cp1, day_slot, ep_req, rw_day = (_ints(a) for a in (cp_days, win_cp0, win_cp1, day_slot,
                                                                                ep_req, rw_day))
    d0 = float(init[I_DIFFICULTY])
    height = int(init[I_HEIGHT])
    sub0 = protocol.subsidy_sats(height + 1) / SATS_PER_BTC
    halv0 = protocol.next_halving_height(height) - 1.0
    seed = int(seed)
    windows = (win_cp0, win_cp1, win_len)
    n_epoch_hist = int(n_epoch_hist)
    rewards = (rw_day, rw_blocks) if rw_day.size else None  # None: that code is not compiled
    sample_paths = samples if n_samples else None
    n_scr = 0 if sobol is None else int(sobol[0])
    scr_sums = np.zeros((n_blocks, n_scr, 2, n_win, N_QUANTITIES))

    def lane(k):
        """Blocks k, k + n_lanes, ... on one thread."""
        lane_hists = (day_slot, day_hist[k], day_range[k]) if n_slots else None
        normals = None if sobol is None else np.empty((n_days, 3, min(block_pairs, n_pairs)))
        for blk in range(k, n_blocks, n_lanes):
            p0 = pair_start + blk * block_pairs
            n = min(block_pairs, pair_start + n_pairs - p0)
            if normals is not None:
                block_normals(p0, n, *sobol, normals)
            cps, epoch_idx, ep_ratio, ep_day, rw_val = simulate_block(
                seed, p0, n, steps, par, init, sub0, halv0, cp_days, rewards, bool(daily), bool(difficulty_x_blocks),
                n_epochs, daily_sums[blk], sample_paths, lane_hists, normals)
            if n_scr and window_moments:
                scramble_sums(cps, n, p0, n_scr, windows, scr_sums[blk])
            paths = (2 * blk * block_pairs, ep_req, win_out, ep_out, rw_out) if store_paths else None
            summarise_block(cps, epoch_idx, ep_ratio, ep_day, rw_val, n, windows, d0, paths,
                            moments[blk] if window_moments else None,
                            (n_epoch_hist, epochs[blk], epoch_hist[k], epoch_range[k]))

    _run_lanes(n_lanes, lane)
    if not difficulty_x_blocks:
        win_out[:, :, Q_DIFF_X_BLOCKS] = np.nan
    return (win_out, moments, daily_sums, epochs, samples, epoch_hist, epoch_range, day_hist, day_range, ep_out,
            rw_out, scr_sums)


def _run_lanes(n_lanes, lane):
    """``lane(0)`` on the calling thread, the others on their own threads (the compiled block
    functions release the GIL)."""
    errors = []

    def run(k):
        try:
            lane(k)
        except BaseException as exc:  # re-raised on the calling thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(1, n_lanes)]
    for th in threads:
        th.start()
    try:
        run(0)
    finally:
        for th in threads:
            th.join()
    if errors:
        raise errors[0]
