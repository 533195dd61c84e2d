"""Price a portfolio on one simulation: every trade's fixings become columns of the chunk's
fixing matrix; affine trades are priced in one matrix product per chunk of paths
(:mod:`engine.pricing.batch`), others through their cash flows, all with a linear BTC control
variate whose mean is known exactly. Closed-form trades (BTC options and futures) are valued
without simulation. Cash flows paid by the as-of date are settled; a trade whose fixings began
before it takes its realised part from ``realised`` (``--fixings``).

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from curves.market import MAX_HORIZON_DAYS, Market
from curves.toml_io import InputError
from engine.mc.model import ModelParams
from engine.mc.moments import MIN_PAIRS, PairMoments
from engine.mc.simulation import Simulation
from engine.mc.tolerance import Tolerance
from engine.pricing.batch import Discounter, TradeTerms, flow_values, trade_terms
from engine.pricing.cash_flow_report import FlowBook, settled_flows
from engine.pricing.columns import ColumnSpace
from engine.pricing.fixing_plan import TradePlan, plan_trade
from engine.pricing.measures import analytic_result, trade_result
from engine.pricing.option_legs import OptionLegs
from engine.pricing.results import Measure, PortfolioResult, TradeResult, checked
from products.portfolio import TradeError

TOLERANCE_CHUNK_PATHS = 16_384  # with a target accuracy, paths are added in steps of this many
CHUNK_BYTES = 192 * 2**20  # per-path fixings of a chunk (window values, X, PVs) stay near this
MORE_DAYS = 1.5  # when a path has not reached an epoch or reward: simulate 1.5x the days, again


class NeedMoreDays(Exception):
    """Some path has not reached an epoch or reward fixing within the simulated days."""


def price_trades(trades: Sequence, market: Market, model: ModelParams, *, paths: int = 100_000,
                 seed: int = 42, errors: Sequence[TradeError] = (), threads: int | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 hashrate_shift_per_day=None, realised=None, cash_flows: bool = False,
                 tolerance: Tolerance | None = None, runner=None) -> PortfolioResult:
    """Price valid trades together; a trade that does not fit the market is reported, not fatal.

    ``hashrate_shift_per_day`` is the hashrate market price of risk: a per-day array at least as
    long as the simulated days (day 0 = as-of + 1; the excess is ignored) or a
    ``HashrateShift`` from ``engine.calibration.hashrate_shift`` (flat after its last segment).
    ``realised`` (:func:`engine.data.realised_fixings.load_realised_fixings`) holds the days of
    seasoned trades up to the as-of date; ``cash_flows`` adds each trade's cash flows. With
    ``tolerance``, ``paths`` is the most to simulate: paths are added until every trade's PV (and
    fair rate, where it has one) has its stderr within the tolerance; ``PortfolioResult.paths``
    says how many were used. ``runner`` (``engine.mc.chunk_runner``) runs the chunks elsewhere, e.g.
    on a Dask cluster, with the same results.
    """
    results = [TradeResult(e.trade_id, e.type_name, error=e.error) for e in errors]
    plans = []
    for t in trades:
        try:
            t.check_market(market)
            if hasattr(t, "analytic_pv_usd"):  # closed form (e.g. Black-76 on QuantLib): no stderr
                results.append(checked(analytic_result(t, market), None))
                continue
            plan = plan_trade(t, market, realised)
            if plan.settled:
                results.append(TradeResult(t.trade_id, t.type_name, 0.0, 0.0, currency=t.currency, status="settled",
                                           cashflows=settled_flows(plan, market) if cash_flows else []))
            else:
                plans.append(plan)
        except InputError as exc:
            results.append(TradeResult(t.trade_id, t.type_name, error=str(exc)))
    # companions: a deliverable forward's NDF strip, priced on the same paths for its discount
    companions = {}
    for p in list(plans):
        if hasattr(p.trade, "ndf_strip"):
            try:
                ndf = replace(p.trade.ndf_strip(), trade_id=f"{p.trade.trade_id}\x00ndf-strip")  # not a file id
                strip = plan_trade(ndf, market, realised)
                companions[p.trade.trade_id] = strip
                plans.append(strip)
            except InputError:
                pass
    used = paths + paths % 2
    if plans:
        priced, used = _simulate_and_price(plans, market, model, paths, seed, threads, progress,
                                           hashrate_shift_per_day, cash_flows, tolerance, runner)
        by_id = {r.trade_id: r for r in priced}
        for tid, strip in companions.items():
            _add_ndf_discount(by_id[tid], by_id.pop(strip.trade.trade_id))
        results.extend(by_id.values())
    return PortfolioResult(_file_order(results, trades, errors), paths=used, seed=seed)


def _add_ndf_discount(res: TradeResult, strip: TradeResult) -> None:
    """The NDF strip's fair rate and the prepaid price's discount to it, (ndf - prepaid) / ndf."""
    if res.error is not None or strip.error is not None or not res.fair_rate or not strip.fair_rate:
        return
    disc = (strip.fair_rate - res.fair_rate) / strip.fair_rate
    res.measures.append(Measure("ndf_strip_rate", strip.fair_rate, strip.fair_rate_stderr, res.fair_rate_unit))
    # the two rates share the paths and the control: the discount's stderr is at most their sum's
    se = (res.fair_rate_stderr + strip.fair_rate_stderr) / strip.fair_rate
    res.measures.append(Measure("discount_to_ndf", disc, se, "fraction"))


def _file_order(results, trades, errors):
    """Results in the portfolio file's order: errors know their position, trades fill the rest."""
    taken = {e.position for e in errors}
    free = (k for k in range(len(trades) + len(errors)) if k not in taken)
    pos = {id(r): e.position for r, e in zip(results, errors)}
    by_trade = {t.trade_id: next(free) for t in trades}
    return sorted(results, key=lambda r: pos.get(id(r), by_trade.get(r.trade_id, 0)))


