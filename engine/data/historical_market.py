"""The physical market and network state on a past day, from the history up to that day only.

The backtest (:mod:`engine.backtest.backtest`) starts its forecasts at each origin ``T`` from the
physical market (:func:`market_from_history`), which carries the posterior of the current
hashrate and the kernel's feedback EMA of the historical index (:func:`kernel_ema`).
Nothing dated after ``T`` is read.

**Physical market at T** (:func:`market_from_history`). BTC spot = ``price_usd`` on ``T``;
USD rate 0 (the forecast is not discounted); BTC drift ``btc_drift_annual`` enters as the
forward basis, so ``E[S_t] = S_T exp(drift t)``. The default 0 makes BTC a martingale: the
trailing mean return has a standard error of about vol / sqrt(years) (~70%/year on one
year of data), far larger than any plausible drift, so estimating it adds noise, not skill.
BTC vol (``vol_model``): ``"flat"`` is the realised vol of daily log returns over the
trailing ``vol_window_days`` (jumps included: the engine removes the calibrated jump
variance from the diffusion, so the total variance is the realised one);
``"mean_reverting"`` (default) starts the variance there and lets it revert to the
history's unconditional variance at a speed fitted on the history
(:func:`btc_vol_term_structure`), passed as the market's vol term structure. Realised BTC
variance mean-reverts within months (the AR(1) of 30-day log realised variance has
``phi ~ 0.45``): on the 2018-2025 origins the flat 90-day vol under-states the variance of
the realised 1/3/6-month log price averages by a factor 1.4/1.9/2.1, the mean-reverting one
by 1.2/1.2/1.1. Network state: difficulty of the current epoch (from the epoch table when
given, else reconstructed exactly from the day's mean difficulty, see
:func:`current_difficulty`), ``height = height_end``, fee per block = the day's fees /
blocks (about the Luxor 144-block mean), ``hashrate_ehs`` and ``hashrate_log_sd`` = the
level and posterior sd of :func:`engine.data.hashrate_filter.filter_hashrate` on the trailing
block counts, ``hashprice_ema_usd_per_ph_day`` = the kernel's EMA of the historical index
(the feedback state the calibration regressed on), epoch progress = ``height % 2016 + 1`` blocks at the trailing 7-day
block rate (or the epoch's first-block timestamp when the epoch table is given).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import signal

from curves import protocol
from curves.market import Market
from curves.toml_io import InputError
from curves.units import H_PER_TH, SECONDS_PER_DAY
from engine.data.hashrate_filter import MIN_FILTER_DAYS, filter_hashrate
from engine.data.index import hashprice_history

DAYS_PER_MONTH = 30
DAYS_PER_YEAR = 365.0
VOL_MODELS = ("mean_reverting", "flat")
VOL_POINT_DAYS = (1, 7, 14, *range(30, 751, 30))


def _daily(history: pd.DataFrame) -> pd.DataFrame:
    df = history.set_index("date") if "date" in history.columns else history
    return df.set_axis(pd.DatetimeIndex(df.index).normalize())


def _row_position(df: pd.DataFrame, asof: dt.date) -> int:
    ts = pd.Timestamp(asof)
    pos = df.index.searchsorted(ts, side="left")
    if pos >= len(df) or df.index[pos] != ts:
        raise InputError("asof", f"{asof} is not a day of the history")
    return int(pos)


def current_difficulty(df: pd.DataFrame, pos: int) -> float:
    """Difficulty of the epoch in force at the end of day ``pos``, from days ``<= pos`` only.

    ``difficulty`` is the mean over the day's blocks. When a retarget falls inside the day
    (the epoch's first block is one of the day's blocks, but not the first), the day mixes
    ``n_old`` blocks at the previous day's difficulty and ``n_new = height % 2016 + 1``
    blocks at the new one, so ``D_new = (blocks * D_mean - n_old * D_prev) / n_new``.
    """
    row = df.iloc[pos]
    blocks = int(row["blocks"])
    d_mean = float(row["difficulty"])
    if "height_end" not in df.columns or pos == 0:
        return d_mean
    n_new = int(row["height_end"]) % protocol.RETARGET_BLOCKS + 1
    if n_new >= blocks:
        return d_mean
    n_old = blocks - n_new
    d_prev = float(df["difficulty"].iloc[pos - 1])
    d_new = (blocks * d_mean - n_old * d_prev) / n_new
    return d_new if d_new > 0 and math.isfinite(d_new) else d_mean


def _epoch_seconds(df: pd.DataFrame, pos: int, height: int, epochs: pd.DataFrame | None) -> float:
    """Seconds from the current epoch's first block to the end of day ``pos``."""
    first = height - height % protocol.RETARGET_BLOCKS
    end_of_day = pd.Timestamp(df.index[pos]) + pd.Timedelta(days=1)
    if epochs is not None:
        hit = epochs.loc[epochs["height"] == first]
        if len(hit) and pd.notna(hit["timestamp_utc"].iloc[0]):
            stamp = pd.Timestamp(hit["timestamp_utc"].iloc[0]).tz_convert(None)
            secs = (end_of_day - stamp).total_seconds()
            if 0 <= secs <= 40 * SECONDS_PER_DAY:
                return float(secs)
    blocks_done = height % protocol.RETARGET_BLOCKS + 1
    rate = float(df["blocks"].iloc[max(0, pos - 6):pos + 1].mean())  # blocks per day
    return max(blocks_done - 0.5, 0.0) / rate * SECONDS_PER_DAY


