"""BTC futures, linear (CME style, settled in USD) or inverse (BitMEX/Deribit style, settled in BTC).

Both are margined daily, so, like ``hashrate_future``, a position is not discounted: the
variation margin that marks it to today's futures price is settled from today. With
deterministic rates the futures price is the forward ``F = F(expiry)`` for both styles, so the
fair price is ``F`` (``fair_rate_from_pv``). Write ``q = contracts x contract_btc`` (BTC) and
``K = price_usd``.

**Linear**: margined in USD; at expiry the buyer has received ``q (S_T - K)`` USD, and a position
is worth ``PV = sign x q x (F - K)`` USD today.

**Inverse**: each contract has a USD face of ``contract_btc x K``, fixed at the trade, so the
position's face is ``N = q K`` USD; it is margined and settled in BTC, and at expiry the buyer has
received ``N (1/K - 1/S_T)`` BTC. The project's BTC convention (a BTC amount converts to USD at
the BTC close of the day it accrues; the close of a future date is expected at ``F(date)``)
fixes its value:

* Converted at ``S_T``, the BTC payoff is worth ``N (S_T/K - 1) = q (S_T - K)`` USD at expiry:
  the linear payoff, so the fair price is still ``F``.
* Its **expected BTC amount** under the USD measure carries a convexity: for lognormal
  ``S_T`` with total variance ``s^2 = sigma^2 T``, ``E[1/S_T] = e^{s^2} / F``, so
  ``E[BTC payoff] = N (1/K - e^{s^2}/F)`` (``expected_btc_payoff``). This is not the
  position's value: a BTC amount is worth more on the paths where BTC is dear. The naive
  "fair" price ``1 / E[1/S_T] = F e^{-s^2}`` sets that expectation to zero and is wrong: a
  buyer at it holds ``PV = q (1 - e^{-s^2}) S_0 > 0``, what the seller gives away.
* The **PV** is what the margin account is credited today, in BTC, when the position is marked
  at the fair futures price ``F``: ``N (1/K - 1/F) = q (1 - K/F)`` BTC (``pv_btc``), converted
  at today's close ``S_0``::

      PV_inverse = sign x q x (F - K) x S_0 / F   (USD)

  Equivalently: the BTC value today of the BTC payoff is its expectation under the BTC measure,
  whose density against the USD measure is ``S_T / F``, so ``E[N (1/K - 1/S_T) S_T] / F =
  q (F - K) / F`` BTC; it is margined in BTC, so it is not discounted in BTC either. The
  inverse's PV is the linear one times ``S_0 / F``, the BTC carry discount to the expiry
  (about 0.98 for five months at a 5% basis): the variation margin is BTC, which earns the BTC
  rate, not the USD rate.

The closing price fixes the future (``WindowFixing("btc_usd", expiry, expiry)``), so Monte
Carlo can value it through ``cash_flows``; the portfolio reports the closed form above, with a
zero stderr.

>>> import datetime as dt
>>> from curves.market import Market
>>> m = Market.default()
>>> f = BtcFuture("c1", dt.date(2026, 6, 26), contracts=2, contract_btc=5.0, price_usd=80_000.0, style="linear")
>>> f.notional, round(f.analytic_pv_usd(m) / (10 * (m.btc_forward_usd(f.expiry) - 80_000.0)), 12)
(800000.0, 1.0)
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace

import numpy as np
import QuantLib as ql

from curves.market import Market
from curves.schema import Schema, Spec
from curves.toml_io import InputError
from products.fixings import CashFlow, WindowFixing
from products.registry import register
from products.validation import TRADE_DATE, check_dates_in_market

STYLES = ("linear", "inverse")
MAX_POSITION_BTC = 1e6  # about 5% of all bitcoin, like a BTC option's size
# a price this far from the BTC forward is a unit slip (e.g. thousands of USD); strict markets only
PRICE_RATIO_BOUNDS = (0.1, 10.0)
SCHEMA = Schema("btc_future", {
    "id": Spec("text", doc="trade id, unique in the file"),
    "type": Spec("choice", choices=("btc_future",), doc="the product"),
    "expiry": replace(TRADE_DATE, doc="last trading day (its close settles the future); after the as-of date"),
    "contracts": Spec("integer", "contracts", low=1, plausible=(1, 1e9), doc="number of contracts",
                      why="a billion 1-USD inverse contracts; the position is also at most 1e6 BTC"),
    "contract_btc": Spec("number", "BTC", low=0, low_open=True, plausible=(1e-8, 100.0),
                         doc="BTC per contract: 5 for CME, 0.1 for CME micro; an inverse contract's USD face is "
                             "contract_btc × price_usd",
                         why="a 1-USD contract at 1e8 USD/BTC to 100 BTC"),
    "price_usd": Spec("number", "USD", low=0, low_open=True, plausible=(1e-3, 1e8),
                      doc="the trade's price, USD per BTC",
                      why="the BTC price's own plausible range; within 0.1-10x of the BTC forward "
                          "(checked against the market)"),
    "style": Spec("choice", choices=STYLES, doc="linear: settled in USD; inverse: settled and margined in BTC"),
    "side": Spec("choice", choices=("buy", "sell"), required=False, default="buy",
                 doc="buy is long BTC"),
})


@register
@dataclass(frozen=True)
class BtcFuture:
    """``contracts`` x ``contract_btc`` BTC for ``expiry`` at ``price_usd``, linear or inverse."""

    trade_id: str
    expiry: dt.date
    contracts: int
    contract_btc: float
    price_usd: float
    style: str
    side: str = "buy"

    type_name = "btc_future"
    affine = True  # cash flows affine in the fixing (both styles, by the BTC convention)
    schema = SCHEMA
    currency = "USD"  # the price, the fair price and the notional (an inverse's face) are USD
    fair_rate_unit = "USD/BTC"
    initial_margin = None  # set by the exchange

    def __post_init__(self):
        SCHEMA.check("id", self.trade_id)
        for name in ("expiry", "contracts", "contract_btc", "price_usd", "style", "side"):
            object.__setattr__(self, name, SCHEMA.check(name, getattr(self, name)))
        if self.size_btc > MAX_POSITION_BTC:
            raise InputError("contracts", f"{self.contracts:,} contracts of {self.contract_btc:g} BTC are "
                             f"{self.size_btc:.6g} BTC; at most {MAX_POSITION_BTC:g} (about 5% of all bitcoin)")

    @property
    def sign(self) -> float:
        return 1.0 if self.side == "buy" else -1.0

    @property
    def size_btc(self) -> float:
        """q = contracts x contract_btc, BTC."""
        return self.contracts * self.contract_btc

    @property
    def face_usd(self) -> float:
        """USD face: contracts x contract_btc x price_usd (an inverse contract's settlement unit)."""
        return self.size_btc * self.price_usd

    @property
    def notional(self) -> float:
        """The face, USD: the linear future's BTC at the trade's price, or the inverse's face."""
        return self.face_usd

    def check_market(self, market: Market) -> None:
        """Expiry after the as-of date and within the horizon; for a strict market, the price within
        ``PRICE_RATIO_BOUNDS`` of the BTC forward to the expiry."""
        check_dates_in_market(self.expiry, self.expiry, market, "expiry", "expiry")
        if market.strict:
            fwd = market.btc_forward_usd(self.expiry)
            lo, hi = PRICE_RATIO_BOUNDS
            if not lo <= self.price_usd / fwd <= hi:
                raise InputError("price_usd", f"{self.price_usd:.6g} USD is {self.price_usd / fwd:.3g}x the BTC "
                                 f"forward {fwd:.6g} to {self.expiry}; must lie within {lo:g}-{hi:g}x (units?)")

    def fixings(self) -> tuple[WindowFixing, ...]:
        """BTC's close on the expiry day."""
        return (WindowFixing("btc_usd", self.expiry, self.expiry),)

    def cash_flows(self, values, market: Market) -> list[CashFlow]:
        """The variation margin, settled from today (no discounting), in USD, given ``S_T``.

        Linear: ``sign x q x (S_T - K)``. Inverse: the BTC payoff ``N (1/K - 1/S_T)`` weighted
        by the BTC measure's density ``S_T / F`` and converted at today's close ``S_0``:
        ``sign x q x (S_T - K) x S_0 / F``; its expectation over ``S_T`` is the PV (module
        docstring), not the BTC payoff converted at ``S_T``, which is paid at expiry.
        """
        s = np.asarray(values, dtype=float)[..., 0]
        amount = self.sign * self.size_btc * (s - self.price_usd)
        if self.style == "inverse":
            amount = amount * self._btc_margin_factor(market)
        return [CashFlow(market.asof, amount, "USD")]

    def _btc_margin_factor(self, market: Market) -> float:
        """S_0 / F(expiry): a USD amount at expiry as BTC under the BTC measure, at today's close."""
        return market.btc_spot_usd / market.btc_forward_usd(self.expiry)

    def analytic_pv_usd(self, market: Market) -> float:
        """``sign x q x (F - K)``, times ``S_0 / F`` for the inverse (module docstring); USD."""
        pv = self.sign * self.size_btc * (market.btc_forward_usd(self.expiry) - self.price_usd)
        return pv * self._btc_margin_factor(market) if self.style == "inverse" else pv

    def pv_btc(self, market: Market) -> float:
        """The position's value in BTC today: for the inverse, the BTC margin credit at the fair
        price, ``sign x N (1/K - 1/F)``; for either style, the PV at today's close."""
        return self.analytic_pv_usd(market) / market.btc_spot_usd

    def expected_btc_payoff(self, market: Market) -> float:
        """Inverse only: ``E[sign x N (1/K - 1/S_T)]`` under the USD measure, lognormal ``S_T``
        with the market's total variance: ``sign x N (1/K - e^{s^2}/F)``, BTC. A statistic,
        not a value: the PV weights the BTC by ``S_T`` (see the module docstring)."""
        if self.style != "inverse":
            raise InputError("style", "the expected BTC payoff is an inverse future's")
        f, var = market.btc_forward_usd(self.expiry), market.btc_total_variance(self.expiry)
        return self.sign * self.face_usd * (1.0 / self.price_usd - math.exp(var) / f)

    def fair_rate_from_pv(self, pv_usd: float, market: Market) -> float | None:
        """The futures price that makes the position worth zero: ``F`` when ``pv_usd`` is the PV.

        Linear: ``K + PV / (sign q)``. Inverse: ``PV = sign q (1 - K/F) S_0`` gives
        ``F = K / (1 - PV / (sign q S_0))`` (None where no positive price gives that PV).
        """
        if self.style == "linear":
            return self.price_usd + pv_usd / (self.sign * self.size_btc)
        rest = 1.0 - pv_usd / (self.sign * self.size_btc * market.btc_spot_usd)
        return self.price_usd / rest if rest > 0 else None


def cme_last_trading_day(year: int, month: int) -> dt.date:
    """CME Bitcoin futures' last trading day: the month's last Friday, moved back to the previous
    day that is a business day in both London and New York (QuantLib's calendars).

    >>> cme_last_trading_day(2026, 3), cme_last_trading_day(2026, 12)  # 25 December is a holiday
    (datetime.date(2026, 3, 27), datetime.date(2026, 12, 24))
    """
    last = ql.Date.endOfMonth(ql.Date(1, month, year))
    friday = last - (last.weekday() - ql.Friday) % 7
    cal = ql.JointCalendar(ql.UnitedKingdom(), ql.UnitedStates(ql.UnitedStates.NYSE))
    d = cal.adjust(friday, ql.Preceding)
    return dt.date(d.year(), d.month(), d.dayOfMonth())
