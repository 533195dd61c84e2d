"""The simulation driver: market + model -> per-day kernel inputs -> chunks of pairs -> fixings.

>>> from curves.market import MAX_HORIZON_DAYS, QL_FIRST_DATE, QL_LAST_DATE, Market
>>> from engine.mc.model import ModelParams
>>> sim = Simulation(Market.default(), ModelParams.default(), n_days=40, n_paths=2_000, seed=1)
>>> run = sim.run(windows=[(0, 27)])
>>> run.window_mean("hashprice_usd_per_ph_day").shape
(1,)
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from curves.market import MAX_HORIZON_DAYS, QL_FIRST_DATE, QL_LAST_DATE, Market
from curves.toml_io import InputError
from engine.mc import histogram, rng, sobol
from engine.mc import kernel as K
from engine.mc.chunk_runner import KernelJob, LocalRunner, Then
from engine.mc.interrupts import DeferredSignals
from engine.mc.model import ModelParams
from engine.mc.moments import PairMoments

DAYS_PER_YEAR = 365.0
QUANTITIES = ("hashprice_usd_per_ph_day", "hashvalue_btc_per_ph_day", "difficulty", "btc_usd",
              "blocks_per_day", "difficulty_x_blocks")
# window averages estimated with the BTC window average as control variate (its mean is the
# forward's): every quantity but BTC itself
CONTROLLED = tuple(q for q in range(K.N_QUANTITIES) if q != K.Q_BTC_USD)
FEEDBACK_REFRESH_DAYS = 7
MIN_FEE_BTC_PER_BLOCK = 1e-8
DAYS_PER_EPOCH_FLOOR = 10  # epochs tracked: n_days // 10 + 4 (a mean epoch takes about 14 days)
MAX_HISTOGRAM_EPOCHS = 400  # epochs with a difficulty histogram (about 15 years); later: moments only
MAX_CHUNK_PATHS = 2**30  # histogram counts are int32 per lane and chunk
MAX_LOG_MOVE_PER_DAY = 25.0  # a day's drift or 6-sigma shock beyond e^25 is not a market
MAX_ABS_LOG_LEVEL = 34.5  # ln of 1e15: hashprice, cost and fee levels stay within 1e-15..1e15
MAX_HEIGHT = 2**31  # block heights the kernel steps exactly (the subsidy is 0 from 6,930,000)
RNGS = ("counter", "sobol")  # the daily shocks: counter-based pseudo-random, or scrambled Sobol (RQMC)
DEFAULT_SCRAMBLES = 16
MAX_SCRAMBLES = 4096


def _jump_threshold(intensity_per_year: float) -> tuple[float, float]:
    """Daily jump probability quantised to the 21-bit flag, and its threshold in flag units."""
    threshold = math.floor(intensity_per_year / DAYS_PER_YEAR * rng.JUMP_FLAG_SCALE)
    return threshold / rng.JUMP_FLAG_SCALE, float(threshold)


def build_inputs(market: Market, model: ModelParams, n_days: int,
                 hashrate_shift_per_day: np.ndarray | None = None):
    """Per-day inputs (n_days x N_STEP_INPUTS), scalar parameters and the initial state.

    BTC: drift_k = ln(F_k / F_{k-1}) - var_k / 2 - ln(1 + p (e^{mu + s^2/2} - 1)), so E[S_k] = F_k
    exactly; var_k is the market's forward implied variance for day k less the jump variance,
    floored at 5% of the implied variance (jumps richer than the implied vol then add variance).
    """
    model.validate()
    _check_model_scales(model, n_days)
    _check_market_range(market, n_days)
    dates = [market.asof + dt.timedelta(days=k + 1) for k in range(n_days)]
    fwd = np.array([market.btc_spot_usd] + [market.btc_forward_usd(d) for d in dates])
    tot_var = np.array([0.0] + [market.btc_total_variance(d) for d in dates])
    day_var = np.maximum(np.diff(tot_var), 0.0)
    p_s, thr_s = _jump_threshold(model.btc_jump_intensity_per_year)
    mu_s, sd_s = model.btc_jump_mean_log, model.btc_jump_std_log
    jump_var = p_s * (mu_s**2 + sd_s**2)
    diff_var = np.maximum(day_var - jump_var, 0.05 * day_var)
    compensator = math.log1p(p_s * math.expm1(mu_s + 0.5 * sd_s**2))

    steps = np.zeros((n_days, K.N_STEP_INPUTS))
    steps[:, K.S_BTC_DRIFT] = np.diff(np.log(fwd)) - 0.5 * diff_var - compensator
    steps[:, K.S_BTC_VOL] = np.sqrt(diff_var)
    if hashrate_shift_per_day is not None:
        if hasattr(hashrate_shift_per_day, "per_day"):  # engine.calibration.hashrate_shift.HashrateShift
            hashrate_shift_per_day = hashrate_shift_per_day.per_day(n_days, market.asof)
        shift = np.asarray(hashrate_shift_per_day, dtype=float)
        if shift.shape != (n_days,) or not np.all(np.isfinite(shift)):
            raise InputError("hashrate_shift_per_day", f"needs {n_days} finite values")
        if np.abs(shift).max(initial=0.0) > MAX_LOG_MOVE_PER_DAY:
            raise InputError("hashrate_shift_per_day", f"a shift beyond {MAX_LOG_MOVE_PER_DAY:g} a day "
                             "(in ln hashrate) is not a market price of risk")
        steps[:, K.S_HASHRATE_SHIFT] = shift
    steps[:, K.S_LOG_COST] = _log_costs(model, dates)
    day_sd = steps[:, K.S_BTC_VOL].max(initial=0.0)
    if not 6 * day_sd <= MAX_LOG_MOVE_PER_DAY:
        raise InputError("btc_vols" if market.btc_vols else "btc_vol",
                         f"a daily BTC move of 6 standard deviations is e^{6 * day_sd:.3g}: beyond what the "
                         "simulation represents")
    if not np.isfinite(steps).all():
        raise InputError("btc_futures_usd" if market.btc_futures_usd else "btc_basis_annual",
                         "the BTC forward curve is not finite over the simulated days")

    dt_y = 1.0 / DAYS_PER_YEAR
    chol = model.cholesky()
    p_h, thr_h = _jump_threshold(model.hashrate_jump_intensity_per_year)
    p_f, thr_f = _jump_threshold(model.fee_spike_intensity_per_year)
    par = np.zeros(K.N_PARAMS)
    par[K.P_H_VOL] = model.hashrate_vol_annual * math.sqrt(dt_y)
    par[K.P_H_GROWTH] = model.hashrate_growth_per_year * dt_y
    par[K.P_H_FEEDBACK] = model.hashrate_feedback_per_year * dt_y
    par[K.P_EMA_WEIGHT] = 1.0 / model.hashprice_ema_days
    par[K.P_F_KAPPA] = 1.0 - math.exp(-model.fee_mean_reversion_per_year * dt_y)
    par[K.P_F_LEVEL] = math.log(model.fee_long_run_btc_per_block)
    par[K.P_F_VOL] = model.fee_vol_annual * math.sqrt(dt_y)
    par[K.P_L10], par[K.P_L11] = chol[1, 0], chol[1, 1]
    par[K.P_L20], par[K.P_L21], par[K.P_L22] = chol[2, 0], chol[2, 1], chol[2, 2]
    par[K.P_JS_THRESHOLD], par[K.P_JS_MEAN], par[K.P_JS_STD] = thr_s, mu_s, sd_s
    par[K.P_JH_THRESHOLD] = thr_h
    par[K.P_JH_MEAN], par[K.P_JH_STD] = model.hashrate_jump_mean_log, model.hashrate_jump_std_log
    par[K.P_JF_THRESHOLD] = thr_f
    par[K.P_JF_MEAN], par[K.P_JF_STD] = model.fee_spike_mean_log, model.fee_spike_std_log
    par[K.P_FEEDBACK_EVERY_DAYS] = FEEDBACK_REFRESH_DAYS
    par[K.P_JH_RECOVERY] = 1.0 - math.exp(-model.hashrate_jump_recovery_per_year * dt_y)

    init = np.zeros(K.N_INIT)
    init[K.I_LOG_BTC] = math.log(market.btc_spot_usd)
    init[K.I_LOG_HASHRATE_HS] = math.log(market.hashrate_hs)
    init[K.I_LOG_FEE] = math.log(max(market.fee_btc_per_block, MIN_FEE_BTC_PER_BLOCK))
    init[K.I_DIFFICULTY] = market.difficulty
    init[K.I_HEIGHT] = market.height
    init[K.I_EPOCH_BLOCKS] = market.epoch_blocks_elapsed
    init[K.I_EPOCH_SECONDS] = market.epoch_seconds_elapsed
    init[K.I_HASHPRICE_EMA] = market.feedback_hashprice_usd_per_ph_day()
    init[K.I_LOG_HASHRATE_SD] = market.hashrate_log_sd
    init[K.I_INDEX_REF_USD] = market.spot_hashprice_usd_per_ph_day()
    _check_start(market, init)
    return dates, fwd[1:], steps, par, init


def _check_market_range(market: Market, n_days: int) -> None:
    """Dates QuantLib can represent, a block height and a spot index the kernel can step from."""
    last = market.asof + dt.timedelta(days=n_days)
    if not QL_FIRST_DATE <= market.asof <= QL_LAST_DATE:
        raise InputError("asof", f"{market.asof} is outside {QL_FIRST_DATE}..{QL_LAST_DATE} (QuantLib's dates)")
    if last > QL_LAST_DATE:
        raise InputError("asof", f"the simulation from {market.asof} runs to {last}, past {QL_LAST_DATE} "
                         "(QuantLib's last date)")
    if market.height > MAX_HEIGHT:
        raise InputError("height", f"must be at most {MAX_HEIGHT:,}, got {market.height:,}")
    hv = market.spot_hashvalue_btc_per_ph_day()
    if not (math.isfinite(hv) and hv > 0 and abs(math.log(hv)) <= MAX_ABS_LOG_LEVEL):
        raise InputError("difficulty", f"today's hashvalue would be {hv!r} BTC/PH/day: outside 1e-15..1e15")
    hp = hv * market.btc_spot_usd
    if not (math.isfinite(hp) and abs(math.log(hp)) <= MAX_ABS_LOG_LEVEL):
        raise InputError("btc_spot_usd", f"today's hashprice index would be {hp!r} USD/PH/day: outside 1e-15..1e15")


def _log_move(value: float, name: str, what: str) -> None:
    if not abs(value) <= MAX_LOG_MOVE_PER_DAY:
        raise InputError(name, f"{what} is e^{value:.3g} in one day: beyond what the simulation represents")


def _check_model_scales(model: ModelParams, n_days: int) -> None:
    """Refuse parameters whose daily moves overflow the simulation (finite, but absurd)."""
    day = 1.0 / DAYS_PER_YEAR
    for prefix, mean, std in (("btc_jump", "btc_jump_mean_log", "btc_jump_std_log"),
                              ("hashrate_jump", "hashrate_jump_mean_log", "hashrate_jump_std_log"),
                              ("fee_spike", "fee_spike_mean_log", "fee_spike_std_log")):
        mu, sd = getattr(model, mean), getattr(model, std)
        _log_move(abs(mu), mean, f"a {prefix.replace('_', ' ')} of mean {mu:g}")
        _log_move(6 * sd, std, f"a 6-sigma {prefix.replace('_', ' ')} with std {sd:g}")
    for name in ("hashrate_vol_annual", "fee_vol_annual"):
        _log_move(6 * getattr(model, name) * math.sqrt(day), name, "a 6-sigma daily shock")
    for name in ("hashrate_growth_per_year", "hashrate_feedback_per_year"):
        _log_move(getattr(model, name) * day, name, "a drift of ln hashrate")
    for name in ("marginal_cost_usd_per_ph_day", "fee_long_run_btc_per_block"):
        if not abs(math.log(getattr(model, name))) <= MAX_ABS_LOG_LEVEL:
            raise InputError(name, f"{getattr(model, name)!r} is outside 1e-15..1e15")


def _log_costs(model: ModelParams, dates) -> np.ndarray:
    """ln of the marginal cost per simulated day; checked in logs first (no overflow)."""
    years = np.array([(d - model.marginal_cost_reference_date).days for d in dates]) / DAYS_PER_YEAR
    out = math.log(model.marginal_cost_usd_per_ph_day) - model.marginal_cost_decline_per_year * years
    if out.size and not np.abs(out).max() <= MAX_ABS_LOG_LEVEL:
        k = int(np.argmax(np.abs(out)))
        raise InputError("marginal_cost_decline_per_year",
                         f"a decline of {model.marginal_cost_decline_per_year:g} a year takes the marginal cost "
                         f"to e^{out[k]:.4g} USD/PH/day by {dates[k]}: outside 1e-15..1e15")
    return np.array([math.log(model.marginal_cost_usd_per_ph_day_at(d)) for d in dates])


def _check_start(market: Market, init: np.ndarray) -> None:
    """Today's index and the state the kernel starts from must be finite and in range."""
    ema = init[K.I_HASHPRICE_EMA]
    if not (math.isfinite(ema) and ema > 0 and abs(math.log(ema)) <= MAX_ABS_LOG_LEVEL):
        name = ("hashprice_ema_usd_per_ph_day" if market.hashprice_ema_usd_per_ph_day is not None
                else "difficulty")
        raise InputError(name, f"today's hashprice index would be {ema!r} USD/PH/day: outside 1e-15..1e15")
    if not np.isfinite(init).all():
        k = int(np.flatnonzero(~np.isfinite(init))[0])
        names = ("btc_spot_usd", "hashrate_ehs", "fee_btc_per_block", "difficulty", "height",
                 "height", "epoch_seconds_elapsed", "hashprice_ema_usd_per_ph_day", "hashrate_log_sd")
        raise InputError(names[k], "not finite in the simulation's start state")


