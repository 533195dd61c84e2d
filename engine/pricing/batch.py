"""Trades as arrays: each trade's fixings become columns of the chunk's fixing matrix X
(:mod:`engine.pricing.columns`), and its live discounted cash flows a weight vector when they
are affine in the fixings.

PV of trade k on a path is ``a_k + x . g_k`` for an affine trade, so a chunk of paths prices
every affine trade in one matrix product ``X @ G + a``. The engine's control variate for trade
k is ``btc . c_k``: the BTC averages over the trade's simulated windows, weighted by each
window's days and discount factor. It is linear, so its mean is known exactly from the BTC
forward and it is valid for any payoff; it does not depend on the payoff, so trades on the same
windows share it (up to scale, which the regression absorbs) and parity relations between them
hold exactly on the same paths. For an NDF it is proportional to the PV's own weights.

>>> import datetime as dt
>>> from curves.market import Market
>>> from engine.pricing.columns import ColumnSpace
>>> from engine.pricing.fixing_plan import plan_trade
>>> from products.hashrate_forward import HashrateForward
>>> m = Market.default()
>>> f = HashrateForward("a", dt.date(2026, 3, 1), dt.date(2026, 3, 31), 36.0, "USD", 2.0)
>>> t = trade_terms(plan_trade(f, m), m, ColumnSpace(), Discounter(m, 60))
>>> t.affine, round(t.const / (-36.0 * 2 * 31 * m.discount(dt.date(2026, 3, 31))), 12)
(True, 1.0)
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from curves.market import Market
from curves.toml_io import InputError
from engine.pricing.columns import ColumnSpace
from engine.pricing.fixing_plan import TradePlan, plan_trade

AFFINE_RTOL = 1e-9


class Discounter:
    """USD discount factors: on a date (cached), or at per-path times ``pay_days`` after the
    as-of close (log-linear between days, on a grid that grows as far as a payment asks; a
    payment then falls on as-of + 1 + floor(days))."""

    def __init__(self, market: Market, n_days: int):
        self.market = market
        self._log_df = np.zeros(0)
        self._grow(n_days + 3)
        self._cache: dict[dt.date, float] = {}

    def _grow(self, size: int) -> None:
        have = self._log_df.size
        new = [math.log(self.market.discount(self.market.asof + dt.timedelta(days=k))) for k in range(have, size)]
        self._log_df = np.concatenate([self._log_df, new])

    def on(self, d: dt.date) -> float:
        out = self._cache.get(d)
        if out is None:
            out = self._cache[d] = self.market.discount(d)
        return out

    def at_days(self, pay_days) -> np.ndarray:
        t = 1.0 + np.asarray(pay_days, dtype=float)
        last = float(np.max(t, where=np.isfinite(t), initial=0.0))
        if last > self._log_df.size - 2:
            self._grow(int(last) + 3)
        return _exp_on_grid(t.ravel(), self._log_df).reshape(t.shape)

    @staticmethod
    def pay_date(market: Market, pay_days) -> dt.date:
        """The day a payment falls on, at the mean of ``pay_days`` (days after the as-of close)."""
        return market.asof + dt.timedelta(days=1 + math.floor(float(np.mean(pay_days))))


@njit(cache=True, nogil=True)
def _exp_on_grid(t, log_y):
    """exp of ``log_y`` (on the grid 0, 1, 2, ...) interpolated linearly at ``t``, flat beyond its
    ends; NaN at NaN."""
    out = np.empty(t.size)
    last = log_y.size - 1
    for i in range(t.size):
        ti = t[i]
        if not ti <= last:
            out[i] = math.exp(log_y[last]) if ti > last else np.nan
        elif ti <= 0.0:
            out[i] = math.exp(log_y[0])
        else:
            k = int(ti)
            out[i] = math.exp(log_y[k] + (ti - k) * (log_y[min(k + 1, last)] - log_y[k]))
    return out


def flow_values(plan: TradePlan, values, market: Market, disc: Discounter) -> list[tuple]:
    """(cash flow, amount, discounted amount) of each live cash flow; ``values`` [..., fixings]."""
    out = []
    for c, live in zip(plan.trade.cash_flows(values, market), plan.live, strict=True):
        if not live:
            continue
        if c.currency != "USD":
            raise InputError("currency", f"{plan.trade.trade_id}: a {c.currency} cash flow needs a conversion "
                                         "convention")
        amount = np.asarray(c.amount, dtype=float)
        df = disc.on(c.pay_date) if c.pay_days is None else disc.at_days(c.pay_days)
        out.append((c, amount, df * amount))
    return out


def discounted_pv(plan, values, market: Market, disc: Discounter | None = None) -> np.ndarray:
    """Sum of the live cash flows of a plan (or of every cash flow of a bare trade), discounted
    on the USD curve."""
    if not isinstance(plan, TradePlan):
        n_flows = len(plan.cash_flows(np.ones(len(plan.fixings())), market))
        plan = TradePlan(plan, (), (True,) * n_flows, 1)
    disc = disc or Discounter(market, 1)
    total = 0.0
    for _, _, pv in flow_values(plan, values, market, disc):
        total = total + pv
    return np.asarray(total, dtype=float)


@dataclass(frozen=True)
class TradeTerms:
    """Fixing j is ``scale[j] * X[:, cols[j]] + offset[j]``; ``const + z . slope`` (z = X[:, cols])
    is the PV when ``affine``; ``control`` weights the columns ``control_cols`` (BTC averages)."""

    plan: TradePlan
    cols: np.ndarray
    scale: np.ndarray
    offset: np.ndarray
    const: float
    slope: np.ndarray
    affine: bool
    control_cols: np.ndarray
    control: np.ndarray

    def values(self, x: np.ndarray) -> np.ndarray:
        return x[:, self.cols] * self.scale + self.offset


def typical_size(src, market: Market) -> float:
    """A fixing's order of magnitude today (1 for a value known today: it has no column)."""
    if src.block == "const":
        return 1.0
    if src.block == "dpb" or (src.block == "epoch" and src.key[1] == "difficulty"):
        return market.difficulty
    if src.block == "epoch":
        return 14.0
    if src.block == "reward":
        return market.spot_hashvalue_btc_per_ph_day() * src.key[1] / 144.0
    return {"hashprice_usd_per_ph_day": market.spot_hashprice_usd_per_ph_day(),
            "hashvalue_btc_per_ph_day": market.spot_hashvalue_btc_per_ph_day(), "difficulty": market.difficulty,
            "btc_usd": market.btc_spot_usd, "blocks_per_day": 144.0}.get(src.key[1], 1.0)


