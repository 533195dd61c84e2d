"""The fleet on simulated paths, chunk by chunk. Per path, what hedges, prices and quantiles need
is kept (a few numbers per path and month): the month's net cash flow and average index, BTC at
each futures expiry, the fleet's and the token's discounted value and the token's BTC; the rest
is reduced to moments as it goes.

The fleet's and the token's fixings are all one-day windows (the daily index and BTC close), so
they are gathered straight from the kernel's daily values. Every per-path value is a function of
its path alone: the arrays, and every figure computed from them, are the same whatever the chunk
size or thread count. With ``keep_paths=False`` nothing per path is kept: each chunk's values go
to ``on_chunk`` (the streamed hedge reduces them), and memory stays bounded whatever the paths.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from curves.market import Market
from curves.toml_io import InputError
from engine.mc import kernel as K
from engine.mc.model import ModelParams
from engine.mc.moments import PairMoments
from engine.mc.simulation import QUANTITIES, Simulation
from engine.pricing.batch import Discounter, discounted_pv
from engine.pricing.pricer import CHUNK_BYTES
from products.fleet import FleetPosition
from products.hashrate_token import HashrateToken

COMPONENTS = ("btc_mined", "revenue_usd", "power_cost_usd", "opex_usd", "net_usd", "curtailment_value_usd",
              "curtailment_upper_bound_usd")


@dataclass
class ChunkValues:
    """Per path of one chunk (or of the whole run): ``net_usd`` and ``avg_index_usd`` per month,
    ``btc_at_expiry`` per futures expiry, ``fleet_pv_usd`` (its cash flows discounted), the token's
    discounted ``token_usd`` and ``token_btc`` paid (None without a token)."""

    net_usd: np.ndarray
    avg_index_usd: np.ndarray
    btc_at_expiry: np.ndarray
    fleet_pv_usd: np.ndarray
    token_usd: np.ndarray | None
    token_btc: np.ndarray | None


@dataclass
class FleetPaths(ChunkValues):
    """The run: its :class:`ChunkValues` for every path (rows in pair order; None when not kept),
    ``monthly`` moments of :data:`COMPONENTS` (x months), ``totals`` of their horizon sums, and
    ``btc_by_contract`` of the BTC each contract's days mine."""

    monthly: PairMoments
    totals: PairMoments
    btc_by_contract: PairMoments
    n_paths: int
    seconds: float = 0.0

    def mean(self, component: str) -> tuple[np.ndarray, np.ndarray]:
        k = COMPONENTS.index(component)
        return self.monthly.mean()[k], self.monthly.stderr()[k]

    def total(self, component: str) -> tuple[float, float]:
        """Over the horizon (the months added path by path): mean and stderr."""
        k = COMPONENTS.index(component)
        return float(self.totals.mean()[k]), float(self.totals.stderr()[k])


def kept_bytes_per_path(n_months: int, n_expiries: int, token: bool) -> int:
    """Bytes a run keeps per path when it keeps its per-path values."""
    return 8 * (2 * n_months + n_expiries + 1 + (2 if token else 0))


