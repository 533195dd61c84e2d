"""BitOoda-style Bitcoin difficulty swap: a bet on the difficulty of one epoch.

The epoch is named by its first block, ``epoch_height`` (a multiple of 2,016). When it starts,
its difficulty D is known, and the buyer receives ``notional_usd x (D - L) / L`` for the strike
difficulty L (the seller the reverse), paid ``payment_lag_days`` after the epoch's first block.
BitOoda quotes L in trillions ("D+1 at 6.3 T"); here L is the absolute difficulty (6.3e12).

The pay date is random: the epoch starts when its first block is mined. Its fixings are the
epoch's difficulty and its start day (days from the as-of close, per path), and its cash flow
carries ``pay_days = start_day + payment_lag_days`` per path, which the engine discounts path by
path; ``pay_date`` is the date of their mean. The PV is ``sign x N x (E[DF D] / L - E[DF])``
with DF the discount factor to each path's pay date: not affine in the PV, so the fair strike
comes from the two expectations (:meth:`DifficultySwap.fair_strike`), not from the PV.

An epoch whose payment was made by the as-of close is settled (:meth:`DifficultySwap.settled`);
an earlier epoch whose payment may still be pending cannot be valued, since the market holds
only the difficulty of the epoch in force.

BitOoda's published example (D+1 swap of 2019-03-24: long 100,000 USD at 6.3 T, settled at
6,379,265,451,411: "the buyer would have made $1,258.18"):

>>> from curves.market import Market
>>> s = DifficultySwap("d1", epoch_height=935_424, strike_difficulty=6.3e12, notional_usd=100_000.0)
>>> (flow,) = s.cash_flows([6_379_265_451_411.0, 11.5], Market.default())  # starts 11.5 days after the close
>>> round(float(flow.amount), 2), float(flow.pay_days), flow.pay_date
(1258.18, 13.5, datetime.date(2026, 2, 14))
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from curves import protocol
from curves.market import Market
from curves.schema import Schema, Spec
from curves.toml_io import InputError
from curves.units import SECONDS_PER_DAY
from products.fixings import CashFlow, EpochFixing
from products.registry import register
from products.validation import DIFFICULTY_RATIO_BOUNDS, check_difficulty_level

DEFAULT_PAYMENT_LAG_DAYS = 2.0
_LO, _HI = DIFFICULTY_RATIO_BOUNDS
SCHEMA = Schema("difficulty_swap", {
    "id": Spec("text", doc="trade id, unique in the file"),
    "type": Spec("choice", choices=("difficulty_swap",), doc="the product"),
    "epoch_height": Spec("integer", "blocks", low=0, high=2**31 - 1,
                         doc="first block of the epoch whose difficulty settles the swap; a multiple of 2,016"),
    "strike_difficulty": Spec("number", "-", low=0, low_open=True, plausible=(1.0, 1e18),
                              doc="L, an absolute difficulty (BitOoda's 6.3 T is 6.3e12)",
                              why=f"the market's difficulty range; within {_LO:g}-{_HI:g}x of today's "
                                  "difficulty (checked against the market)"),
    "notional_usd": Spec("number", "USD", low=0, low_open=True, plausible=(None, 1e11),
                         doc="N: the buyer receives N x (D - L) / L",
                         why="about ten times all miners' revenue in 2026 (1.3e10 USD a year)"),
    "payment_lag_days": Spec("number", "days", low=0, plausible=(None, 90.0), required=False,
                             default=DEFAULT_PAYMENT_LAG_DAYS,
                             doc="payment this long after the epoch's first block",
                             why="a swap pays days after the retarget; a quarter is generous"),
    "side": Spec("choice", choices=("buy", "sell"), required=False, default="buy",
                 doc="buy receives N x (D - L) / L"),
})


def current_epoch_start(market: Market) -> int:
    """First block of the epoch in force at the as-of close."""
    return market.height - market.height % protocol.RETARGET_BLOCKS


def mean_pay_date(asof: dt.date, pay_days) -> dt.date:
    """The date of the mean pay time: ``t`` days after the as-of close falls on as-of + 1 +
    floor(t). Unknown pay days (NaN) give the as-of date: the amount is unknown too."""
    t = float(np.mean(pay_days))
    if not math.isfinite(t):
        return asof
    return asof + dt.timedelta(days=1 + math.floor(t))


@register
@dataclass(frozen=True)
class DifficultySwap:
    """``notional_usd x (D - L) / L`` on the difficulty D of the epoch starting at ``epoch_height``."""

    trade_id: str
    epoch_height: int
    strike_difficulty: float
    notional_usd: float
    payment_lag_days: float = DEFAULT_PAYMENT_LAG_DAYS
    side: str = "buy"

    type_name = "difficulty_swap"
    schema = SCHEMA
    currency = "USD"
    initial_margin = None
    # not affine: the pay date, and so the discount factor, is a fixing

    def __post_init__(self):
        SCHEMA.check("id", self.trade_id)
        for name in ("epoch_height", "strike_difficulty", "notional_usd", "payment_lag_days", "side"):
            object.__setattr__(self, name, SCHEMA.check(name, getattr(self, name)))
        h = self.epoch_height
        if h % protocol.RETARGET_BLOCKS:
            below = h - h % protocol.RETARGET_BLOCKS
            raise InputError("epoch_height", f"{h:,} is not an epoch's first block, a multiple of 2,016 "
                             f"(the nearest are {below:,} and {below + protocol.RETARGET_BLOCKS:,})")

    @property
    def sign(self) -> float:
        return 1.0 if self.side == "buy" else -1.0

    @property
    def notional(self) -> float:
        """N, USD."""
        return self.notional_usd

    def settled(self, market: Market) -> bool:
        """Paid by the as-of close: the epoch is the one in force or an earlier one, and the epoch
        in force began at least ``payment_lag_days`` before the close (an earlier one began
        earlier still). The engine values a settled swap at zero."""
        return (self.epoch_height <= current_epoch_start(market)
                and market.epoch_seconds_elapsed >= self.payment_lag_days * SECONDS_PER_DAY)

    def check_market(self, market: Market) -> None:
        """A settled swap passes. An epoch before the one in force whose payment may be pending
        cannot be valued (its difficulty is not in the market); for a strict market, the strike
        must lie within ``DIFFICULTY_RATIO_BOUNDS`` of today's difficulty. The engine enforces
        the simulation horizon for epochs far ahead."""
        if self.settled(market):
            return
        current = current_epoch_start(market)
        if self.epoch_height < current:
            days = market.epoch_seconds_elapsed / SECONDS_PER_DAY
            raise InputError("epoch_height", f"{self.epoch_height:,} is an epoch before the one in force at "
                             f"{market.asof} (first block {current:,}), and its payment may still be pending: the "
                             f"epoch in force began {days:.3g} days before the close, less than payment_lag_days "
                             f"{self.payment_lag_days:g}; the market holds only the current epoch's difficulty")
        check_difficulty_level(self.strike_difficulty, market, "strike_difficulty")

    def fixings(self) -> tuple[EpochFixing, EpochFixing]:
        """The epoch's difficulty and its start day (days from the as-of close, fractional)."""
        return (EpochFixing("difficulty", self.epoch_height), EpochFixing("start_day", self.epoch_height))

    def cash_flows(self, values, market: Market) -> list[CashFlow]:
        """``sign x N x (D - L) / L`` in USD, paid ``payment_lag_days`` after the epoch's start:
        ``pay_days`` per path, ``pay_date`` the date of their mean."""
        x = np.asarray(values, dtype=float)
        d, start_day = x[..., 0], x[..., 1]
        amount = self.sign * self.notional_usd * (d - self.strike_difficulty) / self.strike_difficulty
        pay_days = start_day + self.payment_lag_days
        return [CashFlow(mean_pay_date(market.asof, pay_days), amount, "USD", pay_days=pay_days)]

    @staticmethod
    def fair_strike(expected_df_times_d: float, expected_df: float) -> float:
        """The strike that makes the PV zero: ``PV = sign x N x (E[DF D] / L - E[DF])``, so
        ``L* = E[DF D] / E[DF]``, DF the discount factor to each path's pay date. It does not
        depend on the side or the notional; a deterministic pay date gives E[D]."""
        if not expected_df > 0:
            raise ValueError(f"E[DF] must be positive, got {expected_df!r}")
        return expected_df_times_d / expected_df

    def fair_rate_from_pv(self, pv_usd: float, market: Market) -> None:
        """None: the fair strike is not a function of the PV alone (see :meth:`fair_strike`)."""
        return None
