"""FTX-style difficulty ("HASH") future: cash-settled on the block-weighted average difficulty
over ``start..end``, in points of 1e12 (trillions).

FTX's HASH contracts expired to the average of each block's difficulty over the quarter, divided
by 1 trillion ("as of May 2020, the difficulty is roughly 16 trillion, meaning the index is
roughly 16"). Here the window is whole UTC days ``start..end`` (both included), and the average
is over the window's blocks (sum of D over its blocks / their number), not the daily average.

It is margined daily like ``hashrate_future``, so it is not discounted: with deterministic rates
the futures price is the expected settlement, and a position is worth ``sign x contracts x
usd_per_point x (E[A] / 1e12 - price_points)`` USD, settled through the margin account from
today. The fair price is in points. No tick is given: FTX's tick for HASH is not in the sources
found (the help page gives the settlement only), so the price is reported as it is.

>>> import datetime as dt
>>> from curves.market import Market
>>> f = DifficultyFuture("h", dt.date(2026, 4, 1), dt.date(2026, 6, 30), contracts=5, price_points=150.0)
>>> (flow,) = f.cash_flows([160e12], Market.default())
>>> float(flow.amount), flow.pay_date, f.notional
(50.0, datetime.date(2026, 1, 31), 750.0)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import numpy as np

from curves.market import Market
from curves.schema import Schema, Spec
from products.fixings import CashFlow, WindowFixing
from products.registry import register
from products.validation import (
    DIFFICULTY_RATIO_BOUNDS,
    TRADE_DATE,
    check_dates_in_market,
    check_difficulty_level,
    date_range,
)

DIFFICULTY_PER_POINT = 1e12
_LO, _HI = DIFFICULTY_RATIO_BOUNDS
SCHEMA = Schema("difficulty_future", {
    "id": Spec("text", doc="trade id, unique in the file"),
    "type": Spec("choice", choices=("difficulty_future",), doc="the product"),
    "start": replace(TRADE_DATE, doc="first day of the averaging window; on or before the as-of date, a "
                                     "seasoned trade (--fixings)"),
    "end": replace(TRADE_DATE, doc="last day of the window (inclusive); at most 20,000 days after the as-of date"),
    "contracts": Spec("integer", "contracts", low=1, plausible=(1, 1e9), doc="number of contracts",
                      why="1e9 contracts at 1 USD a point is about 1.4e11 USD at the 2026 difficulty"),
    "price_points": Spec("number", "points", low=0, low_open=True, plausible=(1e-12, 1e6),
                         doc="the trade's price: difficulty / 1e12",
                         why=f"difficulty 1..1e18, the market's range, in trillions; within {_LO:g}-{_HI:g}x "
                             "of today's difficulty (checked against the market)"),
    "usd_per_point": Spec("number", "USD/point", low=0, low_open=True, plausible=(None, 1e6), required=False,
                          default=1.0, doc="a contract's USD value of one point",
                          why="a million USD a point is 1.4e8 USD a contract in 2026"),
    "side": Spec("choice", choices=("buy", "sell"), required=False, default="buy",
                 doc="buy receives the average difficulty in points and pays the price"),
})


@register
@dataclass(frozen=True)
class DifficultyFuture:
    """``contracts`` at ``price_points`` on the block-weighted average difficulty / 1e12 over
    ``start..end``, ``usd_per_point`` USD a point."""

    trade_id: str
    start: dt.date
    end: dt.date
    contracts: int
    price_points: float
    usd_per_point: float = 1.0
    side: str = "buy"

    type_name = "difficulty_future"
    affine = True  # cash flows affine in the fixings: priced in one matrix product
    schema = SCHEMA
    currency = "USD"
    fair_rate_unit = "points"
    initial_margin = None  # set by the exchange

    def __post_init__(self):
        SCHEMA.check("id", self.trade_id)
        s, e = date_range(self.start, self.end)
        object.__setattr__(self, "start", s)
        object.__setattr__(self, "end", e)
        for name in ("contracts", "price_points", "usd_per_point", "side"):
            object.__setattr__(self, name, SCHEMA.check(name, getattr(self, name)))

    @property
    def sign(self) -> float:
        return 1.0 if self.side == "buy" else -1.0

    @property
    def notional(self) -> float:
        """Price x USD a point x contracts, USD."""
        return self.price_points * self.usd_per_point * self.contracts

    def check_market(self, market: Market) -> None:
        """The window within the horizon (started: seasoned, from --fixings); for a strict market, the
        price within ``DIFFICULTY_RATIO_BOUNDS`` of today's difficulty in points."""
        check_dates_in_market(self.start, self.end, market, started_ok=True)
        check_difficulty_level(self.price_points * DIFFICULTY_PER_POINT, market, "price_points",
                               f"{self.price_points:.6g} points")

    def fixings(self) -> tuple[WindowFixing]:
        """The block-weighted average difficulty over the window (absolute, not points)."""
        return (WindowFixing("difficulty_per_block", self.start, self.end),)

    def cash_flows(self, values, market: Market) -> list[CashFlow]:
        """The variation margin, in USD, settled from today (no discounting)."""
        a = np.asarray(values, dtype=float)[..., 0]
        points = a / DIFFICULTY_PER_POINT
        return [CashFlow(market.asof, self.sign * self.contracts * self.usd_per_point * (points - self.price_points),
                         "USD")]

    def fair_rate_from_pv(self, pv_usd: float, market: Market) -> float:
        """The futures price in points that makes the position worth zero: E[A] / 1e12."""
        return self.price_points + pv_usd / (self.sign * self.contracts * self.usd_per_point)