def btc_vol_term_structure(returns: np.ndarray, start_window_days: int = 90,
                           point_days: Sequence[int] = VOL_POINT_DAYS) -> np.ndarray:
    """Black vols (annual) at ``point_days`` from a mean-reverting variance forecast.

    ``returns`` are the daily log returns up to the as-of date. The instantaneous variance
    starts at the trailing ``start_window_days`` realised variance ``v0`` and reverts to the
    unconditional variance ``vL`` (the mean squared return of all of ``returns``) at the
    rate ``kappa = -12 ln phi`` per year, ``phi`` the AR(1) coefficient of the log realised
    variance of consecutive 30-day blocks (ending at the as-of date; clipped to [0.01, 0.99]).
    The vol to day ``T`` is the root of the average variance
    ``vL + (v0 - vL) (1 - exp(-kappa T)) / (kappa T)``.
    """
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    v0 = float(np.mean(r[-start_window_days:] ** 2))
    vl = float(np.mean(r**2))
    n = len(r) // DAYS_PER_MONTH
    phi = 0.99
    if n >= 12:
        blocks = r[len(r) - DAYS_PER_MONTH * n:].reshape(n, DAYS_PER_MONTH)
        x = np.log(np.maximum(np.mean(blocks**2, axis=1), 1e-12))
        X = np.column_stack([np.ones(n - 1), x[:-1]])
        phi = float(np.linalg.lstsq(X, x[1:], rcond=None)[0][1])
    phi = min(max(phi, 0.01), 0.99)
    kappa = -math.log(phi) * DAYS_PER_YEAR / DAYS_PER_MONTH
    t = np.asarray(point_days, dtype=float) / DAYS_PER_YEAR
    avg = vl + (v0 - vl) * (1.0 - np.exp(-kappa * t)) / (kappa * t)
    return np.sqrt(avg * DAYS_PER_YEAR)


