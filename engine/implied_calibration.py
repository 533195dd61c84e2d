"""Market-implied calibration: bootstrap the hashrate market price of risk from quoted forwards.

Hashrate is not traded, so its drift is calibrated to history under the physical measure
(``engine.calibration``). Quoted hashprice forwards then pin down a **drift shift** per tenor,
the way a yield curve is bootstrapped from helpers: the shift is piecewise constant in time,
one segment per quote, covering (previous quote's end, this quote's end]. Segments are solved in
order with a 1-D root finder (``scipy.optimize.brentq``) so that the model forward over the
quote's delivery window equals the quote. Earlier segments stay fixed while a later one is
solved; the simulation is causal, so a later segment cannot move an earlier quote.

Every evaluation uses the same seed and paths (common random numbers; the RNG is counter-based,
so the draws do not depend on the horizon either). The map shift -> forward is then a smooth,
deterministic function, and the result is bit-identical run to run. Each solve simulates only
up to its own quote's end. Hashprice falls when hashrate rises, so the map is decreasing: the
bracket starts at +-5 per year and doubles up to ``max_shift_per_year`` before giving up with
an error naming the quote.

Units: the shift is an additive drift of log hashrate, per day (the kernel's step); per year is
365 times that (``DAYS_PER_YEAR``). A shift of +1/year multiplies expected hashrate by about
e^(t in years) over the model's own growth.

>>> import datetime as dt
>>> from curves.market import Market
>>> from engine.model import ModelParams
>>> quotes = [Quote(dt.date(2026, 2, 1), dt.date(2026, 2, 28), 39.5)]
>>> res = bootstrap_hashrate_shift(Market.default(), ModelParams.default(), quotes, paths=2_000, seed=1)
>>> abs(res.fit["error_stderrs"].iloc[0]) < 0.1
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
from pathlib import Path

import numpy as np
import pandas as pd
import tomli_w
from scipy.optimize import brentq

from curves.market import Market, parse_date
from curves.periods import Period
from curves.toml_io import InputError, read_toml, write_atomic
from engine import kernel as K
from engine.model import ModelParams
from engine.simulation import DAYS_PER_YEAR, Simulation

HASHPRICE = "hashprice_usd_per_ph_day"
QUOTE_COLUMNS = ("start", "end", HASHPRICE)
OPTIONAL_QUOTE_COLUMNS = ("bid", "ask", "id")
SHIFT_UNITS = "additive drift of ln(hashrate) per day; shift_per_year = 365 x shift_per_day"


# ---- quotes -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Quote:
    """A quoted forward: the average daily hashprice index over [start, end], USD/PH/day.

    ``bid``/``ask`` are optional; when given, the quote must lie between them and the fit table
    says whether the model forward does too.
    """

    start: dt.date
    end: dt.date
    hashprice_usd_per_ph_day: float
    bid: float | None = None
    ask: float | None = None
    quote_id: str | None = None

    @property
    def period(self) -> Period:
        return Period(self.start, self.end)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def _price(value, name: str, required: bool) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InputError(name, "missing")
        return None
    if isinstance(value, bool):
        raise InputError(name, f"not a number: {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(name, f"not a number: {value!r}") from None
    if not math.isfinite(x) or x <= 0:
        raise InputError(name, f"must be a finite number > 0, got {value!r}")
    return x


def parse_quotes(records: Sequence[dict], asof: dt.date | None = None) -> list[Quote]:
    """Validate quote records (dicts with start, end, hashprice_usd_per_ph_day[, bid, ask, id]).

    Errors name the quote and field, e.g. ``quote[2].end``: dates must be ISO dates after
    ``asof`` (when given), end >= start, prices finite and > 0, quotes sorted and disjoint.
    """
    if not records:
        raise InputError("quote", "no quotes given")
    quotes: list[Quote] = []
    for i, rec in enumerate(records):
        name = f"quote[{i}]"
        if not isinstance(rec, dict):
            raise InputError(name, "each quote must be a table")
        for key in rec:
            if key not in QUOTE_COLUMNS + OPTIONAL_QUOTE_COLUMNS:
                raise InputError(f"{name}.{key}", "unknown field; expected "
                                 + ", ".join(QUOTE_COLUMNS) + " and optionally bid, ask, id")
        for key in ("start", "end"):
            if _missing(rec.get(key)):
                raise InputError(f"{name}.{key}", "missing")
        start = parse_date(str(rec["start"]).strip() if isinstance(rec["start"], str) else rec["start"],
                           f"{name}.start")
        end = parse_date(str(rec["end"]).strip() if isinstance(rec["end"], str) else rec["end"],
                         f"{name}.end")
        if end < start:
            raise InputError(f"{name}.end", f"{end} is before start {start}")
        if asof is not None and start <= asof:
            raise InputError(f"{name}.start", f"{start} is not after the as-of date {asof}")
        price = _price(rec.get(HASHPRICE), f"{name}.{HASHPRICE}", required=True)
        bid = _price(rec.get("bid"), f"{name}.bid", required=False)
        ask = _price(rec.get("ask"), f"{name}.ask", required=False)
        if bid is not None and ask is not None and bid > ask:
            raise InputError(f"{name}.bid", f"bid {bid} is above ask {ask}")
        if (bid is not None and price < bid) or (ask is not None and price > ask):
            raise InputError(f"{name}.{HASHPRICE}", f"{price} lies outside bid/ask [{bid}, {ask}]")
        qid = None if _missing(rec.get("id")) else str(rec["id"]).strip()
        if quotes:
            prev = quotes[-1]
            if start < prev.start:
                raise InputError(f"{name}.start", f"quotes must be sorted by date; {start} is before "
                                 f"quote[{i - 1}] ({prev.start}..{prev.end})")
            if start <= prev.end:
                raise InputError(f"{name}.start", f"{start}..{end} overlaps quote[{i - 1}] "
                                 f"({prev.start}..{prev.end})")
        quotes.append(Quote(start, end, price, bid, ask, qid))
    return quotes


def load_quotes(path, asof: dt.date | None = None) -> list[Quote]:
    """Quotes from a CSV (columns start,end,hashprice_usd_per_ph_day[,bid,ask,id]; ``#`` lines are
    comments) or a TOML file of ``[[quote]]`` tables with the same keys."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".toml":
        doc = read_toml(p)
        extra = set(doc) - {"quote"}
        if extra:
            raise InputError(sorted(extra)[0], "unknown key; the quotes file holds [[quote]] tables")
        raw = doc.get("quote", [])
        if not isinstance(raw, list):
            raise InputError("quote", "expected [[quote]] tables")
        return parse_quotes(raw, asof)
    if suffix != ".csv":
        raise InputError(str(p), f"unsupported quotes file type {p.suffix or '(none)'!r}; use .csv or .toml")
    try:
        df = pd.read_csv(p, dtype=str, comment="#", skipinitialspace=True, keep_default_na=False)
    except FileNotFoundError:
        raise InputError(str(p), "file not found") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(str(p), f"unreadable CSV ({str(exc).splitlines()[0]})") from None
    df.columns = [str(c).strip() for c in df.columns]
    for c in QUOTE_COLUMNS:
        if c not in df.columns:
            raise InputError(c, f"missing column; the quotes CSV needs {', '.join(QUOTE_COLUMNS)}")
    return parse_quotes(df.to_dict(orient="records"), asof)


