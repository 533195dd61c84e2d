"""The miner's hedge: the fleet's monthly cash flows, the hedges a risk desk would put on, and the
cash flow at risk that remains, all on the same paths.

Measures: the hedge instruments are priced (NDF fair strikes, collar premiums, the fleet's and
the token's PV) under the pricing measure, with the market price of risk when a shift is given;
distributions, VaR and hedge ratios use the physical model: hashrate and fees as calibrated, BTC
drifting at its forward curve (the futures price is then an unbiased forecast, so a futures hedge
costs nothing on average). Cash flows at risk are undiscounted and summed by production month.

Hedges, each per month of the horizon:

* ``delta``: sell BTC futures for the BTC the month's days are expected to mine (with CME
  expiries, the days after a month's expiry roll into the next contract);
* ``min_variance``: the futures quantity minimising the variance of the month's hedged cash flow,
  Cov(net, S_T) / Var(S_T) (a regression on both contracts where a month has two);
* ``hashprice_forward``: sell NDFs on the month's average index for the fleet's expected output
  (hashrate x uptime) at the fair strike;
* ``collar``: buy a floor and sell a cap on the month's average index for the same size; the net
  premium is paid at the month's end (its forward value), so the collar costs nothing on
  average under the pricing measure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from curves.market import Market
from engine.mc.model import ModelParams
from engine.risk.fleet_paths import FleetPaths, kept_bytes_per_path, pair_mean, simulate_fleet
from engine.risk.pnl_stats import batch_stderr, cash_flow_at_risk, effectiveness
from products.fleet_file import COLLAR_BAND, FleetFile
from products.hashprice_options import HashpriceCollar
from products.hashrate_forward import HashrateForward

HEDGE_NAMES = {"btc_future": ("delta", "min_variance"), "hashprice_forward": ("hashprice_forward",),
               "collar": ("collar",)}
MEASURES = {"distributions": "physical model; BTC drifts at its forward curve",
            "prices": "pricing measure (the market price of risk, when a shift is given)"}


@dataclass
class HedgeResult:
    """The report (:meth:`to_dict`, JSON-ready) and the horizon cash flows by hedge: per path
    (per-path quantiles) or as (bin edges, counts) (histogram quantiles)."""

    report: dict
    horizon_pnl_usd: dict[str, np.ndarray] = field(repr=False)
    horizon_histograms: dict[str, tuple[np.ndarray, np.ndarray]] | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return self.report


@dataclass
class HedgePlan:
    """The hedges on, once their quantities are fixed: what turns a path's fleet values into
    each hedge's monthly cash flow (:func:`hedged_flows`)."""

    names: tuple[str, ...]
    month_of: np.ndarray
    fwd: np.ndarray
    futures_btc: dict[str, np.ndarray]
    ndfs: list
    collars: list
    collar_premium: np.ndarray | None
    market: Market


QUANTILE_MODES = ("per_path", "histogram")


