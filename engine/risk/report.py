"""The risk report: a ladder in long format (trade, measure, bucket, value, stderr, unit), portfolio
totals as trade ``portfolio``, and the scenario grid, each cell with its stderr and its change
against the base.

>>> r = RiskReport(asof=None, paths=2, seed=1, rows=[ladder_row("t", "ndf", "pv", "all", 1.0, 0.5, "USD")])
>>> list(r.to_frame().columns)
['trade', 'type', 'measure', 'bucket', 'value', 'stderr', 'unit', 'error']
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

PORTFOLIO = "portfolio"
LADDER_COLUMNS = ["trade", "type", "measure", "bucket", "value", "stderr", "unit", "error"]
GRID_COLUMNS = ["btc_pct", "hashrate_pct", "pv_usd", "pv_stderr", "change_usd", "change_stderr", "error"]


def ladder_row(trade: str, type_name: str, measure: str, bucket: str, value, stderr, unit: str,
               error: str | None = None) -> dict:
    return {"trade": trade, "type": type_name, "measure": measure, "bucket": bucket, "value": value,
            "stderr": stderr, "unit": unit, "error": error}


@dataclass
class GridCell:
    btc_pct: float
    hashrate_pct: float
    pv_usd: float | None
    pv_stderr: float | None
    change_usd: float | None
    change_stderr: float | None
    error: str | None = None

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in GRID_COLUMNS}


@dataclass
class RiskReport:
    """Greeks per trade and for the portfolio, and the scenario grid (portfolio PV per cell)."""

    asof: dt.date | None
    paths: int
    seed: int
    rows: list[dict]
    grid: list[GridCell] = field(default_factory=list)
    btc_pcts: tuple[float, ...] = ()
    hashrate_pcts: tuple[float, ...] = ()
    conventions: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def to_frame(self):
        """The ladder, one row per (trade, measure, bucket); the portfolio's rows are trade
        ``portfolio``."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=LADDER_COLUMNS)

    def grid_frame(self):
        """The scenario grid, one row per (BTC move, hashrate move), percentages."""
        import pandas as pd

        return pd.DataFrame([c.to_dict() for c in self.grid], columns=GRID_COLUMNS)

    def portfolio_rows(self) -> list[dict]:
        return [r for r in self.rows if r["trade"] == PORTFOLIO]

    def value(self, trade: str, measure: str, bucket: str = "all") -> tuple[float | None, float | None]:
        """(value, stderr) of one ladder row."""
        for r in self.rows:
            if r["trade"] == trade and r["measure"] == measure and r["bucket"] == bucket:
                return r["value"], r["stderr"]
        raise KeyError((trade, measure, bucket))

    def to_dict(self) -> dict:
        return {"asof": None if self.asof is None else self.asof.isoformat(), "paths": self.paths,
                "seed": self.seed, "conventions": self.conventions, "ladder": self.rows,
                "grid": {"btc_pcts": list(self.btc_pcts), "hashrate_pcts": list(self.hashrate_pcts),
                         "cells": [c.to_dict() for c in self.grid]},
                **self.extra}
