"""Realised daily fixings for seasoned trades (``hashprice price PORTFOLIO --fixings FILE.csv``).

The file is one of two kinds, told apart by its columns:

* a **daily network history** (the schema of :mod:`engine.data.load`, as ``hashprice history``
  reads it): the index is computed by the protocol math of
  :func:`engine.data.index.hashprice_history`. Quantities: ``hashprice_usd_per_ph_day``,
  ``hashvalue_btc_per_ph_day``, ``btc_usd``, ``difficulty``, ``blocks_per_day``,
  ``difficulty_per_block`` and ``difficulty_x_blocks``. The history has one difficulty a day,
  the mean over that day's blocks (Coin Metrics ``DiffMean``), so a day's
  ``difficulty_per_block`` is that difficulty and ``difficulty_x_blocks = difficulty * blocks``
  is the sum of D over its blocks, even on a day that spans a retarget;
* a **published index**: columns ``date``, ``hashprice_usd_per_ph_day`` and optionally
  ``hashvalue_btc_per_ph_day``, nothing else. Values must be finite and > 0.

Rows may come in any date order; a date twice is an error. File problems raise
:class:`~engine.data.load.HistoryError` naming the line, date and column; a window the file
cannot fill raises :class:`~curves.toml_io.InputError` naming ``fixings``.

>>> import io
>>> f = load_realised_fixings(io.StringIO(
...     "date,hashprice_usd_per_ph_day\\n2026-01-02,40\\n2026-01-01,44\\n2026-01-03,42\\n"))
>>> f.quantities, f.first, f.last
(('hashprice_usd_per_ph_day',), datetime.date(2026, 1, 1), datetime.date(2026, 1, 3))
>>> f.window_sum("hashprice_usd_per_ph_day", f.first, f.last)
126.0
>>> f.window_mean("hashprice_usd_per_ph_day", dt.date(2026, 1, 1), dt.date(2026, 1, 2))
42.0
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from curves.toml_io import InputError
from engine.data.index import hashprice_history
from engine.data.load import (
    MAX_VALUE,
    REQUIRED_COLUMNS,
    HistoryError,
    _at,
    _file_lines,
    _numeric,
    _parse_days,
    _standardise_columns,
    network_history_frame,
)

HASHPRICE = "hashprice_usd_per_ph_day"
HASHVALUE = "hashvalue_btc_per_ph_day"
INDEX_COLUMNS = ("date", HASHPRICE, HASHVALUE)
HISTORY_QUANTITIES = (HASHPRICE, HASHVALUE, "btc_usd", "difficulty", "blocks_per_day",
                      "difficulty_per_block", "difficulty_x_blocks")
SHOW_MISSING = 5  # missing days an error names (it counts them all)


class RealisedFixings:
    """Daily realised values, one column per quantity, indexed by day (no gaps required)."""

    def __init__(self, daily: pd.DataFrame):
        self.daily = daily

    @property
    def quantities(self) -> tuple[str, ...]:
        return tuple(self.daily.columns)

    @property
    def first(self) -> dt.date:
        return self.daily.index[0].date()

    @property
    def last(self) -> dt.date:
        return self.daily.index[-1].date()

    def window_sum(self, quantity: str, start, end) -> float:
        """Sum of the daily ``quantity`` over ``start..end`` inclusive; every day must be there.

        For ``difficulty_per_block`` this sums each day's D; its window average is block-weighted
        (:meth:`window_mean`), from the sums of ``difficulty_x_blocks`` and ``blocks_per_day``."""
        if quantity not in self.daily.columns:
            raise InputError("fixings", f"{quantity} is not in the fixings file (it has {', '.join(self.quantities)})")
        lo, hi = pd.Timestamp(start), pd.Timestamp(end)
        if hi < lo:
            raise InputError("fixings", f"window end {hi.date()} is before its start {lo.date()}")
        days = pd.date_range(lo, hi, freq="D", unit=self.daily.index.unit)
        values = self.daily[quantity].reindex(days)
        missing = days[values.isna().to_numpy()]
        if len(missing):
            shown = ", ".join(d.date().isoformat() for d in missing[:SHOW_MISSING])
            more = ", ..." if len(missing) > SHOW_MISSING else ""
            raise InputError("fixings", f"{quantity} over {lo.date()}..{hi.date()}: no value on {len(missing):,} "
                                        f"day(s): {shown}{more}; the file runs {self.first}..{self.last}")
        return float(values.to_numpy().sum())

    def window_mean(self, quantity: str, start, end) -> float:
        """Average daily ``quantity`` over ``start..end``; ``difficulty_per_block`` is weighted by
        blocks (sum of D x blocks over sum of blocks), as :class:`products.fixings.WindowFixing`."""
        if quantity == "difficulty_per_block" and quantity in self.daily.columns:
            return (self.window_sum("difficulty_x_blocks", start, end)
                    / self.window_sum("blocks_per_day", start, end))
        days = (pd.Timestamp(end) - pd.Timestamp(start)).days + 1
        return self.window_sum(quantity, start, end) / days


def load_realised_fixings(path_or_buffer) -> RealisedFixings:
    """Read a fixings CSV: a daily network history or a published index (module docstring)."""
    df = pd.read_csv(path_or_buffer)
    if df.empty:
        raise HistoryError("no rows in the file")
    if HASHPRICE in df.columns:
        return RealisedFixings(_index_values(df))
    df = _standardise_columns(df)
    if not set(REQUIRED_COLUMNS) & set(df.columns):
        raise HistoryError(f"neither a daily network history (columns date, {', '.join(REQUIRED_COLUMNS)}) nor "
                           f"a published index (columns {', '.join(INDEX_COLUMNS)}, the last optional); "
                           f"found {list(df.columns)}")
    missing = [c for c in ("date", *REQUIRED_COLUMNS) if c not in df.columns]
    if missing:
        raise HistoryError(f"missing required column(s) {missing}; found {list(df.columns)}")
    lines, order = _sorted_rows(df)
    history = network_history_frame(df.iloc[order].reset_index(drop=True), lines=lines[order])
    index = hashprice_history(history)
    blocks = history["blocks"].to_numpy(dtype=float)
    difficulty = history["difficulty"].to_numpy(dtype=float)
    daily = pd.DataFrame({
        HASHPRICE: index[HASHPRICE].to_numpy(),
        HASHVALUE: index[HASHVALUE].to_numpy(),
        "btc_usd": history["price_usd"].to_numpy(dtype=float),
        "difficulty": difficulty,
        "blocks_per_day": blocks,
        "difficulty_per_block": difficulty,
        "difficulty_x_blocks": difficulty * blocks,
    }, index=history.index)
    return RealisedFixings(daily[list(HISTORY_QUANTITIES)])


def _sorted_rows(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each row's file line, and the stable order that sorts the rows by date."""
    lines = _file_lines(len(df))
    days = _parse_days(df["date"], "date", lines)
    return lines, np.argsort(days.asi8, kind="stable")


