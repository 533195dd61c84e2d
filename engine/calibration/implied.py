"""Market-implied calibration: bootstrap the hashrate market price of risk from quoted forwards.

Hashrate is not traded, so its drift is calibrated to history under the physical measure
(``engine.calibration.physical``). Quoted hashprice forwards then pin down a **drift shift** of log
hashrate per tenor, the way a yield curve is bootstrapped from helpers: the shift is piecewise
constant in time, one segment per quote, and flat after the last one.

Where the segments end. Hashprice depends on difficulty, not on hashrate, and difficulty follows
hashrate about one retarget epoch (two weeks) later. Hashrate in the last week or two of a
delivery month hardly moves that month's forward but moves every later one in full, so
segments that end at the quote ends (the textbook layout) make the bootstrap unstable: each
quote's own segment has less effect on it than the segment before, and the shifts zig-zag
with growing amplitude (about x3 a month on the default model). Segment k therefore ends
``LAG_DAYS`` (14) before the middle of quote k's window (see ``segment_ends``): it then carries
the hashrate that sets quote k, and the bootstrap is well conditioned.

How it is solved. (1) A bootstrap in quote order: with the earlier segments fixed and the shift
flat from segment k's start to quote k's end, ``scipy.optimize.brentq`` finds the shift that
reprices quote k, simulating only up to that quote's end. Hashprice falls when hashrate rises,
so the map is decreasing; the bracket starts at +-5/year and doubles up to
``max_shift_per_year``, and an unreachable quote is an error naming it. (2) A segment's first
days fall inside the previous quote's window, so a joint Newton polish (Jacobian from finite
differences) removes what the sequential pass leaves, to round-off.

Every simulation uses the same seed and paths (common random numbers; the RNG is
counter-based, so the draws do not depend on the horizon either). The map shifts -> forwards is
then smooth and deterministic, and the result is bit-identical run to run.

Units: the shift is an additive drift of ln(hashrate) per day (see :mod:`engine.calibration.hashrate_shift`).

>>> import datetime as dt
>>> from curves.market import Market
>>> from engine.mc.model import ModelParams
>>> quotes = [Quote(dt.date(2026, 2, 1), dt.date(2026, 2, 28), 39.5)]
>>> res = bootstrap_hashrate_shift(Market.default(), ModelParams.default(), quotes, paths=2_000, seed=1)
>>> bool(abs(res.fit["error_stderrs"].iloc[0]) < 0.1)
True
>>> res.hashrate_shift_per_day(40).shape  # flat beyond the last quote
(40,)
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from curves.market import Market
from curves.toml_io import InputError
from engine.calibration.hashrate_shift import SHIFT_UNITS, HashrateShift, ShiftSegment
from engine.calibration.quotes import HASHPRICE, Quote, parse_quotes
from engine.mc import kernel as K
from engine.mc.model import ModelParams
from engine.mc.simulation import DAYS_PER_YEAR, Simulation

LAG_DAYS = 14  # difficulty follows hashrate about one retarget epoch later
MAX_POLISH_STEPS = 20
POLISH_TOL_STDERR = 1e-6
JACOBIAN_STEP_PER_YEAR = 1e-3


# ---- the bootstrap ------------------------------------------------------------------------------
@dataclass
class ImpliedCalibration:
    """The bootstrapped shift, and the fit per quote on one final run with the same seed.

    ``fit`` columns: id, start, end, days, quote/model/stderr/error in USD/PH/day,
    ``error_stderrs`` (model - quote over the model's stderr), ``within_tolerance``, bid/ask and
    ``within_bid_ask``, the quote's segment (start, end) and its shift per day and per year.
    ``evaluations`` counts simulations; ``extra`` holds the Newton steps and the lag.
    """

    shift: HashrateShift
    quotes: list[Quote]
    fit: pd.DataFrame
    paths: int
    seed: int
    tol_stderr: float
    evaluations: int
    seconds: float
    extra: dict = field(default_factory=dict)

    @property
    def asof(self) -> dt.date:
        return self.shift.asof

    @property
    def n_days(self) -> int:
        """Days from the as-of date to the last quote's end."""
        return (self.quotes[-1].end - self.asof).days

    @property
    def shift_per_day(self) -> np.ndarray:
        """Per segment, log units per day."""
        return np.array([s.shift_per_day for s in self.shift.segments])

    @property
    def shift_per_year(self) -> np.ndarray:
        return self.shift_per_day * DAYS_PER_YEAR

    def hashrate_shift_per_day(self, n_days: int | None = None) -> np.ndarray:
        """The per-day array for ``Simulation(hashrate_shift_per_day=...)``: ``n_days`` days (default:
        to the last quote's end) from the as-of date, flat after the last segment."""
        return self.shift.per_day(self.n_days if n_days is None else n_days)

    def to_dict(self) -> dict:
        fit = json_records(self.fit)
        segs = [{"start": s.start.isoformat(), "end": s.end.isoformat(), "days": s.days,
                 "shift_per_day": s.shift_per_day, "shift_per_year": s.shift_per_year}
                for s in self.shift.segments]
        return {"asof": self.asof.isoformat(), "paths": self.paths, "seed": self.seed,
                "tol_stderr": self.tol_stderr, "units": SHIFT_UNITS, "segments": segs, "quotes": fit,
                "evaluations": self.evaluations, "seconds": self.seconds}

    def to_toml(self, path, header: str | None = None) -> None:
        """The shift file ``hashprice curve/price --shift`` reads, with the fit as information."""
        cal = {"method": "engine.calibration.implied.bootstrap_hashrate_shift", "paths": self.paths,
               "seed": self.seed, "tol_stderr": self.tol_stderr,
               "quote": [{k: v for k, v in r.items() if v is not None} for r in json_records(self.fit)]}
        self.shift.to_toml(path, header=header, calibration=cal)

    @staticmethod
    def from_toml(path) -> HashrateShift:
        return HashrateShift.from_toml(path)


def json_records(df: pd.DataFrame) -> list[dict]:
    out = []
    for rec in df.to_dict(orient="records"):
        row = {}
        for k, v in rec.items():
            if isinstance(v, dt.date):
                v = v.isoformat()
            elif isinstance(v, (np.floating, float)):
                v = None if not math.isfinite(v) else float(v)
            elif isinstance(v, np.integer):
                v = int(v)
            elif isinstance(v, np.bool_):
                v = bool(v)
            row[k] = v
        out.append(row)
    return out


def segment_ends(quotes: Sequence[Quote], asof: dt.date, lag_days: int = LAG_DAYS) -> list[dt.date]:
    """The last day of each quote's shift segment (segment k is (end k-1, end k]).

    Difficulty lags hashrate by about one retarget epoch, so the hashrate that sets a delivery
    window's forward is the hashrate about ``lag_days`` before it: segment k ends ``lag_days``
    before the middle of quote k's window, but leaves at least a third of the way from the
    previous segment's end to the window's end (so a quote near the as-of date still has days
    of its own), and never after the window's end.
    """
    if isinstance(lag_days, bool) or not isinstance(lag_days, int) or not 0 <= lag_days <= 366:
        raise InputError("lag_days", f"must be an integer in 0..366, got {lag_days!r}")
    ends, prev = [], asof
    for q in quotes:
        mid = q.start + dt.timedelta(days=(q.days - 1) // 2)
        least = prev + dt.timedelta(days=max(1, (q.end - prev).days // 3))
        ends.append(min(max(mid - dt.timedelta(days=lag_days), least), q.end))
        prev = ends[-1]
    return ends


def bootstrap_hashrate_shift(market: Market, model: ModelParams, quotes: Sequence[Quote], *,
                             paths: int = 20_000, seed: int = 42, tol_stderr: float = 0.1,
                             lag_days: int = LAG_DAYS, bracket_per_year: float = 5.0,
                             max_shift_per_year: float = 40.0, threads: int | None = None,
                             progress: Callable[[int, int], None] | None = None) -> ImpliedCalibration:
    """Piecewise-constant hashrate drift shifts that make the model reprice every quote.

    Segment k runs from the end of segment k-1 to ``segment_ends(...)[k]``; beyond the last one
    the last shift continues. Every simulation uses ``paths`` and ``seed`` (common random
    numbers), so the map shifts -> forwards is smooth and the result deterministic.

    1. Bootstrap: quote by quote, with the earlier segments fixed and the shift held flat from
       segment k's start to quote k's end (as it is extrapolated), ``brentq`` finds the shift that
       reprices quote k, on a simulation of only ``quote_k.end - asof`` days. The bracket starts
       at +-``bracket_per_year`` and doubles up to ``max_shift_per_year``; a quote outside the
       reachable range raises an ``InputError`` naming it.
    2. Polish: a segment also moves the quote before it a little (its first days fall inside
       that quote's window), so Newton steps on all segments together, with a Jacobian from
       common-random-number differences, remove what step 1 left, to round-off.

    Every quote must end within ``tol_stderr`` of its model stderr, or an ``InputError`` names it.
    ``progress(done, total)`` counts quotes solved, then the polish.
    """
    quotes = parse_quotes([_as_record(q) for q in quotes], market.asof)
    if not (math.isfinite(tol_stderr) and tol_stderr > 0):
        raise InputError("tol_stderr", f"must be a finite number > 0, got {tol_stderr}")
    if not (0 < bracket_per_year <= max_shift_per_year and math.isfinite(max_shift_per_year)):
        raise InputError("bracket_per_year", "need 0 < bracket_per_year <= max_shift_per_year")
    t0 = time.perf_counter()
    asof = market.asof
    ends = segment_ends(quotes, asof, lag_days)
    first = [0] + [(e - asof).days for e in ends[:-1]]  # day index of each segment's first day
    n_total = (quotes[-1].end - asof).days
    target = np.array([q.hashprice_usd_per_ph_day for q in quotes])
    x = np.zeros(len(quotes))  # shift per year, per segment
    shift = np.zeros(n_total)
    evaluations = 0

    # 1. bootstrap, quote by quote
    for k, q in enumerate(quotes):
        name = f"quote[{k}].{HASHPRICE}"
        n_days = (q.end - asof).days
        sim = Simulation(market, model, n_days=n_days, n_paths=paths, seed=seed, threads=threads,
                         hashrate_shift_per_day=shift[:n_days])
        window = [(sim.day_index(q.start), sim.day_index(q.end))]
        cache: dict[float, float] = {}

        def excess(x_per_year: float, sim=sim, window=window, cache=cache, a=first[k],
                   target=q.hashprice_usd_per_ph_day) -> float:
            if x_per_year not in cache:
                sim.steps[a:, K.S_HASHRATE_SHIFT] = x_per_year / DAYS_PER_YEAR
                cache[x_per_year] = float(sim.run(window).window_mean(HASHPRICE)[0])
            return cache[x_per_year] - target

        lo, hi = -bracket_per_year, bracket_per_year
        f_lo, f_hi = excess(lo), excess(hi)
        while f_lo * f_hi > 0:
            # hashprice falls as hashrate rises: both below the quote -> lower; both above -> raise
            if f_lo < 0 and lo > -max_shift_per_year:
                lo = max(2.0 * lo, -max_shift_per_year)
                f_lo = excess(lo)
            elif f_hi > 0 and hi < max_shift_per_year:
                hi = min(2.0 * hi, max_shift_per_year)
                f_hi = excess(hi)
            else:
                a, b = sorted((cache[lo], cache[hi]))
                raise InputError(name, f"{q.hashprice_usd_per_ph_day:g} cannot be reached: with the earlier "
                                 f"segments fixed, drift shifts of {lo:g}..{hi:g}/year give model forwards "
                                 f"{a:.4g}..{b:.4g} USD/PH/day for {q.start}..{q.end}")
        if f_lo == 0.0 or f_hi == 0.0:
            x[k] = lo if f_lo == 0.0 else hi
        else:
            x[k] = brentq(excess, lo, hi, xtol=1e-3, rtol=1e-9, maxiter=200)
        evaluations += len(cache)
        shift[first[k]:] = x[k] / DAYS_PER_YEAR
        if progress is not None:
            progress(k + 1, len(quotes) + 1)

    # 2. polish all segments together (Newton; the Jacobian is kept while it keeps working)
    sim = Simulation(market, model, n_days=n_total, n_paths=paths, seed=seed, threads=threads)
    windows = [(sim.day_index(q.start), sim.day_index(q.end)) for q in quotes]

    def forwards(xv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nonlocal evaluations
        per_day = np.empty(n_total)
        for j, a in enumerate(first):
            per_day[a:] = xv[j] / DAYS_PER_YEAR
        sim.steps[:, K.S_HASHRATE_SHIFT] = per_day
        run = sim.run(windows)
        evaluations += 1
        return run.window_mean(HASHPRICE), run.window_stderr(HASHPRICE)

    fwd, se = forwards(x)
    score = _score(fwd - target, se)
    jac = None
    newton_steps = 0
    for _ in range(MAX_POLISH_STEPS):
        if score <= POLISH_TOL_STDERR:
            break
        fresh = jac is None
        if fresh:
            jac = _jacobian(forwards, x, fwd)
        step = np.linalg.lstsq(jac, target - fwd, rcond=None)[0]
        for _halving in range(6):
            x_new = x + step
            fwd_new, se_new = forwards(x_new)
            score_new = _score(fwd_new - target, se_new)
            if score_new < score:
                break
            step = 0.5 * step
        newton_steps += 1
        if score_new >= score:
            if fresh:
                break  # no progress even with a fresh Jacobian: stop, the check below decides
            jac = None
            continue
        if score_new > 0.25 * score:
            jac = None  # slow progress: refresh the Jacobian at the new point
        x, fwd, se, score = x_new, fwd_new, se_new, score_new
    if progress is not None:
        progress(len(quotes) + 1, len(quotes) + 1)

    segments = tuple(ShiftSegment(asof + dt.timedelta(days=a + 1), e, float(v) / DAYS_PER_YEAR)
                     for a, e, v in zip(first, ends, x))
    hs = HashrateShift(asof, segments)
    fit = _fit_table(market, model, quotes, hs, paths, seed, threads, tol_stderr)
    bad = np.flatnonzero(~fit["within_tolerance"].to_numpy())
    if bad.size:
        k = int(bad[np.argmax(np.abs(fit["error_stderrs"].to_numpy()[bad]))])
        r = fit.iloc[k]
        raise InputError(f"quote[{k}].{HASHPRICE}", f"could not be repriced: model forward {r.model_usd_per_ph_day:.6g}"
                         f" vs quote {r.quote_usd_per_ph_day:g} is {r.error_stderrs:.3g} stderr off "
                         f"(tolerance {tol_stderr:g})")
    return ImpliedCalibration(hs, quotes, fit, paths=paths + paths % 2, seed=seed, tol_stderr=tol_stderr,
                              evaluations=evaluations, seconds=time.perf_counter() - t0,
                              extra={"newton_steps": newton_steps, "lag_days": lag_days})


def _score(err: np.ndarray, se: np.ndarray) -> float:
    """Worst error in standard errors (an exact zero counts as zero)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(err == 0, 0.0, np.abs(err) / se)
    return float(np.max(z))


def _jacobian(forwards, x: np.ndarray, fwd: np.ndarray) -> np.ndarray:
    """d forward_k / d shift_j (per year), by forward differences on common random numbers."""
    jac = np.empty((x.size, x.size))
    for j in range(x.size):
        xp = x.copy()
        xp[j] += JACOBIAN_STEP_PER_YEAR
        jac[:, j] = (forwards(xp)[0] - fwd) / JACOBIAN_STEP_PER_YEAR
    return jac


def _as_record(q) -> dict:
    if isinstance(q, Quote):
        rec = {"start": q.start, "end": q.end, HASHPRICE: q.hashprice_usd_per_ph_day, "bid": q.bid,
               "ask": q.ask, "id": q.quote_id}
        return {k: v for k, v in rec.items() if v is not None}
    return q


def reprice_quotes(market: Market, model: ModelParams, quotes: Sequence[Quote], shift, *,
                   paths: int, seed: int, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Model forwards and stderrs for each quote's window under ``shift`` (array or HashrateShift)."""
    n_days = (quotes[-1].end - market.asof).days
    sim = Simulation(market, model, n_days=n_days, n_paths=paths, seed=seed, threads=threads,
                     hashrate_shift_per_day=shift)
    run = sim.run([(sim.day_index(q.start), sim.day_index(q.end)) for q in quotes])
    return run.window_mean(HASHPRICE), run.window_stderr(HASHPRICE)


def _fit_table(market, model, quotes, hs, paths, seed, threads, tol_stderr) -> pd.DataFrame:
    model_fwd, se = reprice_quotes(market, model, quotes, hs, paths=paths, seed=seed, threads=threads)
    quote = np.array([q.hashprice_usd_per_ph_day for q in quotes])
    err = model_fwd - quote
    with np.errstate(divide="ignore", invalid="ignore"):
        err_se = np.where(se > 0, err / se, np.where(err == 0, 0.0, np.inf))
    bid = [q.bid for q in quotes]
    ask = [q.ask for q in quotes]
    within_ba = [None if (b is None and a is None) else bool((b is None or m >= b) and (a is None or m <= a))
                 for m, b, a in zip(model_fwd, bid, ask)]
    segs = hs.segments
    return pd.DataFrame({
        "id": [q.quote_id for q in quotes],
        "start": [q.start for q in quotes],
        "end": [q.end for q in quotes],
        "days": [q.days for q in quotes],
        "quote_usd_per_ph_day": quote,
        "model_usd_per_ph_day": model_fwd,
        "stderr_usd_per_ph_day": se,
        "error_usd_per_ph_day": err,
        "error_stderrs": err_se,
        "within_tolerance": np.abs(err_se) <= tol_stderr,
        "bid": bid,
        "ask": ask,
        "within_bid_ask": within_ba,
        "segment_start": [s.start for s in segs],
        "segment_end": [s.end for s in segs],
        "shift_per_day": [s.shift_per_day for s in segs],
        "shift_per_year": [s.shift_per_year for s in segs],
    })
