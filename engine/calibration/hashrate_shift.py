"""The hashrate drift shift (the market price of risk): piecewise-constant segments from the day
after the as-of date, flat after the last one; the ``--shift`` TOML file of ``curve`` and ``price``.

Units: the shift is an additive drift of ln(hashrate) per day (the kernel's step); per year is
365 times that (``DAYS_PER_YEAR``). A shift of +1/year over a year multiplies expected hashrate
by about e over the model's own growth, and lowers hashprice forwards.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import tomli_w

from curves.market import MAX_HORIZON_DAYS
from curves.schema import GENESIS_DATE, Schema, Spec, reading
from curves.toml_io import InputError, read_toml, write_atomic
from engine.mc.simulation import DAYS_PER_YEAR

SHIFT_UNITS = "additive drift of ln(hashrate) per day; shift_per_year = 365 x shift_per_day"
MAX_SHIFT_PER_YEAR = 40.0  # calibrate-quotes searches at most +-40/year (max_shift_per_year)
SHIFT_SCHEMA = Schema("shift", {
    "asof": Spec("date", plausible=(GENESIS_DATE, None), doc="the market's as-of date the shift is for",
                 why="no network before the genesis block"),
    "units": Spec("text", required=False, doc="informational, written by calibrate-quotes"),
})
SEGMENT_SCHEMA = Schema("segment", {
    "start": Spec("date", doc="first day; the day after asof, then the day after the previous segment's end"),
    "end": Spec("date", doc="last day (inclusive); at most 20,000 days after asof"),
    "shift_per_day": Spec("number", "1/day", required=False, plausible=(-MAX_SHIFT_PER_YEAR / DAYS_PER_YEAR,
                                                                      MAX_SHIFT_PER_YEAR / DAYS_PER_YEAR),
                          doc="extra drift of ln(hashrate) a day (this or shift_per_year)",
                          why="calibrate-quotes searches within ±40 a year"),
    "shift_per_year": Spec("number", "1/year", required=False, plausible=(-MAX_SHIFT_PER_YEAR, MAX_SHIFT_PER_YEAR),
                           doc="365 x shift_per_day; must agree when both are given",
                           why="calibrate-quotes searches within ±40 a year"),
})


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
        raw = doc.pop("segment", None)
        asof = SHIFT_SCHEMA.parse(doc)["asof"]
        if not isinstance(raw, list) or not raw:
            raise InputError("segment", "expected one or more [[segment]] tables")
        segs = []
        for i, t in enumerate(raw):
            name = f"segment[{i}]"
            s = SEGMENT_SCHEMA.parse(t, prefix=f"{name}.")
            per_day, per_year = s["shift_per_day"], s["shift_per_year"]
            if per_day is None and per_year is None:
                raise InputError(f"{name}.shift_per_day", "missing (give shift_per_day or shift_per_year)")
            if per_day is None:
                per_day = per_year / DAYS_PER_YEAR
            elif per_year is not None and abs(per_day * DAYS_PER_YEAR - per_year) > 1e-9 * max(1.0, abs(per_year)):
                raise InputError(f"{name}.shift_per_year", f"{per_year} disagrees with shift_per_day "
                                 f"{per_day} x {DAYS_PER_YEAR:g}")
            if (s["end"] - asof).days > MAX_HORIZON_DAYS:
                raise InputError(f"{name}.end", f"{s['end']} is more than {MAX_HORIZON_DAYS:,} days after {asof}")
            segs.append(ShiftSegment(s["start"], s["end"], per_day))
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
        """A shift file; errors read ``FILE: field: reason``."""
        doc = read_toml(path)
        with reading(path):
            return cls.from_dict(doc)

    load = from_toml

