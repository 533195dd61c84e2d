"""Greeks of any list of products by bump and reprice on common random numbers, the risk ladder
and the scenario grid (:func:`portfolio_risk`).

Each measure is a per-path combination of repriced scenarios (:mod:`engine.risk.lockstep`), so
its stderr comes from the paired differences. Bumps (sizes in :mod:`engine.risk.bumps`):

* ``btc_delta`` (BTC: USD per USD of spot) and ``btc_gamma_per_1pct`` (BTC: the change in
  delta for a +1% spot move): central differences, spot and the whole BTC forward curve x (1 +- 1%);
* ``vega_per_vol_point``: central, every BTC implied vol +- 0.01, per 0.01;
* ``hashrate_start_per_1pct``: the starting hashrate + 1%;
* ``hashrate_drift_per_1pct_year``: + 0.01 a year (0.01 / 365 a day) added to the drift shift of
  ln hashrate on every day;
* ``fee_today_per_1pct``, ``fee_long_run_per_1pct``: today's fee per block, the model's long-run
  fee, + 1% each;
* ``usd_dv01``: + 1 bp on every USD zero rate, BTC futures and forward prices held;
* ``theta_1d``: the market rolled one day on (:mod:`engine.risk.roll`), same seed;
* ``quote_delta`` (bucket: the quote), with quotes: the quote + 0.1 USD/PH/day, the shift
  re-bootstrapped on the same random numbers, per 1 USD/PH/day.

>>> import datetime as dt
>>> from curves.market import Market
>>> from engine.mc.model import ModelParams
>>> from products.hashrate_forward import HashrateForward
>>> ndf = HashrateForward("q2", dt.date(2026, 4, 1), dt.date(2026, 6, 30), 40.0, "USD", 100.0)
>>> rep = portfolio_risk([ndf], Market.default(), ModelParams.default(), paths=2_048, seed=1, grid=None)
>>> delta, se = rep.value("q2", "btc_delta")
>>> bool(delta > 0 and 0 < se < 0.05 * delta)
True
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from curves.market import Market
from curves.toml_io import InputError
from engine.mc.model import ModelParams
from engine.mc.simulation import DAYS_PER_YEAR
from engine.risk import bumps as B
from engine.risk.lockstep import LinearMeasure, Scenario, reprice_in_lockstep
from engine.risk.quote_deltas import bootstrap_quote_bumps
from engine.risk.report import PORTFOLIO, GridCell, RiskReport, ladder_row
from engine.risk.roll import market_rolled_one_day, realised_with_rolled_day
from engine.risk.scenario_grid import DEFAULT_SCENARIOS, ScenarioGrid
from engine.risk.shifts import ShiftView

BASE = ("base",)
DEFAULT_GRID = ScenarioGrid.parse(DEFAULT_SCENARIOS)
CALIBRATION_PATHS = 20_000  # paths of each quote bootstrap (calibrate-quotes' default)

CONVENTIONS = {
    "pv": "present value at the as-of date, USD",
    "btc_delta": "dPV/dS by central difference: BTC spot and every BTC forward (and futures price) x (1 +- 1%), "
                 "carry, vols and the network held; BTC = USD per USD of spot",
    "btc_gamma_per_1pct": "change in btc_delta for a +1% spot move: (PV+ - 2 PV + PV-) / (100 h^2 S), h = 1%",
    "vega_per_vol_point": "every BTC implied vol +- 0.01 (central difference), per 0.01",
    "hashrate_start_per_1pct": "PV change when the starting hashrate (the filtered level) is 1% higher",
    "hashrate_drift_per_1pct_year": "PV change when +0.01 a year (0.01/365 a day) is added to the drift of "
                                    "ln hashrate on every day (the market-implied shift, or zero)",
    "fee_today_per_1pct": "PV change when today's fee per block is 1% higher",
    "fee_long_run_per_1pct": "PV change when the model's long-run fee per block is 1% higher",
    "usd_dv01": "PV change for +1 bp on every USD zero rate; BTC futures and forward prices held fixed",
    "theta_1d": "PV change when the market rolls one day on: as-of + 1, height + 144 blocks (600 s each, "
                "retargeting if the epoch ends), the hashprice EMA one daily step on; spot, fee, hashrate, "
                "flat rates and dated curve points held; the rolled day fixes at today's index; same seed",
    "quote_delta": "PV change per +1 USD/PH/day of a quoted forward: the quote (and its bid and ask) + 0.1, the "
                   "hashrate shift re-bootstrapped on the same random numbers, scaled by 10",
    "grid": "portfolio PV with BTC spot and forwards x (1 + x%) and the starting hashrate x (1 + y%); change "
            "against the base on the same random numbers",
}
UNITS = {
    "pv": "USD", "btc_delta": "BTC", "btc_gamma_per_1pct": "BTC", "vega_per_vol_point": "USD",
    "hashrate_start_per_1pct": "USD", "hashrate_drift_per_1pct_year": "USD", "fee_today_per_1pct": "USD",
    "fee_long_run_per_1pct": "USD", "usd_dv01": "USD", "theta_1d": "USD", "quote_delta": "USD per USD/PH/day",
}


def _shock_key(btc_rel: float, hashrate_rel: float) -> tuple:
    return BASE if btc_rel == 0.0 and hashrate_rel == 0.0 else ("shock", round(btc_rel, 12), round(hashrate_rel, 12))


def _shock_label(btc_rel: float, hashrate_rel: float) -> str:
    parts = [f"{name} {100 * r:+g}%" for name, r in (("BTC", btc_rel), ("hashrate", hashrate_rel)) if r]
    return ", ".join(parts)


class _Plan:
    """The scenarios and measures of one risk run. A scenario whose state cannot be built (a vol
    bumped to zero, a date past QuantLib's calendar) is kept with its error: the measures that
    use it report it for every trade, the others are unaffected."""

    def __init__(self, market, model, shift, realised):
        self.market, self.model, self.realised = market, model, realised
        self.base_shift = shift
        self.scenarios: dict[tuple, Scenario] = {}
        self.measures: list[LinearMeasure] = []
        self.add(BASE, "", lambda: {})

    def _view(self, **kw):
        if self.base_shift is None and not kw:
            return None
        return ShiftView(self.base_shift, **kw)

    def add(self, key, label: str, build) -> tuple:
        """Scenario ``key`` from ``build()``: the changes (market, model, shift, realised) to the base."""
        if key in self.scenarios:
            return key
        try:
            state = {"market": self.market, "model": self.model, "shift": self._view(), "realised": self.realised,
                     **build()}
            self.scenarios[key] = Scenario(key, label, **state)
        except (InputError, RuntimeError, ArithmeticError) as exc:  # QuantLib raises RuntimeError
            self.scenarios[key] = Scenario(key, label, self.market, self.model, error=str(exc))
        return key

    def shock(self, btc_rel: float = 0.0, hashrate_rel: float = 0.0) -> tuple:
        return self.add(_shock_key(btc_rel, hashrate_rel), _shock_label(btc_rel, hashrate_rel),
                        lambda: {"market": B.shocked_market(self.market, btc_rel, hashrate_rel)})

    def measure(self, name, weights, bucket="all", per_trade=True, unit=None):
        self.measures.append(LinearMeasure(name, unit or UNITS[name], tuple(weights), bucket, per_trade))


def portfolio_risk(trades: Sequence, market: Market, model: ModelParams, *, paths: int = 100_000, seed: int = 42,
                   errors: Sequence = (), threads: int | None = None, hashrate_shift_per_day=None,
                   quotes=None, quote_bumps=None, grid: ScenarioGrid | None = DEFAULT_GRID, realised=None,
                   chunk_paths: int | None = None, calibration_paths: int = CALIBRATION_PATHS,
                   progress: Callable[[int, int], None] | None = None,
                   calibration_progress: Callable[[int, int], None] | None = None) -> RiskReport:
    """The risk ladder of ``trades`` (any products) and the scenario grid, on one seed.

    ``errors`` are trades that failed to parse (``products.portfolio.TradeError``): reported in
    the ladder. ``hashrate_shift_per_day`` is the base hashrate drift shift (as in
    ``price_trades``); with ``quotes`` (``engine.calibration.quotes.Quote``), each gets a
    ``quote_delta`` (without a shift, the base shift is bootstrapped from the quotes), or with
    ``quote_bumps``, the calibrations :func:`~engine.risk.quote_deltas.bootstrap_quote_bumps` made.
    ``grid=None`` skips the scenario grid. ``progress(done, total)`` counts repriced paths over
    every scenario; ``calibration_progress`` counts the quote bootstraps.
    """
    t0 = time.perf_counter()
    trades = list(trades)
    extra = {}
    if quotes and quote_bumps is None:
        quote_bumps = bootstrap_quote_bumps(market, model, quotes, paths=calibration_paths, seed=seed,
                                            threads=threads, progress=calibration_progress)
    base_cal, quote_bumps = quote_bumps if quote_bumps is not None else (None, [])
    if base_cal is not None:
        if hashrate_shift_per_day is None:
            hashrate_shift_per_day = base_cal.shift
            extra["shift"] = "bootstrapped from the quotes"
        extra["quote_calibration"] = {"paths": base_cal.paths, "seed": base_cal.seed,
                                      "bump_usd_per_ph_day": B.QUOTE_BUMP_USD_PER_PH_DAY}
    plan = _Plan(market, model, hashrate_shift_per_day, realised)
    plan.measure("pv", [(BASE, 1.0)])
    h = B.BTC_SPOT_BUMP_REL
    up, down = plan.shock(btc_rel=h), plan.shock(btc_rel=-h)
    spot = market.btc_spot_usd
    plan.measure("btc_delta", [(up, 1.0 / (2 * h * spot)), (down, -1.0 / (2 * h * spot))])
    g = 0.01 / (h * h * spot)
    plan.measure("btc_gamma_per_1pct", [(up, g), (BASE, -2.0 * g), (down, g)])
    v = B.BTC_VOL_BUMP
    vol_up = plan.add(("vol", v), f"BTC vols {v:+g}", lambda: {"market": B.btc_vols_bumped(market, v)})
    vol_down = plan.add(("vol", -v), f"BTC vols {-v:+g}", lambda: {"market": B.btc_vols_bumped(market, -v)})
    plan.measure("vega_per_vol_point", [(vol_up, 0.005 / v), (vol_down, -0.005 / v)])
    plan.measure("hashrate_start_per_1pct", [(plan.shock(hashrate_rel=B.HASHRATE_BUMP_REL), 1.0), (BASE, -1.0)])
    d = B.HASHRATE_DRIFT_BUMP_PER_YEAR
    drift = plan.add(("drift", d), f"hashrate drift {d:+g}/year",
                     lambda: {"shift": ShiftView(hashrate_shift_per_day, add_per_day=d / DAYS_PER_YEAR)})
    plan.measure("hashrate_drift_per_1pct_year", [(drift, 0.01 / d), (BASE, -0.01 / d)])
    f = B.FEE_BUMP_REL
    fee = plan.add(("fee", f), f"fee per block {100 * f:+g}%", lambda: {"market": B.fee_today_bumped(market, f)})
    plan.measure("fee_today_per_1pct", [(fee, 0.01 / f), (BASE, -0.01 / f)])
    fl = B.FEE_LONG_RUN_BUMP_REL
    fee_lr = plan.add(("fee_long_run", fl), f"long-run fee {100 * fl:+g}%",
                      lambda: {"model": B.fee_long_run_bumped(model, fl)})
    plan.measure("fee_long_run_per_1pct", [(fee_lr, 0.01 / fl), (BASE, -0.01 / fl)])
    r = B.USD_RATE_BUMP
    rates = plan.add(("usd", r), f"USD rates {r * 1e4:+g} bp", lambda: {"market": B.usd_rates_bumped(market, r)})
    plan.measure("usd_dv01", [(rates, 1e-4 / r), (BASE, -1e-4 / r)])
    rolled = plan.add(("theta",), "market rolled one day", lambda: {
        "market": market_rolled_one_day(market, model), "shift": ShiftView(hashrate_shift_per_day, offset_days=1),
        "realised": realised_with_rolled_day(market, realised)})
    plan.measure("theta_1d", [(rolled, 1.0), (BASE, -1.0)])
    failed_quotes = []
    q = B.QUOTE_BUMP_USD_PER_PH_DAY
    for k, qb in enumerate(quote_bumps):
        if qb.bumped is None:
            failed_quotes.append(qb)
            continue
        change = ((qb.bumped.shift, base_cal.shift),)
        key = plan.add(("quote", k), f"quote {qb.bucket} {q:+g}",
                       lambda change=change: {"shift": ShiftView(hashrate_shift_per_day, changes=change)})
        plan.measure("quote_delta", [(key, 1.0 / q), (BASE, -1.0 / q)], bucket=qb.bucket)
    cells = []
    if grid is not None:
        for x, y in grid.cells:
            key = plan.shock(btc_rel=x / 100.0, hashrate_rel=y / 100.0)
            plan.measure("grid_pv", [(key, 1.0)], bucket=f"{x:g}:{y:g}", per_trade=False, unit="USD")
            plan.measure("grid_change", [(key, 1.0), (BASE, -1.0)], bucket=f"{x:g}:{y:g}", per_trade=False,
                         unit="USD")
            cells.append((x, y))
    res = reprice_in_lockstep(trades, list(plan.scenarios.values()), plan.measures, paths=paths, seed=seed,
                              threads=threads, chunk_paths=chunk_paths, progress=progress)
    rows = _ladder_rows(trades, errors, res, failed_quotes)
    report = RiskReport(market.asof, paths + paths % 2, seed, rows, conventions=dict(CONVENTIONS), extra=extra)
    if grid is not None:
        report.btc_pcts, report.hashrate_pcts = grid.btc_pcts, grid.hashrate_pcts
        report.grid = _grid_cells(res, cells, trades)
    report.extra.update({"scenarios": len(plan.scenarios), "n_days": res.n_days, "chunk_paths": res.chunk_paths,
                         "seconds": time.perf_counter() - t0})
    return report


def _ladder_rows(trades, errors, res, failed_quotes) -> list[dict]:
    """Per trade (in file order, parse errors at their place), its measures; then the portfolio."""
    per_trade = [m for m, x in enumerate(res.measures) if x.per_trade]
    blocks = []
    for t, trade in enumerate(trades):
        base = res.per_trade[(0, t)]
        if base.error is not None:
            blocks.append([ladder_row(trade.trade_id, trade.type_name, "pv", "all", None, None, "USD", base.error)])
            continue
        rows = []
        for m in per_trade:
            meas, est = res.measures[m], res.per_trade[(m, t)]
            rows.append(ladder_row(trade.trade_id, trade.type_name, meas.name, meas.bucket, est.value, est.stderr,
                                   meas.unit, est.error))
        for qb in failed_quotes:
            rows.append(ladder_row(trade.trade_id, trade.type_name, "quote_delta", qb.bucket, None, None,
                                   UNITS["quote_delta"], qb.error))
        blocks.append(rows)
    ordered = _file_order(blocks, errors)
    unvalued = {t for t in range(len(trades)) if res.per_trade[(0, t)].error is not None}  # reported on their row
    total = []
    for m in per_trade:
        meas, est = res.measures[m], res.total[m]
        error = est.error
        left_out = [trades[t].trade_id for t in res.excluded.get(m, []) if t not in unvalued]
        if error is None and left_out:
            error = f"excludes {', '.join(left_out)} (no value for this measure)"
        total.append(ladder_row(PORTFOLIO, "", meas.name, meas.bucket, est.value, est.stderr, meas.unit, error))
    for qb in failed_quotes:
        total.append(ladder_row(PORTFOLIO, "", "quote_delta", qb.bucket, None, None, UNITS["quote_delta"], qb.error))
    return ordered + total


def _file_order(blocks: list[list[dict]], errors) -> list[dict]:
    """Trade blocks in the file's order: parse errors know their position, trades fill the rest."""
    n = len(blocks) + len(errors)
    slots: list[list[dict] | None] = [None] * n
    for e in errors:
        pos = e.position if 0 <= getattr(e, "position", -1) < n and slots[e.position] is None else \
            next(k for k in range(n - 1, -1, -1) if slots[k] is None)
        slots[pos] = [ladder_row(e.trade_id, e.type_name, "pv", "all", None, None, "USD", e.error)]
    it = iter(blocks)
    return [r for slot in slots for r in (slot if slot is not None else next(it))]


def _grid_cells(res, cells, trades) -> list[GridCell]:
    unvalued = {t for t in range(len(trades)) if res.per_trade[(0, t)].error is not None}
    by_bucket = {}
    for m, meas in enumerate(res.measures):
        if not meas.per_trade:
            by_bucket[(meas.name, meas.bucket)] = res.total[m]
    out = []
    for x, y in cells:
        pv, ch = by_bucket[("grid_pv", f"{x:g}:{y:g}")], by_bucket[("grid_change", f"{x:g}:{y:g}")]
        error = pv.error or ch.error
        left_out = sorted({trades[t].trade_id for m, meas in enumerate(res.measures)
                           if meas.bucket == f"{x:g}:{y:g}" for t in res.excluded.get(m, []) if t not in unvalued})
        if error is None and left_out:
            error = f"excludes {', '.join(left_out)} (no value in this scenario)"
        out.append(GridCell(x, y, pv.value, pv.stderr, ch.value, ch.stderr, error))
    return out
