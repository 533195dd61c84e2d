"""QuantLib-Python's path generator on the BTC factor alone: the textbook baseline.

A ``BlackScholesMertonProcess`` built from the market's QuantLib curves (USD discount curve as the
risk-free curve, a dividend curve such that r - q is the BTC carry, so E[S_t] is the BTC forward;
the BTC Black vol term structure), a ``GaussianRandomSequenceGenerator`` and a
``GaussianPathGenerator`` on a daily ``TimeGrid``; each draw is used with its antithetic path.
Per path, the daily prices are averaged over each window (calendar months), and the window
averages are reduced to means and standard errors over pair means.

>>> from curves.market import Market
>>> r = simulate_quantlib(Market.default(), n_days=30, n_paths=20, windows=[(0, 29)], seed=1)
>>> r.btc_mean.shape
(1,)
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import QuantLib as ql

from curves.market import DAY_COUNT, Market, to_ql_date

DAYS_PER_YEAR = 365.0


@dataclass
class QuantLibResult:
    windows: list[tuple[int, int]]
    n_paths: int
    n_days: int
    btc_mean: np.ndarray
    btc_stderr: np.ndarray
    btc_forward_avg: np.ndarray
    seconds: float

    @property
    def path_days_per_s(self) -> float:
        return self.n_paths * self.n_days / self.seconds


def btc_process(market: Market) -> ql.BlackScholesMertonProcess:
    """BSM process for BTC/USD: forward = spot / DF_carry exactly, vols from ``btc_vol_curve``.

    Risk-free is the USD curve; the dividend curve is the USD curve spread by minus the BTC basis
    when the carry curve is flat (no futures quotes), so r - q is the carry; with futures quotes
    (a non-flat carry curve) the carry curve itself is the risk-free curve and q = 0.
    """
    spot = ql.QuoteHandle(ql.SimpleQuote(market.btc_spot_usd))
    vol = ql.BlackVolTermStructureHandle(market.btc_vol_curve)
    if not market.btc_futures_usd:
        usd = ql.YieldTermStructureHandle(market.usd_discount_curve)
        spread = ql.QuoteHandle(ql.SimpleQuote(-market.btc_basis_annual))
        dividend = ql.ZeroSpreadedTermStructure(usd, spread, ql.Continuous, ql.NoFrequency, DAY_COUNT)
        dividend.enableExtrapolation()
        return ql.BlackScholesMertonProcess(spot, ql.YieldTermStructureHandle(dividend), usd, vol)
    ref = to_ql_date(market.asof)
    zero = ql.FlatForward(ref, 0.0, DAY_COUNT, ql.Continuous, ql.Annual)
    carry = ql.YieldTermStructureHandle(market.btc_carry_curve)
    return ql.BlackScholesMertonProcess(spot, ql.YieldTermStructureHandle(zero), carry, vol)


def simulate_quantlib(market: Market, *, n_days: int, n_paths: int,
                      windows: Sequence[tuple[int, int]], seed: int = 42) -> QuantLibResult:
    """Window averages of BTC/USD from QuantLib paths (``n_paths`` rounded up to pairs)."""
    windows = list(windows)
    process = btc_process(market)
    grid = ql.TimeGrid(n_days / DAYS_PER_YEAR, n_days)
    uniform = ql.UniformRandomSequenceGenerator(n_days, ql.UniformRandomGenerator(seed))
    gen = ql.GaussianPathGenerator(process, grid, ql.GaussianRandomSequenceGenerator(uniform), False)
    n_pairs = (n_paths + 1) // 2
    starts = np.array([s for s, _ in windows]) + 1  # path index 0 is the as-of date
    ends = np.array([e for _, e in windows]) + 2
    lengths = ends - starts
    x = np.zeros((2, len(windows), n_pairs))
    t0 = time.perf_counter()
    for p in range(n_pairs):
        for k, sample in enumerate((gen.next(), gen.antithetic())):
            cum = np.cumsum(np.fromiter(sample.value(), float, n_days + 1))
            x[k, :, p] = (cum[ends - 1] - np.where(starts > 0, cum[starts - 1], 0.0)) / lengths
    seconds = time.perf_counter() - t0
    pair = 0.5 * (x[0] + x[1])
    fwd = np.array([market.btc_forward_usd(market.asof + dt.timedelta(days=k + 1))
                    for k in range(n_days)])
    fwd_avg = np.array([fwd[s:e + 1].mean() for s, e in windows])
    return QuantLibResult(windows, 2 * n_pairs, n_days, pair.mean(axis=1),
                          pair.std(axis=1, ddof=1) / np.sqrt(n_pairs), fwd_avg, seconds)


def time_generator(market: Market, *, n_days: int, n_paths: int, seed: int = 42) -> float:
    """Seconds for QuantLib to draw ``n_paths`` daily paths (pairs), values left in C++."""
    grid = ql.TimeGrid(n_days / DAYS_PER_YEAR, n_days)
    uniform = ql.UniformRandomSequenceGenerator(n_days, ql.UniformRandomGenerator(seed))
    gen = ql.GaussianPathGenerator(btc_process(market), grid,
                                   ql.GaussianRandomSequenceGenerator(uniform), False)
    t0 = time.perf_counter()
    for _ in range((n_paths + 1) // 2):
        gen.next()
        gen.antithetic()
    return time.perf_counter() - t0