def _index_values(df: pd.DataFrame) -> pd.DataFrame:
    """Published index values, checked and sorted by date."""
    missing = [c for c in INDEX_COLUMNS[:2] if c not in df.columns]
    if missing:
        raise HistoryError(f"missing required column(s) {missing}; found {list(df.columns)}")
    extra = [c for c in df.columns if c not in INDEX_COLUMNS]
    if extra:
        raise HistoryError(f"unknown column(s) {extra}: a published-index file has only "
                           f"{', '.join(INDEX_COLUMNS)} (the last optional; a daily network history has "
                           f"no hashprice column)")
    lines, order = _sorted_rows(df)
    df, lines = df.iloc[order].reset_index(drop=True), lines[order]
    days = _parse_days(df["date"], "date", lines)
    for i in np.flatnonzero(np.diff(days.asi8) == 0):
        raise HistoryError("duplicate date", **_at(lines, days, i + 1), column="date")
    out = pd.DataFrame(index=pd.DatetimeIndex(days, name="date"))
    for col in INDEX_COLUMNS[1:]:
        if col not in df.columns:
            continue
        values = _numeric(df, col, lines, days)
        bad = ~np.isfinite(values) | (values <= 0) | (values >= MAX_VALUE)
        for i in np.flatnonzero(bad):
            raise HistoryError(f"bad value {float(values[i])!r}: must be finite and > 0 (and below {MAX_VALUE:g})",
                               **_at(lines, days, i), column=col)
        out[col] = values
    return out
