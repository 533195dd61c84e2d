"""Price a portfolio on one simulation: every trade's fixings become windows; affine trades are
priced in one matrix product per chunk of paths (:mod:`engine.pricing.batch`), others trade by
trade, all with a linear BTC control variate whose mean is known exactly.

>>> from curves.market import Market
>>> from engine.mc.model import ModelParams
>>> from products.portfolio import parse_portfolio
>>> trades, errors = parse_portfolio({"trade": [{"id": "f1", "type": "hashprice_forward",
...     "start": "2026-03-01", "end": "2026-05-31", "strike": 40.0, "currency": "USD",
...     "size_phs": 5.0, "side": "buy"}]})
>>> res = price_trades(trades, Market.default(), ModelParams.default(), paths=2_000, seed=1)
>>> res.trades[0].error is None
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from curves.market import Market
from curves.toml_io import InputError
from engine.mc import kernel as K
from engine.mc.model import ModelParams
from engine.mc.moments import PairMoments
from engine.mc.simulation import QUANTITIES, Simulation
from engine.pricing.batch import discounted_pv, trade_terms
from products.portfolio import TradeError

QUANTITY_INDEX = {name: k for k, name in enumerate(QUANTITIES)}


@dataclass
class TradeResult:
    trade_id: str
    type_name: str
    pv_usd: float | None = None
    pv_stderr: float | None = None
    fair_rate: float | None = None
    notional: float | None = None
    initial_margin: float | None = None
    currency: str | None = None
    error: str | None = None
    fair_rate_stderr: float | None = None
    fair_rate_on_tick: float | None = None
    rate_unit: str | None = None  # the fair rate's unit, when not the contract currency per PH/day

    def to_dict(self) -> dict:
        return {"id": self.trade_id, "type": self.type_name, "pv_usd": self.pv_usd,
                "pv_stderr": self.pv_stderr, "fair_rate": self.fair_rate,
                "fair_rate_stderr": self.fair_rate_stderr, "fair_rate_on_tick": self.fair_rate_on_tick,
                "notional": self.notional,
                "initial_margin": self.initial_margin, "currency": self.currency, "error": self.error}

    def rows(self) -> list[dict]:
        """Long format: one row per measure, (trade, type, measure, value, stderr, unit, error)."""
        base = {"trade": self.trade_id, "type": self.type_name}
        if self.error is not None:
            return [{**base, "measure": "pv", "value": None, "stderr": None, "unit": "USD", "error": self.error}]
        cur = self.currency
        rate_unit = self.rate_unit or f"{cur}/PH/day"
        out = [{**base, "measure": "pv", "value": self.pv_usd, "stderr": self.pv_stderr, "unit": "USD"}]
        if self.fair_rate is not None:
            out.append({**base, "measure": "fair_rate", "value": self.fair_rate, "stderr": self.fair_rate_stderr,
                        "unit": rate_unit})
        if self.fair_rate_on_tick is not None:
            out.append({**base, "measure": "fair_rate_on_tick", "value": self.fair_rate_on_tick, "stderr": None,
                        "unit": rate_unit})
        for name in ("notional", "initial_margin"):
            value = getattr(self, name)
            if value is not None:
                out.append({**base, "measure": name, "value": value, "stderr": 0.0, "unit": cur})
        return [{**r, "error": None} for r in out]


@dataclass
class PortfolioResult:
    trades: list[TradeResult]
    paths: int
    seed: int

    @property
    def total_pv_usd(self) -> float:
        return float(sum(t.pv_usd for t in self.trades if t.pv_usd is not None))

    def to_dict(self) -> dict:
        return {"trades": [t.to_dict() for t in self.trades], "total_pv_usd": self.total_pv_usd,
                "paths": self.paths, "seed": self.seed,
                "results": [r for t in self.trades for r in t.rows()]}

    def to_frame(self):
        """The results in long format, a row per (trade, measure), units in their own column."""
        import pandas as pd

        return pd.DataFrame([r for t in self.trades for r in t.rows()],
                            columns=["trade", "type", "measure", "value", "stderr", "unit", "error"])


def price_trades(trades: Sequence, market: Market, model: ModelParams, *, paths: int = 100_000,
                 seed: int = 42, errors: Sequence[TradeError] = (), threads: int | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 hashrate_shift_per_day=None) -> PortfolioResult:
    """Price valid trades together; a trade that does not fit the market is reported, not fatal.

    ``hashrate_shift_per_day`` is the hashrate market price of risk: a per-day array at least as
    long as the simulated days (day 0 = as-of + 1; the excess is ignored) or a
    ``HashrateShift`` from ``engine.calibration.hashrate_shift`` (flat after its last segment).
    """
    results = [TradeResult(e.trade_id, e.type_name, error=e.error) for e in errors]
    simulated, terms = [], []
    for t in trades:
        try:
            t.check_market(market)
            if hasattr(t, "analytic_pv_usd"):  # closed form (e.g. Black-76 on QuantLib): no stderr
                pv = float(t.analytic_pv_usd(market))
                fair = t.fair_rate_from_pv(pv, market)
                results.append(_checked(TradeResult(t.trade_id, t.type_name, pv, 0.0, fair, t.notional,
                                                    t.initial_margin, t.currency,
                                                    fair_rate_stderr=None if fair is None else 0.0,
                                                    rate_unit=getattr(t, "rate_unit", None)), None))
            else:
                terms.append(trade_terms(t, market))
                simulated.append(t)
        except InputError as exc:
            results.append(TradeResult(t.trade_id, t.type_name, error=str(exc)))
    if simulated:
        results.extend(_simulate_and_price(simulated, terms, market, model, paths, seed, threads, progress,
                                           hashrate_shift_per_day))
    return PortfolioResult(_file_order(results, trades, errors), paths=paths + paths % 2, seed=seed)


def _file_order(results, trades, errors):
    """Results in the portfolio file's order: errors know their position, trades fill the rest."""
    taken = {e.position for e in errors}
    free = (k for k in range(len(trades) + len(errors)) if k not in taken)
    pos = {id(r): e.position for r, e in zip(results, errors)}
    by_trade = {t.trade_id: next(free) for t in trades}
    return sorted(results, key=lambda r: pos.get(id(r), by_trade.get(r.trade_id, 0)))


