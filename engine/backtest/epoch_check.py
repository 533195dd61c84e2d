"""Out-of-sample check of the difficulty per epoch: the model's distribution as of a market date
against the epochs that actually followed.

From the market's as-of date the engine simulates to a little past the last epoch in the file
that starts after that date. Each such epoch is matched to the model's epoch by its first
block's height (current epoch start + 2016 k) and, when at least half the paths reach it,
reported with the model's mean, 5/50/95% quantiles, the actual's percentile in the model's
distribution (mid-distribution CDF of the histogram: a point mass at the actual gives 50),
ln(actual / mean) and whether the actual lies in the 5-95% band. Dates are compared too: the
model's expected start (the UTC day of the mean retarget time) against the file's date, which
the file may have estimated (``date_estimated``, about +/- 1 day).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from curves.market import MAX_HORIZON_DAYS, Market
from curves.toml_io import InputError
from engine.mc.distributions import MIN_REACH_PROBABILITY, current_epoch_start_height, epoch_frame, epoch_percentile
from engine.mc.model import ModelParams
from engine.mc.simulation import Simulation

HORIZON_MARGIN_DAYS = 28  # simulate this far past the last epoch's date, so that most paths reach it
BAND = (5.0, 95.0)
COLUMNS = ("start_height", "actual_date", "date_estimated", "expected_start", "date_error_days",
           "reach_probability", "actual_difficulty", "model_mean", "model_mean_stderr", "model_p05",
           "model_p50", "model_p95", "percentile", "log_error", "inside_90")


def _plain(v):
    """A JSON-ready scalar."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, (int, np.integer)):
        return int(v)
    return float(v) if math.isfinite(v) else None


@dataclass
class EpochCheck:
    """Per-epoch rows (model against actual) and their summary."""

    asof: dt.date
    paths: int
    seed: int
    horizon_days: int
    rows: pd.DataFrame
    skipped: list[int]
    seconds: float

    def summary(self) -> dict:
        r = self.rows
        n = len(r)
        return {
            "epochs": n,
            "mean_log_error": float(r["log_error"].mean()) if n else None,
            "rmse_log_error": float(np.sqrt((r["log_error"] ** 2).mean())) if n else None,
            "inside_90": int(r["inside_90"].sum()),
            "inside_90_expected": 0.9 * n,
            "mean_percentile": float(r["percentile"].mean()) if n else None,
            "mean_abs_date_error_days": float(r["date_error_days"].abs().mean()) if n else None,
            "skipped_not_reached": self.skipped,
        }

    def to_dict(self) -> dict:
        rows = [{k: _plain(v) for k, v in rec.items()} for rec in self.rows.to_dict(orient="records")]
        return {"asof": self.asof.isoformat(), "paths": self.paths, "seed": self.seed,
                "horizon_days": self.horizon_days, "epochs": rows, "summary": self.summary()}


def check_epochs(epochs: pd.DataFrame, market: Market, model: ModelParams, *, paths: int = 100_000,
                 seed: int = 42, threads: int | None = None, horizon_days: int | None = None,
                 progress: Callable[[int, int], None] | None = None) -> EpochCheck:
    """Model against actual for every epoch of ``epochs`` that starts after the as-of date.

    ``horizon_days`` (default: to the last such epoch's date plus 28 days) bounds the
    simulation; epochs past it, or reached by fewer than half the paths, are listed in
    ``skipped``.
    """
    asof = market.asof
    first = current_epoch_start_height(market.height)
    dates = pd.to_datetime(epochs["date"]).dt.date
    after = epochs.loc[(dates > asof).to_numpy() & (epochs["height"] > first).to_numpy()]
    if after.empty:
        raise InputError("epochs", f"no epoch starts after the as-of date {asof} (height > {first:,})")
    last = pd.Timestamp(after["date"].iloc[-1]).date()
    if horizon_days is None:
        horizon_days = min((last - asof).days + HORIZON_MARGIN_DAYS, MAX_HORIZON_DAYS)
    sim = Simulation(market, model, n_days=horizon_days, n_paths=paths, seed=seed, threads=threads)
    run = sim.run([(0, horizon_days - 1)], progress=progress)
    model_rows = epoch_frame(run, asof, market.height, min_reach=MIN_REACH_PROBABILITY).set_index("start_height")
    rows, skipped = [], []
    for e in after.itertuples():
        height = int(e.height)
        if height not in model_rows.index:
            skipped.append(height)
            continue
        m = model_rows.loc[height]
        actual = float(e.difficulty)
        actual_date = pd.Timestamp(e.date).date()
        pct = epoch_percentile(run, int(m["epoch"]), actual)
        rows.append({
            "start_height": height,
            "actual_date": actual_date,
            "date_estimated": bool(e.date_estimated),
            "expected_start": m["expected_start"],
            "date_error_days": (actual_date - m["expected_start"]).days,
            "reach_probability": float(m["reach_probability"]),
            "actual_difficulty": actual,
            "model_mean": float(m["difficulty_mean"]),
            "model_mean_stderr": float(m["difficulty_mean_stderr"]),
            "model_p05": float(m["difficulty_p05"]),
            "model_p50": float(m["difficulty_p50"]),
            "model_p95": float(m["difficulty_p95"]),
            "percentile": pct,
            "log_error": math.log(actual / float(m["difficulty_mean"])),
            "inside_90": bool(BAND[0] <= pct <= BAND[1]),
        })
    return EpochCheck(asof, run.n_paths, seed, horizon_days, pd.DataFrame(rows, columns=COLUMNS), skipped,
                      run.seconds)