def pair_mean(x: np.ndarray, block_pairs: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Mean over paths (axis 0, in pair order) and its stderr from antithetic pair means."""
    m = PairMoments(x.shape[1:], block_pairs)
    m.add(x)
    return m.mean(), m.stderr()


def _gather(product, market: Market) -> tuple[np.ndarray, np.ndarray]:
    """(day index, quantity index) of each of a product's one-day window fixings."""
    days, qs = [], []
    for f in product.fixings():
        if f.start != f.end:
            raise InputError("fixings", f"{product.trade_id}: a fleet fixing is one day, got {f.start}..{f.end}")
        days.append((f.start - market.asof).days - 1)
        qs.append(QUANTITIES.index(f.quantity))
    return np.array(days), np.array(qs)


def simulate_fleet(fleet: FleetPosition, token: HashrateToken | None, market: Market, model: ModelParams, *,
                   paths: int, seed: int, threads: int | None = None, shift=None, progress=None,
                   keep_paths: bool = True, on_chunk=None, chunk_paths: int | None = None) -> FleetPaths:
    """Simulate over the fleet's days, its futures expiries and the token's life. Without ``shift``
    this is the physical model (BTC drifts at its forward); with it, the pricing measure.
    ``on_chunk(first_path, ChunkValues)`` sees each chunk; ``keep_paths=False`` keeps no per-path
    array; ``chunk_paths`` overrides the chunk size (the figures do not depend on it)."""
    for what in (fleet, token):
        if what is not None and what.start <= market.asof:
            raise InputError("start", f"{what.trade_id}: the first day {what.start} is not after the as-of date "
                                      f"{market.asof} (the hedge simulates whole months from tomorrow)")
    t0 = time.perf_counter()
    last = max([fleet.end, *fleet.expiries] + ([token.end] if token is not None else []))
    n_days = (last - market.asof).days
    disc = Discounter(market, n_days)
    windows = [(t, t) for t in range(n_days)]
    per_path = 8 * (n_days * K.N_QUANTITIES + 12 * n_days)
    chunk = chunk_paths or int(min(65_536, max(1024, 2 ** int(np.log2(max(CHUNK_BYTES // per_path, 1))))))
    sim = Simulation(market, model, n_days=n_days, n_paths=paths, seed=seed, threads=threads, chunk_paths=chunk,
                     hashrate_shift_per_day=shift)
    f_day, f_q = _gather(fleet, market)
    t_day, t_q = _gather(token, market) if token is not None else (None, None)
    n, n_months, n_exp = sim.n_paths, len(fleet.periods), len(fleet.expiries)
    keep = keep_paths or None
    out = FleetPaths(keep and np.empty((n, n_months)), keep and np.empty((n, n_months)),
                     keep and np.empty((n, n_exp)), keep and np.empty(n),
                     np.empty(n) if token and keep else None, np.empty(n) if token and keep else None,
                     PairMoments((len(COMPONENTS), n_months), sim.block_pairs),
                     PairMoments((len(COMPONENTS),), sim.block_pairs), PairMoments((n_exp,), sim.block_pairs), n)
    index_today = market.spot_hashprice_usd_per_ph_day()
    opex = fleet.opex_usd_per_day * np.array([p.days for p in fleet.periods], dtype=float)
    days = np.array([p.days for p in fleet.periods], dtype=float)
    sale = fleet.sale_index
    contract_days = [sale == c for c in range(n_exp)]
    for start, wv, _, _ in sim.path_chunks(windows):
        rows = slice(2 * start, 2 * start + wv.shape[0])
        values = wv[:, f_day, f_q]
        d = fleet.daily(values, index_today)
        mined = fleet.month_sums(d["btc_mined"])
        revenue, power = fleet.month_sums(d["revenue_usd"]), fleet.month_sums(d["power_cost_usd"])
        net = revenue - power - opex
        variants = [fleet.month_sums(v["revenue_usd"] - v["power_cost_usd"]) for v in (
            fleet.daily(values, index_today, curtail=False), fleet.daily(values, index_today, curtail=True),
            fleet.daily(values, index_today, curtail=True, signal="same_day"))]
        stack = np.stack([mined, revenue, power, np.broadcast_to(opex, net.shape), net, variants[1] - variants[0],
                          variants[2] - variants[0]], axis=1)
        out.monthly.add(stack)
        out.totals.add(stack.sum(axis=2))
        out.btc_by_contract.add(np.stack([d["btc_mined"][:, sel].sum(axis=1) for sel in contract_days], axis=1))
        _, _, exp_btc = fleet.split_fixings(values)
        tv = wv[:, t_day, t_q] if token is not None else None
        cv = ChunkValues(net, fleet.month_sums(d["hashprice"]) / days,
                         np.stack([exp_btc[c] for c in range(n_exp)], axis=1),
                         discounted_pv(fleet, values, market, disc),
                         discounted_pv(token, tv, market, disc) if token is not None else None,
                         token.payouts(tv)[1].sum(axis=1) if token is not None else None)
        if keep_paths:
            for name in ("net_usd", "avg_index_usd", "btc_at_expiry", "fleet_pv_usd", "token_usd", "token_btc"):
                if getattr(cv, name) is not None:
                    getattr(out, name)[rows] = getattr(cv, name)
        if on_chunk is not None:
            on_chunk(rows.start, cv)
        if progress is not None:
            progress(min(2 * start + wv.shape[0], n), n)
    out.seconds = time.perf_counter() - t0
    return out
