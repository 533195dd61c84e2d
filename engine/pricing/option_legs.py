"""Every slice of every cap, floor and collar priced in one compiled pass.

A product with ``option_legs(market)`` pays, per slice, the sum over its legs of ``weight x
max(direction x (A - strike), 0)``. Trades whose fixings are all simulated windows in full and
whose flows are all live are priced here; the others go through their cash flows.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def _legs_pv(x, cols, strikes, dirs, weights, trade_of, n_trades):
    out = np.zeros((x.shape[0], n_trades))
    for r in prange(x.shape[0]):
        for leg in range(cols.size):
            p = dirs[leg] * (x[r, cols[leg]] - strikes[leg])
            if p > 0.0:
                out[r, trade_of[leg]] += weights[leg] * p
    return out


class OptionLegs:
    """The legs of the trades it takes (``trades``: their indices in ``terms``)."""

    def __init__(self, terms, market, disc):
        cols, strikes, dirs, rows, weights, self.trades = [], [], [], [], [], []
        for k, t in enumerate(terms):
            if t.affine or not hasattr(t.plan.trade, "option_legs") or not all(t.plan.live):
                continue
            if not all(s.block == "window" and s.scale == 1.0 and s.offset == 0.0 for s in t.plan.sources):
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
        self.weights, self.trade_of = np.array(weights, dtype=float), np.array(rows, dtype=np.int64)

    def pv(self, x: np.ndarray) -> np.ndarray:
        """Discounted PV per path (rows of ``x``) of each trade taken."""
        return _legs_pv(np.ascontiguousarray(x), self.cols, self.strikes, self.dirs, self.weights, self.trade_of,
                        len(self.trades))
