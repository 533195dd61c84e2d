"""HashpriceCurve: monthly forwards of the daily hashprice index with standard errors,
expected difficulty per month, the difficulty distribution per epoch, and the daily expected
index underneath (with its distribution on selected days, when the run asked for it).

>>> import datetime as dt
>>> from curves.periods import Period
>>> c = HashpriceCurve(asof=dt.date(2026, 1, 31), periods=[Period(dt.date(2026, 2, 1), dt.date(2026, 2, 28))],
...     hashprice_usd_per_ph_day=[40.0], hashprice_stderr=[0.1], hashvalue_btc_per_ph_day=[5e-4],
...     hashvalue_stderr=[1e-6], difficulty_mean=[1.3e14], btc_forward_usd=[80_000.0],
...     daily_dates=[dt.date(2026, 2, 1) + dt.timedelta(days=k) for k in range(28)],
...     daily_hashprice_usd_per_ph_day=[40.0] * 28, daily_hashprice_stderr=[0.1] * 28)
>>> c.forward_usd_per_ph_day(dt.date(2026, 2, 1), dt.date(2026, 2, 28))
(40.0, 0.1)
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from curves.periods import Period
from curves.toml_io import InputError

EPOCH_KEYS = ("start_height", "expected_start", "reach_probability", "difficulty_mean",
              "difficulty_mean_stderr", "difficulty_p05", "difficulty_p50", "difficulty_p95")


def _plain(v):
    """A JSON-ready scalar: ints stay ints, dates become ISO strings, NaN becomes None."""
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, (int, np.integer)):
        return int(v)
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


@dataclass
class HashpriceCurve:
    """Forwards per period (USD/PH/day, BTC/PH/day) with stderrs; daily expected index.

    ``epochs``: one row per retarget reached by at least half the paths (see
    :func:`engine.mc.distributions.epoch_frame` for the columns and conventions).
    ``daily_bands``: quantiles of the daily index and difficulty on selected days, or None.
    """

    asof: dt.date
    periods: list[Period]
    hashprice_usd_per_ph_day: np.ndarray
    hashprice_stderr: np.ndarray
    hashvalue_btc_per_ph_day: np.ndarray
    hashvalue_stderr: np.ndarray
    difficulty_mean: np.ndarray
    btc_forward_usd: np.ndarray
    daily_dates: list[dt.date]
    daily_hashprice_usd_per_ph_day: np.ndarray
    daily_hashprice_stderr: np.ndarray
    epochs: pd.DataFrame = field(default_factory=pd.DataFrame)
    paths: int = 0
    seed: int = 0
    samples_hashprice_usd_per_ph_day: np.ndarray | None = None
    daily_bands: pd.DataFrame | None = None

    def __post_init__(self):
        for name in ("hashprice_usd_per_ph_day", "hashprice_stderr", "hashvalue_btc_per_ph_day",
                     "hashvalue_stderr", "difficulty_mean", "btc_forward_usd",
                     "daily_hashprice_usd_per_ph_day", "daily_hashprice_stderr"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=float))
        self._period_index = {(p.start, p.end): i for i, p in enumerate(self.periods)}

    def to_frame(self) -> pd.DataFrame:
        """One row per period, units in the column names."""
        return pd.DataFrame({
            "start": [p.start for p in self.periods],
            "end": [p.end for p in self.periods],
            "days": [p.days for p in self.periods],
            "hashprice_usd_per_ph_day": self.hashprice_usd_per_ph_day,
            "hashprice_stderr": self.hashprice_stderr,
            "hashvalue_btc_per_ph_day": self.hashvalue_btc_per_ph_day,
            "hashvalue_stderr": self.hashvalue_stderr,
            "difficulty_mean": self.difficulty_mean,
            "btc_forward_usd": self.btc_forward_usd,
        })

    def to_dict(self) -> dict:
        """The ``hashprice curve --json`` document."""
        months = []
        for i, p in enumerate(self.periods):
            months.append({
                "start": p.start.isoformat(), "end": p.end.isoformat(),
                "hashprice_usd_per_ph_day": float(self.hashprice_usd_per_ph_day[i]),
                "hashprice_stderr": float(self.hashprice_stderr[i]),
                "hashvalue_btc_per_ph_day": float(self.hashvalue_btc_per_ph_day[i]),
                "hashvalue_stderr": float(self.hashvalue_stderr[i]),
                "difficulty_mean": float(self.difficulty_mean[i]),
            })
        epochs = [{k: _plain(getattr(row, k)) for k in EPOCH_KEYS}
                  for row in self.epochs.itertuples()] if len(self.epochs) else []
        return {"asof": self.asof.isoformat(), "paths": self.paths, "seed": self.seed, "months": months,
                "epochs": epochs}

    def forward_usd_per_ph_day(self, start: dt.date, end: dt.date) -> tuple[float, float]:
        """Forward of the average daily index over [start, end], with its standard error.

        A range that is one of the curve's periods returns that period's estimate; any other
        range averages the daily expected index, and its stderr is the mean of the daily
        stderrs (an upper bound, since the average of correlated errors is at most that).
        """
        i = self._period_index.get((start, end))
        if i is not None:
            return float(self.hashprice_usd_per_ph_day[i]), float(self.hashprice_stderr[i])
        if end < start:
            raise InputError("end", f"{end} is before start {start}")
        if not self.daily_dates or start < self.daily_dates[0] or end > self.daily_dates[-1]:
            raise InputError("start", f"range {start}..{end} outside the curve's days")
        a = (start - self.daily_dates[0]).days
        b = (end - self.daily_dates[0]).days + 1
        return (float(self.daily_hashprice_usd_per_ph_day[a:b].mean()),
                float(self.daily_hashprice_stderr[a:b].mean()))