def trade_terms(plan, market: Market, space: ColumnSpace | None = None,
                disc: Discounter | None = None) -> TradeTerms:
    """Columns, scale and offset of each fixing. A trade that declares itself ``affine`` (its cash
    flows are affine in its fixings) has its PV probed at zero and at unit fixings, and checked
    at two other points; any other trade is priced through its cash flows. Probes alone cannot
    tell: a cap struck above every probe looks flat. ``plan`` may be a bare trade."""
    if not isinstance(plan, TradePlan):
        plan = plan_trade(plan, market)
    space = space or ColumnSpace()
    disc = disc or Discounter(market, plan.days_needed)
    trade = plan.trade
    cols = np.array([space.column(s) for s in plan.sources], dtype=np.int64)
    scale = np.array([s.scale for s in plan.sources])
    offset = np.array([s.offset for s in plan.sources])
    n = len(cols)
    affine = bool(getattr(trade, "affine", False))
    const, slope = math.nan, np.zeros(n)
    if affine:
        # probes scaled to each fixing's size (a difficulty is 1e14: a unit probe would vanish in
        # the rounding of the constant)
        size = np.array([typical_size(s, market) for s in plan.sources])
        probes = np.vstack([np.zeros(n), np.eye(n), np.arange(1.0, n + 1.0), np.linspace(7.0, 0.5, n) ** 2]) * size
        with np.errstate(all="ignore"):
            pv = discounted_pv(plan, probes * scale + offset, market, disc)
            const = float(pv[0])
            slope = (pv[1:n + 1] - const) / size
            lin = const + probes[n + 1:] @ slope
        scale_pv = abs(const) + np.abs(probes[n + 1:]) @ np.abs(slope)
        if not (np.all(np.isfinite(pv)) and np.all(np.abs(pv[n + 1:] - lin) <= AFFINE_RTOL * scale_pv)):
            raise InputError("trade", f"{trade.trade_id}: declared affine, but its cash flows are not affine "
                                      "in its fixings")
    ctrl_cols, ctrl = [], []
    for s in plan.sources:
        btc = space.btc_column(s)
        if btc is not None:
            ctrl_cols.append(btc[0])
            ctrl.append(disc.on(market.asof + dt.timedelta(days=s.key[0][1] + 1)) * btc[1])
    return TradeTerms(plan, cols, scale, offset, const, slope, affine, np.array(ctrl_cols, dtype=np.int64),
                      np.array(ctrl))