def _simulate_and_price(plans: list[TradePlan], market, model, paths, seed, threads, progress, shift,
                        cash_flows, tolerance=None, runner=None) -> tuple[list[TradeResult], int]:
    n_days = max(p.days_needed for p in plans)
    while True:
        try:
            pp = PricingPass(plans, market, model, paths=paths, seed=seed, threads=threads, shift=shift,
                             cash_flows=cash_flows, n_days=n_days,
                             max_chunk_paths=TOLERANCE_CHUNK_PATHS if tolerance is not None else None)
            return pp.run(progress, tolerance, runner), pp.paths_done
        except NeedMoreDays:
            if n_days >= MAX_HORIZON_DAYS:
                raise AssertionError("unreachable: the last pass reports unreached fixings") from None
            n_days = min(MAX_HORIZON_DAYS, int(n_days * MORE_DAYS) + 30)


def _shift_for(shift, n_days):
    if shift is not None and not hasattr(shift, "per_day"):
        shift = np.asarray(shift, dtype=float)
        if shift.ndim == 1 and shift.size > n_days:
            shift = shift[:n_days]
    return shift


def chunk_paths_for(n_windows: int, n_cols: int, n_trades: int, cash_flows: bool = False) -> int:
    """Paths per chunk so that a chunk's per-path fixings, PVs and flows stay near ``CHUNK_BYTES``."""
    per_path = 8 * (n_windows * 6 + n_cols + 2 * n_trades + (16 * n_trades if cash_flows else 0))
    return int(min(65_536, max(1024, 2 ** int(np.log2(max(CHUNK_BYTES // per_path, 1))))))


class PricingPass:
    """One simulation pricing ``plans``: fixings laid out as columns, a book of PVs fed chunk by
    chunk. :meth:`run` drives it alone; bump-and-reprice drives several passes on the same seed
    and chunk size in lockstep (:meth:`pv`), so that each chunk's paths share random numbers.
    ``NeedMoreDays`` says a path has not reached an epoch or reward fixing within ``n_days``.
    """

    def __init__(self, plans, market, model, *, paths, seed, threads=None, shift=None, cash_flows=False,
                 n_days, chunk_paths=None, max_chunk_paths=None):
        self.market = market
        self.space = ColumnSpace()
        self.disc = Discounter(market, n_days)
        self.terms, self.errors = [], {}
        for p in plans:
            try:
                self.terms.append(trade_terms(p, market, self.space, self.disc))
            except InputError as exc:
                self.errors[p.trade.trade_id] = TradeResult(p.trade.trade_id, p.trade.type_name, error=str(exc))
        self.plans = plans
        self.windows = self.space.window_list() or [(0, 0)]
        if chunk_paths is None:
            chunk_paths = chunk_paths_for(len(self.windows), self.space.n_cols, len(self.terms), cash_flows)
            chunk_paths = min(chunk_paths, max_chunk_paths or chunk_paths)
        self.sim = Simulation(market, model, n_days=n_days, n_paths=paths, seed=seed, threads=threads,
                              hashrate_shift_per_day=_shift_for(shift, n_days), chunk_paths=chunk_paths)
        self.book = _Book(self.terms, self.space, self.sim, market, self.disc, cash_flows)
        self.last_pass = n_days >= MAX_HORIZON_DAYS
        self.paths_done = 0

    def chunks(self, runner=None):
        """Each chunk's fixing matrix ``(pair_start, X)``, assembled where the chunk ran."""
        return self.sim.path_chunks(self.windows, self.space.epochs, self.space.rewards, runner=runner,
                                    then=_Assemble(self.space))

    def pv(self, chunk) -> tuple[np.ndarray, np.ndarray]:
        """Per-path PVs (paths x trades, USD at the as-of date) and controls of one chunk, also
        added to the book."""
        _start, x = chunk
        if self.space.epochs or self.space.rewards:
            unreached = self.book.unreached(x)
            if unreached.any() and not self.last_pass:
                raise NeedMoreDays
        return self.book.add(x)

    def run(self, progress=None, tolerance: Tolerance | None = None, runner=None) -> list[TradeResult]:
        """Every chunk, or (with ``tolerance``) chunks until every PV and fair rate is within it;
        ``runner`` says where chunks run (``engine.mc.chunk_runner``)."""
        self.paths_done = 0
        for chunk in self.chunks(runner) if self.terms else ():
            self.pv(chunk)
            self.paths_done = min(2 * (chunk[0] + self.sim.chunk_pairs), self.sim.n_paths)
            if progress is not None:
                progress(self.paths_done, self.sim.n_paths)
            if tolerance is not None and self.paths_done < self.sim.n_paths and self.within(tolerance):
                break
        return self.results()

    def within(self, tol: Tolerance) -> bool:
        """Every trade's PV and fair rate (where it has one) has its stderr within ``tol``."""
        with np.errstate(all="ignore"):
            pv = self.book.moments.mean(self.book.ctrl_means)
            se = self.book.moments.stderr(self.book.ctrl_means)
            if self.book.moments.n < MIN_PAIRS or not tol.met(pv, se):
                return False
            for k, t in enumerate(self.terms):
                trade = t.plan.trade
                fair = trade.fair_rate_from_pv(pv[k], self.market)
                if fair is not None and not Tolerance(tol.rel).met(
                        fair, abs(trade.fair_rate_from_pv(pv[k] + se[k], self.market) - fair)):
                    return False
        return True

    def results(self) -> list[TradeResult]:
        out = dict(self.errors)
        if self.terms:
            with np.errstate(all="ignore"):
                self.book.problems = self.book.moments.problems(self.book.ctrl_means)
            for k, tt in enumerate(self.terms):
                out[tt.plan.trade.trade_id] = self.book.result(k)
        return [out[p.trade.trade_id] for p in self.plans]


@dataclass(frozen=True)
class _Assemble:
    """A chunk's per-path fixings as the fixing matrix X (on the worker that made them)."""

    space: ColumnSpace

    def __call__(self, chunk):
        start, wv, ep, rw = chunk
        return start, self.space.assemble(wv, ep, rw)


class _Book:
    """Per-chunk PVs, their controls and (optionally) cash flows, accumulated over pairs."""

    def __init__(self, terms: list[TradeTerms], space: ColumnSpace, sim: Simulation, market, disc, cash_flows):
        self.terms, self.market, self.disc = terms, market, disc
        n = len(terms)
        self.affine = [k for k, t in enumerate(terms) if t.affine]
        self.legs = OptionLegs(terms, market, disc)
        self.other = [k for k, t in enumerate(terms) if not t.affine and k not in self.legs.trades]
        n_cols = space.n_cols
        g = np.zeros((n_cols, len(self.affine)))
        for j, k in enumerate(self.affine):
            np.add.at(g[:, j], terms[k].cols, terms[k].slope)
        self.const = np.array([terms[k].const for k in self.affine])
        b = np.zeros((n_cols, n))
        for k, t in enumerate(terms):
            np.add.at(b[:, k], t.control_cols, t.control)
        fwd = np.nan_to_num(space.btc_forward_means(sim.btc_forward))
        self.ctrl_means = fwd @ b  # a linear control's mean is known exactly, whatever the payoff
        # one sparse product gives the affine PVs and every control, (G | B)^T X^T, on the columns
        # they use (each trade touches a few)
        gb = np.hstack([g, b])
        self.rows = np.flatnonzero(gb.any(axis=1))
        self.gb_t = sp.csr_matrix(gb[self.rows].T)
        self.moments = PairMoments((n,), sim.block_pairs)
        self.needs = [np.array(sorted({c for c, s in zip(t.cols, t.plan.sources) if s.block in ("epoch", "reward")}),
                               dtype=np.int64) for t in terms]
        self.unreached_any = np.zeros(n, dtype=bool)
        self.flows = FlowBook(terms, space, market, disc, sim.block_pairs) if cash_flows else None
        self.problems = None  # per trade, once every path is in (PairMoments.problems)

    def unreached(self, x: np.ndarray) -> np.ndarray:
        """Per trade: some path has not reached one of its epoch or reward fixings."""
        out = np.array([bool(np.isnan(x[:, c]).any()) if c.size else False for c in self.needs])
        self.unreached_any |= out
        return out

    def add(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-path PVs and controls of a chunk (paths x trades, as views of trades x paths arrays),
        added to the book."""
        n_aff = len(self.affine)
        with np.errstate(all="ignore"):  # a trade too large to value is reported below
            y = self.gb_t @ np.ascontiguousarray(x.T[self.rows])
            pv_t = np.empty((len(self.terms), x.shape[0]))
            pv_t[self.affine] = y[:n_aff] + self.const[:, None]
            if self.legs.trades:
                pv_t[self.legs.trades] = self.legs.pv_t(x.T)
            other_flows = {}  # trade -> its flow values, for the cash-flow report
            for k in self.other:
                t = self.terms[k]
                other_flows[k] = flow_values(t.plan, t.values(x), self.market, self.disc)
                pv_t[k] = sum((p for _, _, p in other_flows[k]), np.zeros(x.shape[0]))
        pv, ctrl = pv_t.T, y[n_aff:].T
        self.moments.add(pv, ctrl)
        if self.flows is not None:
            self.flows.add(x, ctrl, other_flows)
        return pv, ctrl

    def result(self, k: int) -> TradeResult:
        t = self.terms[k]
        trade = t.plan.trade
        if self.unreached_any[k]:
            return TradeResult(trade.trade_id, trade.type_name,
                               error=f"fixings: some paths do not reach the trade's epoch or blocks within the "
                                     f"{MAX_HORIZON_DAYS:,}-day horizon")
        with np.errstate(all="ignore"):
            pv = float(self.moments.mean(self.ctrl_means)[k])
            se = float(self.moments.stderr(self.ctrl_means)[k])
        problem = self.problems[k]
        res = trade_result(t, pv, se, self.market)
        if self.flows is not None and res.error is None:
            res.cashflows = self.flows.report(k, self.ctrl_means[k]) + settled_flows(t.plan, self.market)
        return checked(res, problem)
