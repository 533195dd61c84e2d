"""Every slice of every cap, floor and collar priced in one compiled pass.

A product with ``option_legs(market)`` pays, per slice, the sum over its legs of ``weight x
max(direction x (A - strike), 0)``. Trades whose fixings are all simulated windows in full and
whose flows are all live are priced here; the others go through their cash flows.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def _legs_sum_t(x_t, cols, strikes, dirs, weights, first_leg):
    """Per group of legs (rows: a trade, or a cash flow) and path (columns): the weighted sum of
    its legs' payoffs over fixings ``x_t`` (columns x paths); group j's legs are
    ``first_leg[j]:first_leg[j + 1]``."""
    n_trades, n_paths = first_leg.size - 1, x_t.shape[1]
    out = np.zeros((n_trades, n_paths))
    for j in prange(n_trades):
        row = out[j]
        for leg in range(first_leg[j], first_leg[j + 1]):
            a, d, k, w = x_t[cols[leg]], dirs[leg], strikes[leg], weights[leg]
            for r in range(n_paths):
                row[r] += w * max(d * (a[r] - k), 0.0)
    return out


def takes(t) -> bool:
    """Whether a trade's terms are priced as legs: an option on simulated windows in full, every
    flow live."""
    return (not t.affine and hasattr(t.plan.trade, "option_legs") and all(t.plan.live)
            and all(s.block == "window" and s.scale == 1.0 and s.offset == 0.0 for s in t.plan.sources))


class OptionLegs:
    """The legs of the trades it takes (``trades``: their indices in ``terms``)."""

    def __init__(self, terms, market, disc):
        cols, strikes, dirs, rows, weights, self.trades = [], [], [], [], [], []
        for k, t in enumerate(terms):
            if not takes(t):
                continue
            j = len(self.trades)
            self.trades.append(k)
            for fixing, pay, strike, weight, direction in t.plan.trade.option_legs(market):
                cols.append(t.cols[fixing])
                strikes.append(strike)
                dirs.append(float(direction))
                rows.append(j)
                weights.append(weight * disc.on(pay))
        self.cols = np.array(cols, dtype=np.int64)
        self.strikes, self.dirs = np.array(strikes, dtype=float), np.array(dirs, dtype=float)
        self.weights = np.array(weights, dtype=float)
        self.first_leg = np.searchsorted(np.array(rows, dtype=np.int64), np.arange(len(self.trades) + 1))

    def pv(self, x: np.ndarray) -> np.ndarray:
        """Discounted PV per path (rows of ``x``) of each trade taken (paths x trades)."""
        return self.pv_t(np.ascontiguousarray(np.asarray(x, dtype=np.float64).T)).T

    def pv_t(self, x_t: np.ndarray) -> np.ndarray:
        """:meth:`pv` on the fixings laid out columns x paths (C order), as trades x paths."""
        return _legs_sum_t(x_t, self.cols, self.strikes, self.dirs, self.weights, self.first_leg)


class OptionFlows:
    """Each slice of the options :func:`takes` accepts as one cash flow: per path, its amount (the
    sum of its legs), in one compiled pass. ``add(k, t, first)`` takes trade k's flows,
    numbered from ``first`` in the book, when each slice's legs pay on its flow's date."""

    def __init__(self, market):
        self.market = market
        self._cols, self._strikes, self._dirs, self._w_amt, self._group = [], [], [], [], []
        self.flows = []  # the book's flow index of each group of legs, ascending

    def add(self, t, first: int, pay_dates) -> bool:
        legs = t.plan.trade.option_legs(self.market)
        slices = sorted({leg[0] for leg in legs})
        if slices != list(range(len(pay_dates))) or any(pay != pay_dates[s] for s, pay, *_ in legs):
            return False
        base = len(self.flows)
        self.flows += [first + s for s in slices]
        for fixing, _pay, strike, weight, direction in sorted(legs, key=lambda leg: leg[0]):
            self._cols.append(t.cols[fixing])
            self._strikes.append(strike)
            self._dirs.append(float(direction))
            self._w_amt.append(weight)
            self._group.append(base + fixing)
        return True

    def freeze(self) -> None:
        """Terms as arrays, once every trade is added."""
        self.cols = np.array(self._cols, dtype=np.int64)
        self.strikes, self.dirs = np.array(self._strikes, dtype=float), np.array(self._dirs, dtype=float)
        self.w_amt = np.array(self._w_amt, dtype=float)
        self.first_leg = np.searchsorted(np.array(self._group, dtype=np.int64), np.arange(len(self.flows) + 1))
        self.flows = np.array(self.flows, dtype=np.int64)

    def amounts_t(self, x_t: np.ndarray) -> np.ndarray:
        """Amounts (flows x paths) on the fixings laid out columns x paths (C order)."""
        return _legs_sum_t(x_t, self.cols, self.strikes, self.dirs, self.w_amt, self.first_leg)
