"""Luxor-style hashrate forward (NDF): the buyer receives (daily index - K) x size_phs each day.

Settlement is monthly: each calendar-month slice of the delivery period pays at its last day,
discounted on the USD curve. A BTC contract's strike is in BTC/PH/day; its USD value uses
E[hashvalue_d * S_d] = E[hashprice_d], so it strikes at the BTC-measure forward E[hashprice]/F.

>>> import datetime as dt
>>> f = HashrateForward("t1", dt.date(2026, 3, 1), dt.date(2026, 3, 31), strike=40.0,
...                     currency="USD", size_phs=10.0, side="buy")
>>> f.notional, f.initial_margin
(12400.0, 4340.0)
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, replace

import numpy as np

from curves.market import Market
from curves.periods import Period, month_slices
from curves.schema import Schema, Spec
from curves.toml_io import InputError
from products.fixings import CashFlow, WindowFixing
from products.registry import register
from products.validation import TRADE_DATE, check_dates_in_market, date_range

INITIAL_MARGIN_PERCENT = {"USD": 35, "BTC": 18}
# a strike this far from today's index (in the contract currency) is a unit slip, e.g. USD/TH
# for USD/PH (1,000x) or a USD strike on a BTC contract; checked against the market (strict)
STRIKE_RATIO_BOUNDS = (0.05, 20.0)
SCHEMA = Schema("hashprice_forward", {
    "id": Spec("text", doc="trade id, unique in the file"),
    "type": Spec("choice", choices=("hashprice_forward",), doc="the product"),
    "start": replace(TRADE_DATE, doc="first delivery day; on or before the as-of date, a seasoned trade (--fixings)"),
    "end": replace(TRADE_DATE, doc="last delivery day (inclusive); at most 20,000 days after the as-of date"),
    "strike": Spec("number", "USD/PH/day or BTC/PH/day", low=0, low_open=True,
                   doc="K in the contract currency",
                   why="within 0.05-20x of today's index in that currency (checked against the market)"),
    "currency": Spec("choice", choices=("USD", "BTC"), doc="settlement currency"),
    "size_phs": Spec("number", "PH/s", low=0, low_open=True, plausible=(None, 1e7), doc="hashrate notional",
                     why="at most ten times the 2026 network, which is about 1e6 PH/s"),
    "side": Spec("choice", choices=("buy", "sell"), required=False, default="buy",
                 doc="buy receives the index and pays K"),
})


@register
@dataclass(frozen=True)
class HashrateForward:
    """Non-deliverable hashprice forward. ``strike`` is USD/PH/day or BTC/PH/day."""

    trade_id: str
    start: dt.date
    end: dt.date
    strike: float
    currency: str
    size_phs: float
    side: str = "buy"

    type_name = "hashprice_forward"
    affine = True  # cash flows affine in the fixings: priced in one matrix product

    schema = SCHEMA

    def __post_init__(self):
        SCHEMA.check("id", self.trade_id)
        s, e = date_range(self.start, self.end)
        object.__setattr__(self, "start", s)
        object.__setattr__(self, "end", e)
        for name in ("strike", "size_phs", "currency", "side"):
            object.__setattr__(self, name, SCHEMA.check(name, getattr(self, name)))

    @property
    def sign(self) -> float:
        return 1.0 if self.side == "buy" else -1.0

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def notional(self) -> float:
        """K x PH/s x days, in the contract currency."""
        return self.strike * self.size_phs * self.days

    @property
    def initial_margin(self) -> float:
        """35% of notional for USD contracts, 18% for BTC contracts (contract currency)."""
        return self.notional * INITIAL_MARGIN_PERCENT[self.currency] / 100

    def check_market(self, market: Market) -> None:
        """Terms against the market: delivery within the horizon (started: seasoned); for
        a strict market, the strike within ``STRIKE_RATIO_BOUNDS`` of today's index."""
        check_dates_in_market(self.start, self.end, market, started_ok=True)
        if market.strict:
            index = (market.spot_hashprice_usd_per_ph_day() if self.currency == "USD"
                     else market.spot_hashvalue_btc_per_ph_day())
            lo, hi = STRIKE_RATIO_BOUNDS
            if not lo <= self.strike / index <= hi:
                raise InputError("strike", f"{self.strike:.6g} {self.currency}/PH/day is {self.strike / index:.3g}x "
                                 f"today's index {index:.6g}; must lie within {lo:g}-{hi:g}x (units?)")

    def fixing_periods(self) -> list[Period]:
        """The fixings this trade needs: average daily hashprice over each monthly slice."""
        return list(_month_slices(self.start, self.end))

    def fixings(self) -> tuple[WindowFixing, ...]:
        """One fixing per monthly slice: the average daily USD hashprice index over it."""
        return tuple(WindowFixing("hashprice_usd_per_ph_day", p.start, p.end) for p in self.fixing_periods())

    def cash_flows(self, values, market: Market) -> list[CashFlow]:
        """Each slice pays ``sign x size x days x (fixing - K)`` at its last day, in USD value.

        ``values`` has one column per fixing (expectations, or a row per path). A BTC contract's
        payment is valued at each day's BTC price (E[hashvalue_d S_d] = E[hashprice_d]) and its
        strike at the slice's average BTC forward, so it is the USD value of the BTC amount.
        """
        x = np.asarray(values, dtype=float)
        out = []
        for s, (p, k) in enumerate(zip(self.fixing_periods(), self._slice_terms(market)[1], strict=True)):
            out.append(CashFlow(p.end, self.sign * self.size_phs * p.days * (x[..., s] - k), "USD"))
        return out

    def _slice_terms(self, market: Market) -> tuple[np.ndarray, np.ndarray]:
        """Per slice: weight (sign x size x days x DF at payment) and strike in USD/PH/day."""
        return _cached_slice_terms(self, market)

    def fair_rate_from_pv(self, pv_usd: float, market: Market) -> float:
        """The strike that makes PV zero: PV is linear in K, PV(K*) = PV(K) - (K* - K) * dPV/dK."""
        w, k = self._slice_terms(market)
        pv_per_strike = float((k * w).sum()) / self.strike
        return self.strike + pv_usd / pv_per_strike


@functools.lru_cache(maxsize=4096)
def _month_slices(start: dt.date, end: dt.date) -> tuple[Period, ...]:
    return tuple(month_slices(start, end))


@functools.lru_cache(maxsize=4096)
def _cached_slice_terms(trade: HashrateForward, market: Market) -> tuple[np.ndarray, np.ndarray]:
    """Pricing asks for a trade's terms once per chunk of paths: compute them once."""
    weights, strikes = [], []
    for p in trade.fixing_periods():
        weights.append(trade.sign * trade.size_phs * p.days * market.discount(p.end))
        strikes.append(trade.strike if trade.currency == "USD" else trade.strike * mean_btc_forward(market, p))
    w, k = np.array(weights), np.array(strikes)
    w.flags.writeable = False
    k.flags.writeable = False
    return w, k


@functools.lru_cache(maxsize=4096)
def mean_btc_forward(market: Market, p: Period) -> float:
    """Average BTC forward over the slice's days: a BTC strike's USD value (the BTC convention)."""
    return float(np.mean([market.btc_forward_usd(p.start + dt.timedelta(days=k)) for k in range(p.days)]))
