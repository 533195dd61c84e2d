"""A miner's fleet as a position: its daily output, power bill and costs over the hedge horizon,
valued on the daily hashprice index and BTC close of each day (fixings), like any product.

Per day t of month m, with q = hashrate_phs[m] x uptime (PH/s) and the power cost per PH/day
c_m = efficiency (J/TH = kW per PH/s) x 24 h x power_usd_per_kwh[m]:

* the fleet runs (on_t = 1) unless it curtails: with ``curtailment``, it switches off when the
  index it decides on is below c_m. ``curtailment_signal = "previous_day"`` (the default) decides
  on yesterday's index, what an operator knows in the morning; ``"same_day"`` on the day's own
  index, an upper bound on what curtailment can earn (it never loses);
* BTC mined = on_t x q x hashprice_t / S_t (the index is hashvalue x the day's BTC close);
* revenue (USD) = BTC mined x the sale price: the day's close (``btc_sold = "daily"``), or
  the close on the day the month's hedging future expires (``"at_expiry"``);
* power = on_t x q x c_m; other costs = ``opex_usd_per_day`` every day.

>>> import datetime as dt
>>> f = FleetPosition(start=dt.date(2026, 2, 1), end=dt.date(2026, 2, 28), hashrate_phs=(100.0,),
...                   efficiency_j_per_th=20.0, power_usd_per_kwh=(0.05,))
>>> float(f.power_cost_usd_per_ph_day[0])
24.0
>>> days = f.n_days
>>> hp, btc = np.full((1, days), 50.0), np.full((1, days), 100_000.0)
>>> parts = f.monthly(np.hstack([hp, btc]), market_index_usd=50.0)
>>> [round(float(parts[k][0, 0]), 9) for k in ("revenue_usd", "power_cost_usd", "btc_mined")]
[140000.0, 67200.0, 1.4]
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from curves.periods import Period, month_slices
from curves.toml_io import InputError
from products.fixings import CashFlow, WindowFixing
from products.validation import check_dates_in_market

HOURS_PER_DAY = 24.0
SIGNALS = ("previous_day", "same_day")
SALES = ("daily", "at_expiry")


@dataclass(frozen=True)
class FleetPosition:
    """The fleet from ``start`` to ``end`` (inclusive), month by month; ``expiries`` are the
    hedging futures' expiry dates in order (the month's BTC is sold at the first on or after
    the day it is mined, with ``btc_sold = "at_expiry"``)."""

    start: dt.date
    end: dt.date
    hashrate_phs: tuple[float, ...]
    efficiency_j_per_th: float
    power_usd_per_kwh: tuple[float, ...]
    uptime: float = 1.0
    opex_usd_per_day: float = 0.0
    curtailment: bool = False
    curtailment_signal: str = "previous_day"
    btc_sold: str = "daily"
    expiries: tuple[dt.date, ...] = ()
    trade_id: str = "fleet"

    type_name = "fleet"
    currency = "USD"
    notional = None
    initial_margin = None

    def __post_init__(self):
        n = len(self.periods)
        for name in ("hashrate_phs", "power_usd_per_kwh"):
            if len(getattr(self, name)) != n:
                raise InputError(name, f"needs one value per month ({n}), got {len(getattr(self, name))}")
        if self.curtailment_signal not in SIGNALS:
            raise InputError("curtailment_signal", f"one of {SIGNALS}, got {self.curtailment_signal!r}")
        if self.btc_sold not in SALES:
            raise InputError("btc_sold", f"one of {SALES}, got {self.btc_sold!r}")
        if self.btc_sold == "at_expiry" and (not self.expiries or self.expiries[-1] < self.end):
            raise InputError("btc_sold", "selling at expiry needs a futures expiry on or after the last day")

    @property
    def periods(self) -> list[Period]:
        return month_slices(self.start, self.end)

    @property
    def n_days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=k) for k in range(self.n_days)]

    @property
    def month_of_day(self) -> np.ndarray:
        """Each day's month index (0 = the first period)."""
        return np.repeat(np.arange(len(self.periods)), [p.days for p in self.periods])

    @property
    def power_cost_usd_per_ph_day(self) -> np.ndarray:
        """c_m: the power one PH/s running all day costs, per month (kW per PH/s = J/TH)."""
        return self.efficiency_j_per_th * HOURS_PER_DAY * np.asarray(self.power_usd_per_kwh, dtype=float)

    @property
    def sale_index(self) -> np.ndarray:
        """Per day, the expiry (index into ``expiries``) its BTC is sold at (``at_expiry``)."""
        exp = np.array([e.toordinal() for e in self.expiries])
        return np.searchsorted(exp, [d.toordinal() for d in self.days])

    def check_market(self, market) -> None:
        """Started (a day on: theta) is seasoned: its past days are realised fixings."""
        check_dates_in_market(self.start, self.end, market, started_ok=True)

    def fixings(self) -> tuple[WindowFixing, ...]:
        """The daily index, then the daily BTC close, then BTC at each expiry after the last day."""
        hp = tuple(WindowFixing("hashprice_usd_per_ph_day", d, d) for d in self.days)
        btc = tuple(WindowFixing("btc_usd", d, d) for d in self.days)
        tail = tuple(WindowFixing("btc_usd", e, e) for e in self.expiries if e > self.end)
        return hp + btc + tail

    def split_fixings(self, values):
        """(daily index, daily BTC close, {expiry index: BTC at that expiry}) from the fixings."""
        x = np.asarray(values, dtype=float)
        n = self.n_days
        hp, btc = x[..., :n], x[..., n:2 * n]
        exp_btc = {}
        tail = iter(range(2 * n, x.shape[-1]))
        for k, e in enumerate(self.expiries):
            exp_btc[k] = btc[..., (e - self.start).days] if e <= self.end else x[..., next(tail)]
        return hp, btc, exp_btc

    def running(self, hp: np.ndarray, market_index_usd: float, curtail: bool | None = None,
                signal: str | None = None) -> np.ndarray:
        """1 where the fleet runs, per path and day (0 on a curtailed day)."""
        curtail = self.curtailment if curtail is None else curtail
        if not curtail:
            return np.ones_like(hp)
        signal = signal or self.curtailment_signal
        cost = self.power_cost_usd_per_ph_day[self.month_of_day]
        if signal == "same_day":
            seen = hp
        else:
            seen = np.concatenate([np.full(hp.shape[:-1] + (1,), market_index_usd), hp[..., :-1]], axis=-1)
        return (seen >= cost).astype(float)

    def daily(self, values, market_index_usd: float, curtail: bool | None = None,
              signal: str | None = None) -> dict[str, np.ndarray]:
        """Per path (rows) and day (columns): ``hashprice``, ``btc_usd``, ``running``, ``btc_mined``,
        ``revenue_usd`` and ``power_cost_usd``; ``market_index_usd`` is today's index (the first
        day's previous-day signal)."""
        hp, btc, exp_btc = self.split_fixings(values)
        hp, btc = np.atleast_2d(hp), np.atleast_2d(btc)
        month = self.month_of_day
        q = (np.asarray(self.hashrate_phs, dtype=float) * self.uptime)[month]
        on = self.running(hp, market_index_usd, curtail, signal)
        mined = on * q * hp / btc
        if self.btc_sold == "daily":
            revenue = on * q * hp
        else:
            sale = np.stack([np.atleast_1d(exp_btc[k]) for k in range(len(self.expiries))], axis=-1)
            revenue = mined * sale[..., self.sale_index]
        return {"hashprice": hp, "btc_usd": btc, "running": on, "btc_mined": mined, "revenue_usd": revenue,
                "power_cost_usd": on * q * self.power_cost_usd_per_ph_day[month]}

    def month_sums(self, daily: np.ndarray) -> np.ndarray:
        """Sum per-day values (last axis) over each month."""
        starts = np.concatenate([[0], np.cumsum([p.days for p in self.periods])[:-1]])
        return np.add.reduceat(daily, starts, axis=-1)

    def monthly(self, values, market_index_usd: float, curtail: bool | None = None,
                signal: str | None = None) -> dict[str, np.ndarray]:
        """Per path (rows) and month (columns): ``btc_mined``, ``revenue_usd``, ``power_cost_usd``,
        ``opex_usd`` and ``net_usd`` (see :meth:`daily`)."""
        d = self.daily(values, market_index_usd, curtail, signal)
        out = {k: self.month_sums(d[k]) for k in ("btc_mined", "revenue_usd", "power_cost_usd")}
        days = np.array([p.days for p in self.periods], dtype=float)
        out["opex_usd"] = np.broadcast_to(self.opex_usd_per_day * days, out["revenue_usd"].shape)
        out["net_usd"] = out["revenue_usd"] - out["power_cost_usd"] - out["opex_usd"]
        return out

    def cash_flows(self, values, market) -> list[CashFlow]:
        """Net cash per month at its last day (revenue sold at expiry is paid then)."""
        parts = self.monthly(values, market.spot_hashprice_usd_per_ph_day())
        flows = []
        for m, p in enumerate(self.periods):
            if self.btc_sold == "daily":
                flows.append(CashFlow(p.end, _squeeze(parts["net_usd"][..., m], values), "USD"))
                continue
            flows.append(CashFlow(p.end, _squeeze(-parts["power_cost_usd"][..., m] - parts["opex_usd"][..., m],
                                                  values), "USD"))
            flows.extend(self._sales(values, market, m))
        return flows

    def _sales(self, values, market, m: int) -> list[CashFlow]:
        """Month m's BTC sold at each expiry its days map to."""
        _, _, exp_btc = self.split_fixings(values)
        month = self.month_of_day
        mined = self.daily(values, market.spot_hashprice_usd_per_ph_day())["btc_mined"]
        out = []
        sale = self.sale_index
        for k in sorted(set(sale[month == m])):
            sel = (month == m) & (sale == k)
            amount = mined[..., sel].sum(axis=-1) * np.atleast_1d(exp_btc[k])
            out.append(CashFlow(self.expiries[k], _squeeze(amount, values), "USD"))
        return out

    def fair_rate_from_pv(self, pv_usd: float, market) -> None:
        return None


def _squeeze(a: np.ndarray, values) -> np.ndarray:
    """One value per path for per-path values, a scalar for a single set of fixings."""
    return a if np.ndim(values) > 1 else a[0]
