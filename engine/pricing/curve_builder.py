"""Build a HashpriceCurve from the Monte Carlo engine.

>>> from curves.market import Market
>>> from engine.mc.model import ModelParams
>>> curve = build_curve(Market.default(), ModelParams.default(), months=2, paths=2_000, seed=3)
>>> list(curve.to_frame().columns[:4])
['start', 'end', 'days', 'hashprice_usd_per_ph_day']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from curves.hashprice_curve import HashpriceCurve
from curves.market import Market
from curves.periods import Period, monthly_periods
from curves.toml_io import InputError
from engine.mc import kernel as K
from engine.mc.distributions import daily_bands, distribution_days, epoch_frame
from engine.mc.model import ModelParams
from engine.mc.simulation import DEFAULT_SCRAMBLES, Simulation, SimulationRun
from engine.mc.tolerance import Tolerance


def day_windows(sim: Simulation, periods: Sequence[Period]) -> list[tuple[int, int]]:
    return [(sim.day_index(p.start), sim.day_index(p.end)) for p in periods]


def curve_from_run(run: SimulationRun, sim: Simulation, periods: Sequence[Period]) -> HashpriceCurve:
    """The curve's numbers from a run whose first len(periods) windows are ``periods``."""
    k = len(periods)
    daily_mean, daily_se = run.daily_hashprice_cv()
    epochs = epoch_frame(run, sim.market.asof, sim.market.height)
    samples = run.samples[:, :, K.SP_HASHPRICE_USD] if run.samples.size else None
    return HashpriceCurve(
        asof=sim.market.asof,
        periods=list(periods),
        hashprice_usd_per_ph_day=run.window_mean("hashprice_usd_per_ph_day")[:k],
        hashprice_stderr=run.window_stderr("hashprice_usd_per_ph_day")[:k],
        hashvalue_btc_per_ph_day=run.window_mean("hashvalue_btc_per_ph_day")[:k],
        hashvalue_stderr=run.window_stderr("hashvalue_btc_per_ph_day")[:k],
        difficulty_mean=run.window_mean("difficulty")[:k],
        btc_forward_usd=run.window_control_mean[:k, K.Q_HASHPRICE_USD],
        daily_dates=run.dates,
        daily_hashprice_usd_per_ph_day=daily_mean,
        daily_hashprice_stderr=daily_se,
        epochs=epochs,
        paths=run.n_paths,
        seed=sim.seed,
        samples_hashprice_usd_per_ph_day=samples,
        daily_bands=daily_bands(run) if run.distribution_days else None,
    )


def build_curve(market: Market, model: ModelParams, *, months: int = 36, paths: int = 100_000,
                seed: int = 42, n_samples: int = 0, threads: int | None = None,
                chunk_paths: int = 65_536, hashrate_shift_per_day: np.ndarray | None = None,
                progress: Callable[[int, int], None] | None = None, bands: bool = False,
                tolerance: Tolerance | None = None, runner=None, rng: str = "counter",
                scrambles: int = DEFAULT_SCRAMBLES) -> HashpriceCurve:
    """Monthly hashprice forward curve for the ``months`` calendar months after the as-of date.

    ``bands``: also the distribution of the daily index and difficulty, weekly (for plots).
    With ``tolerance``, ``paths`` is the most to simulate: the run stops after the first chunk at
    which every month's forward (USD and BTC) has its stderr within the tolerance. ``runner``
    (``engine.mc.chunk_runner``) runs the chunks elsewhere, e.g. on a Dask cluster, with the same
    results. ``rng="sobol"``: randomised QMC daily shocks in ``scrambles`` scrambles
    (:mod:`engine.mc.sobol`); a tolerance run stopped after any chunk is still a valid RQMC estimate.
    """
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 600:
        raise InputError("months", f"must be an integer in 1..600, got {months!r}")
    periods = monthly_periods(market.asof, months)
    n_days = (periods[-1].end - market.asof).days
    sim = Simulation(market, model, n_days=n_days, n_paths=paths, seed=seed, n_samples=n_samples,
                     threads=threads, chunk_paths=chunk_paths,
                     hashrate_shift_per_day=hashrate_shift_per_day, rng=rng, scrambles=scrambles)
    stop = None
    if tolerance is not None:
        def stop(moments, control_mean):
            return curve_within(moments, control_mean, len(periods), tolerance)

    run = sim.run(day_windows(sim, periods), progress=progress,
                  distribution_days=distribution_days(n_days) if bands else (), stop=stop, runner=runner)
    check_curve_run(run, periods)
    return curve_from_run(run, sim, periods)


def curve_within(moments, control_mean, k: int, tol: Tolerance) -> bool:
    """Every month's USD and BTC forward (each with its BTC control) has stderr <= max(rel x
    |value|, abs), and no problem."""
    with np.errstate(all="ignore"):
        for q in (K.Q_HASHPRICE_USD, K.Q_HASHVALUE_BTC):
            mean = moments.mean(control_mean)[:k, q]
            se = moments.stderr(control_mean)[:k, q]
            if not tol.met(mean, se) or any(p is not None for p in moments.problems(control_mean)[:k, q]):
                return False
    return True


def check_curve_run(run: SimulationRun, periods: Sequence[Period]) -> None:
    """Refuse a curve whose forwards or stderrs are not finite, or whose stderr cannot be trusted
    (too few paths, a sample dominated by a few paths, BTC paths that miss their forward)."""
    k = len(periods)
    for name in ("hashprice_usd_per_ph_day", "hashvalue_btc_per_ph_day"):
        for i, why in enumerate(run.window_problems(name)[:k]):
            if why is None:
                continue
            month = f"{periods[i].start:%Y-%m}"
            if why.startswith("not a finite number"):
                raise InputError(f"months[{i}].{name}", f"{month}: {why}: the market or model is outside "
                                 "what the engine can represent")
            raise InputError("paths", f"the {month} forward ({name}) has no trustworthy standard error: {why}; "
                             "use more paths, or check the market's vols and the model's jumps")
    difficulty = run.window_mean("difficulty")[:k]
    if not np.isfinite(difficulty).all():
        i = int(np.flatnonzero(~np.isfinite(difficulty))[0])
        raise InputError(f"months[{i}].difficulty_mean", "not a finite number: the market or model is "
                         "outside what the engine can represent")
