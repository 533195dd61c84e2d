"""European BTC option (a miner's collar leg): valued with Black-76 through QuantLib on the
market's BTC forward and vol term structure, discounted on the USD curve.

Its fixing is BTC at the end of ``expiry`` (the day's close, like the daily index), so the same
option can be valued on the simulated paths too (for hedges and risk); the portfolio reports the
Black-76 value, with a zero stderr.

>>> import datetime as dt
>>> from curves.market import Market
>>> o = BtcOption("o1", dt.date(2026, 6, 26), strike_usd=80_000.0, option="call", size_btc=2.0)
>>> round(o.analytic_pv_usd(Market.default())) > 0
True
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace

import numpy as np
import QuantLib as ql

from curves.market import Market
from curves.schema import Schema, Spec
from products.fixings import CashFlow, WindowFixing
from products.registry import register
from products.validation import TRADE_DATE, check_dates_in_market

SCHEMA = Schema("btc_option", {
    "id": Spec("text", doc="trade id, unique in the file"),
    "type": Spec("choice", choices=("btc_option",), doc="the product"),
    "expiry": replace(TRADE_DATE, doc="expiry day (the day's close fixes it); after the as-of date"),
    "strike_usd": Spec("number", "USD", low=0, low_open=True, plausible=(1e-3, 1e8), doc="strike, USD per BTC",
                       why="the BTC price's own plausible range"),
    "option": Spec("choice", choices=("call", "put"), doc="call or put"),
    "size_btc": Spec("number", "BTC", low=0, low_open=True, plausible=(None, 1e6), doc="BTC per option",
                     why="about 5% of all bitcoin"),
    "side": Spec("choice", choices=("buy", "sell"), required=False, default="buy", doc="buy holds the option"),
})


@register
@dataclass(frozen=True)
class BtcOption:
    """A European call or put on BTC/USD, ``size_btc`` BTC, struck at ``strike_usd``."""

    trade_id: str
    expiry: dt.date
    strike_usd: float
    option: str
    size_btc: float
    side: str = "buy"

    type_name = "btc_option"
    schema = SCHEMA
    currency = "USD"
    notional = None
    initial_margin = None

    def __post_init__(self):
        SCHEMA.check("id", self.trade_id)
        for name in ("expiry", "strike_usd", "option", "size_btc", "side"):
            object.__setattr__(self, name, SCHEMA.check(name, getattr(self, name)))

    @property
    def sign(self) -> float:
        return 1.0 if self.side == "buy" else -1.0

    def check_market(self, market: Market) -> None:
        check_dates_in_market(self.expiry, self.expiry, market, "expiry", "expiry")

    def fixings(self) -> tuple[WindowFixing, ...]:
        return (WindowFixing("btc_usd", self.expiry, self.expiry),)

    def cash_flows(self, values, market: Market) -> list[CashFlow]:
        s = np.asarray(values, dtype=float)[..., 0]
        payoff = np.maximum(s - self.strike_usd, 0.0) if self.option == "call" else np.maximum(self.strike_usd - s, 0.0)
        return [CashFlow(self.expiry, self.sign * self.size_btc * payoff, "USD")]

    def analytic_pv_usd(self, market: Market) -> float:
        """Black-76 (QuantLib ``BlackCalculator``) on the forward and the vol term structure."""
        kind = ql.Option.Call if self.option == "call" else ql.Option.Put
        stdev = math.sqrt(market.btc_total_variance(self.expiry))
        calc = ql.BlackCalculator(ql.PlainVanillaPayoff(kind, self.strike_usd), market.btc_forward_usd(self.expiry),
                                  stdev, market.discount(self.expiry))
        return self.sign * self.size_btc * calc.value()

    def fair_rate_from_pv(self, pv_usd: float, market: Market) -> None:
        return None
