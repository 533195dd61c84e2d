"""Bump and reprice on common random numbers: one :class:`~engine.pricing.pricer.PricingPass`
per scenario, all on the same seed, simulated days and chunk size, fed chunk by chunk in
lockstep, so that the scenarios' paths share their random numbers.

A measure is a fixed linear combination of the scenarios' PVs (a central difference, a
one-sided bump, a scenario's PV or its change against the base). Per path it is that
combination of the per-path PVs, accumulated in :class:`~engine.mc.moments.PairMoments` with
the same combination of the passes' BTC controls as control variate (its known mean is the
combination of the passes' ``ctrl_means``): every measure has a standard error from the paired
differences. The portfolio total is the sum of the trades' estimates, and its stderr that of the
per-path sum of their control-adjusted values (:mod:`engine.risk.joint_moments`): it carries the
trades' correlations (not a root-sum-square). Memory is bounded by the chunk: no per-path value
is kept beyond it.

Closed-form trades (``analytic_pv_usd``) are valued on each scenario's market, with a zero stderr.
A trade that fails in a scenario (its terms do not fit that market) has no value for the
measures that use the scenario; the other trades and measures are unaffected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from curves.market import MAX_HORIZON_DAYS, Market
from curves.toml_io import InputError
from engine.mc.model import ModelParams
from engine.mc.moments import PairMoments
from engine.pricing.fixing_plan import plan_trade
from engine.pricing.pricer import MORE_DAYS, NeedMoreDays, PricingPass
from engine.risk.joint_moments import MAX_JOINT_TRADES, JointMoments

RISK_CHUNK_BYTES = 128 * 2**20  # a chunk's per-path PVs of every scenario and its measures stay near this
MIN_CHUNK_PATHS, MAX_CHUNK_PATHS = 1_024, 65_536
ANALYTIC_ROUNDING_REL = 1e-12  # a closed-form combination below this (relative to its parts) is rounding
CONTROL_NOISE_REL = 1e-9  # a combined control whose spread is below this (relative to its parts) is rounding


@dataclass(frozen=True)
class Scenario:
    """One state to reprice: ``key`` identifies it (equal keys are one scenario), ``label`` names
    it in errors (empty for the base); ``shift`` is a hashrate drift shift (``per_day``) or None."""

    key: tuple
    label: str
    market: Market
    model: ModelParams
    shift: object = None
    realised: object = None
    error: str | None = None  # the state could not be built: every trade fails in it


@dataclass(frozen=True)
class LinearMeasure:
    """``sum(weight x PV(scenario))`` over ``weights`` ((scenario key, weight) pairs), in ``unit``.
    Every measure is estimated per trade and for the portfolio; ``per_trade=False`` marks one
    whose report shows the portfolio alone (scenario grid cells)."""

    name: str
    unit: str
    weights: tuple
    bucket: str = "all"
    per_trade: bool = True


@dataclass
class Estimate:
    value: float | None
    stderr: float | None
    error: str | None = None


@dataclass
class LockstepResult:
    """Per measure: an :class:`Estimate` per trade (per-trade measures) and the portfolio total,
    with the trades the total leaves out (no value in one of the measure's scenarios)."""

    measures: list[LinearMeasure]
    per_trade: dict = field(default_factory=dict)  # (measure index, trade index) -> Estimate
    total: dict = field(default_factory=dict)  # measure index -> Estimate
    excluded: dict = field(default_factory=dict)  # measure index -> [trade index]
    n_days: int = 0
    chunk_paths: int = 0


def reprice_in_lockstep(trades: Sequence, scenarios: Sequence[Scenario], measures: Sequence[LinearMeasure], *,
                        paths: int, seed: int, threads: int | None = None, chunk_paths: int | None = None,
                        progress: Callable[[int, int], None] | None = None) -> LockstepResult:
    """Every measure for every trade and the portfolio, on one set of random numbers."""
    book = _ScenarioBook(trades, scenarios)
    n_days = book.days_needed()
    while True:
        try:
            return _run(book, list(measures), n_days, paths, seed, threads, chunk_paths, progress)
        except NeedMoreDays:
            if n_days >= MAX_HORIZON_DAYS:
                raise AssertionError("unreachable: the last pass reports unreached fixings") from None
            n_days = min(MAX_HORIZON_DAYS, int(n_days * MORE_DAYS) + 30)


class _ScenarioBook:
    """Per scenario and trade: a plan to simulate, a closed-form value, or an error."""

    def __init__(self, trades, scenarios):
        self.trades, self.scenarios = list(trades), list(scenarios)
        n_s, n_t = len(self.scenarios), len(self.trades)
        self.index = {sc.key: s for s, sc in enumerate(self.scenarios)}
        if len(self.index) != n_s:
            raise ValueError("scenario keys must be unique")
        self.analytic = np.zeros((n_s, n_t))
        self.errors: list[list[str | None]] = [[None] * n_t for _ in range(n_s)]
        self.plans: list[list] = [[] for _ in range(n_s)]
        self.plan_trade: list[list[int]] = [[] for _ in range(n_s)]  # trade index of each plan
        for s, sc in enumerate(self.scenarios):
            for t, trade in enumerate(self.trades):
                if sc.error is not None:
                    self.errors[s][t] = sc.error
                    continue
                try:
                    trade.check_market(sc.market)
                    if hasattr(trade, "analytic_pv_usd"):
                        value = float(trade.analytic_pv_usd(sc.market))
                        if not math.isfinite(value):
                            raise InputError("pv_usd", f"not a finite number ({value!r})")
                        self.analytic[s, t] = value
                        continue
                    plan = plan_trade(trade, sc.market, sc.realised)
                except (InputError, RuntimeError) as exc:  # QuantLib raises RuntimeError
                    self.errors[s][t] = str(exc)
                    continue
                if not plan.settled:  # a settled trade is worth 0 in that scenario
                    self.plans[s].append(plan)
                    self.plan_trade[s].append(t)

    def days_needed(self) -> int:
        return max([p.days_needed for plans in self.plans for p in plans], default=1)

    def windows_estimate(self) -> int:
        """Distinct simulated windows the largest scenario asks for (sizes the chunk)."""
        counts = [len({src.key[0] for p in plans for src in p.sources if src.block in ("window", "dpb")})
                  for plans in self.plans]
        return max(counts, default=1)


def risk_chunk_paths(n_scenarios: int, n_trades: int, n_measures: int, n_windows: int) -> int:
    """Paths per chunk so that the chunk's per-path PVs and controls of every scenario, the
    measures built from them and one pass's window values stay near ``RISK_CHUNK_BYTES``."""
    per_path = 8 * (2 * n_scenarios * n_trades + 2 * n_measures * (n_trades + 1) + 6 * max(n_windows, 1)
                    + 4 * n_trades)
    size = 2 ** int(math.log2(max(RISK_CHUNK_BYTES // per_path, 1)))
    return int(min(MAX_CHUNK_PATHS, max(MIN_CHUNK_PATHS, size)))


def _run(book: _ScenarioBook, measures, n_days, paths, seed, threads, chunk_paths, progress) -> LockstepResult:
    n_s, n_t = len(book.scenarios), len(book.trades)
    weights = np.zeros((len(measures), n_s))
    for m, meas in enumerate(measures):
        for key, w in meas.weights:
            weights[m, book.index[key]] += w
    if chunk_paths is None:
        chunk_paths = risk_chunk_paths(n_s, n_t, len(measures), book.windows_estimate())
    errors = [list(row) for row in book.errors]
    passes: list[PricingPass | None] = [None] * n_s
    term_of: list[dict[int, int]] = [{} for _ in range(n_s)]  # trade index -> column of the pass's PVs
    for s, sc in enumerate(book.scenarios):
        if not book.plans[s] or not weights[:, s].any():
            continue
        try:
            passes[s] = PricingPass(book.plans[s], sc.market, sc.model, paths=paths, seed=seed, threads=threads,
                                    shift=sc.shift, n_days=n_days, chunk_paths=chunk_paths)
        except (InputError, RuntimeError) as exc:  # QuantLib reports bad curves as RuntimeError
            for t in book.plan_trade[s]:
                errors[s][t] = f"{exc}"
            continue
        position = {id(tt.plan): k for k, tt in enumerate(passes[s].terms)}
        for plan, t in zip(book.plans[s], book.plan_trade[s]):
            if id(plan) in position:
                term_of[s][t] = position[id(plan)]
            else:
                errors[s][t] = passes[s].errors[plan.trade.trade_id].error
    live = [s for s in range(n_s) if passes[s] is not None and passes[s].terms]
    sims = [passes[s].sim for s in live]
    starts = sims[0].chunk_starts() if sims else range(0)
    total_paths = sims[0].n_paths if sims else 0
    block_pairs = sims[0].block_pairs if sims else 256
    valid = np.array([[e is None for e in row] for row in errors], dtype=bool).reshape(n_s, n_t)
    involved = weights != 0.0
    included = np.array([valid[involved[m]].all(axis=0) for m in range(len(measures))]).reshape(len(measures), n_t)

    ctrl_means = np.zeros((n_s, n_t))
    for s in live:
        for t, k in term_of[s].items():
            ctrl_means[s, t] = passes[s].book.ctrl_means[k]
    gens = {s: passes[s].chunks() for s in live}
    moments = PairMoments((len(measures), n_t + 1), block_pairs)
    joint = JointMoments(len(measures), n_t, block_pairs) if n_t <= MAX_JOINT_TRADES else None
    done = 0
    for start in starts:
        n = 2 * min(sims[0].chunk_pairs, sims[0].n_pairs - start)
        pv, ctrl = np.zeros((n_s, n, n_t)), np.zeros((n_s, n, n_t))
        for s in live:
            chunk_pv, chunk_ctrl = passes[s].pv(next(gens[s]))
            cols = list(term_of[s])
            ks = [term_of[s][t] for t in cols]
            pv[s][:, cols] = chunk_pv[:, ks]
            ctrl[s][:, cols] = chunk_ctrl[:, ks]
            done += chunk_pv.shape[0]
            if progress is not None:
                progress(done, total_paths * len(live))
        x, c = _combine(pv, ctrl, weights, included)
        moments.add(x, c)
        if joint is not None:
            joint.add(x[:, :, n_t], c[:, :, :n_t])
    for s in live:
        unreached = passes[s].book.unreached_any
        for t, k in term_of[s].items():
            if unreached[k]:
                errors[s][t] = (f"fixings: some paths do not reach the trade's epoch or blocks within the "
                                f"{MAX_HORIZON_DAYS:,}-day horizon")
    return _estimates(book, measures, weights, included, errors, ctrl_means, moments, joint, n_days, chunk_paths)


def _combine(pv, ctrl, weights, included):
    """Per path: each measure's combination of the scenarios' PVs and controls, per trade, and
    their sum over the trades the measure includes (last column). Added in a fixed order, so
    the result does not depend on the chunk size."""
    n_s, n, n_t = pv.shape
    x = np.zeros((n, len(weights), n_t + 1))
    c = np.zeros((n, len(weights), n_t + 1))
    for m in range(len(weights)):
        x[:, m, :n_t], c[:, m, :n_t] = _weighted(pv, ctrl, weights[m], included[m])
    for t in range(n_t):
        x[:, :, n_t] += x[:, :, t]
        c[:, :, n_t] += c[:, :, t]
    return x, c


def _weighted(pv, ctrl, w, inc):
    """sum_s w_s x (PVs, controls) of scenario s, in scenario order; trades not in ``inc`` are 0."""
    x, c = np.zeros(pv.shape[1:]), np.zeros(pv.shape[1:])
    for s in np.flatnonzero(w):
        x += w[s] * pv[s]
        c += w[s] * ctrl[s]
    return x * inc, c * inc


def _estimates(book, measures, weights, included, errors, ctrl_means, moments, joint, n_days,
               chunk_paths) -> LockstepResult:
    """Each measure per trade with the trade's own control; its portfolio total as the sum of the
    trades' estimates, with the stderr of that sum from the joint moments."""
    n_s, n_t, n_m = len(book.scenarios), len(book.trades), len(measures)
    analytic = weights @ book.analytic  # measures x trades
    # a closed-form combination that cancels to rounding (a future's gamma) is zero
    analytic[np.abs(analytic) <= ANALYTIC_ROUNDING_REL * (np.abs(weights) @ np.abs(book.analytic))] = 0.0
    out = LockstepResult(list(measures), n_days=n_days, chunk_paths=chunk_paths)

    def scenario_error(m, t) -> str | None:
        s = next((s for s in range(n_s) if weights[m, s] != 0 and errors[s][t]), None)
        return None if s is None else _scenario_error(book.scenarios[s], errors[s][t])

    cm = (weights @ ctrl_means) * included  # measures x trades
    scale = (np.abs(weights) @ np.abs(ctrl_means)) * included
    mean, se, problems, beta = _moment_estimates(moments, _with_total(cm), _with_total(scale))
    total_se = None
    if joint is not None:
        total_se = np.zeros(n_m)
        if moments.n:
            with np.errstate(all="ignore"):
                total_se = joint.total_stderr(moments.sums[0][:, n_t], moments.sums[1][:, n_t],
                                              moments.sums[2][:, :n_t], beta[:, :n_t])
    for m in range(n_m):
        inc = included[m]
        out.excluded[m] = [t for t in range(n_t) if not inc[t]]
        for t in range(n_t):
            why = scenario_error(m, t)
            out.per_trade[(m, t)] = (Estimate(None, None, why) if why is not None else
                                     _estimate(mean[m, t] + analytic[m, t], se[m, t], problems[m, t]))
        value = float(np.sum(mean[m, :n_t][inc]) + np.sum(analytic[m][inc]))
        bad = [book.trades[t].trade_id for t in range(n_t) if inc[t] and scenario_error(m, t)]
        if bad:  # went bad after the run (unreached fixings): the total includes it
            out.total[m] = Estimate(None, None, f"the total includes {', '.join(bad)}, which cannot be valued here")
        elif total_se is None:
            out.total[m] = Estimate(value, None, f"the total's stderr needs the joint moments of its trades, "
                                                 f"kept for at most {MAX_JOINT_TRADES} trades")
        else:
            out.total[m] = _estimate(value, float(total_se[m]), problems[m, n_t])
    return out


def _moment_estimates(moments: PairMoments, control_mean: np.ndarray, control_scale: np.ndarray):
    """Mean, stderr, problems and the control's coefficient beta, with the combined control as
    control variate, except where the combination cancels to rounding noise (a second
    difference of controls that scale with spot): there a control carries no information, its
    check would only see the noise, and beta is 0."""
    shape = control_mean.shape
    if moments.n == 0:  # nothing simulated: closed forms and settled trades alone
        return np.zeros(shape), np.zeros(shape), np.full(shape, None, dtype=object), np.zeros(shape)
    n, sums = moments.n, moments.sums
    with np.errstate(all="ignore"):
        mx, mc = sums[0] / n, sums[2] / n
        vc = np.maximum(sums[3] / n - mc * mc, 0.0)
        noise = np.sqrt(vc * n / max(n - 1, 1)) <= CONTROL_NOISE_REL * control_scale
        beta = np.where(noise | (vc <= 0), 0.0, (sums[4] / n - mx * mc) / np.where(vc > 0, vc, 1.0))
        with_c = moments.mean(control_mean), moments.stderr(control_mean), moments.problems(control_mean)
        plain = moments.mean(), moments.stderr(), moments.problems()
    return (*(np.where(noise, p, w) for p, w in zip(plain, with_c)), beta)


def _with_total(a: np.ndarray) -> np.ndarray:
    """Per-trade columns with the per-path total's column appended (their sum)."""
    return np.concatenate([a, a.sum(axis=-1, keepdims=True)], axis=-1)


def _scenario_error(scenario: Scenario, error: str) -> str:
    return f"{scenario.label}: {error}" if scenario.label else error


def _estimate(value: float, stderr: float, problem: str | None) -> Estimate:
    if problem is not None:
        return Estimate(None, None, f"no trustworthy standard error: {problem}; use more paths")
    if not (math.isfinite(value) and math.isfinite(stderr)):
        return Estimate(None, None, f"not a finite number ({value!r} +/- {stderr!r})")
    return Estimate(float(value), float(stderr))