def hedge_fleet(ff: FleetFile, market: Market, model: ModelParams, *, paths: int = 100_000, seed: int = 42,
                threads: int | None = None, shift=None, progress=None, quantiles: str | None = None,
                chunk_paths: int | None = None) -> HedgeResult:
    """Simulate the fleet, price the hedges and report every hedge's cash flow at risk. Without a
    shift the physical and pricing measures coincide and one simulation serves both; with one, a
    second simulation on the same seed prices the instruments. ``quantiles`` forces the mode
    (``per_path`` keeps every path's values; ``histogram`` streams them, :mod:`engine.risk.hedge_stream`);
    by default per path while they fit :data:`MEMORY_BUDGET_BYTES`."""
    from engine.risk.hedge_stream import hedge_streamed

    fleet, token = ff.position(market.asof), ff.token_trade(market.asof)
    mode = quantiles or choose_mode(fleet, token, paths, shift)
    if mode not in QUANTILE_MODES:
        raise ValueError(f"quantiles is one of {QUANTILE_MODES}, got {mode!r}")
    if mode == "histogram":
        return hedge_streamed(ff, market, model, paths=paths, seed=seed, threads=threads, shift=shift,
                              progress=progress, chunk_paths=chunk_paths)
    kw = dict(paths=paths, seed=seed, threads=threads, chunk_paths=chunk_paths)
    sim = simulate_fleet(fleet, token, market, model, progress=progress, **kw)
    priced = sim if shift is None else simulate_fleet(fleet, token, market, model, shift=shift, **kw)
    size_phs = np.asarray(fleet.hashrate_phs) * fleet.uptime
    fair, fair_se = pair_mean(priced.avg_index_usd)
    ndfs, collars, ndf_rows = _instruments(ff, fleet, size_phs, fair, fair_se)
    premium, premium_se = pair_mean(_pay(collars, priced.avg_index_usd, market))
    prices = _prices(ff, ndf_rows, _collar_rows(collars, premium, premium_se))
    minvar, minvar_se = _min_variance(fleet, sim)
    futures = _futures_contracts(ff, fleet, sim, market, minvar, minvar_se)
    plan = make_plan(ff, futures, ndfs, collars, premium, market)
    hedged = hedged_flows(plan, sim)
    pnl = {name: _pnl_figures(arr, sim.net_usd) for name, arr in hedged.items()}
    fleet_pv = pair_mean(priced.fleet_pv_usd[:, None])
    token_part = None
    if token is not None:
        pv = pair_mean(priced.token_usd[:, None])
        dists = {"value_usd": _distribution(sim.token_usd), "paid_btc": _distribution(sim.token_btc)}
        token_part = _token_report(ff, token, (float(pv[0][0]), float(pv[1][0])), market, dists)
    report = assemble_report(ff, fleet, market, sim, seed, futures, prices, pnl, fleet_pv, token_part,
                             {"quantiles": "per_path"})
    return HedgeResult(report, {name: arr.sum(axis=1) for name, arr in hedged.items()})


MEMORY_BUDGET_BYTES = 512 * 2**20  # per-path values kept above this are streamed instead


def choose_mode(fleet, token, paths: int, shift) -> str:
    """``per_path`` while the runs' kept per-path values fit :data:`MEMORY_BUDGET_BYTES`."""
    per_path = kept_bytes_per_path(len(fleet.periods), len(fleet.expiries), token is not None)
    runs = 1 if shift is None else 2
    return "per_path" if runs * per_path * paths <= MEMORY_BUDGET_BYTES else "histogram"


def assemble_report(ff, fleet, market, sim, seed, futures, prices, pnl, fleet_pv, token_part, quantiles) -> dict:
    """The report's JSON, the same keys in either quantile mode, but for ``quantiles`` (what made them)."""
    report = {
        "asof": str(market.asof), "paths": sim.n_paths, "seed": seed, "measures": MEASURES,
        **quantiles,
        "fleet": _fleet_terms(ff, fleet),
        "months": _month_rows(fleet, sim, futures, pnl),
        **_curtailment(sim),
        "fleet_pv_usd": float(fleet_pv[0][0]), "fleet_pv_usd_stderr": float(fleet_pv[1][0]),
        "hedges": {"btc_future": futures["contracts"], **prices},
        "pnl": pnl,
    }
    if token_part is not None:
        report["token"] = token_part
    return report


def make_plan(ff: FleetFile, futures, ndfs, collars, premium, market: Market) -> HedgePlan:
    names = ("unhedged", *(n for h in ("btc_future", "hashprice_forward", "collar") if h in ff.hedge.hedges
                           for n in HEDGE_NAMES[h]))
    return HedgePlan(names, futures["month_of"], futures["fwd"], {k: futures[k] for k in ("delta", "min_variance")},
                     ndfs, collars, None if premium is None else np.asarray(premium), market)


def hedged_flows(plan: HedgePlan, v) -> dict[str, np.ndarray]:
    """Each hedge's (and no hedge's) net cash flow per path and month, from ``v``'s
    ``net_usd``, ``avg_index_usd`` and ``btc_at_expiry`` (:class:`ChunkValues`)."""
    n_months = v.net_usd.shape[1]
    out = {"unhedged": v.net_usd}
    for name in ("delta", "min_variance"):
        if name in plan.names:
            per_contract = plan.futures_btc[name] * (plan.fwd - v.btc_at_expiry)  # short h BTC: gain h (F - S_T)
            pnl = np.stack([per_contract[:, plan.month_of == m].sum(axis=1) for m in range(n_months)], axis=1)
            out[name] = v.net_usd + pnl
    if "hashprice_forward" in plan.names:
        out["hashprice_forward"] = v.net_usd + _pay(plan.ndfs, v.avg_index_usd, plan.market)
    if "collar" in plan.names:
        out["collar"] = v.net_usd + _pay(plan.collars, v.avg_index_usd, plan.market) - plan.collar_premium
    return out


