"""Prepaid (deliverable) hashrate forward: the buyer pays up front and receives the hashrate's output.

The buyer pays ``price x size_phs x days`` on ``payment_date``, the price in USD/PH/day or in
BTC/PH/day (exactly one of ``price_usd_per_ph_day`` and ``price_btc_per_ph_day``), and receives
what ``size_phs`` mines over ``start..end`` (both included). By the project's BTC convention a
BTC amount converts to USD at the BTC close of the day it accrues, and an amount paid on a date
at that date's close, whose expectation is the BTC forward ``F(date)``:

* the **payment** of a BTC price is worth ``price x size x days x F(payment_date)`` USD,
  discounted on the USD curve from ``payment_date``;
* the **receipts**, valued like the NDF's (``products.hashrate_forward``): each calendar-month
  slice's output is ``days x size x A`` USD, ``A`` the slice's average daily USD hashprice
  index (each day's hashvalue at that day's BTC close, ``E[hashvalue_d S_d] =
  E[hashprice_d]``), paid at the slice's last day and discounted on the USD curve times
  ``exp(-financing_spread x t)``, ``t`` the year fraction to the slice's end. The spread is the
  buyer's credit on the seller, who keeps the machines: the prepayment is a loan repaid in hash.

A ``payment_date`` on or before the as-of date is already paid: its flow is omitted and only the
receipts remain. The cash flows are affine in the fixings.

**Fair price** (``fair_rate_from_pv``, in the contract currency): the price whose payment on
``payment_date`` makes the PV zero, ``PV(receipts) / (size x days x DF(pay) x conv(pay))``,
``conv`` 1 for USD and ``F(pay)`` for BTC. For a payment already made (on or before the as-of
date) the payment date is taken as the as-of date (``DF = 1``, ``conv`` = today's close): the
price that, paid today, would buy the remaining receipts, i.e. today's fair prepaid price for
the same delivery. (Carrying the receipts back to a past date would need past rates the market
does not hold.)

The NDF strip with the same terms (``ndf_strip``) is priced on the same paths, and
``discount_to_ndf`` gives the prepaid price's discount to the NDF rate, e.g. Luxor's upfront
0.00185 BTC/PH/day against an NDF at 0.00190 is a 2.63% discount. With no financing spread and
the payment at the end of a one-month period, the fair prepaid USD price is the NDF's fair rate.

>>> import datetime as dt
>>> d = DeliverableForward("p1", dt.date(2026, 3, 1), dt.date(2026, 3, 31), size_phs=10.0,
...                        payment_date=dt.date(2026, 2, 15), price_usd_per_ph_day=38.0)
>>> d.currency, d.price, d.notional
('USD', 38.0, 11780.0)
>>> round(discount_to_ndf(0.00185, 0.00190), 4)
0.0263
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace

import numpy as np

from curves.market import Market
from curves.periods import Period
from curves.schema import Schema, Spec
from curves.toml_io import InputError
from products.fixings import CashFlow, WindowFixing
from products.hashrate_forward import SCHEMA as NDF_SCHEMA
from products.hashrate_forward import STRIKE_RATIO_BOUNDS, HashrateForward, _month_slices
from products.registry import register
from products.validation import TRADE_DATE, check_dates_in_market, date_range, positive_number

PRICES = ("price_usd_per_ph_day", "price_btc_per_ph_day")
SCHEMA = Schema("deliverable_forward", {
    "id": Spec("text", doc="trade id, unique in the file"),
    "type": Spec("choice", choices=("deliverable_forward",), doc="the product"),
    "start": replace(TRADE_DATE, doc="first delivery day; after the market's as-of date"),
    "end": replace(TRADE_DATE, doc="last delivery day (inclusive); at most 20,000 days after the as-of date"),
    "size_phs": NDF_SCHEMA["size_phs"],
    "payment_date": replace(TRADE_DATE, doc="the buyer pays price × size × days on it; on or before the as-of "
                                            "date: already paid; not after the last delivery day"),
    "price_usd_per_ph_day": Spec("number", "USD/PH/day", low=0, low_open=True, plausible=(0.1, 1e5),
                                 required=False, doc="prepaid price in USD; give it or the BTC price",
                                 why="the index has ranged 35..3,900 USD/PH/day since 2016; within 0.05-20x "
                                     "of today's index (checked against the market)"),
    "price_btc_per_ph_day": Spec("number", "BTC/PH/day", low=0, low_open=True, plausible=(1e-7, 100.0),
                                 required=False, doc="prepaid price in BTC, paid at the payment date's BTC "
                                                     "close; give it or the USD price",
                                 why="the 2026 hashvalue is about 0.00045 BTC/PH/day; within 0.05-20x of "
                                     "today's (checked against the market)"),
    "financing_spread": Spec("number", "1/year", low=-1.0, high=10.0, plausible=(-0.1, 1.0), required=False,
                             default=0.0, doc="spread over the USD curve on the receipts, continuously compounded: "
                                              "the buyer's credit on the seller",
                             why="a distressed miner borrows at tens of percent a year; below -10% would rate "
                                 "the seller's credit far above the USD curve's"),
    "side": Spec("choice", choices=("buy", "sell"), required=False, default="buy",
                 doc="buy pays the price and receives the output"),
})


@register
@dataclass(frozen=True)
class DeliverableForward:
    """Prepaid hashrate over ``start..end``: pay ``price x size_phs x days`` on ``payment_date``,
    receive the output. Exactly one of ``price_usd_per_ph_day`` and ``price_btc_per_ph_day``."""

    trade_id: str
    start: dt.date
    end: dt.date
    size_phs: float
    payment_date: dt.date
    price_usd_per_ph_day: float | None = None
    price_btc_per_ph_day: float | None = None
    financing_spread: float = 0.0
    side: str = "buy"

    type_name = "deliverable_forward"
    affine = True  # cash flows affine in the fixings: priced in one matrix product
    schema = SCHEMA
    initial_margin = None  # prepaid: nothing to margin

    def __post_init__(self):
        SCHEMA.check("id", self.trade_id)
        s, e = date_range(self.start, self.end)
        object.__setattr__(self, "start", s)
        object.__setattr__(self, "end", e)
        for name in ("size_phs", "payment_date", "financing_spread", "side"):
            object.__setattr__(self, name, SCHEMA.check(name, getattr(self, name)))
        given = [name for name in PRICES if getattr(self, name) is not None]
        if not given:
            raise InputError(PRICES[0], f"missing: give exactly one of {PRICES[0]} and {PRICES[1]}")
        if len(given) == 2:
            raise InputError(PRICES[1], f"give exactly one of {PRICES[0]} and {PRICES[1]}, not both")
        object.__setattr__(self, given[0], SCHEMA.check(given[0], getattr(self, given[0])))
        if self.payment_date > self.end:
            raise InputError("payment_date", f"{self.payment_date} is after the last delivery day {self.end}; "
                                             "a prepaid forward is paid by then")

    @property
    def currency(self) -> str:
        """The price's currency: USD or BTC."""
        return "USD" if self.price_usd_per_ph_day is not None else "BTC"

    @property
    def price(self) -> float:
        """The prepaid price in the contract currency, per PH/s per day."""
        return self.price_usd_per_ph_day if self.currency == "USD" else self.price_btc_per_ph_day

    @property
    def sign(self) -> float:
        return 1.0 if self.side == "buy" else -1.0

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def notional(self) -> float:
        """The prepayment, price x PH/s x days, in the contract currency."""
        return self.price * self.size_phs * self.days

    def check_market(self, market: Market) -> None:
        """Delivery after the as-of date and within the horizon; for a strict market, the price
        within ``STRIKE_RATIO_BOUNDS`` of today's index in its currency (a unit slip)."""
        check_dates_in_market(self.start, self.end, market)
        if market.strict:
            index = (market.spot_hashprice_usd_per_ph_day() if self.currency == "USD"
                     else market.spot_hashvalue_btc_per_ph_day())
            lo, hi = STRIKE_RATIO_BOUNDS
            if not lo <= self.price / index <= hi:
                field = PRICES[self.currency != "USD"]
                raise InputError(field, f"{self.price:.6g} {self.currency}/PH/day is {self.price / index:.3g}x "
                                        f"today's index {index:.6g}; must lie within {lo:g}-{hi:g}x (units?)")

    def is_paid(self, market: Market) -> bool:
        """A payment on or before the as-of date is settled."""
        return self.payment_date <= market.asof

    def fixing_periods(self) -> list[Period]:
        """The delivery period's calendar-month slices, as the NDF's."""
        return list(_month_slices(self.start, self.end))

    def fixings(self) -> tuple[WindowFixing, ...]:
        """One fixing per monthly slice: the average daily USD hashprice index over it."""
        return tuple(WindowFixing("hashprice_usd_per_ph_day", p.start, p.end) for p in self.fixing_periods())

    def _payment_usd_per_unit(self, market: Market, day: dt.date) -> float:
        """USD value, at ``day``, of one unit of the price's currency paid on ``day``."""
        return 1.0 if self.currency == "USD" else market.btc_forward_usd(day)

    def cash_flows(self, values, market: Market) -> list[CashFlow]:
        """USD flows: per slice ``sign x size x days x A x exp(-spread x t_end)`` at the slice's
        end, and ``-sign x price x size x days`` (a BTC price at ``F(payment_date)``) on the
        payment date unless it is already paid. ``values[..., j]`` is slice j's average index."""
        x = np.asarray(values, dtype=float)
        out = []
        for s, p in enumerate(self.fixing_periods()):
            financing = math.exp(-self.financing_spread * market.year_fraction(p.end))
            out.append(CashFlow(p.end, self.sign * self.size_phs * p.days * financing * x[..., s], "USD"))
        if not self.is_paid(market):
            pay = self.price * self.size_phs * self.days * self._payment_usd_per_unit(market, self.payment_date)
            out.append(CashFlow(self.payment_date, -self.sign * pay, "USD"))
        return out

    def fair_rate_from_pv(self, pv_usd: float, market: Market) -> float:
        """The prepaid price (contract currency) that makes the PV zero, paid on the payment
        date, or on the as-of date when the payment is already made (module docstring)."""
        pay = max(self.payment_date, market.asof)
        per_price = self.size_phs * self.days * market.discount(pay) * self._payment_usd_per_unit(market, pay)
        receipts = pv_usd / self.sign + (0.0 if self.is_paid(market) else self.price * per_price)
        return receipts / per_price

    def ndf_strip(self) -> HashrateForward:
        """The NDF with the same delivery, currency, size and side, struck at the prepaid price."""
        return HashrateForward(f"{self.trade_id}-ndf", self.start, self.end, strike=self.price,
                               currency=self.currency, size_phs=self.size_phs, side=self.side)


def discount_to_ndf(prepaid_price: float, ndf_rate: float) -> float:
    """The prepaid price's discount to the NDF rate, ``(ndf_rate - prepaid_price) / ndf_rate``,
    both in the same currency per PH/s per day."""
    prepaid = positive_number(prepaid_price, "prepaid_price")
    ndf = positive_number(ndf_rate, "ndf_rate")
    return (ndf - prepaid) / ndf