def _simulate_and_price(trades, terms, market, model, paths, seed, threads, progress, shift=None):
    n_days = max((f.end - market.asof).days for tt in terms for f in tt.fixings)
    if shift is not None and not hasattr(shift, "per_day"):
        shift = np.asarray(shift, dtype=float)
        if shift.ndim == 1 and shift.size > n_days:
            shift = shift[:n_days]
    sim = Simulation(market, model, n_days=n_days, n_paths=paths, seed=seed, threads=threads,
                     hashrate_shift_per_day=shift)
    windows: dict = {}
    cols, btc_cols = [], []  # per trade: flat columns of (window, quantity), and its windows' BTC
    for tt in terms:
        ws = [windows.setdefault((sim.day_index(f.start), sim.day_index(f.end)), len(windows))
              for f in tt.fixings]
        cols.append(np.array([w * K.N_QUANTITIES + QUANTITY_INDEX[f.quantity] for w, f in zip(ws, tt.fixings)],
                             dtype=np.int64))
        btc_cols.append(np.array([w * K.N_QUANTITIES + K.Q_BTC_USD for w in ws], dtype=np.int64))
    window_list = sorted(windows, key=windows.get)
    n_cols = len(window_list) * K.N_QUANTITIES
    # terms as arrays, once: G maps window values to affine PVs, B maps BTC averages to controls
    affine = [k for k, tt in enumerate(terms) if tt.affine]
    other = [k for k, tt in enumerate(terms) if not tt.affine]
    g = np.zeros((n_cols, len(affine)))
    const = np.array([terms[k].const for k in affine])
    b = np.zeros((n_cols, len(trades)))
    for j, k in enumerate(affine):
        np.add.at(g[:, j], cols[k], terms[k].slope)
    for k, tt in enumerate(terms):
        np.add.at(b[:, k], btc_cols[k], tt.control)
    fwd = np.zeros(n_cols)
    for w, (lo, hi) in enumerate(window_list):
        fwd[w * K.N_QUANTITIES + K.Q_BTC_USD] = sim.btc_forward[lo:hi + 1].mean()
    ctrl_means = fwd @ b  # a linear control's mean is known exactly, whatever the payoff
    rows_g, rows_b = np.flatnonzero(g.any(axis=1)), np.flatnonzero(b.any(axis=1))  # the columns used
    g, b = g[rows_g], b[rows_b]
    moments = PairMoments((len(trades),), sim.block_pairs)

    def on_chunk(_start, wv):
        x = wv.reshape(wv.shape[0], n_cols)
        pv = np.empty((wv.shape[0], len(trades)))
        with np.errstate(all="ignore"):  # a trade too large to value is reported below
            pv[:, affine] = x[:, rows_g] @ g + const
            for k in other:
                pv[:, k] = discounted_pv(trades[k], x[:, cols[k]], market)
            ctrl = x[:, rows_b] @ b
        moments.add(pv, ctrl)

    sim.run(window_list, on_chunk=on_chunk, progress=progress)
    with np.errstate(all="ignore"):
        pv = moments.mean(ctrl_means)
        se = moments.stderr(ctrl_means)
        problems = moments.problems(ctrl_means)
    out = []
    for k, t in enumerate(trades):
        with np.errstate(all="ignore"):
            fair = t.fair_rate_from_pv(float(pv[k]), market)
            # the fair rate is affine in the PV: its stderr is the PV's, scaled by its slope
            fair_se = None if fair is None else abs(t.fair_rate_from_pv(float(pv[k] + se[k]), market) - fair)
            tick = t.on_tick(fair) if fair is not None and hasattr(t, "on_tick") else None
            res = TradeResult(t.trade_id, t.type_name, float(pv[k]), float(se[k]), fair, t.notional,
                              t.initial_margin, t.currency, fair_rate_stderr=fair_se, fair_rate_on_tick=tick,
                              rate_unit=getattr(t, "rate_unit", None))
        out.append(_checked(res, problems[k]))
    return out


def _checked(res: TradeResult, problem: str | None) -> TradeResult:
    """A result whose numbers are all finite and whose stderr can be trusted, else its error."""
    for name in ("notional", "initial_margin", "pv_usd", "pv_stderr", "fair_rate", "fair_rate_stderr",
                 "fair_rate_on_tick"):
        v = getattr(res, name)
        if v is not None and not math.isfinite(v):
            why = (f"{name}: not a finite number ({v!r}); the trade's size and strike are beyond what "
                   "can be valued")
            return TradeResult(res.trade_id, res.type_name, currency=res.currency, error=why)
    if problem is not None:
        return TradeResult(res.trade_id, res.type_name, currency=res.currency,
                           error=f"pv_stderr: no trustworthy standard error: {problem}; use more paths")
    return res