def window_checkpoints(windows: Sequence[tuple[int, int]], n_days: int):
    """Checkpoint days (running sums are stored there) and each window's checkpoint indices."""
    for k, (s, e) in enumerate(windows):
        if not (0 <= s <= e < n_days):
            raise InputError(f"window[{k}]", f"days {s}..{e} outside the simulated 0..{n_days - 1}")
    cp = sorted({s - 1 for s, _ in windows} | {e for _, e in windows})
    pos = {d: i for i, d in enumerate(cp)}
    cp0 = np.array([pos[s - 1] for s, _ in windows], dtype=np.int64)
    cp1 = np.array([pos[e] for _, e in windows], dtype=np.int64)
    length = np.array([e - s + 1 for s, e in windows], dtype=np.float64)
    return np.array(cp, dtype=np.int64), cp0, cp1, length


def n_epochs_tracked(n_days: int) -> int:
    """How many retargets after the start the kernel records: ``n_days // 10 + 4``."""
    return n_days // DAYS_PER_EPOCH_FLOOR + 4


def distribution_bytes(n_days: int, n_distribution_days: int, *, chunk_paths: int = 65_536,
                       block_pairs: int = 256, threads: int = 2) -> dict[str, int]:
    """Memory of the epoch and daily distributions: what one kernel call returns, the per-path
    epoch records each running lane holds, and the driver's int64 totals."""
    n_epochs = n_epochs_tracked(n_days)
    n_hist = min(n_epochs, MAX_HISTOGRAM_EPOCHS) + K.N_DAY_HIST * n_distribution_days
    n_blocks = -(-(chunk_paths // 2) // block_pairs)
    lanes = max(1, min(threads, n_blocks))
    ranges = (n_epochs + K.N_DAY_HIST * n_distribution_days) * 2 * 8
    return {
        "kernel_histograms": lanes * (n_hist * histogram.N_BINS * 4 + ranges),
        "kernel_epoch_sums": n_blocks * n_epochs * K.N_EPOCH_SUMS * 8,
        "lane_epoch_records": lanes * 2 * n_epochs * 2 * block_pairs * 8,
        "driver_totals": n_hist * histogram.N_BINS * 8 + ranges + n_epochs * K.N_EPOCH_SUMS * 8,
    }


@dataclass
class SimulationRun:
    """What one run leaves: per-day moments, window moments, epochs, sample paths, timings.

    Epoch k (row k, from 0) is the (k+1)-th retarget after the as-of date: ``epochs`` holds its
    sums over antithetic pairs (``K.E_*``), ``epoch_hist`` the counts of ln(D_k / D_0) on the
    grid of :mod:`engine.mc.histogram` and ``epoch_range`` their exact min and max. On the days in
    ``distribution_days``, ``day_hist``/``day_range`` hold the same for ln(index / today's
    index) and ln(D / D_0) (``K.H_*``). ``difficulty_ref`` is D_0, ``index_ref_usd`` today's index.
    """

    dates: list[dt.date]
    btc_forward_usd: np.ndarray
    windows: list[tuple[int, int]]
    n_paths: int
    daily: np.ndarray
    window_moments: PairMoments
    window_control_mean: np.ndarray
    epochs: np.ndarray
    samples: np.ndarray
    seconds: float
    extra: dict = field(default_factory=dict)
    epoch_hist: np.ndarray | None = None
    epoch_range: np.ndarray | None = None
    distribution_days: tuple[int, ...] = ()
    day_hist: np.ndarray | None = None
    day_range: np.ndarray | None = None
    difficulty_ref: float = math.nan
    index_ref_usd: float = math.nan
    skipped: tuple[str, ...] = ()  # quantities not simulated in this run
    scrambles: int = 0  # randomised QMC (engine.mc.sobol): its scrambles; 0 for the counter RNG

    @property
    def n_pairs(self) -> int:
        return self.n_paths // 2

    def _q(self, name: str) -> int:
        if name not in QUANTITIES:
            raise InputError("quantity", f"unknown {name!r}; one of {QUANTITIES}")
        if name in self.skipped:
            raise InputError("quantity", f"{name!r} was not simulated in this run (ask for it in Simulation.run)")
        return QUANTITIES.index(name)

    def _control(self, q: int):
        return self.window_control_mean if q in CONTROLLED else None

    def window_mean(self, name: str) -> np.ndarray:
        """Window averages of a quantity; every quantity but BTC itself has the BTC window average
        (whose mean the forward curve gives) as a control variate."""
        q = self._q(name)
        return self.window_moments.mean(self._control(q))[:, q]

    def window_stderr(self, name: str) -> np.ndarray:
        q = self._q(name)
        return self.window_moments.stderr(self._control(q))[:, q]

    def window_problems(self, name: str) -> np.ndarray:
        """Per window: None where the mean and stderr of a quantity can be reported, else why not
        (see ``PairMoments.problems``), checked with its control."""
        q = self._q(name)
        return self.window_moments.problems(self._control(q))[:, q]

    def daily_hashprice_cv(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-day expected hashprice (USD/PH/day) with the BTC forward as control, and stderr."""
        n = self.n_pairs
        d = self.daily / n
        vx = d[:, K.D_HP2] - d[:, K.D_HP] ** 2
        vc = d[:, K.D_BTC2] - d[:, K.D_BTC] ** 2
        cov = d[:, K.D_HP_BTC] - d[:, K.D_HP] * d[:, K.D_BTC]
        beta = np.divide(cov, vc, out=np.zeros_like(cov), where=vc > 0)
        mean = d[:, K.D_HP] - beta * (d[:, K.D_BTC] - self.btc_forward_usd)
        var = np.maximum(vx - np.divide(cov * cov, vc, out=np.zeros_like(cov), where=vc > 0), 0)
        return mean, np.sqrt(var * n / max(n - 1, 1) / n)

    def epoch_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fraction of paths reaching epoch k, mean difficulty of epoch k, mean start day).

        Means are over the paths that reach the epoch; the start day is fractional (day index
        t + the fraction of day t elapsed at the retarget; day t is as-of + 1 + t).
        """
        cnt = self.epochs[:, K.E_COUNT]
        with np.errstate(invalid="ignore", divide="ignore"):
            return (cnt / self.n_paths, self.difficulty_ref * (1.0 + self.epochs[:, K.E_REL] / cnt),
                    self.epochs[:, K.E_DAY] / cnt)


class Simulation:
    """Chunked, reproducible Monte Carlo: same seed, same numbers, for any threads or chunks.

    ``n_paths`` is rounded up to an even number (antithetic pairs); chunks are whole blocks.
    ``rng="sobol"`` draws the daily BTC, hashrate and fee shocks from ``scrambles`` independent
    scrambles of Sobol points through a Brownian bridge (:mod:`engine.mc.sobol`): pair p is point
    p div R of scramble p mod R, and window stderrs come from the spread of the scramble means.
    """

    def __init__(self, market: Market, model: ModelParams, *, n_days: int, n_paths: int,
                 seed: int = 42, block_pairs: int = 256, chunk_paths: int = 65_536,
                 n_samples: int = 0, threads: int | None = None,
                 hashrate_shift_per_day: np.ndarray | None = None, rng: str = "counter",
                 scrambles: int = DEFAULT_SCRAMBLES):
        if isinstance(n_days, bool) or not isinstance(n_days, int) or not 1 <= n_days <= MAX_HORIZON_DAYS:
            raise InputError("n_days", f"must be an integer in 1..{MAX_HORIZON_DAYS}, got {n_days!r}")
        if isinstance(n_paths, bool) or not isinstance(n_paths, int) or n_paths < 2:
            raise InputError("paths", f"must be an integer >= 2, got {n_paths!r}")
        if n_paths > 2 * 2**31:
            raise InputError("paths", "at most 2^32 paths")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise InputError("seed", f"must be an integer in [0, 2^63), got {seed!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise InputError("threads", f"must be a positive integer, got {threads!r}")
        if block_pairs < 1 or not 2 <= chunk_paths <= MAX_CHUNK_PATHS:
            raise InputError("chunk_paths", f"block and chunk sizes must be positive, chunks at most {MAX_CHUNK_PATHS}")
        if rng not in RNGS:
            raise InputError("rng", f"one of {', '.join(RNGS)}, got {rng!r}")
        if rng == "sobol":
            if isinstance(scrambles, bool) or not isinstance(scrambles, int) or not 2 <= scrambles <= MAX_SCRAMBLES:
                raise InputError("scrambles", f"must be an integer in 2..{MAX_SCRAMBLES}, got {scrambles!r}")
            try:
                sobol.check_dims(n_days)
            except ValueError as exc:
                raise InputError("rng", f"{exc} (use the counter RNG for longer horizons)") from None
        self.rng = rng
        self.scrambles = scrambles if rng == "sobol" else 0
        self.market, self.model = market, model
        self.n_days, self.seed = n_days, seed
        self.n_pairs = (n_paths + 1) // 2
        self.block_pairs = block_pairs
        self.chunk_pairs = max(1, (chunk_paths // 2) // block_pairs) * block_pairs
        self.n_samples = min(n_samples, 2 * self.n_pairs)
        self.threads = threads
        self.dates, self.btc_forward, self.steps, self.par, self.init = build_inputs(
            market, model, n_days, hashrate_shift_per_day)

    @property
    def n_paths(self) -> int:
        return 2 * self.n_pairs

    def day_index(self, d: dt.date) -> int:
        return (d - self.market.asof).days - 1

    def _request(self, windows, distribution_days=(), epoch_fixings=(), reward_fixings=()) -> _Request:
        """Check what a run asks for and lay it out the way the kernel wants it."""
        windows = list(windows)
        ep_req = np.array(epoch_fixings, dtype=np.int64).reshape(-1)
        rewards = list(reward_fixings)
        order = sorted(range(len(rewards)), key=lambda r: rewards[r][0])  # the kernel wants them by day
        rewards = [rewards[r] for r in order]
        rw_day = np.array([r[0] for r in rewards], dtype=np.int64)
        rw_blocks = np.array([r[1] for r in rewards], dtype=np.float64)
        if ep_req.size and ep_req.min() < 0:
            raise InputError("epoch_fixings", "epoch indices count retargets from now: 0, 1, ...")
        if rw_day.size and not (rw_day.min() >= -1 and rw_day.max() < self.n_days and rw_blocks.min() >= 1):
            raise InputError("reward_fixings", f"days in -1..{self.n_days - 1} and at least one block")
        cp, cp0, cp1, wlen = window_checkpoints(windows, self.n_days)
        dist_days = tuple(int(t) for t in distribution_days)
        if any(not 0 <= t < self.n_days for t in dist_days) or list(dist_days) != sorted(set(dist_days)):
            raise InputError("distribution_days", f"must be increasing day indices in 0..{self.n_days - 1}")
        day_slot = np.full(self.n_days, -1, dtype=np.int64)
        day_slot[list(dist_days)] = np.arange(len(dist_days))
        n_epochs = max(n_epochs_tracked(self.n_days), int(ep_req.max(initial=-1)) + 1)
        n_epoch_hist = min(n_epochs_tracked(self.n_days), MAX_HISTOGRAM_EPOCHS)
        return _Request(windows, cp, cp0, cp1, wlen, ep_req, rw_day, rw_blocks, np.argsort(order), dist_days,
                        day_slot, n_epochs, n_epoch_hist)

    def job(self, req: _Request, store_paths: bool, window_moments: bool, daily: bool = True,
            difficulty_x_blocks: bool = True) -> KernelJob:
        """The kernel's work for any chunk of this run, as a picklable function of its first pair."""
        return KernelJob(self.seed, self.block_pairs, self.chunk_pairs, self.n_pairs, self.steps, self.par,
                         self.init, req, self.n_samples, self.threads, store_paths, window_moments, daily,
                         difficulty_x_blocks, self.scrambles)

    def chunk_starts(self) -> range:
        """First pair of each chunk, in the order results merge."""
        return range(0, self.n_pairs, self.chunk_pairs)

    def path_chunks(self, windows: Sequence[tuple[int, int]], epoch_fixings: Sequence[int] = (),
                    reward_fixings: Sequence[tuple[int, int]] = (), difficulty_x_blocks: bool = True,
                    runner=None, then=None):
        """Per-path fixings chunk by chunk: yields ``(pair_start, window_values, epoch_values,
        rewards)`` as :meth:`run` passes them to ``on_chunk`` (without its moments). Each chunk is a
        pure function of the inputs, the seed and ``pair_start``: simulations of other markets on
        the same seed and chunk size step through the same random numbers (bump and reprice).
        ``difficulty_x_blocks=False`` skips that quantity (its values are NaN).
        ``then(chunk)`` (picklable) reduces each chunk where it is made, and its result is
        yielded instead; ``runner`` (``engine.mc.chunk_runner``) says where chunks run.
        """
        req = self._request(windows, (), epoch_fixings, reward_fixings)
        job = Then(self.job(req, True, False, daily=False, difficulty_x_blocks=difficulty_x_blocks), _PerPath(then))
        yield from (runner or LocalRunner()).map(job, self.chunk_starts())

    def run(self, windows: Sequence[tuple[int, int]],
            on_chunk: Callable[[int, np.ndarray], None] | None = None,
            progress: Callable[[int, int], None] | None = None,
            distribution_days: Sequence[int] = (), epoch_fixings: Sequence[int] = (),
            reward_fixings: Sequence[tuple[int, int]] = (), window_moments: bool = True,
            stop: Callable[[PairMoments, np.ndarray], bool] | None = None, runner=None,
            daily: bool = True, difficulty_x_blocks: bool | None = None) -> SimulationRun:
        """Simulate all paths; ``windows`` are inclusive day-index ranges (day 0 = as-of + 1).

        ``on_chunk(pair_start, window_values)`` sees each chunk's per-path window averages
        (paths x windows x quantities) for non-linear payoffs; ``progress(done, total)`` paths.
        ``distribution_days`` (strictly increasing day indices) get histograms of the daily
        index and difficulty. With ``epoch_fixings`` (k: the k-th retarget from now, 0 the next) or
        ``reward_fixings`` ((day, blocks): the subsidy 1 PH/s earns over the blocks after the close of
        that day index, -1 for the start), ``on_chunk(pair_start, window_values, epoch_values,
        rewards)`` also gets them per path (``K.EF_*``; NaN where a path has not got there).
        ``window_moments=False`` (with ``on_chunk``) skips the window moments: a caller that
        accumulates its own from the per-path values saves their cost.
        ``stop(window_moments, control_mean)``, asked after each chunk, ends the run early (a
        target accuracy reached): the run then holds the paths simulated so far, the same numbers
        as a run of that many paths. ``runner`` (``engine.mc.chunk_runner``, e.g. a Dask cluster)
        runs the chunks elsewhere; results merge in chunk order, the same as a local run.
        ``daily=False`` skips the per-day pair-mean sums (``SimulationRun.daily`` stays zero).
        ``difficulty_x_blocks`` (window sums of difficulty x blocks, the block-weighted difficulty's
        numerator): by default only with ``on_chunk``, which gets it per path; a run without it
        refuses to report its moments.
        """
        if difficulty_x_blocks is None:
            difficulty_x_blocks = on_chunk is not None
        req = self._request(windows, distribution_days, epoch_fixings, reward_fixings)
        windows = req.windows
        extra = bool(req.ep_req.size or req.rw_day.size)
        n_epochs, dist_days = req.n_epochs, req.dist_days
        daily_sums = np.zeros((self.n_days, K.N_DAILY))
        epochs = np.zeros((n_epochs, K.N_EPOCH_SUMS))
        epoch_hist = np.zeros((req.n_epoch_hist, histogram.N_BINS), np.int64)
        epoch_range = np.tile([np.inf, -np.inf], (n_epochs, 1))
        day_hist = np.zeros((len(dist_days), K.N_DAY_HIST, histogram.N_BINS), np.int64)
        day_range = np.tile([np.inf, -np.inf], (len(dist_days), K.N_DAY_HIST, 1))
        samples = np.zeros((self.n_samples, self.n_days, K.N_SAMPLE_FIELDS))
        moments = PairMoments((len(windows), K.N_QUANTITIES), self.block_pairs, self.scrambles)
        ctrl_idx = [list(range(s, e + 1)) for s, e in windows]
        control_mean = np.zeros((len(windows), K.N_QUANTITIES))
        control_mean[:, list(CONTROLLED)] = np.array([self.btc_forward[ix].mean() for ix in ctrl_idx])[:, None]
        t0 = time.perf_counter()
        done = 0
        signals = DeferredSignals()  # Ctrl-C inside the compiled kernel stops the run between chunks
        job = self.job(req, on_chunk is not None, window_moments, daily, difficulty_x_blocks)
        starts = self.chunk_starts()
        try:
            for start, (n, (wv, mom, dly, ep, smp, e_hist, e_rng, d_hist, d_rng, ep_vals, rw_vals, scr)) in zip(
                    starts, (runner or LocalRunner()).map(job, starts)):
                signals.check()
                for blk in range(dly.shape[0]):
                    daily_sums += dly[blk]
                    epochs += ep[blk]
                # integer counts and min/max: exact in any order (per-lane, then per-chunk)
                epoch_hist += e_hist.sum(axis=0, dtype=np.int64)
                day_hist += d_hist.sum(axis=0, dtype=np.int64)
                _merge_range(epoch_range, e_rng)
                _merge_range(day_range, d_rng)
                if start == 0:
                    samples = smp
                moments.add_block_sums(mom, n, scr)
                if on_chunk is not None:
                    if extra:
                        on_chunk(start, wv, ep_vals, rw_vals)
                    else:
                        on_chunk(start, wv)
                done = 2 * (start + n)
                if progress is not None:
                    progress(done, self.n_paths)
                if stop is not None and done < self.n_paths and stop(moments, control_mean):
                    break
        finally:
            signals.restore()
        signals.check()
        return SimulationRun(self.dates, self.btc_forward, windows, done, daily_sums, moments,
                             control_mean, epochs, samples, time.perf_counter() - t0,
                             epoch_hist=epoch_hist, epoch_range=epoch_range, distribution_days=dist_days,
                             day_hist=day_hist, day_range=day_range, difficulty_ref=self.market.difficulty,
                             index_ref_usd=float(self.init[K.I_INDEX_REF_USD]),
                             skipped=() if difficulty_x_blocks else ("difficulty_x_blocks",), scrambles=self.scrambles)


@dataclass(frozen=True)
class _Request:
    """A run's windows, checkpoints, per-path fixings and histogram days, as the kernel takes them."""

    windows: list
    cp: np.ndarray
    cp0: np.ndarray
    cp1: np.ndarray
    wlen: np.ndarray
    ep_req: np.ndarray
    rw_day: np.ndarray
    rw_blocks: np.ndarray
    rw_unsort: np.ndarray
    dist_days: tuple
    day_slot: np.ndarray
    n_epochs: int
    n_epoch_hist: int


@dataclass(frozen=True)
class _PerPath:
    """A chunk's per-path fixings ``(pair_start, window_values, epoch_values, rewards)``, reduced by
    ``then`` when given."""

    then: Callable | None

    def __call__(self, out, start: int):
        _, (wv, *_, ep, rw, _scr) = out
        chunk = (start, wv, ep, rw)
        return chunk if self.then is None else self.then(chunk)


def _merge_range(total: np.ndarray, lanes: np.ndarray) -> None:
    """Fold per-lane [min, max] ranges (last axis) into ``total``."""
    if lanes.size:
        total[..., K.R_MIN] = np.minimum(total[..., K.R_MIN], lanes[..., K.R_MIN].min(axis=0))
        total[..., K.R_MAX] = np.maximum(total[..., K.R_MAX], lanes[..., K.R_MAX].max(axis=0))
