"""Each trade's cash flows, expected on the same paths as its PV (like ORE's flows report).

A flow's PV uses its trade's control variate, so a trade's flows add up to its PV. A flow whose
pay date depends on the path (a difficulty swap's) reports the day of its mean pay time and
``pay_date_is_random``; ``fixed`` says its fixings are all known today. Flows paid by the as-of
date are listed as settled.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from engine.mc.moments import PairMoments
from engine.pricing.batch import Discounter, flow_values, typical_size
from engine.pricing.fixing_plan import TradePlan
from engine.pricing.option_legs import OptionFlows, takes


def settled_flows(plan: TradePlan, market) -> list[dict]:
    """Flows paid by the as-of date, with their amounts where every fixing is known."""
    values = np.array([s.offset if s.block == "const" else np.nan for s in plan.sources])
    out = []
    with np.errstate(all="ignore"):
        flows = plan.trade.cash_flows(values, market)
    for c, live in zip(flows, plan.live, strict=True):
        if live:
            continue
        amount = float(np.mean(c.amount))
        out.append({"pay_date": str(c.pay_date), "pay_date_is_random": False, "currency": c.currency,
                    "expected_amount": amount if math.isfinite(amount) else None, "stderr": 0.0,
                    "pv_usd": 0.0, "pv_stderr": 0.0, "fixed": True, "settled": True})
    return out


class FlowBook:
    """Per-path amounts and PVs of every live flow, accumulated over antithetic pairs."""

    def __init__(self, terms, space, market, disc: Discounter, block_pairs: int):
        self.terms, self.market, self.disc = terms, market, disc
        self.meta = []  # per flow: (trade k, cash flow from the probe, fixed)
        rows_amt, rows_pv, self.const_amt, self.const_pv = [], [], [], []
        self.first = []  # per trade: its first flow's index
        self.other = []  # (trade, first flow, flows) valued through the trade's cash flows per chunk
        self.options = OptionFlows(market)  # options valued as legs, all in one pass
        n_cols = space.n_cols
        for k, t in enumerate(terms):
            self.first.append(len(self.meta))
            n = len(t.cols)
            sim = np.array([s.block != "const" for s in t.plan.sources])
            if t.affine:
                size = np.array([typical_size(src, market) for src in t.plan.sources])  # as in trade_terms
                probes = np.vstack([np.zeros(n), np.eye(n)]) * size
                with np.errstate(all="ignore"):
                    flows = flow_values(t.plan, probes * t.scale + t.offset, self.market, disc)
                for c, amt, pv in flows:
                    f = len(self.meta)
                    amt, pv = np.broadcast_to(amt, (n + 1,)), np.broadcast_to(pv, (n + 1,))
                    slope_amt, slope_pv = (amt[1:] - amt[0]) / size, (pv[1:] - pv[0]) / size
                    self.meta.append((k, c, not np.any((slope_amt != 0) & sim)))
                    self.const_amt.append(float(amt[0]))
                    self.const_pv.append(float(pv[0]))
                    for j in range(n):
                        rows_amt.append((t.cols[j], f, slope_amt[j]))
                        rows_pv.append((t.cols[j], f, slope_pv[j]))
            else:
                base = np.where(sim, 1.0, t.offset)
                fixed = None
                for j in np.flatnonzero(sim):
                    x = base.copy()
                    x[j] = np.nan
                    with np.errstate(all="ignore"):
                        hit = [bool(np.any(np.isnan(a))) for _, a, _ in flow_values(t.plan, x, market, disc)]
                    fixed = [f and not h for f, h in zip(fixed or [True] * len(hit), hit, strict=True)]
                with np.errstate(all="ignore"):
                    flows = flow_values(t.plan, base, market, disc)
                fixed = fixed or [True] * len(flows)
                first = len(self.meta)
                for (c, _, _), fx in zip(flows, fixed, strict=True):
                    self.meta.append((k, c, fx))
                    self.const_amt.append(0.0)
                    self.const_pv.append(0.0)
                if not (takes(t) and self.options.add(t, first, [c.pay_date for c, _, _ in flows])):
                    self.other.append((k, first, len(flows)))
        self.options.freeze()
        self.first.append(len(self.meta))
        n_flows = len(self.meta)
        self.const_amt, self.const_pv = np.array(self.const_amt), np.array(self.const_pv)

        def matrix(entries):
            if not entries:
                return sp.csr_matrix((n_cols, n_flows))
            r, c, v = zip(*entries, strict=True)
            return sp.csr_matrix((v, (r, c)), shape=(n_cols, n_flows))

        self.trade_of = np.array([m[0] for m in self.meta], dtype=np.int64)
        self.random = np.array([m[1].pay_days is not None for m in self.meta], dtype=bool)
        # a flow paid on a fixed date has PV = its discount factor x its amount, path by path: only
        # the flows paid on a path's own date need PVs per path
        self.df = np.array([np.nan if r else disc.on(m[1].pay_date) for m, r in zip(self.meta, self.random,
                                                                                        strict=True)])
        self.random_idx = np.flatnonzero(self.random)
        self.random_row = np.full(n_flows, -1, dtype=np.int64)
        self.random_row[self.random_idx] = np.arange(self.random_idx.size)
        self.g_amt_t = matrix(rows_amt).T.tocsr()  # flows x columns
        self.g_pv_t = matrix(rows_pv).T.tocsr()[self.random_idx]
        self.const_pv = self.const_pv[self.random_idx]
        self.amount = PairMoments((n_flows,), block_pairs)
        self.pv = PairMoments((self.random_idx.size,), block_pairs)
        self.pay_days_sum = np.zeros(n_flows)
        self.n_paths = 0

    def add(self, x: np.ndarray, ctrl: np.ndarray, other_flows: dict | None = None) -> None:
        """A chunk: ``x`` the fixing matrix (paths x columns), ``ctrl`` each trade's control per
        path (paths x trades), both best given as views of C-ordered transposes; ``other_flows``
        the :func:`flow_values` of trades valued through their cash flows, where already formed."""
        x_t = np.ascontiguousarray(x.T)  # columns x paths; flows are formed as flows x paths
        with np.errstate(all="ignore"):
            amt = self.g_amt_t @ x_t
            amt += self.const_amt[:, None]
            pv = self.g_pv_t @ x_t
            pv += self.const_pv[:, None]
            if self.options.flows.size:
                amt[self.options.flows] = self.options.amounts_t(x_t)
            for k, first, _n in self.other:
                t = self.terms[k]
                values = (other_flows or {}).get(k)
                if values is None:
                    values = flow_values(t.plan, t.values(x), self.market, self.disc)
                for j, (c, a, p) in enumerate(values):
                    amt[first + j] = a
                    row = self.random_row[first + j]
                    if row >= 0:
                        pv[row] = p
                        self.pay_days_sum[first + j] += float(np.sum(c.pay_days))
        c_t = np.ascontiguousarray(ctrl.T)
        c = c_t[self.trade_of]
        self.amount.add(amt.T, c.T)
        if self.random_idx.size:
            c = c_t[self.trade_of[self.random_idx]]
            self.pv.add(pv.T, c.T)
        self.n_paths += x.shape[0]

    def report(self, k: int, ctrl_mean: float) -> list[dict]:
        lo, hi = self.first[k], self.first[k + 1]
        with np.errstate(all="ignore"):
            amt, amt_se = self.amount.mean(ctrl_mean)[lo:hi], self.amount.stderr(ctrl_mean)[lo:hi]
            pv, pv_se = self.df[lo:hi] * amt, self.df[lo:hi] * amt_se
            rows = self.random_row[lo:hi]
            if np.any(rows >= 0):
                at = rows >= 0
                pv[at] = self.pv.mean(ctrl_mean)[rows[at]]
                pv_se[at] = self.pv.stderr(ctrl_mean)[rows[at]]
        out = []
        for f in range(lo, hi):
            _, c, fixed = self.meta[f]
            random = bool(self.random[f]) and not fixed
            pay = (Discounter.pay_date(self.market, self.pay_days_sum[f] / self.n_paths) if random and self.n_paths
                   else c.pay_date)
            i = f - lo
            out.append({"pay_date": str(pay), "pay_date_is_random": random, "currency": c.currency,
                        "expected_amount": float(amt[i]), "stderr": float(amt_se[i]), "pv_usd": float(pv[i]),
                        "pv_stderr": float(pv_se[i]), "fixed": bool(fixed), "settled": False})
        return out
