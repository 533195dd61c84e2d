"""A hashrate token: a claim to the output of ``ths_per_token`` TH/s of a fleet, net of the
fleet's power and maintenance fees, paid daily over its life.

Per day t of month m: output = ths/1000 x uptime x hashprice_t (USD), power = ths/1000 x
uptime x c_m (c_m = efficiency x 24 h x power price, USD per PH/day), fee = fee_usd_per_th_day
x ths. The holder gets max(output - power - fee, 0): a token never owes (limited liability),
so it is a strip of daily calls on the index. In BTC the day's payout is converted at the
day's close. Payouts are summed per month and paid at its last day.

>>> import datetime as dt
>>> t = HashrateToken(start=dt.date(2026, 2, 1), end=dt.date(2026, 2, 28), ths_per_token=1.0,
...                   fee_usd_per_th_day=0.002, efficiency_j_per_th=20.0, power_usd_per_kwh=(0.05,))
>>> hp, btc = np.full((1, 28), 50.0), np.full((1, 28), 100_000.0)
>>> round(float(t.payouts(np.hstack([hp, btc]))[0].sum()), 6)  # 28 x (0.05 - 0.024 - 0.002)
0.672
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from curves.periods import Period, month_slices
from curves.toml_io import InputError
from curves.units import TH_PER_PH
from products.fixings import CashFlow, WindowFixing
from products.fleet import HOURS_PER_DAY
from products.validation import check_dates_in_market


@dataclass(frozen=True)
class HashrateToken:
    """One token over ``start..end``; ``power_usd_per_kwh`` has one value per month."""

    start: dt.date
    end: dt.date
    ths_per_token: float
    fee_usd_per_th_day: float
    efficiency_j_per_th: float
    power_usd_per_kwh: tuple[float, ...]
    uptime: float = 1.0
    trade_id: str = "token"

    type_name = "hashrate_token"
    currency = "USD"
    notional = None
    initial_margin = None

    def __post_init__(self):
        if len(self.power_usd_per_kwh) != len(self.periods):
            raise InputError("power_usd_per_kwh", f"needs one value per month of the token's life "
                                                  f"({len(self.periods)}), got {len(self.power_usd_per_kwh)}")

    @property
    def periods(self) -> list[Period]:
        return month_slices(self.start, self.end)

    @property
    def n_days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def month_of_day(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.periods)), [p.days for p in self.periods])

    def check_market(self, market) -> None:
        """Started (a day on: theta) is seasoned: its past days are realised fixings."""
        check_dates_in_market(self.start, self.end, market, started_ok=True)

    def fixings(self) -> tuple[WindowFixing, ...]:
        days = [self.start + dt.timedelta(days=k) for k in range(self.n_days)]
        return (tuple(WindowFixing("hashprice_usd_per_ph_day", d, d) for d in days)
                + tuple(WindowFixing("btc_usd", d, d) for d in days))

    def payouts(self, values) -> tuple[np.ndarray, np.ndarray]:
        """(USD, BTC) paid per path (rows) and day (columns)."""
        x = np.atleast_2d(np.asarray(values, dtype=float))
        hp, btc = x[:, :self.n_days], x[:, self.n_days:]
        phs = self.ths_per_token / TH_PER_PH * self.uptime
        cost = self.efficiency_j_per_th * HOURS_PER_DAY * np.asarray(self.power_usd_per_kwh)[self.month_of_day]
        usd = np.maximum(phs * (hp - cost) - self.fee_usd_per_th_day * self.ths_per_token, 0.0)
        return usd, usd / btc

    def monthly_usd(self, values) -> np.ndarray:
        starts = np.concatenate([[0], np.cumsum([p.days for p in self.periods])[:-1]])
        return np.add.reduceat(self.payouts(values)[0], starts, axis=-1)

    def cash_flows(self, values, market) -> list[CashFlow]:
        per_month = self.monthly_usd(values)
        single = np.ndim(values) <= 1
        return [CashFlow(p.end, per_month[0, m] if single else per_month[:, m], "USD")
                for m, p in enumerate(self.periods)]

    def fair_rate_from_pv(self, pv_usd: float, market) -> None:
        return None
