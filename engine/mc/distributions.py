"""Distributions from a run: difficulty per epoch (retarget) and the daily index and difficulty
on selected days, read from the kernel's fixed-grid histograms (:mod:`engine.mc.histogram`).

Conventions:

* epoch k = 1, 2, ... is the k-th retarget after the as-of date; its first block is at height
  ``current epoch start + 2016 k``;
* a path's start time for epoch k is a fractional day index s = t + f: the retarget falls a
  fraction f into day t, and day t is the UTC date as-of + 1 + t (day 0 starts at the as-of
  close). The mean start time s̄ falls on the date as-of + 1 + floor(s̄): ``expected_start``;
* means, standard errors and quantiles are over the paths that reach the epoch within the
  horizon (``reach_probability``); epochs reached by fewer than half the paths are left out of
  the curve's table, since a mean conditional on an early arrival misleads;
* the stderr of the mean difficulty is the ratio estimator's, with antithetic pairs as the
  independent units (delta method); quantiles are exact to a fraction of a bin (2^-8 in log).

>>> expected_start_date(dt.date(2026, 1, 31), 6.12)
datetime.date(2026, 2, 7)
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from curves import protocol
from engine.mc import histogram
from engine.mc import kernel as K

MIN_REACH_PROBABILITY = 0.5
EPOCH_QUANTILES = (0.05, 0.50, 0.95)
BAND_QUANTILES = (0.05, 0.25, 0.50, 0.75, 0.95)
DISTRIBUTION_DAY_STRIDE = 7
MAX_DISTRIBUTION_DAYS = 200
# The chain's difficulty is quantised (the compact nBits target keeps at least 15 mantissa bits:
# steps up to 2^-15 = 3e-5 relative) and the model's is not: closer than this counts as a tie.
DIFFICULTY_TIE_LOG = 1e-4


def expected_start_date(asof: dt.date, start_day_mean: float) -> dt.date:
    """UTC date of a mean fractional start day: day index t is the date as-of + 1 + t."""
    return asof + dt.timedelta(days=1 + math.floor(start_day_mean))


def current_epoch_start_height(height: int) -> int:
    """First block of the epoch that holds block ``height``."""
    return height - height % protocol.RETARGET_BLOCKS


def distribution_days(n_days: int, stride: int = DISTRIBUTION_DAY_STRIDE,
                      max_days: int = MAX_DISTRIBUTION_DAYS) -> list[int]:
    """Day indices for daily distributions: every ``stride`` days from day 0 (the stride widens
    so that at most ``max_days`` are kept), and the last day."""
    stride = max(stride, math.ceil(n_days / (max_days - 1)))
    days = list(range(0, n_days, stride))
    if days[-1] != n_days - 1:
        days.append(n_days - 1)
    return days


def _ratio_stats(sums: np.ndarray, n_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of r = D / D_0 - 1 over reaching paths and its stderr (pairs as the units)."""
    x, y = sums[:, K.E_COUNT], sums[:, K.E_REL]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = y / x
        resid = np.maximum(sums[:, K.E_REL2] - 2.0 * r * sums[:, K.E_REL_COUNT]
                           + r * r * sums[:, K.E_COUNT2], 0.0)
        x_bar = x / n_pairs
        var = resid / (n_pairs * max(n_pairs - 1, 1)) / (x_bar * x_bar)
    return r, np.sqrt(var)


def epoch_frame(run, asof: dt.date, height: int, min_reach: float = MIN_REACH_PROBABILITY) -> pd.DataFrame:
    """One row per epoch reached by at least ``min_reach`` of the paths (see module docstring).

    Columns: epoch, start_height, start_day_mean, start_day_sd, expected_start (a date),
    reach_probability, difficulty_mean, difficulty_mean_stderr, difficulty_p05/p50/p95.
    """
    sums = run.epochs
    cnt = sums[:, K.E_COUNT]
    reach = cnt / run.n_paths
    d0 = run.difficulty_ref
    rel, rel_se = _ratio_stats(sums, run.n_pairs)
    with np.errstate(invalid="ignore", divide="ignore"):
        day = sums[:, K.E_DAY] / cnt
        day_sd = np.sqrt(np.maximum(sums[:, K.E_DAY2] / cnt - day * day, 0.0))
    q = np.full((reach.size, len(EPOCH_QUANTILES)), np.nan)
    for k in range(min(reach.size, run.epoch_hist.shape[0])):
        lo, hi = run.epoch_range[k]
        q[k] = histogram.quantile(run.epoch_hist[k], lo, hi, EPOCH_QUANTILES)
    keep = (reach >= min_reach) & (cnt > 0)
    first = current_epoch_start_height(height)
    k1 = np.arange(1, reach.size + 1)
    frame = pd.DataFrame({
        "epoch": k1,
        "start_height": first + protocol.RETARGET_BLOCKS * k1,
        "start_day_mean": day,
        "start_day_sd": day_sd,
        "expected_start": [expected_start_date(asof, s) if math.isfinite(s) else None for s in day],
        "reach_probability": reach,
        "difficulty_mean": d0 * (1.0 + rel),
        "difficulty_mean_stderr": d0 * rel_se,
        "difficulty_p05": d0 * np.exp(q[:, 0]),
        "difficulty_p50": d0 * np.exp(q[:, 1]),
        "difficulty_p95": d0 * np.exp(q[:, 2]),
    })
    return frame.loc[keep].reset_index(drop=True)


def epoch_percentile(run, epoch: int, difficulty: float, tie_log: float = DIFFICULTY_TIE_LOG) -> float:
    """Where ``difficulty`` sits in the model's distribution of epoch ``epoch`` (1 = the next
    retarget), in percent: the mid-distribution CDF, model values within ``tie_log`` (in log)
    of it counting half, so a point mass at the value gives 50."""
    k = epoch - 1
    if not 0 <= k < run.epoch_hist.shape[0]:
        return math.nan
    lo, hi = run.epoch_range[k]
    x = math.log(difficulty / run.difficulty_ref)
    return 100.0 * histogram.cdf_mid(run.epoch_hist[k], lo, hi, x, tie=tie_log)


def daily_bands(run, probs=BAND_QUANTILES) -> pd.DataFrame:
    """Quantiles of the daily index (USD/PH/day) and of difficulty on the run's distribution days.

    Columns: day, date, hashprice_usd_per_ph_day_pXX and difficulty_pXX for each probability,
    plus the per-day means (hashprice: BTC forward as control variate; difficulty: plain).
    """
    days = list(run.distribution_days)
    labels = [f"p{round(100 * p):02d}" for p in probs]
    out = {"day": days, "date": [run.dates[t] for t in days]}
    for h, name, ref in ((K.H_INDEX_USD, "hashprice_usd_per_ph_day", run.index_ref_usd),
                         (K.H_DIFFICULTY, "difficulty", run.difficulty_ref)):
        q = np.array([histogram.quantile(run.day_hist[j, h], *run.day_range[j, h], probs)
                      for j in range(len(days))]).reshape(len(days), len(probs))
        for i, label in enumerate(labels):
            out[f"{name}_{label}"] = ref * np.exp(q[:, i])
    hp_mean, _ = run.daily_hashprice_cv()
    out["hashprice_usd_per_ph_day_mean"] = hp_mean[days]
    out["difficulty_mean"] = run.daily[days, K.D_DIFF] / run.n_pairs
    return pd.DataFrame(out)