# ---- the calibrated shift -----------------------------------------------------------------------
@dataclass(frozen=True)
class ShiftSegment:
    """A constant drift shift of log hashrate over the days [start, end] (inclusive)."""

    start: dt.date
    end: dt.date
    shift_per_day: float

    @property
    def shift_per_year(self) -> float:
        return self.shift_per_day * DAYS_PER_YEAR

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class HashrateShift:
    """Piecewise-constant hashrate drift shift (the market price of risk) from ``asof + 1``.

    Segments are contiguous; beyond the last one the last shift continues (flat extrapolation).
    Pass it (or ``per_day(n)``) as ``hashrate_shift_per_day`` to ``Simulation``, ``build_curve``
    or ``price_trades``.
    """

    asof: dt.date
    segments: tuple[ShiftSegment, ...]

    def __post_init__(self):
        object.__setattr__(self, "segments", tuple(self.segments))
        if not self.segments:
            raise InputError("segment", "at least one segment is needed")
        expect = self.asof + dt.timedelta(days=1)
        for i, s in enumerate(self.segments):
            if s.start != expect:
                raise InputError(f"segment[{i}].start", f"must be {expect} (segments are contiguous from "
                                 f"the day after the as-of date {self.asof}), got {s.start}")
            if s.end < s.start:
                raise InputError(f"segment[{i}].end", f"{s.end} is before start {s.start}")
            if not math.isfinite(s.shift_per_day):
                raise InputError(f"segment[{i}].shift_per_day", "must be finite")
            expect = s.end + dt.timedelta(days=1)

    @property
    def end(self) -> dt.date:
        return self.segments[-1].end

    def per_day(self, n_days: int, asof: dt.date | None = None) -> np.ndarray:
        """The shift for days 0..n_days-1 (day k is asof + k + 1), flat after the last segment."""
        if asof is not None and asof != self.asof:
            raise InputError("shift.asof", f"{self.asof} differs from the market's as-of date {asof}")
        out = np.full(int(n_days), self.segments[-1].shift_per_day)
        for s in self.segments:
            a = (s.start - self.asof).days - 1
            b = (s.end - self.asof).days
            out[a:min(b, n_days)] = s.shift_per_day
        return out

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({
            "start": [s.start for s in self.segments],
            "end": [s.end for s in self.segments],
            "days": [s.days for s in self.segments],
            "shift_per_day": [s.shift_per_day for s in self.segments],
            "shift_per_year": [s.shift_per_year for s in self.segments],
        })

    def to_dict(self) -> dict:
        return {"asof": self.asof, "units": SHIFT_UNITS,
                "segment": [{"start": s.start, "end": s.end, "shift_per_day": s.shift_per_day,
                             "shift_per_year": s.shift_per_year} for s in self.segments]}

    @classmethod
    def from_dict(cls, doc: dict) -> HashrateShift:
        """Read ``asof`` and ``[[segment]]`` tables; ``shift_per_day`` (or ``shift_per_year``) each."""
        doc = dict(doc)
        doc.pop("calibration", None)  # fit report, informational
        doc.pop("units", None)
        if "asof" not in doc:
            raise InputError("asof", "missing")
        asof = parse_date(doc.pop("asof"), "asof")
        raw = doc.pop("segment", None)
        if doc:
            raise InputError(sorted(doc)[0], "unknown key in the shift file")
        if not isinstance(raw, list) or not raw:
            raise InputError("segment", "expected one or more [[segment]] tables")
        segs = []
        for i, t in enumerate(raw):
            name = f"segment[{i}]"
            if not isinstance(t, dict):
                raise InputError(name, "each segment must be a table")
            unknown = set(t) - {"start", "end", "shift_per_day", "shift_per_year"}
            if unknown:
                raise InputError(f"{name}.{sorted(unknown)[0]}", "unknown field")
            for key in ("start", "end"):
                if key not in t:
                    raise InputError(f"{name}.{key}", "missing")
            per_day = _finite(t.get("shift_per_day"), f"{name}.shift_per_day")
            per_year = _finite(t.get("shift_per_year"), f"{name}.shift_per_year")
            if per_day is None and per_year is None:
                raise InputError(f"{name}.shift_per_day", "missing (give shift_per_day or shift_per_year)")
            if per_day is None:
                per_day = per_year / DAYS_PER_YEAR
            elif per_year is not None and abs(per_day * DAYS_PER_YEAR - per_year) > 1e-9 * max(1.0, abs(per_year)):
                raise InputError(f"{name}.shift_per_year", f"{per_year} disagrees with shift_per_day "
                                 f"{per_day} x {DAYS_PER_YEAR:g}")
            segs.append(ShiftSegment(parse_date(t["start"], f"{name}.start"), parse_date(t["end"], f"{name}.end"),
                                     per_day))
        return cls(asof, tuple(segs))

    def to_toml(self, path, header: str | None = None, calibration: dict | None = None) -> None:
        """Write atomically; ``header`` lines become comments, ``calibration`` an info table."""
        doc = self.to_dict()
        if calibration:
            doc["calibration"] = calibration
        text = tomli_w.dumps(doc)
        if header:
            text = "\n".join(("# " + ln).rstrip() for ln in header.strip("\n").splitlines()) + "\n\n" + text
        write_atomic(path, text.encode())

    @classmethod
    def from_toml(cls, path) -> HashrateShift:
        return cls.from_dict(read_toml(path))

    load = from_toml


