"""Pricing results: per trade, its measures in long format (trade, measure, value, stderr, unit)
and its cash flows (like ORE's flows report).

>>> r = TradeResult("t", "hashprice_forward", pv_usd=10.0, pv_stderr=0.5, currency="USD")
>>> [(x["measure"], x["value"], x["unit"]) for x in r.rows()]
[('pv', 10.0, 'USD')]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

FLOW_COLUMNS = ["trade", "type", "pay_date", "pay_date_is_random", "currency", "expected_amount", "stderr",
                "pv_usd", "pv_stderr", "fixed", "settled"]


@dataclass
class Measure:
    name: str
    value: float
    stderr: float | None
    unit: str


@dataclass
class TradeResult:
    trade_id: str
    type_name: str
    pv_usd: float | None = None
    pv_stderr: float | None = None
    fair_rate: float | None = None
    notional: float | None = None
    initial_margin: float | None = None
    currency: str | None = None
    error: str | None = None
    fair_rate_stderr: float | None = None
    fair_rate_on_tick: float | None = None
    fair_rate_unit: str | None = None
    status: str = "priced"  # "priced", "settled" (every cash flow paid by the as-of date) or "error"
    measures: list[Measure] = field(default_factory=list)
    cashflows: list[dict] = field(default_factory=list)

    def __post_init__(self):
        if self.error is not None:
            self.status = "error"

    def to_dict(self) -> dict:
        return {"id": self.trade_id, "type": self.type_name, "status": self.status, "pv_usd": self.pv_usd,
                "pv_stderr": self.pv_stderr, "fair_rate": self.fair_rate,
                "fair_rate_stderr": self.fair_rate_stderr, "fair_rate_on_tick": self.fair_rate_on_tick,
                "fair_rate_unit": self.fair_rate_unit if self.fair_rate is not None else None,
                "notional": self.notional, "initial_margin": self.initial_margin, "currency": self.currency,
                "measures": {m.name: {"value": m.value, "stderr": m.stderr, "unit": m.unit} for m in self.measures},
                "cashflows": self.cashflows, "error": self.error}

    def rows(self) -> list[dict]:
        """Long format: one row per measure, (trade, type, measure, value, stderr, unit, error)."""
        base = {"trade": self.trade_id, "type": self.type_name}
        if self.error is not None:
            return [{**base, "measure": "pv", "value": None, "stderr": None, "unit": "USD", "error": self.error}]
        cur = self.currency
        rate_unit = self.fair_rate_unit or f"{cur}/PH/day"
        out = [{**base, "measure": "pv", "value": self.pv_usd, "stderr": self.pv_stderr, "unit": "USD"}]
        if self.fair_rate is not None:
            out.append({**base, "measure": "fair_rate", "value": self.fair_rate, "stderr": self.fair_rate_stderr,
                        "unit": rate_unit})
        if self.fair_rate_on_tick is not None:
            out.append({**base, "measure": "fair_rate_on_tick", "value": self.fair_rate_on_tick, "stderr": None,
                        "unit": rate_unit})
        for name in ("notional", "initial_margin"):
            value = getattr(self, name)
            if value is not None:
                out.append({**base, "measure": name, "value": value, "stderr": 0.0, "unit": cur})
        for m in self.measures:
            out.append({**base, "measure": m.name, "value": m.value, "stderr": m.stderr, "unit": m.unit})
        return [{**r, "error": None} for r in out]

    def flow_rows(self) -> list[dict]:
        return [{"trade": self.trade_id, "type": self.type_name, **c} for c in self.cashflows]


@dataclass
class PortfolioResult:
    trades: list[TradeResult]
    paths: int
    seed: int

    @property
    def total_pv_usd(self) -> float:
        return float(sum(t.pv_usd for t in self.trades if t.pv_usd is not None))

    def to_dict(self) -> dict:
        return {"trades": [t.to_dict() for t in self.trades], "total_pv_usd": self.total_pv_usd,
                "paths": self.paths, "seed": self.seed,
                "results": [r for t in self.trades for r in t.rows()]}

    def to_frame(self):
        """The results in long format, a row per (trade, measure), units in their own column."""
        import pandas as pd

        return pd.DataFrame([r for t in self.trades for r in t.rows()],
                            columns=["trade", "type", "measure", "value", "stderr", "unit", "error"])

    def flows_frame(self):
        """Every cash flow, a row each: pay date, currency, expected amount and PV with stderrs."""
        import pandas as pd

        return pd.DataFrame([r for t in self.trades for r in t.flow_rows()], columns=FLOW_COLUMNS)


def checked(res: TradeResult, problem: str | None) -> TradeResult:
    """A result whose numbers are all finite and whose stderr can be trusted, else its error."""
    values = [(n, getattr(res, n)) for n in ("notional", "initial_margin", "pv_usd", "pv_stderr", "fair_rate",
                                              "fair_rate_stderr", "fair_rate_on_tick")]
    values += [(m.name, v) for m in res.measures for v in (m.value, m.stderr)]
    for name, v in values:
        if v is not None and not math.isfinite(v):
            why = (f"{name}: not a finite number ({v!r}); the trade's size and strike are beyond what "
                   "can be valued")
            return TradeResult(res.trade_id, res.type_name, currency=res.currency, error=why)
    if problem is not None:
        return TradeResult(res.trade_id, res.type_name, currency=res.currency,
                           error=f"pv_stderr: no trustworthy standard error: {problem}; use more paths")
    return res