def market_from_history(history: pd.DataFrame, asof: dt.date, *, vol_window_days: int = 90,
                        vol_model: str = "mean_reverting", btc_drift_annual: float = 0.0,
                        epochs: pd.DataFrame | None = None, hashrate_vol_annual: float = 0.28,
                        ema_days: float = 30.0, index: pd.DataFrame | None = None) -> Market:
    """A physical-measure :class:`Market` on a historical day, from rows dated ``<= asof`` only.

    See the module docstring for each field. ``epochs`` (:func:`engine.data.load.load_difficulty_epochs`)
    is optional: its difficulty and first-block timestamp of the current epoch replace the
    reconstructions; only the epoch that has started by ``asof`` is read.
    ``hashrate_vol_annual`` (the hashrate filter's level noise) and ``ema_days`` (the feedback
    EMA) come from the model that will run on the market; ``index`` is the precomputed
    :func:`engine.data.index.hashprice_history` of ``history`` (rows after ``asof`` ignored).

    >>> import pandas as pd
    >>> days = pd.date_range("2024-01-01", periods=60, name="date")
    >>> h = pd.DataFrame({"price_usd": 40_000.0 * np.exp(0.02 * (-1.0) ** np.arange(60)),
    ...     "hashrate_ths": 5e8, "difficulty": 7e13, "fees_btc": 30.0, "subsidy_btc": 900.0,
    ...     "blocks": 144, "height_end": 823_000 + 144 * np.arange(60)}, index=days)
    >>> m = market_from_history(h, dt.date(2024, 2, 29), vol_window_days=5, vol_model="flat")
    >>> round(m.btc_spot_usd), m.difficulty, m.fee_btc_per_block, m.height, m.epoch_blocks_elapsed
    (39208, 70000000000000.0, 0.20833333333333334, 831496, 905)
    >>> round(m.hashrate_ehs, 6), round(m.hashprice_ema_usd_per_ph_day, 2)
    (500.0, 74.43)
    """
    df = _daily(history)
    asof = pd.Timestamp(asof).date()
    pos = _row_position(df, asof)
    df = df.iloc[:pos + 1]  # nothing after asof is read below
    if isinstance(vol_window_days, bool) or not isinstance(vol_window_days, int) or vol_window_days < 2:
        raise InputError("vol_window_days", f"must be an integer >= 2, got {vol_window_days!r}")
    if not (math.isfinite(btc_drift_annual) and abs(btc_drift_annual) <= 1.0):
        raise InputError("btc_drift_annual", f"must lie in [-1, 1], got {btc_drift_annual!r}")
    row = df.iloc[pos]
    if "height_end" not in df.columns:
        raise InputError("history", "needs a height_end column for the network state")
    height = int(row["height_end"])
    if vol_model not in VOL_MODELS:
        raise InputError("vol_model", f"one of {VOL_MODELS}, got {vol_model!r}")
    r_all = np.diff(np.log(df["price_usd"].to_numpy(dtype=float)))
    r = r_all[-vol_window_days:]
    if len(r) < 2:
        raise InputError("asof", f"needs at least 3 days of history before {asof}")
    vol = float(np.std(r, ddof=1) * math.sqrt(DAYS_PER_YEAR))
    vols: tuple = ()
    if vol_model == "mean_reverting":
        vols = tuple({"date": asof + dt.timedelta(days=int(d)), "value": v}
                     for d, v in zip(VOL_POINT_DAYS, btc_vol_term_structure(r_all, vol_window_days)))
    difficulty = current_difficulty(df, pos)
    if epochs is not None:
        first = height - height % protocol.RETARGET_BLOCKS
        hit = epochs.loc[epochs["height"] == first, "difficulty"]
        if len(hit):
            difficulty = float(hit.iloc[0])
    if len(df) < MIN_FILTER_DAYS:
        raise InputError("history", f"needs at least {MIN_FILTER_DAYS} days up to {asof} to filter the hashrate")
    hashrate = filter_hashrate(np.log(df["hashrate_ths"].to_numpy(dtype=float) * H_PER_TH),
                               df["blocks"].to_numpy(dtype=float), hashrate_vol_annual=hashrate_vol_annual)
    if index is None:
        index = hashprice_history(df)
    hp = index["hashprice_usd_per_ph_day"].to_numpy(dtype=float)[:pos + 1]
    ema = float(kernel_ema(hp[np.isfinite(hp)], ema_days)[-1])
    fee = float(row["fees_btc"]) / float(row["blocks"])
    return Market(
        asof=asof, btc_spot_usd=float(row["price_usd"]), difficulty=difficulty, height=height,
        epoch_seconds_elapsed=_epoch_seconds(df, pos, height, epochs), fee_btc_per_block=fee,
        hashrate_ehs=hashrate.level_ehs, hashrate_log_sd=hashrate.level_log_sd,
        hashprice_ema_usd_per_ph_day=ema, usd_rate=0.0, btc_basis_annual=float(btc_drift_annual),
        btc_vol=vol, btc_vols=vols,
        provenance=(f"market_from_history at {asof}: physical measure, BTC drift "
                    f"{btc_drift_annual:g}/y, vol: trailing {vol_window_days}d realised"
                    + (", mean-reverting to the history's variance" if vols else ", flat")),
    )


def kernel_ema(x: np.ndarray, days: float) -> np.ndarray:
    """The kernel's feedback EMA: ``e_0 = x_0``, ``e_t = e_{t-1} + (x_t - e_{t-1}) / days``."""
    w = 1.0 / days
    y, _ = signal.lfilter([w], [1.0, -(1.0 - w)], x, zi=[(1.0 - w) * x[0]])
    return y