def _pay(trades, avg_index: np.ndarray, market: Market) -> np.ndarray:
    """Each month's trade paid on the month's average index, per path (products map fixings to flows)."""
    return np.stack([t.cash_flows(avg_index[:, [m]], market)[0].amount for m, t in enumerate(trades)], axis=1)


def _instruments(ff, fleet, size_phs, fair, fair_se):
    """NDFs sold at the fair strike (the pricing measure's expected average index) and collars
    bought around it, per month; the collar's premium is its expected payoff (paid at month end)."""
    ndfs = [HashrateForward(f"ndf-{m}", p.start, p.end, float(fair[m]), "USD", float(size_phs[m]), "sell")
            for m, p in enumerate(fleet.periods)]
    ndf_rows = [{"start": str(p.start), "end": str(p.end), "size_phs": float(size_phs[m]), "side": "sell",
                 "strike_usd_per_ph_day": float(fair[m]), "strike_usd_per_ph_day_stderr": float(fair_se[m])}
                for m, p in enumerate(fleet.periods)]
    h = ff.hedge
    collars = [HashpriceCollar(f"collar-{m}", p.start, p.end,
                               h.collar_floor_usd_per_ph_day or float(fair[m]) * (1 - COLLAR_BAND),
                               h.collar_cap_usd_per_ph_day or float(fair[m]) * (1 + COLLAR_BAND),
                               "USD", float(size_phs[m]), "buy") for m, p in enumerate(fleet.periods)]
    return ndfs, collars, ndf_rows


def _collar_rows(collars, premium, premium_se) -> list[dict]:
    return [{"start": str(c.start), "end": str(c.end), "size_phs": c.size_phs, "side": "buy",
             "floor_usd_per_ph_day": c.floor_strike, "cap_usd_per_ph_day": c.cap_strike,
             "premium_usd": float(premium[m]), "premium_usd_stderr": float(premium_se[m])}
            for m, c in enumerate(collars)]


def _prices(ff, ndf_rows, collar_rows) -> dict:
    h = ff.hedge
    return {"hashprice_forward": ndf_rows if "hashprice_forward" in h.hedges else [],
            "collar": collar_rows if "collar" in h.hedges else [], "ndf_fair_strikes": ndf_rows}


def month_of_contract(fleet) -> np.ndarray:
    """The month each futures contract hedges (a roll contract counts in the last month)."""
    return np.minimum(np.arange(len(fleet.expiries)), len(fleet.periods) - 1)


