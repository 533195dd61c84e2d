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
from dataclasses import dataclass

import numpy as np

from curves.market import MAX_HORIZON_DAYS, Market
from curves.periods import Period, month_slices
from curves.toml_io import InputError
from products.validation import choice, date_range, positive_number

INITIAL_MARGIN_PERCENT = {"USD": 35, "BTC": 18}


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

    def __post_init__(self):
        s, e = date_range(self.start, self.end)
        object.__setattr__(self, "start", s)
        object.__setattr__(self, "end", e)
        object.__setattr__(self, "strike", positive_number(self.strike, "strike"))
        object.__setattr__(self, "size_phs", positive_number(self.size_phs, "size_phs"))
        object.__setattr__(self, "currency", choice(self.currency, "currency", ("USD", "BTC")))
        object.__setattr__(self, "side", choice(self.side, "side", ("buy", "sell")))

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
        if self.start <= market.asof:
            raise InputError("start", f"{self.start} is not after the as-of date {market.asof}")
        if (self.end - market.asof).days > MAX_HORIZON_DAYS:
            raise InputError("end", f"{self.end} is more than {MAX_HORIZON_DAYS:,} days after the as-of date")

    def fixing_periods(self) -> list[Period]:
        """The fixings this trade needs: average daily hashprice over each monthly slice."""
        return month_slices(self.start, self.end)

    def _slice_terms(self, market: Market) -> tuple[np.ndarray, np.ndarray]:
        """Per slice: weight (sign x size x days x DF at payment) and strike in USD/PH/day."""
        return _cached_slice_terms(self, market)

    def pv_usd(self, hashprice_usd_by_slice: np.ndarray, market: Market) -> np.ndarray:
        """PV in USD from slice-average hashprices: expectations ([slices]) or paths ([n, slices])."""
        w, k = self._slice_terms(market)
        return ((np.asarray(hashprice_usd_by_slice) - k) * w).sum(axis=-1)

    def fair_rate_from_pv(self, pv_usd: float, market: Market) -> float:
        """The strike that makes PV zero: PV is linear in K, PV(K*) = PV(K) - (K* - K) * dPV/dK."""
        w, k = self._slice_terms(market)
        pv_per_strike = float((k * w).sum()) / self.strike
        return self.strike + pv_usd / pv_per_strike

    def fair_rate(self, expected_hashprice_usd_by_slice: np.ndarray, market: Market) -> float:
        """The zero-PV strike, in the contract currency per PH/day, from a curve's slice forwards."""
        return self.fair_rate_from_pv(float(self.pv_usd(expected_hashprice_usd_by_slice, market)), market)


@functools.lru_cache(maxsize=256)
def _cached_slice_terms(trade: HashrateForward, market: Market) -> tuple[np.ndarray, np.ndarray]:
    """Pricing asks for a trade's terms once per chunk of paths: compute them once."""
    weights, strikes = [], []
    for p in trade.fixing_periods():
        weights.append(trade.sign * trade.size_phs * p.days * market.discount(p.end))
        strikes.append(trade.strike if trade.currency == "USD" else trade.strike * _mean_forward(market, p))
    w, k = np.array(weights), np.array(strikes)
    w.flags.writeable = False
    k.flags.writeable = False
    return w, k


def _mean_forward(market: Market, p: Period) -> float:
    return float(np.mean([market.btc_forward_usd(p.start + dt.timedelta(days=k)) for k in range(p.days)]))
