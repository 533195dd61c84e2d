"""Options on the monthly-average hashprice index: caps, floors and collars.

Each calendar-month slice of ``start..end`` pays at its last day, on the slice's average daily
index ``A`` (USD/PH/day): a cap ``days x size x max(A - K, 0)``, a floor ``days x size x
max(K - A, 0)``; the buyer of a collar is long the floor (``floor_strike``) and short the cap
(``cap_strike``). ``side = "sell"`` reverses every payment.

**BTC contracts** use the NDF's convention, so that cap - floor = NDF holds exactly: a BTC strike
is converted at the slice's average BTC forward, and the payment is the USD value of the BTC
amount with each day's index valued at that day's BTC price (``E[hashvalue_d S_d] =
E[hashprice_d]``).

>>> import datetime as dt
>>> c = HashpriceCap("c1", dt.date(2026, 3, 1), dt.date(2026, 3, 31), strike=36.0, currency="USD",
...                  size_phs=10.0)
>>> [round(float(f.amount), 2) for f in c.cash_flows([40.0], None)]
[1240.0]
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import numpy as np

from curves.market import Market
from curves.schema import Schema, Spec
from curves.toml_io import InputError
from products.fixings import CashFlow, WindowFixing
from products.hashrate_forward import _month_slices, mean_btc_forward
from products.registry import register
from products.validation import TRADE_DATE, check_dates_in_market, date_range

STRIKE = Spec("number", "USD/PH/day or BTC/PH/day", low=0, low_open=True, doc="strike in the contract currency")
COMMON = {
    "id": Spec("text", doc="trade id, unique in the file"),
    "start": replace(TRADE_DATE, doc="first day; on or before the as-of date, a seasoned trade (--fixings)"),
    "end": replace(TRADE_DATE, doc="last day (inclusive)"),
    "currency": Spec("choice", choices=("USD", "BTC"), doc="settlement currency"),
    "size_phs": Spec("number", "PH/s", low=0, low_open=True, plausible=(None, 1e7), doc="hashrate notional",
                     why="at most ten times the 2026 network, which is about 1e6 PH/s"),
    "side": Spec("choice", choices=("buy", "sell"), required=False, default="buy", doc="buy holds the option"),
}


class _MonthlyOption:
    """Shared terms: slices, strikes in USD, the market check; subclasses give the payoff."""

    def _post(self, strikes: tuple[str, ...]):
        self.schema.check("id", self.trade_id)
        s, e = date_range(self.start, self.end)
        object.__setattr__(self, "start", s)
        object.__setattr__(self, "end", e)
        for name in (*strikes, "size_phs", "currency", "side"):
            object.__setattr__(self, name, self.schema.check(name, getattr(self, name)))

    @property
    def sign(self) -> float:
        return 1.0 if self.side == "buy" else -1.0

    @property
    def notional(self) -> None:
        return None

    @property
    def initial_margin(self) -> None:
        return None

    def fair_rate_from_pv(self, pv_usd: float, market: Market) -> None:
        return None

    def check_market(self, market: Market) -> None:
        check_dates_in_market(self.start, self.end, market, started_ok=True)

    def fixings(self) -> tuple[WindowFixing, ...]:
        slices = _month_slices(self.start, self.end)
        return tuple(WindowFixing("hashprice_usd_per_ph_day", p.start, p.end) for p in slices)

    def _usd(self, strike: float, market: Market | None, p) -> float:
        return strike if self.currency == "USD" else strike * mean_btc_forward(market, p)

    def option_legs(self, market: Market) -> list[tuple[int, dt.date, float, float, int]]:
        """The payoff as legs, for the engine to price all options' slices in one pass: (fixing,
        pay date, strike in USD, weight, +1 call / -1 put); slice s pays the sum over its legs of
        ``weight x max(direction x (A_s - strike), 0)``, as :meth:`cash_flows` does."""
        out = []
        for s, p in enumerate(_month_slices(self.start, self.end)):
            w = self.sign * self.size_phs * p.days
            out += [(s, p.end, k, w * unit, direction) for k, unit, direction in self._legs(market, p)]
        return out

    def cash_flows(self, values, market: Market) -> list[CashFlow]:
        x = np.asarray(values, dtype=float)
        out = []
        for s, p in enumerate(_month_slices(self.start, self.end)):
            out.append(CashFlow(p.end, self.sign * self.size_phs * p.days * self._payoff(x[..., s], market, p), "USD"))
        return out


@dataclass(frozen=True)
class _OneStrike(_MonthlyOption):
    """The terms of a cap or a floor: one strike."""

    trade_id: str
    start: dt.date
    end: dt.date
    strike: float
    currency: str
    size_phs: float
    side: str = "buy"

    def __post_init__(self):
        self._post(("strike",))


@register
class HashpriceCap(_OneStrike):
    """Pays ``max(A - K, 0)`` per PH/s and day of each month."""

    type_name = "hashprice_cap"
    schema = Schema("hashprice_cap", {**COMMON, "type": Spec("choice", choices=("hashprice_cap",)), "strike": STRIKE})

    def _payoff(self, a, market, p):
        return np.maximum(a - self._usd(self.strike, market, p), 0.0)

    def _legs(self, market, p):
        return [(self._usd(self.strike, market, p), 1.0, 1)]


@register
class HashpriceFloor(_OneStrike):
    """Pays ``max(K - A, 0)`` per PH/s and day of each month."""

    type_name = "hashprice_floor"
    schema = Schema("hashprice_floor", {**COMMON, "type": Spec("choice", choices=("hashprice_floor",)),
                                        "strike": STRIKE})

    def _payoff(self, a, market, p):
        return np.maximum(self._usd(self.strike, market, p) - a, 0.0)

    def _legs(self, market, p):
        return [(self._usd(self.strike, market, p), 1.0, -1)]


@register
@dataclass(frozen=True)
class HashpriceCollar(_MonthlyOption):
    """Long the floor at ``floor_strike``, short the cap at ``cap_strike`` (a miner's collar)."""

    trade_id: str
    start: dt.date
    end: dt.date
    floor_strike: float
    cap_strike: float
    currency: str
    size_phs: float
    side: str = "buy"
    type_name = "hashprice_collar"
    schema = Schema("hashprice_collar", {**COMMON, "type": Spec("choice", choices=("hashprice_collar",)),
                                         "floor_strike": replace(STRIKE, doc="the floor's strike"),
                                         "cap_strike": replace(STRIKE, doc="the cap's strike, above the floor's")})

    def __post_init__(self):
        self._post(("floor_strike", "cap_strike"))
        if self.cap_strike < self.floor_strike:
            raise InputError("cap_strike", f"{self.cap_strike} is below floor_strike {self.floor_strike}")

    def _payoff(self, a, market, p):
        kf, kc = self._usd(self.floor_strike, market, p), self._usd(self.cap_strike, market, p)
        return np.maximum(kf - a, 0.0) - np.maximum(a - kc, 0.0)

    def _legs(self, market, p):
        return [(self._usd(self.floor_strike, market, p), 1.0, -1), (self._usd(self.cap_strike, market, p), -1.0, 1)]
