"""The miner's hedge with bounded memory: the same report as :func:`engine.risk.hedge.hedge_fleet`
keeping no per-path array beyond a chunk.

* Pass 1 (chunk by chunk): the moments the hedges need (fair strikes, PVs, the minimum-variance
  regressions per batch of paths) and the range of every quantity entering a hedged cash flow.
* The collar's premium, when a collar is on: a pass over the pricing simulation.
* Pass 2, on the same seed (a chunk is a pure function of the inputs, the seed and its index, so
  the paths are the same): every hedge's cash flow per month and over the horizon, and the
  token's value, go into fixed-grid histograms (:mod:`engine.risk.pnl_histogram`: int64 counts
  and sums of values in cents, exact in any order), per-batch coarse histograms for the
  standard errors, per-batch moments (:mod:`engine.risk.batch_moments`) and counts of negatives.

Figures are bit-identical for any chunk size or thread count. Means, standard deviations and
effectiveness are the per-path mode's to rounding; VaR, CVaR and quantiles are within the
grid's resolution (reported) of the per-path mode's.
"""

from __future__ import annotations

import math

import numpy as np

from engine.mc.moments import PairMoments
from engine.risk import hedge as H
from engine.risk.batch_moments import BatchMoments
from engine.risk.fleet_paths import ChunkValues, simulate_fleet
from engine.risk.pnl_histogram import Grid, add_rows, quantile, tail_mean
from engine.risk.pnl_stats import LEVELS, N_BATCHES

HIST_BINS = 2**16  # fine grid per reported distribution
COARSE_SHIFT = 5  # per-batch grids (for the stderrs): HIST_BINS >> COARSE_SHIFT bins
BLOCK_PATHS = 512  # segments of the per-batch moments: chunks are whole multiples
USD_UNIT, BTC_UNIT = 0.01, 1e-8  # the coarsest quantisation: a cent, a satoshi


