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
from dataclasses import dataclass, field, replace
from importlib import resources

import QuantLib as ql

from curves import protocol
from curves.schema import GENESIS_DATE, Schema, Spec, describe, reading, relaxed, strict_mode
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


_DATE_TEXT = Spec("date", text_ok=True)


def parse_date(value, field_name: str) -> dt.date:
    """A date from a ``datetime.date`` or an ISO ``YYYY-MM-DD`` string (command-line options,
    CSV cells); a date-time is refused, not truncated. Within QuantLib's 1901..2199."""
    return _DATE_TEXT.check(value, field_name)


@dataclass(frozen=True)
class CurvePoint:
    """One quoted point: a date after the as-of date and a value (a rate, a price or a vol)."""

    date: dt.date
    value: float


# ---- the market file's schema: every field, its units and bounds (the README renders it) --------
RATE = Spec("number", "1/year", plausible=(-1.0, 1.0),
            why="a continuously compounded rate beyond ±100% a year is an input error")
BTC_PRICE = Spec("number", "USD", low=0, low_open=True, plausible=(1e-3, 1e8),
                 why="from 2010's first trades (about 0.001 USD) to 800 times the 2025 high")
BTC_VOL = Spec("number", "1/sqrt(year)", low=0, low_open=True, plausible=(0.01, 5.0),
               why="Black vol; 500% a year is beyond any BTC vol seen (realised peaks were near 200%)")
MARKET_SCHEMA = Schema("market", {
    "asof": Spec("date", plausible=(GENESIS_DATE, None), doc="snapshot date (the close, UTC)",
                 why="no network before the genesis block"),
    "btc_spot_usd": replace(BTC_PRICE, doc="BTC/USD at the close"),
    "difficulty": Spec("number", "-", low=1, plausible=(1.0, 1e18), doc="difficulty of the current epoch",
                       why="1 is the protocol minimum; 1e18 is 7,000 times the 2026 level"),
    "height": Spec("integer", "blocks", low=0, high=2**31 - 1, doc="height of the last block at the close",
                   why="must match the as-of date's era (cross-check below)"),
    "epoch_seconds_elapsed": Spec("number", "s", low=0, plausible=(0.0, float(protocol.MAX_TIMESPAN_S)),
                                  doc="seconds from the epoch's first block to the close",
                                  why="8 weeks (4 x 2 weeks) is the retarget clamp; must match the blocks "
                                      "elapsed (cross-check below)"),
    "fee_btc_per_block": Spec("number", "BTC", low=0, plausible=(0.0, 50.0),
                              doc="fees per block, e.g. the last 144 blocks' mean",
                              why="the daily mean peaked at 9.6 BTC (2017-12-22); 50 BTC is the first subsidy"),
    "hashrate_ehs": Spec("number", "EH/s", low=0, low_open=True,
                         doc="filtered persistent network hashrate (the level, without transient dips)",
                         why="within 0.25-4x of the difficulty-implied hashrate (cross-check below)"),
    "hashrate_log_sd": Spec("number", "log", low=0, high=MAX_HASHRATE_LOG_SD, required=False, default=0.0,
                            doc="posterior sd of log hashrate; each path starts from a draw (0: all at the level)",
                            why="0.5 is a 1-sigma factor of 1.65"),
    "hashprice_ema_usd_per_ph_day": Spec("number", "USD/PH/day", low=0, low_open=True, required=False,
                                         doc="trailing EMA of the daily index, where the hashrate feedback "
                                             "starts (absent: today's spot index)",
                                         why="within 0.1-10x of today's spot index (cross-check below)"),
    "usd_rate": replace(RATE, required=False, default=0.04, doc="flat USD zero rate (without usd_zero_rates)"),
    "btc_basis_annual": replace(RATE, required=False, default=0.05,
                                doc="flat BTC forward basis, F = S e^(basis t) (without btc_futures_usd)"),
    "btc_vol": replace(BTC_VOL, required=False, default=0.45, doc="flat BTC implied vol (without btc_vols)"),
    "usd_zero_rates": Spec("points", required=False, default=(), item=RATE,
                           doc="USD zero rates by date, linear in the rate, flat before the first point"),
    "btc_futures_usd": Spec("points", required=False, default=(), item=BTC_PRICE,
                            doc="BTC futures prices by date, log-linear; each implies a carry within ±1/year"),
    "btc_vols": Spec("points", required=False, default=(), item=BTC_VOL,
                     doc="BTC Black vols by date; total variance must not decrease (no calendar arbitrage)"),
    "provenance": Spec("text", required=False, default="", doc="where the numbers come from"),
})