def _min_variance(fleet, sim: FleetPaths) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-variance short quantity per contract (a regression per month) and its stderr."""
    month_of = month_of_contract(fleet)
    minvar = np.zeros(len(fleet.expiries))
    minvar_se = np.zeros(len(fleet.expiries))
    for m in range(len(fleet.periods)):
        cs = np.flatnonzero(month_of == m)
        minvar[cs] = _regression(sim.btc_at_expiry[:, cs], sim.net_usd[:, m])
        for j, c in enumerate(cs):
            minvar_se[c] = batch_stderr(lambda s, y, j=j: _regression(s, y)[j], sim.btc_at_expiry[:, cs],
                                        sim.net_usd[:, m])
    return minvar, minvar_se


def _futures_contracts(ff: FleetFile, fleet, sim: FleetPaths, market: Market, minvar, minvar_se) -> dict:
    """Delta (expected BTC mined, from ``sim``'s moments) and minimum-variance quantities per contract."""
    expiries = fleet.expiries
    month_of = month_of_contract(fleet)
    fwd = np.array([market.btc_forward_usd(e) for e in expiries])
    delta = sim.btc_by_contract.mean()
    delta_se = sim.btc_by_contract.stderr()
    lot = ff.hedge.contract_btc
    contracts = [{"expiry": str(e), "month": int(month_of[c]), "forward_usd": float(fwd[c]), "side": "sell",
                  "delta_hedge_btc": float(delta[c]), "delta_hedge_btc_stderr": float(delta_se[c]),
                  "delta_hedge_contracts": int(round(delta[c] / lot)),
                  "min_variance_hedge_btc": float(minvar[c]), "min_variance_hedge_btc_stderr": float(minvar_se[c]),
                  "min_variance_hedge_contracts": int(round(minvar[c] / lot))}
                 for c, e in enumerate(expiries)]
    return {"delta": delta, "min_variance": minvar, "contracts": contracts, "month_of": month_of, "fwd": fwd}


def _regression(s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Coefficients of y on the columns of s (both centred): the minimum-variance short quantities."""
    sc = s - s.mean(axis=0)
    yc = y - y.mean()
    return np.linalg.lstsq(sc.T @ sc, sc.T @ yc, rcond=None)[0]


def _fleet_terms(ff: FleetFile, fleet) -> dict:
    return {"hashrate_phs": list(fleet.hashrate_phs), "efficiency_j_per_th": fleet.efficiency_j_per_th,
            "power_usd_per_kwh": list(fleet.power_usd_per_kwh), "uptime": fleet.uptime,
            "opex_usd_per_day": fleet.opex_usd_per_day, "capex_usd": ff.fleet["capex_usd"],
            "curtailment": fleet.curtailment, "curtailment_signal": fleet.curtailment_signal,
            "btc_sold": fleet.btc_sold,
            "power_cost_usd_per_ph_day": [float(c) for c in fleet.power_cost_usd_per_ph_day],
            "horizon_months": ff.hedge.horizon_months, "contract_btc": ff.hedge.contract_btc,
            "expiry_rule": ff.hedge.expiry_rule}


def _month_rows(fleet, sim: FleetPaths, futures, pnl) -> list[dict]:
    rows = []
    means = {k: sim.mean(k) for k in ("btc_mined", "revenue_usd", "power_cost_usd", "opex_usd", "net_usd")}
    contracts = futures["contracts"]
    for m, p in enumerate(fleet.periods):
        mine = [c for c in contracts if c["month"] == m]
        row = {"start": str(p.start), "end": str(p.end), "futures_expiry": mine[0]["expiry"]}
        if len(mine) > 1:
            row["roll_futures_expiry"] = mine[1]["expiry"]
        for k, (mean, se) in means.items():
            name = "expected_btc_mined" if k == "btc_mined" else f"expected_{k}"
            row[name], row[f"{name}_stderr"] = float(mean[m]), float(se[m])
        for h in ("delta", "min_variance"):
            row[f"{h}_hedge_btc"] = sum(c[f"{h}_hedge_btc"] for c in mine)
            row[f"{h}_hedge_btc_stderr"] = float(np.sqrt(sum(c[f"{h}_hedge_btc_stderr"] ** 2 for c in mine)))
            row[f"{h}_hedge_contracts"] = sum(c[f"{h}_hedge_contracts"] for c in mine)
        row["hedge_effectiveness"] = {name: p["months"][m]["effectiveness"]
                                      for name, p in pnl.items() if name != "unhedged"}
        rows.append(row)
    return rows


def _curtailment(sim: FleetPaths) -> dict:
    """Curtailment's value on the same paths: (net with it) - (net without it), and the same with
    the day's own index as the signal (an upper bound on what a curtailing operator can earn)."""
    value, se = sim.mean("curtailment_value_usd")
    total, total_se = sim.total("curtailment_value_usd")
    best, best_se = sim.total("curtailment_upper_bound_usd")
    return {"curtailment_value_usd": total, "curtailment_value_usd_stderr": total_se,
            "curtailment_upper_bound_usd": best, "curtailment_upper_bound_usd_stderr": best_se,
            "curtailment_value_by_month_usd": [float(v) for v in value],
            "curtailment_value_by_month_usd_stderr": [float(s) for s in se]}


def _pnl_figures(arr: np.ndarray, unhedged: np.ndarray) -> dict:
    total, total_u = arr.sum(axis=1), unhedged.sum(axis=1)
    out = cash_flow_at_risk(total)
    out["effectiveness"], out["effectiveness_stderr"] = effectiveness(total, total_u)
    out["prob_negative_month"] = float((arr < 0).any(axis=1).mean())
    out["months"] = []
    for m in range(arr.shape[1]):
        row = cash_flow_at_risk(arr[:, m])
        row["effectiveness"], row["effectiveness_stderr"] = effectiveness(arr[:, m], unhedged[:, m])
        out["months"].append(row)
    return out


def _token_report(ff: FleetFile, token, pv: tuple[float, float], market: Market, dists: dict) -> dict:
    """PV (pricing measure) and the distribution (physical) of one token's discounted USD value and
    of the BTC it pays."""
    spot = market.btc_spot_usd
    pv, pv_se = pv
    out = {"ths_per_token": token.ths_per_token, "life_months": ff.token["life_months"],
           "start": str(token.start), "end": str(token.end), "fee_usd_per_th_day": token.fee_usd_per_th_day,
           "pv_usd": pv, "pv_usd_stderr": pv_se, "pv_btc_at_spot": pv / spot, "pv_btc_at_spot_stderr": pv_se / spot}
    for name, unit in (("value_usd", "USD, discounted"), ("paid_btc", "BTC, as paid")):
        out[name] = {"unit": unit, **dists[name]}
    return out


def _distribution(x: np.ndarray) -> dict:
    """Mean, stderr, std, 5/50/95% quantiles and the chance of nothing, of per-path values."""
    q = np.quantile(x, [0.05, 0.5, 0.95], method="inverted_cdf")
    mean, se = (float(v[0]) for v in pair_mean(x[:, None]))
    return {"mean": mean, "mean_stderr": se, "std": float(x.std(ddof=1)),
            "p05": float(q[0]), "p50": float(q[1]), "p95": float(q[2]), "prob_zero": float((x <= 0).mean())}


TOLERANCE_STEP_PATHS = 16_384


def reported_figures(report: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(value, stderr, in USD) of the figures a tolerance applies to: each month's expected BTC
    mined, revenue, power and net, its delta and minimum-variance hedges, the NDF strikes, the
    curtailment value, the fleet's PV and the token's."""
    rows = []
    for m in report["months"]:
        for k in ("expected_btc_mined", "expected_revenue_usd", "expected_power_cost_usd", "expected_net_usd",
                  "delta_hedge_btc", "min_variance_hedge_btc"):
            rows.append((m[k], m[f"{k}_stderr"], k.endswith("_usd")))
    rows += [(r["strike_usd_per_ph_day"], r["strike_usd_per_ph_day_stderr"], False)
             for r in report["hedges"]["ndf_fair_strikes"]]
    rows += [(report["curtailment_value_usd"], report["curtailment_value_usd_stderr"], True),
             (report["fleet_pv_usd"], report["fleet_pv_usd_stderr"], True)]
    if "token" in report:
        rows.append((report["token"]["pv_usd"], report["token"]["pv_usd_stderr"], True))
    value, se, usd = (np.array(c) for c in zip(*rows))
    return value, se, usd.astype(bool)


def worst_against(tolerance, report: dict) -> float:
    """The largest stderr over what ``tolerance`` allows: its absolute floor is in USD, so it
    serves USD figures alone; BTC amounts and strikes need the relative target."""
    value, se, usd = reported_figures(report)
    return max(tolerance.worst(value[usd], se[usd]), type(tolerance)(tolerance.rel).worst(value[~usd], se[~usd]))


def hedge_to_tolerance(ff: FleetFile, market: Market, model: ModelParams, tolerance, *, max_paths: int,
                       seed: int = 42, threads: int | None = None, shift=None, progress=None,
                       quantiles: str | None = None) -> HedgeResult:
    """Rerun with more paths (the same seed: the first paths are the same) until every figure of
    :func:`reported_figures` is within ``tolerance`` (:func:`worst_against`), or ``max_paths``;
    the report's ``tolerance`` says how it ended."""
    paths = min(max_paths, 2 * TOLERANCE_STEP_PATHS)
    while True:
        res = hedge_fleet(ff, market, model, paths=paths, seed=seed, threads=threads, shift=shift, progress=progress,
                          quantiles=quantiles)
        worst = worst_against(tolerance, res.report)
        if worst <= 1.0 or paths >= max_paths:
            break
        step = TOLERANCE_STEP_PATHS
        paths = min(max_paths, -(-int(paths * min(worst, 10.0) ** 2 * 1.1) // step) * step)
    res.report["tolerance"] = {"rel": tolerance.rel, "abs": tolerance.abs, "max_paths": max_paths,
                               "paths_used": res.report["paths"], "met": worst <= 1.0,
                               "worst_stderr_over_allowed": worst}
    return res