def n_paths_of(paths: int) -> int:
    return 2 * ((paths + 1) // 2)


class FirstPass:
    """Moments and ranges of one simulation's chunks."""

    def __init__(self, fleet, token, n: int):
        m, e = len(fleet.periods), len(fleet.expiries)
        self.n_months, self.n_exp = m, e
        self.avg_index = PairMoments((m,), 256)
        self.fleet_pv = PairMoments((1,), 256)
        self.token_usd = PairMoments((1,), 256) if token is not None else None
        self.token_btc = PairMoments((1,), 256) if token is not None else None
        self.month_of = H.month_of_contract(fleet)
        pairs = []
        for mo in range(m):
            cs = np.flatnonzero(self.month_of == mo)
            pairs += [(c, d) for c in cs for d in cs] + [(c, e + mo) for c in cs]
        self.pairs = pairs
        self.regression = BatchMoments(n, e + m, pairs, BLOCK_PATHS)
        self.lo, self.hi = {}, {}

    def __call__(self, row0: int, v: ChunkValues) -> None:
        self.avg_index.add(v.avg_index_usd)
        self.fleet_pv.add(v.fleet_pv_usd[:, None])
        if self.token_usd is not None:
            self.token_usd.add(v.token_usd[:, None])
            self.token_btc.add(v.token_btc[:, None])
        self.regression.add(np.concatenate([v.btc_at_expiry, v.net_usd], axis=1), row0)
        for name, x in (("net", v.net_usd), ("net_total", v.net_usd.sum(axis=1, keepdims=True)),
                        ("avg_index", v.avg_index_usd), ("btc_at_expiry", v.btc_at_expiry),
                        ("token_usd", None if v.token_usd is None else v.token_usd[:, None]),
                        ("token_btc", None if v.token_btc is None else v.token_btc[:, None])):
            if x is not None:
                lo, hi = x.min(axis=0), x.max(axis=0)
                self.lo[name] = np.minimum(self.lo.get(name, lo), lo)
                self.hi[name] = np.maximum(self.hi.get(name, hi), hi)

    def min_variance(self) -> tuple[np.ndarray, np.ndarray]:
        """Minimum-variance quantity per contract (all paths) and its batch-means stderr."""
        rm = self.regression
        total = rm.total()
        minvar = self._solve(total[2])
        per_batch = np.array([self._solve(rm.com[b]) for b in range(rm.n.size) if rm.n[b] > 0])
        se = per_batch.std(axis=0, ddof=1) / math.sqrt(per_batch.shape[0]) if per_batch.shape[0] > 1 else \
            np.full(self.n_exp, np.nan)
        return minvar, se

    def _solve(self, com: np.ndarray) -> np.ndarray:
        at = {p: com[k] for k, p in enumerate(self.pairs)}
        out = np.zeros(self.n_exp)
        for mo in range(self.n_months):
            cs = np.flatnonzero(self.month_of == mo)
            css = np.array([[at[(c, d)] for d in cs] for c in cs])
            csy = np.array([at[(c, self.n_exp + mo)] for c in cs])
            out[cs] = np.linalg.lstsq(css, csy, rcond=None)[0]
        return out


def hedge_streamed(ff, market, model, *, paths: int, seed: int, threads=None, shift=None, progress=None,
                   chunk_paths: int | None = None) -> H.HedgeResult:
    """:func:`engine.risk.hedge.hedge_fleet` with histogram quantiles and bounded memory."""
    fleet, token = ff.position(market.asof), ff.token_trade(market.asof)
    n = n_paths_of(paths)
    passes = 2 + (shift is not None) + ("collar" in ff.hedge.hedges)
    done = [0]

    def step(k, total):
        if progress is not None:
            progress(done[0] * n + k, passes * n)

    kw = dict(paths=paths, seed=seed, threads=threads, chunk_paths=chunk_paths, keep_paths=False, progress=step)
    first = FirstPass(fleet, token, n)
    sim = simulate_fleet(fleet, token, market, model, on_chunk=first, **kw)
    done[0] += 1
    priced = first
    if shift is not None:
        priced = FirstPass(fleet, token, n)
        simulate_fleet(fleet, token, market, model, shift=shift, on_chunk=priced, **kw)
        done[0] += 1
    size_phs = np.asarray(fleet.hashrate_phs) * fleet.uptime
    fair, fair_se = priced.avg_index.mean(), priced.avg_index.stderr()
    ndfs, collars, ndf_rows = H._instruments(ff, fleet, size_phs, fair, fair_se)
    premium, collar_rows = None, []
    if "collar" in ff.hedge.hedges:
        prem = PairMoments((len(collars),), 256)
        simulate_fleet(fleet, token, market, model, shift=shift,
                       on_chunk=lambda _, v: prem.add(H._pay(collars, v.avg_index_usd, market)), **kw)
        premium = prem.mean()
        done[0] += 1
        collar_rows = H._collar_rows(collars, premium, prem.stderr())
    prices = H._prices(ff, ndf_rows, collar_rows)
    minvar, minvar_se = first.min_variance()
    futures = H._futures_contracts(ff, fleet, sim, market, minvar, minvar_se)
    plan = H.make_plan(ff, futures, ndfs, collars, premium, market)
    second = SecondPass(plan, first, token is not None, n)
    simulate_fleet(fleet, token, market, model, on_chunk=second, **kw)
    pnl = second.pnl_figures()
    token_part = None
    if token is not None:
        pv = (float(priced.token_usd.mean()[0]), float(priced.token_usd.stderr()[0]))
        token_part = H._token_report(ff, token, pv, market, second.token_distributions(first))
    fleet_pv = (priced.fleet_pv.mean(), priced.fleet_pv.stderr())
    quantiles = {"quantiles": "histogram", "quantile_grid": second.describe()}
    report = H.assemble_report(ff, fleet, market, sim, seed, futures, prices, pnl, fleet_pv, token_part, quantiles)
    edges = {name: second.grids[second.total_col(name)].edges() for name in plan.names}
    hist = {name: (edges[name], second.counts[second.total_col(name)].copy()) for name in plan.names}
    return H.HedgeResult(report, {}, hist)


def _bounds(plan: H.HedgePlan, first: FirstPass) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per hedge, bounds (months + the horizon) of its cash flows from the ranges of pass 1:
    interval arithmetic over net, the BTC price at each expiry and the average index (NDF and
    collar payoffs are monotone in it)."""
    lo, hi = first.lo, first.hi
    out = {}
    for name in plan.names:
        add_lo = np.zeros(first.n_months)
        add_hi = np.zeros(first.n_months)
        if name in ("delta", "min_variance"):
            h = plan.futures_btc[name]
            a, b = h * (plan.fwd - hi["btc_at_expiry"]), h * (plan.fwd - lo["btc_at_expiry"])
            for m in range(first.n_months):
                sel = plan.month_of == m
                add_lo[m] = np.minimum(a, b)[sel].sum()
                add_hi[m] = np.maximum(a, b)[sel].sum()
        elif name in ("hashprice_forward", "collar"):
            trades = plan.ndfs if name == "hashprice_forward" else plan.collars
            ends = H._pay(trades, np.stack([lo["avg_index"], hi["avg_index"]]), plan.market)
            if name == "collar":
                ends = ends - plan.collar_premium
            add_lo, add_hi = ends.min(axis=0), ends.max(axis=0)
        m_lo, m_hi = lo["net"] + add_lo, hi["net"] + add_hi
        t_lo, t_hi = lo["net_total"][0] + add_lo.sum(), hi["net_total"][0] + add_hi.sum()
        out[name] = (np.append(m_lo, t_lo), np.append(m_hi, t_hi))
    return out


def _grid(lo: float, hi: float, max_unit: float) -> Grid:
    """The grid over [lo, hi] (padded for rounding in the bounds); values quantised to a power of
    ten at most ``max_unit`` and at most a thousandth of a bin."""
    span = max(float(hi) - float(lo), 1e-300)
    unit = min(max_unit, 10.0 ** math.floor(math.log10(span / HIST_BINS / 1000)))
    pad = 1e-9 * max(abs(lo), abs(hi)) + 2 * unit
    return Grid(float(lo) - pad, float(hi) + pad, unit, HIST_BINS)


class SecondPass:
    """Histograms, per-batch moments and counts of every hedged cash flow (columns: per hedge its
    months then the horizon; then the token's USD value and BTC paid)."""

    def __init__(self, plan: H.HedgePlan, first: FirstPass, token: bool, n: int):
        self.plan, self.n, self.n_months = plan, n, first.n_months
        bounds = _bounds(plan, first)
        self.grids = [_grid(lo, hi, USD_UNIT) for name in plan.names for lo, hi in zip(*bounds[name])]
        self.n_pnl = len(self.grids)
        if token:
            self.grids += [_grid(first.lo["token_usd"][0], first.hi["token_usd"][0], USD_UNIT),
                           _grid(first.lo["token_btc"][0], first.hi["token_btc"][0], BTC_UNIT)]
        for g in self.grids:
            g.check_sums(n)
        c, nb = len(self.grids), HIST_BINS >> COARSE_SHIFT
        self.inv_unit = np.array([1.0 / g.unit for g in self.grids])
        self.q_lo = np.array([g.q_lo for g in self.grids], np.int64)
        self.q_span = np.array([g.q_span for g in self.grids], np.int64)
        self.counts, self.sums = np.zeros((c, HIST_BINS), np.int64), np.zeros((c, HIST_BINS), np.int64)
        self.b_counts, self.b_sums = np.zeros((N_BATCHES, c, nb), np.int64), np.zeros((N_BATCHES, c, nb), np.int64)
        self.b_negative, self.b_nonpositive = np.zeros((N_BATCHES, c), np.int64), np.zeros((N_BATCHES, c), np.int64)
        self.any_negative_month = np.zeros(len(plan.names), np.int64)
        self.moments = BatchMoments.variances(n, c, BLOCK_PATHS)

    def describe(self) -> dict:
        """Bins, and the resolution (one bin's width) of each hedge's horizon and worst month grid."""
        m, out = self.n_months, {}
        for k, name in enumerate(self.plan.names):
            res = [g.resolution for g in self.grids[k * (m + 1):(k + 1) * (m + 1)]]
            out[name] = {"horizon": res[-1], "worst_month": max(res[:-1])}
        doc = {"bins": HIST_BINS, "batch_bins": HIST_BINS >> COARSE_SHIFT, "resolution_usd": out}
        if len(self.grids) > self.n_pnl:
            doc["token_resolution"] = {"value_usd": self.grids[self.n_pnl].resolution,
                                       "paid_btc": self.grids[self.n_pnl + 1].resolution}
        return doc

    def total_col(self, name: str) -> int:
        return self.plan.names.index(name) * (self.n_months + 1) + self.n_months

    def __call__(self, row0: int, v: ChunkValues) -> None:
        flows = H.hedged_flows(self.plan, v)
        cols = []
        for k, name in enumerate(self.plan.names):
            arr = flows[name]
            cols += [arr, arr.sum(axis=1, keepdims=True)]
            self.any_negative_month[k] += int((arr < 0).any(axis=1).sum())
        if v.token_usd is not None and len(self.grids) > self.n_pnl:
            cols += [v.token_usd[:, None], v.token_btc[:, None]]
        x = np.ascontiguousarray(np.concatenate(cols, axis=1))
        batch = np.searchsorted(self.moments.edges, np.arange(row0, row0 + x.shape[0]), side="right") - 1
        add_rows(x, self.inv_unit, self.q_lo, self.q_span, HIST_BINS, COARSE_SHIFT, batch.astype(np.int64),
                 self.counts, self.sums, self.b_counts, self.b_sums, self.b_negative, self.b_nonpositive)
        self.moments.add(x, row0)

    def _figures(self, j: int, n, mean, m2, counts, sums, negative, bins: int) -> dict:
        g = self.grids[j]
        out = {"mean_usd": float(mean), "std_usd": float(math.sqrt(m2 / (n - 1))) if n > 1 else 0.0}
        for level in LEVELS:
            tail = int(round(100 * level))
            out[f"var_{tail}_usd"] = float(mean) - quantile(g, counts, 1.0 - level, bins)
            out[f"cvar_{tail}_usd"] = float(mean) - tail_mean(g, counts, sums, 1.0 - level)
        out["prob_negative"] = float(negative / n)
        return out

    def _column(self, j: int, u: int) -> dict:
        """:func:`engine.risk.pnl_stats.cash_flow_at_risk` of column j, effectiveness against column u."""
        bm = self.moments
        n, mean, m2 = bm.total()
        out = self._figures(j, n, mean[j], m2[j], self.counts[j], self.sums[j], self.b_negative[:, j].sum(), HIST_BINS)
        live = [b for b in range(bm.n.size) if bm.n[b] > 0]
        per_batch = [self._figures(j, bm.n[b], bm.mean[b, j], bm.com[b, j], self.b_counts[b, j], self.b_sums[b, j],
                                   self.b_negative[b, j], HIST_BINS >> COARSE_SHIFT) for b in live]
        for key in list(out):
            vals = np.array([f[key] for f in per_batch])
            out[f"{key}_stderr"] = float(vals.std(ddof=1) / np.sqrt(vals.size)) if vals.size > 1 else float("nan")
        eff = [1.0 - m2_h / m2_u if m2_u > 0 else float("nan") for m2_h, m2_u in
               [(m2[j], m2[u])] + [(bm.com[b, j], bm.com[b, u]) for b in live]]
        out["effectiveness"] = eff[0]
        vals = np.array(eff[1:])
        out["effectiveness_stderr"] = float(vals.std(ddof=1) / np.sqrt(vals.size)) if vals.size > 1 else float("nan")
        return out

    def pnl_figures(self) -> dict:
        """The report's ``pnl``, as :func:`engine.risk.hedge._pnl_figures` makes it from per-path values."""
        out = {}
        m = self.n_months
        for k, name in enumerate(self.plan.names):
            base = k * (m + 1)
            total = self._column(base + m, m)
            row = {key: total[key] for key in total if not key.startswith("effectiveness")}
            row["effectiveness"], row["effectiveness_stderr"] = total["effectiveness"], total["effectiveness_stderr"]
            row["prob_negative_month"] = float(self.any_negative_month[k] / self.n)
            row["months"] = [self._column(base + i, i) for i in range(m)]
            out[name] = row
        return out

    def token_distributions(self, first: FirstPass) -> dict:
        """The token's value and BTC paid: mean (pair moments of pass 1), std, quantiles, P(nothing)."""
        _, mean, m2 = self.moments.total()
        out = {}
        for off, name, pm in ((0, "value_usd", first.token_usd), (1, "paid_btc", first.token_btc)):
            j = self.n_pnl + off
            g = self.grids[j]
            q = [quantile(g, self.counts[j], p) for p in (0.05, 0.5, 0.95)]
            out[name] = {"mean": float(pm.mean()[0]), "mean_stderr": float(pm.stderr()[0]),
                         "std": float(math.sqrt(m2[j] / (self.n - 1))),
                         "p05": q[0], "p50": q[1], "p95": q[2],
                         "prob_zero": float(self.b_nonpositive[:, j].sum() / self.n)}
        return out