# cross-field checks (strict markets only); each bound once, with its reason
HASHRATE_RATIO_BOUNDS = (0.25, 4.0)  # one retarget moves difficulty at most 4x either way
EPOCH_TIME_RATIO_BOUNDS = (0.25, 4.0)  # the epoch's block rate so far, against the hashrate's
EPOCH_TIME_SLACK_S = 7_200.0  # the epoch's first few blocks can come in minutes or take an hour
EMA_RATIO_BOUNDS = (0.1, 10.0)  # a trailing average of the index stays within 10x of today's value
MAX_BTC_CARRY = 1.0  # a futures point's implied carry, like btc_basis_annual
# the halving schedule's dates (height 0 is the genesis block); later dates extrapolate at
# 144 blocks a day; a height must lie within a year of blocks of the schedule, plus 10% of the
# blocks extrapolated past the last date (blocks have come up to ~6% faster than 600 s)
HEIGHT_SCHEDULE = ((GENESIS_DATE, 0), (dt.date(2012, 11, 28), 210_000), (dt.date(2016, 7, 9), 420_000),
                   (dt.date(2020, 5, 11), 630_000), (dt.date(2024, 4, 20), 840_000),
                   (dt.date(2026, 1, 31), 934_546))
HEIGHT_TOLERANCE_BLOCKS = 365 * 144
HEIGHT_EXTRAPOLATION_TOLERANCE = 0.10


def scheduled_height(d: dt.date) -> tuple[float, float]:
    """(expected height at the close of ``d``, tolerance in blocks) from the halving schedule."""
    h0, (d1, h1) = HEIGHT_SCHEDULE[0][1], HEIGHT_SCHEDULE[-1]
    if d >= d1:
        extra = (d - d1).days * 144.0
        return h1 + extra, HEIGHT_TOLERANCE_BLOCKS + HEIGHT_EXTRAPOLATION_TOLERANCE * extra
    for (a, ha), (b, hb) in zip(HEIGHT_SCHEDULE[:-1], HEIGHT_SCHEDULE[1:]):
        if a <= d < b:
            return ha + (hb - ha) * (d - a).days / (b - a).days, float(HEIGHT_TOLERANCE_BLOCKS)
    return float(h0), float(HEIGHT_TOLERANCE_BLOCKS)  # before genesis: asof's bound reports it


