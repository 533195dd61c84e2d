"""Trades as arrays: each trade's fixings become columns of the simulated window values, and its
discounted cash flows become a weight vector when they are affine in the fixings.

PV of trade k on a path is ``a_k + x . g_k`` for an affine trade (``x`` its fixing values), so a
chunk of paths prices every affine trade in one matrix product ``X @ G + a``. The engine's
control variate for trade k is ``btc . c_k``: the BTC window averages over the trade's fixing
windows, weighted by each window's days and discount factor. It is linear, so its mean is known
exactly from the BTC forward and it is valid for any payoff; it does not depend on the payoff,
so trades on the same windows share it (up to scale, which the regression absorbs) and parity
relations between them hold exactly on the same paths. For an NDF it is proportional to the
PV's own weights, the best linear control.

>>> import datetime as dt
>>> from curves.market import Market
>>> from products.hashrate_forward import HashrateForward
>>> m = Market.default()
>>> f = HashrateForward("a", dt.date(2026, 3, 1), dt.date(2026, 3, 31), 36.0, "USD", 2.0)
>>> t = trade_terms(f, m)
>>> t.affine, round(t.const / (-36.0 * 2 * 31 * m.discount(dt.date(2026, 3, 31))), 12)
(True, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curves.market import Market
from curves.toml_io import InputError
from products.fixings import WindowFixing

AFFINE_RTOL = 1e-9


def discounted_pv(trade, values, market: Market) -> np.ndarray:
    """Sum of the trade's cash flows discounted on the USD curve; ``values`` [..., fixings]."""
    total = 0.0
    for c in trade.cash_flows(values, market):
        if c.currency != "USD":
            raise InputError("currency", f"{trade.trade_id}: a {c.currency} cash flow needs a conversion convention")
        total = total + market.discount(c.pay_date) * np.asarray(c.amount, dtype=float)
    return np.asarray(total, dtype=float)


@dataclass(frozen=True)
class TradeTerms:
    """``const + x . slope`` is the PV when ``affine``; ``control`` weights the BTC control."""

    fixings: tuple
    const: float
    slope: np.ndarray
    affine: bool
    control: np.ndarray


def trade_terms(trade, market: Market) -> TradeTerms:
    """A trade that declares itself ``affine`` (its cash flows are affine in its fixings) has its
    PV probed at zero and at unit fixings, and checked at two other points; any other trade is
    priced through its cash flows. Probes alone cannot tell: a cap struck above every probe
    looks flat."""
    fixings = tuple(trade.fixings())
    for f in fixings:
        if not isinstance(f, WindowFixing):
            raise InputError("fixings", f"{trade.trade_id}: {type(f).__name__} is not priced yet")
    n = len(fixings)
    # every probe in one call: zero, the unit vectors, and two points to check affinity at
    probes = np.vstack([np.zeros(n), np.eye(n), np.arange(1.0, n + 1.0), np.linspace(7.0, 0.5, n) ** 2])
    with np.errstate(all="ignore"):
        pv = discounted_pv(trade, probes, market)
        const = float(pv[0])
        slope = pv[1:n + 1] - const
        lin = const + probes[n + 1:] @ slope
    scale = abs(const) + np.abs(probes[n + 1:]) @ np.abs(slope)
    affine = bool(getattr(trade, "affine", False))
    if affine and not (np.all(np.isfinite(pv)) and np.all(np.abs(pv[n + 1:] - lin) <= AFFINE_RTOL * scale)):
        raise InputError("trade", f"{trade.trade_id}: declared affine, but its cash flows are not affine "
                                  "in its fixings")
    control = np.array([market.discount(f.end) * f.days for f in fixings])
    return TradeTerms(fixings, const, slope, affine, control)