def _finite(value, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(name, f"must be a finite number, got {value!r}")
    return float(value)


# ---- the bootstrap ------------------------------------------------------------------------------
@dataclass
class ImpliedCalibration:
    """The bootstrapped shift, and the fit per quote on one final run with the same seed.

    ``fit`` columns: start, end, days, quote/model/stderr/error in USD/PH/day, ``error_stderrs``
    (model - quote over the model's stderr), ``within_tolerance``, bid/ask and ``within_bid_ask``,
    the quote's segment and its shift per day and per year, and root-finder evaluations.
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
        """The per-day array for ``Simulation(hashrate_shift_per_day=...)``; flat after the last quote."""
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
        cal = {"method": "engine.implied_calibration.bootstrap_hashrate_shift", "paths": self.paths,
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


def bootstrap_hashrate_shift(market: Market, model: ModelParams, quotes: Sequence[Quote], *,
                             paths: int = 20_000, seed: int = 42, tol_stderr: float = 0.1,
                             bracket_per_year: float = 5.0, max_shift_per_year: float = 40.0,
                             xtol_per_year: float = 1e-10, threads: int | None = None,
                             progress: Callable[[int, int], None] | None = None) -> ImpliedCalibration:
    """Solve, quote by quote, the drift shift that makes the model forward equal the quote.

    ``quotes`` are sorted, disjoint and after ``market.asof`` (checked). Segment k covers the
    days (end of quote k-1, end of quote k]; earlier segments are fixed while it is solved, on a
    simulation of ``quote_k.end - asof`` days with ``paths`` paths and ``seed`` (common random
    numbers). The solution must reprice the quote within ``tol_stderr`` standard errors.
    ``progress(done, total)`` counts solved quotes.
    """
    quotes = parse_quotes([_as_record(q) for q in quotes], market.asof)
    if not (math.isfinite(tol_stderr) and tol_stderr > 0):
        raise InputError("tol_stderr", f"must be a finite number > 0, got {tol_stderr}")
    if not (0 < bracket_per_year <= max_shift_per_year and math.isfinite(max_shift_per_year)):
        raise InputError("bracket_per_year", "need 0 < bracket_per_year <= max_shift_per_year")
    t0 = time.perf_counter()
    asof = market.asof
    n_total = (quotes[-1].end - asof).days
    shift = np.zeros(n_total)
    segments: list[ShiftSegment] = []
    evals_per_quote: list[int] = []
    seg_first = 0  # day index of the current segment's first day
    for k, q in enumerate(quotes):
        name = f"quote[{k}].{HASHPRICE}"
        n_days = (q.end - asof).days
        sim = Simulation(market, model, n_days=n_days, n_paths=paths, seed=seed, threads=threads,
                         hashrate_shift_per_day=shift[:n_days])
        window = [(sim.day_index(q.start), sim.day_index(q.end))]
        cache: dict[float, tuple[float, float]] = {}

        def forward(x_per_year: float, sim=sim, window=window, cache=cache, lo=seg_first, hi=n_days):
            if x_per_year not in cache:
                # only this segment's shift changes; the kernel reads the step inputs afresh
                sim.steps[lo:hi, K.S_HASHRATE_SHIFT] = x_per_year / DAYS_PER_YEAR
                run = sim.run(window)
                cache[x_per_year] = (float(run.window_mean(HASHPRICE)[0]),
                                     float(run.window_stderr(HASHPRICE)[0]))
            return cache[x_per_year]

        def excess(x: float, forward=forward, target=q.hashprice_usd_per_ph_day) -> float:
            return forward(x)[0] - target

        lo, hi = -bracket_per_year, bracket_per_year
        f_lo, f_hi = excess(lo), excess(hi)
        while f_lo * f_hi > 0:
            # decreasing map: both below the quote -> lower the shift; both above -> raise it
            if f_lo < 0 and lo > -max_shift_per_year:
                lo = max(2.0 * lo, -max_shift_per_year)
                f_lo = excess(lo)
            elif f_hi > 0 and hi < max_shift_per_year:
                hi = min(2.0 * hi, max_shift_per_year)
                f_hi = excess(hi)
            else:
                a, b = sorted((forward(lo)[0], forward(hi)[0]))
                raise InputError(name, f"{q.hashprice_usd_per_ph_day:g} cannot be reached: with the earlier "
                                 f"segments fixed, drift shifts in [{lo:g}, {hi:g}]/year give model forwards "
                                 f"{a:.4g}..{b:.4g} USD/PH/day for {q.start}..{q.end}")
        if f_lo == 0.0:
            root = lo
        elif f_hi == 0.0:
            root = hi
        else:
            root = brentq(excess, lo, hi, xtol=xtol_per_year, rtol=4 * np.finfo(float).eps, maxiter=200)
        value, se = forward(root)
        if abs(value - q.hashprice_usd_per_ph_day) > tol_stderr * se:
            raise InputError(name, f"the solver stopped at a shift of {root:.6g}/year with model forward "
                             f"{value:.6g} vs quote {q.hashprice_usd_per_ph_day:g} (stderr {se:.3g}); "
                             f"more than {tol_stderr:g} stderr off")
        shift[seg_first:n_days] = root / DAYS_PER_YEAR
        segments.append(ShiftSegment(asof + dt.timedelta(days=seg_first + 1), q.end, root / DAYS_PER_YEAR))
        evals_per_quote.append(len(cache))
        seg_first = n_days
        if progress is not None:
            progress(k + 1, len(quotes))

    hs = HashrateShift(asof, tuple(segments))
    fit = _fit_table(market, model, quotes, hs, paths, seed, threads, tol_stderr, evals_per_quote)
    return ImpliedCalibration(hs, quotes, fit, paths=paths + paths % 2, seed=seed, tol_stderr=tol_stderr,
                              evaluations=int(sum(evals_per_quote)), seconds=time.perf_counter() - t0)


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


def _fit_table(market, model, quotes, hs, paths, seed, threads, tol_stderr, evals) -> pd.DataFrame:
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
        "evaluations": evals,
    })
