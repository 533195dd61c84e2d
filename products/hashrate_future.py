"""Bitnomial-style hashprice future (HUP): 1 PH/s for 30 days a contract, cash-settled on the
average daily index over the 30 days from ``start``, tick 0.25 USD/PH/day (7.50 USD a contract).

It is margined daily, so its value is not discounted: with deterministic rates the futures
price is the expected average index, and a position's value is ``sign x contracts x 30 x
(E[A] - price)`` in USD, settled through the margin account from today. The fair price is
reported as it is and rounded to the tick.

>>> import datetime as dt
>>> f = HashrateFuture("h1", dt.date(2026, 3, 1), contracts=4, price_usd_per_ph_day=35.0)
>>> f.end, f.notional, f.on_tick(35.13)
(datetime.date(2026, 3, 30), 4200.0, 35.25)
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace

import numpy as np

from curves.market import Market
from curves.schema import Schema, Spec
from products.fixings import CashFlow, WindowFixing
from products.registry import register
from products.validation import TRADE_DATE, check_dates_in_market

CONTRACT_DAYS = 30
TICK_USD_PER_PH_DAY = 0.25
SCHEMA = Schema("hashrate_future", {
    "id": Spec("text", doc="trade id, unique in the file"),
    "type": Spec("choice", choices=("hashrate_future",), doc="the product"),
    "start": replace(TRADE_DATE, doc="first of the contract's 30 days; on or before the as-of date, a seasoned "
                                     "trade (--fixings)"),
    "contracts": Spec("integer", "contracts", low=1, plausible=(1, 10_000_000), doc="1 PH/s for 30 days each",
                      why="at most ten times the 2026 network in PH/s"),
    "price_usd_per_ph_day": Spec("number", "USD/PH/day", low=0, low_open=True, plausible=(0.1, 1e5),
                                 doc="the trade's price", why="the index has ranged 35..3,900 USD/PH/day since 2016"),
    "side": Spec("choice", choices=("buy", "sell"), required=False, default="buy",
                 doc="buy receives the index and pays the price"),
})


@register
@dataclass(frozen=True)
class HashrateFuture:
    """``contracts`` x 1 PH/s over ``start .. start + 29``, at ``price_usd_per_ph_day``."""

    trade_id: str
    start: dt.date
    contracts: int
    price_usd_per_ph_day: float
    side: str = "buy"

    type_name = "hashrate_future"
    affine = True  # cash flows affine in the fixings: priced in one matrix product
    schema = SCHEMA
    currency = "USD"

    def __post_init__(self):
        SCHEMA.check("id", self.trade_id)
        for name in ("start", "contracts", "price_usd_per_ph_day", "side"):
            object.__setattr__(self, name, SCHEMA.check(name, getattr(self, name)))

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=CONTRACT_DAYS - 1)

    @property
    def sign(self) -> float:
        return 1.0 if self.side == "buy" else -1.0

    @property
    def notional(self) -> float:
        """Price x PH/s x 30 days, USD."""
        return self.price_usd_per_ph_day * self.contracts * CONTRACT_DAYS

    @property
    def initial_margin(self) -> None:
        return None  # set by the exchange

    def check_market(self, market: Market) -> None:
        check_dates_in_market(self.start, self.end, market, end_field="start", started_ok=True)

    def fixings(self) -> tuple[WindowFixing, ...]:
        return (WindowFixing("hashprice_usd_per_ph_day", self.start, self.end),)

    def cash_flows(self, values, market: Market) -> list[CashFlow]:
        """The variation margin, in USD, settled from today (no discounting)."""
        a = np.asarray(values, dtype=float)[..., 0]
        return [CashFlow(market.asof, self.sign * self.contracts * CONTRACT_DAYS * (a - self.price_usd_per_ph_day),
                         "USD")]

    def fair_rate_from_pv(self, pv_usd: float, market: Market) -> float:
        """The futures price that makes the position worth zero: E[A]."""
        return self.price_usd_per_ph_day + pv_usd / (self.sign * self.contracts * CONTRACT_DAYS)

    @staticmethod
    def on_tick(price: float) -> float:
        """A price rounded to the nearest tick (0.25 USD/PH/day)."""
        return math.floor(price / TICK_USD_PER_PH_DAY + 0.5) * TICK_USD_PER_PH_DAY
