"""Market snapshot: BTC spot, QuantLib USD discount and BTC forward curves, BTC implied vols,
and the network state (difficulty, height, epoch progress, fees, hashrate).

>>> m = Market.default()
>>> m.asof.isoformat(), round(m.spot_hashprice_usd_per_ph_day(), 2) > 0
('2026-01-31', True)
>>> m.btc_forward_usd(m.asof) == m.btc_spot_usd
True
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import MISSING, dataclass, field, fields, replace
from importlib import resources

import QuantLib as ql

from curves import protocol
from curves.toml_io import InputError, read_toml, tomllib, write_toml
from curves.units import H_PER_EH

DAY_COUNT = ql.Actual365Fixed()
DEFAULT_MARKET_RESOURCE = "default_market.toml"
MAX_HORIZON_DAYS = 20_000  # about 55 years of daily steps
MAX_HASHRATE_LOG_SD = 0.5


QL_FIRST_DATE, QL_LAST_DATE = dt.date(1901, 1, 1), dt.date(2199, 12, 31)  # QuantLib's calendar


def to_ql_date(d: dt.date, field_name: str = "date") -> ql.Date:
    if not QL_FIRST_DATE <= d <= QL_LAST_DATE:
        raise InputError(field_name, f"{d} is outside {QL_FIRST_DATE}..{QL_LAST_DATE} (QuantLib's dates)")
    return ql.Date(d.day, d.month, d.year)


def from_ql_date(d: ql.Date) -> dt.date:
    return dt.date(d.year(), d.month(), d.dayOfMonth())


def parse_date(value, field_name: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InputError(field_name, f"not an ISO date (YYYY-MM-DD): {value!r}") from None


def _number(value, field_name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(field_name, f"not a number: {value!r}") from None


def _positive(value, field_name: str, allow_zero: bool = False) -> float:
    x = _number(value, field_name)
    if not math.isfinite(x):
        raise InputError(field_name, f"must be finite, got {value!r}")
    if x < 0 or (x == 0 and not allow_zero):
        raise InputError(field_name, f"must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return x


@dataclass(frozen=True)
class CurvePoint:
    """One quoted point: a date after the as-of date and a value (a rate, a price or a vol)."""

    date: dt.date
    value: float


def _points(raw, field_name: str, asof: dt.date, positive: bool) -> tuple[CurvePoint, ...]:
    pts = []
    if raw is not None and not isinstance(raw, (list, tuple)):
        raise InputError(field_name, "expected an array of tables with keys 'date' and 'value'")
    for i, item in enumerate(raw or ()):
        name = f"{field_name}[{i}]"
        if isinstance(item, CurvePoint):  # already parsed, e.g. a copy made by Market.with_
            item = {"date": item.date, "value": item.value}
        if not isinstance(item, dict) or set(item) != {"date", "value"}:
            raise InputError(name, "expected a table with keys 'date' and 'value'")
        d = parse_date(item["date"], f"{name}.date")
        if d <= asof:
            raise InputError(f"{name}.date", f"{d} is not after the as-of date {asof}")
        v = _positive(item["value"], f"{name}.value") if positive else _number(item["value"], f"{name}.value")
        if not math.isfinite(v):
            raise InputError(f"{name}.value", "must be finite")
        pts.append(CurvePoint(d, v))
    dates = [p.date for p in pts]
    if dates != sorted(set(dates)):
        raise InputError(field_name, "dates must be strictly increasing")
    return tuple(pts)


@dataclass(frozen=True)
class Market:
    """Today's market and network state. Rates are continuously compounded, Actual/365 Fixed.

    The BTC forward is F(t) = spot * exp(basis * t) for a flat basis, or interpolated from
    ``btc_futures_usd`` points (log-linear in price). Vols are Black implied vols by date.

    Network hashrate is an estimate, not an observation: ``hashrate_ehs`` is the filtered
    persistent level today (EH/s) and ``hashrate_log_sd`` its posterior standard deviation in
    logs; each simulated path starts from a draw of that posterior (0 starts every path at the
    level). ``hashprice_ema_usd_per_ph_day`` is the trailing average of the daily index that
    the hashrate feedback starts from (absent: today's spot index). See
    :mod:`engine.hashrate_filter` for how the snapshot's values are made.
    """

    asof: dt.date
    btc_spot_usd: float
    difficulty: float
    height: int
    epoch_seconds_elapsed: float
    fee_btc_per_block: float
    hashrate_ehs: float
    hashrate_log_sd: float = 0.0
    hashprice_ema_usd_per_ph_day: float | None = None
    usd_rate: float = 0.04
    btc_basis_annual: float = 0.05
    btc_vol: float = 0.45
    usd_zero_rates: tuple[CurvePoint, ...] = ()
    btc_futures_usd: tuple[CurvePoint, ...] = ()
    btc_vols: tuple[CurvePoint, ...] = ()
    provenance: str = ""
    _ql: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        a = parse_date(self.asof, "asof")
        to_ql_date(a, "asof")  # within QuantLib's dates
        object.__setattr__(self, "asof", a)
        for name in ("btc_spot_usd", "difficulty", "hashrate_ehs", "btc_vol"):
            object.__setattr__(self, name, _positive(getattr(self, name), name))
        for name in ("epoch_seconds_elapsed", "fee_btc_per_block", "hashrate_log_sd"):
            object.__setattr__(self, name, _positive(getattr(self, name), name, allow_zero=True))
        if self.hashrate_log_sd > MAX_HASHRATE_LOG_SD:
            raise InputError("hashrate_log_sd", f"must be at most {MAX_HASHRATE_LOG_SD} (a 1-sigma "
                             f"factor of {math.exp(MAX_HASHRATE_LOG_SD):.2f}), got {self.hashrate_log_sd!r}")
        if self.hashprice_ema_usd_per_ph_day is not None:
            name = "hashprice_ema_usd_per_ph_day"
            object.__setattr__(self, name, _positive(getattr(self, name), name))
        for name in ("usd_rate", "btc_basis_annual"):
            x = _number(getattr(self, name), name)
            if not math.isfinite(x) or abs(x) > 1.0:
                raise InputError(name, f"must be a finite annual rate within [-1, 1], got {x!r}")
            object.__setattr__(self, name, x)
        h = self.height
        if isinstance(h, bool) or not isinstance(h, int) or h < 0:
            raise InputError("height", f"must be a non-negative integer, got {h!r}")
        object.__setattr__(self, "usd_zero_rates", _points(self.usd_zero_rates, "usd_zero_rates", a, False))
        object.__setattr__(self, "btc_futures_usd", _points(self.btc_futures_usd, "btc_futures_usd", a, True))
        object.__setattr__(self, "btc_vols", _points(self.btc_vols, "btc_vols", a, True))

    # ---- network state -------------------------------------------------------------------
    @property
    def epoch_blocks_elapsed(self) -> int:
        """Blocks of the current epoch mined so far, the epoch's first block included."""
        return self.height % protocol.RETARGET_BLOCKS + 1

    @property
    def subsidy_btc(self) -> float:
        return protocol.subsidy_btc(self.height + 1)

    @property
    def hashrate_hs(self) -> float:
        """Today's persistent network hashrate (H/s): the filtered level, see ``hashrate_ehs``."""
        return self.hashrate_ehs * H_PER_EH

    def feedback_hashprice_usd_per_ph_day(self) -> float:
        """Where the hashrate feedback's hashprice average starts: its trailing value when the
        snapshot has one, else today's spot index."""
        if self.hashprice_ema_usd_per_ph_day is not None:
            return self.hashprice_ema_usd_per_ph_day
        return self.spot_hashprice_usd_per_ph_day()

    def spot_hashvalue_btc_per_ph_day(self) -> float:
        return protocol.hashvalue_btc_per_ph_day(self.difficulty, self.subsidy_btc, self.fee_btc_per_block)

    def spot_hashprice_usd_per_ph_day(self) -> float:
        return self.spot_hashvalue_btc_per_ph_day() * self.btc_spot_usd

    # ---- QuantLib term structures ---------------------------------------------------------
    def year_fraction(self, d: dt.date) -> float:
        return DAY_COUNT.yearFraction(to_ql_date(self.asof), to_ql_date(d))

    def _zero_curve(self, key: str, flat: float, points: tuple[CurvePoint, ...]):
        if key not in self._ql:
            ref = to_ql_date(self.asof)
            if points:
                dates = [ref] + [to_ql_date(p.date) for p in points]
                rates = [points[0].value] + [p.value for p in points]
                curve = ql.ZeroCurve(dates, rates, DAY_COUNT, ql.NullCalendar(), ql.Linear(),
                                     ql.Continuous, ql.Annual)
            else:
                curve = ql.FlatForward(ref, flat, DAY_COUNT, ql.Continuous, ql.Annual)
            curve.enableExtrapolation()
            self._ql[key] = curve
        return self._ql[key]

    @property
    def usd_discount_curve(self) -> ql.YieldTermStructure:
        """USD discount curve (QuantLib), flat ``usd_rate`` or linear in zero rates."""
        return self._zero_curve("usd", self.usd_rate, self.usd_zero_rates)

    @property
    def btc_carry_curve(self) -> ql.YieldTermStructure:
        """Curve whose discount factor is spot / forward: the BTC forward is spot / DF_carry(t)."""
        if "carry" not in self._ql:
            pts = tuple(
                CurvePoint(p.date, math.log(p.value / self.btc_spot_usd) / self.year_fraction(p.date))
                for p in self.btc_futures_usd
            )
            return self._zero_curve("carry", self.btc_basis_annual, pts)
        return self._ql["carry"]

    @property
    def btc_vol_curve(self) -> ql.BlackVolTermStructure:
        """BTC Black vol term structure (QuantLib BlackVarianceCurve, flat before the first point)."""
        if "vol" not in self._ql:
            ref = to_ql_date(self.asof)
            if self.btc_vols:
                dates = [to_ql_date(p.date) for p in self.btc_vols]
                vols = [p.value for p in self.btc_vols]
                curve = ql.BlackVarianceCurve(ref, dates, vols, DAY_COUNT, False)
            else:
                curve = ql.BlackConstantVol(ref, ql.NullCalendar(), self.btc_vol, DAY_COUNT)
            curve.enableExtrapolation()
            self._ql["vol"] = curve
        return self._ql["vol"]

    def discount(self, d: dt.date) -> float:
        return self.usd_discount_curve.discount(to_ql_date(d))

    def btc_forward_usd(self, d: dt.date) -> float:
        return self.btc_spot_usd / self.btc_carry_curve.discount(to_ql_date(d))

    def btc_implied_vol(self, d: dt.date) -> float:
        t = max(self.year_fraction(d), 1.0 / 365.0)
        return self.btc_vol_curve.blackVol(t, self.btc_spot_usd, True)

    def btc_total_variance(self, d: dt.date) -> float:
        t = self.year_fraction(d)
        if t <= 0:
            return 0.0
        return self.btc_vol_curve.blackVariance(t, self.btc_spot_usd, True)

    # ---- files ----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        out = {}
        for f in fields(self):
            if f.name.startswith("_"):
                continue
            v = getattr(self, f.name)
            if isinstance(v, tuple):
                v = [{"date": p.date, "value": p.value} for p in v]
                if not v:
                    continue
            if v is None:
                continue
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, table: dict) -> Market:
        known = {f.name for f in fields(cls) if not f.name.startswith("_")}
        for key in table:
            if key not in known:
                raise InputError(key, "unknown market field")
        for f in fields(cls):
            if f.init and f.name not in table and _is_required(f):
                raise InputError(f.name, "missing market field")
        return cls(**table)

    def save(self, path) -> None:
        write_toml(path, self.to_dict())

    @classmethod
    def load(cls, path) -> Market:
        return cls.from_dict(read_toml(path))

    @classmethod
    def default(cls) -> Market:
        """The embedded snapshot of 2026-01-31 (see ``curves/data/default_market.toml``)."""
        text = resources.files("curves.data").joinpath(DEFAULT_MARKET_RESOURCE).read_text()
        return cls.from_dict(tomllib.loads(text))

    def with_(self, **changes) -> Market:
        """A copy with some fields changed (for bumps and scenarios)."""
        return replace(self, **changes)


def _is_required(f) -> bool:
    return f.default is MISSING and f.default_factory is MISSING