def _points(raw, field_name: str, asof: dt.date, strict: bool) -> tuple[CurvePoint, ...]:
    pts = MARKET_SCHEMA[field_name].check(raw, field_name, strict)
    for i, (d, _) in enumerate(pts):
        if d <= asof:
            raise InputError(f"{field_name}[{i}].date", f"{d} is not after the as-of date {asof}")
    return tuple(CurvePoint(d, v) for d, v in pts)


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
    :mod:`engine.data.hashrate_filter` for how the snapshot's values are made.

    Every field is checked against ``MARKET_SCHEMA`` (exact types, hard limits, plausible
    bounds) and the cross-field checks of :meth:`check_consistency`. A market made inside
    ``curves.schema.relaxed()`` or by ``with_(strict=False, ...)`` (Python only, never from a
    file) skips the plausible bounds and the cross-field checks, for stress tests and limit
    cases; ``with_`` copies of it stay relaxed.
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
        strict = strict_mode()
        object.__setattr__(self, "_strict", strict)
        for name, spec in MARKET_SCHEMA.specs.items():
            if spec.kind == "points":
                continue
            value = getattr(self, name)
            if value is None and not spec.required:
                continue
            if value is None:
                raise InputError(name, "missing market field")
            object.__setattr__(self, name, spec.check(value, name, strict))
        for name in ("usd_zero_rates", "btc_futures_usd", "btc_vols"):
            object.__setattr__(self, name, _points(getattr(self, name), name, self.asof, strict))
        if strict:
            self.check_consistency()

    def __getstate__(self) -> dict:
        """Pickled without its QuantLib curves (rebuilt on first use): a market can go to a worker."""
        state = dict(self.__dict__)
        state["_ql"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def check_consistency(self) -> None:
        """Cross-field checks of a strict market; each error names the field and the bound."""
        implied_ehs = protocol.hashrate_hs_from_difficulty(self.difficulty) / H_PER_EH
        ratio = self.hashrate_ehs / implied_ehs
        lo, hi = HASHRATE_RATIO_BOUNDS
        if not lo <= ratio <= hi:
            raise InputError("hashrate_ehs", f"{self.hashrate_ehs:,.4g} EH/s is {ratio:.3g}x the "
                             f"{implied_ehs:,.4g} EH/s implied by difficulty {self.difficulty:.6g}; must lie "
                             f"within {lo:g}-{hi:g}x (one retarget moves difficulty at most 4x)")
        asof = self.asof
        expected, tol = scheduled_height(asof)
        if abs(self.height - expected) > tol:
            raise InputError("height", f"{self.height:,} is {self.height - expected:+,.0f} blocks from the "
                             f"{expected:,.0f} the halving schedule puts at {asof} (tolerance {tol:,.0f}): "
                             "the network state and the as-of date are from different eras")
        # the epoch so far: blocks after its first one, at the hashrate's rate against difficulty
        intervals = self.epoch_blocks_elapsed - 1
        expected_s = intervals * protocol.BLOCK_INTERVAL_S / ratio
        r = (self.epoch_seconds_elapsed + EPOCH_TIME_SLACK_S) / (expected_s + EPOCH_TIME_SLACK_S)
        lo, hi = EPOCH_TIME_RATIO_BOUNDS
        if not lo <= r <= hi:
            raise InputError("epoch_seconds_elapsed", f"{self.epoch_seconds_elapsed:,.0f} s for the "
                             f"{self.epoch_blocks_elapsed:,} blocks of the epoch so far (height {self.height:,}) "
                             f"is {r:.3g}x the {expected_s:,.0f} s they take at hashrate {self.hashrate_ehs:,.4g} "
                             f"EH/s; must lie within {lo:g}-{hi:g}x (with {EPOCH_TIME_SLACK_S:,.0f} s slack)")
        if self.hashprice_ema_usd_per_ph_day is not None:
            spot = self.spot_hashprice_usd_per_ph_day()
            r = self.hashprice_ema_usd_per_ph_day / spot
            lo, hi = EMA_RATIO_BOUNDS
            if not lo <= r <= hi:
                raise InputError("hashprice_ema_usd_per_ph_day", f"{self.hashprice_ema_usd_per_ph_day:.6g} is "
                                 f"{r:.3g}x today's spot index {spot:.6g} USD/PH/day; must lie within {lo:g}-{hi:g}x")
        for i, p in enumerate(self.btc_futures_usd):
            carry = math.log(p.value / self.btc_spot_usd) / self.year_fraction(p.date)
            if abs(carry) > MAX_BTC_CARRY:
                raise InputError(f"btc_futures_usd[{i}].value", f"{p.value:,.6g} USD at {p.date} implies a carry "
                                 f"of {carry:+.3g} a year over spot {self.btc_spot_usd:,.6g}; must lie within "
                                 f"±{MAX_BTC_CARRY:g} (as btc_basis_annual)")
        prev = None
        for i, p in enumerate(self.btc_vols):
            var = p.value**2 * self.year_fraction(p.date)
            if prev is not None and var < prev[1]:
                floor = math.sqrt(prev[1] / self.year_fraction(p.date))
                raise InputError(f"btc_vols[{i}].value", f"total variance {var:.6g} at {p.date} is below "
                                 f"{prev[1]:.6g} at {prev[0]} (btc_vols[{i - 1}]): calendar arbitrage; the vol "
                                 f"must be at least {floor:.6g}")
            prev = (p.date, var)

    @property
    def strict(self) -> bool:
        """False for a relaxed market (see the class docstring)."""
        return self._strict

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
        for name in MARKET_SCHEMA:
            v = getattr(self, name)
            if isinstance(v, tuple):
                v = [{"date": p.date, "value": p.value} for p in v]
                if not v:
                    continue
            if v is None:
                continue
            out[name] = v
        return out

    @classmethod
    def from_dict(cls, table: dict) -> Market:
        """A strict market from a file's table: unknown and missing fields are errors."""
        if not isinstance(table, dict):
            raise InputError("market", f"must be a table, got {describe(table)}")
        for key in table:
            if key not in MARKET_SCHEMA.specs:
                raise InputError(key, "unknown market field")
        for name, spec in MARKET_SCHEMA.specs.items():
            if spec.required and name not in table:
                raise InputError(name, "missing market field")
        return cls(**table)

    def save(self, path) -> None:
        write_toml(path, self.to_dict())

    @classmethod
    def load(cls, path) -> Market:
        """A market file; errors read ``FILE: field: reason``."""
        table = read_toml(path)
        with reading(path):
            return cls.from_dict(table)

    @classmethod
    def default(cls) -> Market:
        """The embedded snapshot of 2026-01-31 (see ``curves/data/default_market.toml``)."""
        text = resources.files("curves.data").joinpath(DEFAULT_MARKET_RESOURCE).read_text()
        return cls.from_dict(tomllib.loads(text))

    def with_(self, *, strict: bool | None = None, **changes) -> Market:
        """A copy with some fields changed (for bumps and scenarios), checked as a new market;
        ``strict=False`` relaxes the copy, and a relaxed market's copies stay relaxed."""
        with relaxed(not (self.strict if strict is None else strict)):
            return replace(self, **changes)
