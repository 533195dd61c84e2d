"""Historical hashprice index, hash ribbons and difficulty-epoch changes from real data.

Inputs are the frames of :mod:`engine.data.load` (daily rows indexed by date, epoch rows).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from curves.protocol import hashvalue_btc_per_ph_day_array
from curves.units import TH_PER_EH, TH_PER_PH
from engine.data.load import HistoryError

_CHANGE_PCT_DECIMALS_TOL = 5e-5  # the epoch file rounds change_pct to 4 decimals
_DIFFICULTY_ROUNDING = 5e-4  # and difficulty to 3 decimals


def _daily(df: pd.DataFrame) -> pd.DataFrame:
    return df.set_index("date") if "date" in df.columns else df


def hashprice_history(df: pd.DataFrame) -> pd.DataFrame:
    """Daily hashprice index (USD/PH/day) and hashvalue (BTC/PH/day) from network history.

    ``hashvalue_btc_per_ph_day = 86,400 * 1e15 * reward_btc_per_block / (difficulty * 2^32)``
    with ``reward = (subsidy_btc + fees_btc) / blocks``, and ``hashprice = hashvalue * price``:
    the expected revenue of 1 PH/s over the day at that day's difficulty, whatever the number
    of blocks found (the Luxor index convention).

    ``naive_hashprice_usd_per_ph_day = (fees + subsidy) * price / (hashrate_ths / 1000)`` is
    realised revenue per unit of *measured* hashrate. When the hashrate is the block-count
    estimate ``D * blocks * 2^32 / 86,400`` (Coin Metrics, and this project's data) the two
    agree exactly. With an independent hashrate measure the naive figure also carries the
    luck of the day's block count (about +/-8% a day), which the index does not.
    """
    df = _daily(df)
    blocks = df["blocks"].to_numpy(dtype=float)
    fee_per_block = df["fees_btc"].to_numpy(dtype=float) / blocks
    subsidy_per_block = df["subsidy_btc"].to_numpy(dtype=float) / blocks
    hashvalue = hashvalue_btc_per_ph_day_array(df["difficulty"], subsidy_per_block, fee_per_block)
    revenue_btc = df["fees_btc"].to_numpy(dtype=float) + df["subsidy_btc"].to_numpy(dtype=float)
    price_usd = df["price_usd"].to_numpy(dtype=float)
    hashrate_ths = df["hashrate_ths"].to_numpy(dtype=float)
    out = pd.DataFrame(index=pd.DatetimeIndex(df.index, name="date"))
    out["hashvalue_btc_per_ph_day"] = hashvalue
    out["hashprice_usd_per_ph_day"] = hashvalue * price_usd
    out["naive_hashprice_usd_per_ph_day"] = revenue_btc * price_usd / (hashrate_ths / TH_PER_PH)
    out["fee_share"] = df["fees_btc"].to_numpy(dtype=float) / revenue_btc
    out["fee_btc_per_block"] = fee_per_block
    out["subsidy_btc_per_block"] = subsidy_per_block
    out["hashrate_ehs"] = hashrate_ths / TH_PER_EH
    return out


def hash_ribbons(df: pd.DataFrame, short_days: int = 30, long_days: int = 60) -> pd.DataFrame:
    """Hash ribbons: short and long simple moving averages of hashrate (EH/s) with signals.

    The frame is put on a gapless daily index first (missing days are NaN), and an SMA is
    defined only where its whole window has data. ``capitulation`` is True while the short
    SMA is below the long one; ``capitulation_start`` marks the day it crosses below and
    ``recovery`` the day it crosses back to or above the long SMA.
    """
    if not 0 < short_days < long_days:
        raise ValueError(f"need 0 < short_days < long_days, got {short_days}, {long_days}")
    df = _daily(df)
    index = pd.DatetimeIndex(df.index)
    days = pd.date_range(index.min(), index.max(), freq="D", name="date", unit=index.unit)
    hashrate_ehs = (df["hashrate_ths"] / TH_PER_EH).reindex(days)
    out = pd.DataFrame(index=days)
    out["hashrate_ehs"] = hashrate_ehs
    out["sma_short_ehs"] = hashrate_ehs.rolling(short_days, min_periods=short_days).mean()
    out["sma_long_ehs"] = hashrate_ehs.rolling(long_days, min_periods=long_days).mean()
    known = (out["sma_short_ehs"].notna() & out["sma_long_ehs"].notna()).to_numpy()
    below = (out["sma_short_ehs"] < out["sma_long_ehs"]).to_numpy() & known
    prev_known = np.r_[False, known[:-1]]
    prev_below = np.r_[False, below[:-1]]
    out["capitulation"] = below
    out["capitulation_start"] = below & ~prev_below & prev_known
    out["recovery"] = known & ~below & prev_below
    out.attrs.update(short_days=short_days, long_days=long_days)
    return out


def ribbon_signals(ribbons: pd.DataFrame) -> pd.DataFrame:
    """Dated hash-ribbon events: columns ``date`` and ``signal``, in date order."""
    events = [
        pd.DataFrame({"date": ribbons.index[ribbons[name].to_numpy()], "signal": name})
        for name in ("capitulation_start", "recovery")
    ]
    return pd.concat(events).sort_values("date", kind="stable").reset_index(drop=True)


def epoch_difficulty_changes(epochs_df: pd.DataFrame, check: bool = True) -> pd.DataFrame:
    """Per-epoch difficulty change (%) recomputed from difficulty, and epoch durations (days).

    ``change_pct = 100 * (D_k / D_{k-1} - 1)``; with ``check`` it must match the file's
    ``change_pct`` within its 4-decimal rounding plus the effect of the 3-decimal rounding of
    difficulty, else :class:`HistoryError`. ``duration_days`` runs from this epoch's first
    block to the next epoch's first block (NaN unless both timestamps are known);
    ``duration_days_implied = 14 * D_k / D_{k+1}`` is the span the retarget rule implies
    (2,015 intervals, before clamping).
    """
    d = epochs_df["difficulty"].to_numpy(dtype=float)
    ratio = np.r_[np.nan, d[1:] / d[:-1]]
    change_pct = 100.0 * (ratio - 1.0)
    out = pd.DataFrame({"height": epochs_df["height"].to_numpy(), "date": epochs_df["date"]})
    out["difficulty"] = d
    out["change_pct"] = change_pct
    if "change_pct" in epochs_df.columns:
        file_pct = epochs_df["change_pct"].to_numpy(dtype=float)
        out["change_pct_file"] = file_pct
        if check:
            _check_change_pct(out, d, ratio, file_pct)
    stamps = pd.to_datetime(epochs_df["timestamp_utc"], utc=True)
    out["duration_days"] = (stamps.shift(-1) - stamps).dt.total_seconds().to_numpy() / 86_400.0
    out["duration_days_implied"] = 14.0 * np.r_[d[:-1] / d[1:], np.nan]
    return out


def _check_change_pct(out, d, ratio, file_pct) -> None:
    rounding = 100.0 * ratio * _DIFFICULTY_ROUNDING * (1.0 / d + np.r_[np.nan, 1.0 / d[:-1]])
    tol = _CHANGE_PCT_DECIMALS_TOL + rounding + 1e-9 * np.abs(file_pct)
    bad = np.abs(out["change_pct"].to_numpy() - file_pct) > tol
    for i in np.flatnonzero(bad):
        raise HistoryError(
            f"change_pct in file {file_pct[i]!r} but difficulty gives {out['change_pct'][i]!r}",
            date=out["date"].iloc[i].date().isoformat(), column="change_pct",
        )
