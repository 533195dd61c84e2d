"""What a product asks the engine for (fixings) and what it pays (cash flows).

A product never sees the simulation: it declares its fixings, and maps fixing values (an
expectation, or one value per path) to cash flows. The engine makes the values.

* :class:`WindowFixing`: the average daily value of a quantity over the days ``start..end``
  (both included), e.g. the average daily hashprice index over a settlement month.
  ``difficulty_per_block`` is the block-weighted average: sum of D over the window's blocks
  divided by their number (FTX's HASH settlement), not the daily average ``difficulty``.
* :class:`EpochFixing`: a quantity of the difficulty epoch that starts at block
  ``start_height``: its ``difficulty``, or ``start_day``, the days from the as-of date's close
  to its first block (fractional; negative for the epoch in force today).
* :class:`RewardFixing`: the subsidy (BTC) that 1 PH/s earns over the ``blocks`` blocks mined
  after the close of ``after``, at 600 s a block: sum_b subsidy_b * 600 * 1e15 / (D_b * 2^32).
  Fees excluded (SynFutures' BTCHASH settlement).
* :class:`CashFlow`: a payment on ``pay_date`` in ``currency``; ``amount`` is a number or one
  number per path. When the date depends on the path, ``pay_days`` holds it per path (days
  from the as-of close) and ``pay_date`` is its expected date.

>>> import datetime as dt
>>> f = WindowFixing("hashprice_usd_per_ph_day", dt.date(2026, 3, 1), dt.date(2026, 3, 31))
>>> f.days
31
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from curves.toml_io import InputError

WINDOW_QUANTITIES = ("hashprice_usd_per_ph_day", "hashvalue_btc_per_ph_day", "difficulty", "btc_usd",
                     "blocks_per_day", "difficulty_per_block")
EPOCH_QUANTITIES = ("difficulty", "start_day")
CURRENCIES = ("USD", "BTC")


@dataclass(frozen=True)
class WindowFixing:
    """Average daily ``quantity`` over ``start..end`` inclusive (units: the quantity's own)."""

    quantity: str
    start: dt.date
    end: dt.date

    def __post_init__(self):
        if self.quantity not in WINDOW_QUANTITIES:
            raise InputError("quantity", f"unknown window quantity {self.quantity!r}; one of {WINDOW_QUANTITIES}")
        if self.end < self.start:
            raise InputError("end", f"{self.end} is before start {self.start}")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class EpochFixing:
    """``quantity`` of the difficulty epoch whose first block is ``start_height``."""

    quantity: str
    start_height: int

    def __post_init__(self):
        if self.quantity not in EPOCH_QUANTITIES:
            raise InputError("quantity", f"unknown epoch quantity {self.quantity!r}; one of {EPOCH_QUANTITIES}")
        if isinstance(self.start_height, bool) or not isinstance(self.start_height, int) \
                or self.start_height < 0 or self.start_height % 2016:
            raise InputError("start_height", f"must be a non-negative multiple of 2,016, got {self.start_height!r}")


@dataclass(frozen=True)
class RewardFixing:
    """Subsidy (BTC) that 1 PH/s earns over the ``blocks`` blocks after the close of ``after``."""

    after: dt.date
    blocks: int = 2016
    quantity: str = "subsidy_btc_per_ph"

    def __post_init__(self):
        if isinstance(self.blocks, bool) or not isinstance(self.blocks, int) or not 1 <= self.blocks <= 100_000:
            raise InputError("blocks", f"must be an integer in 1..100,000, got {self.blocks!r}")
        if self.quantity != "subsidy_btc_per_ph":
            raise InputError("quantity", f"a reward fixing is 'subsidy_btc_per_ph', got {self.quantity!r}")


@dataclass(frozen=True)
class CashFlow:
    """A payment: ``amount`` (a number, or an array with one value per path) on ``pay_date``;
    ``pay_days`` (per path, days after the as-of close) when the date is random."""

    pay_date: dt.date
    amount: float | np.ndarray
    currency: str
    pay_days: np.ndarray | None = None

    def __post_init__(self):
        if self.currency not in CURRENCIES:
            raise InputError("currency", f"one of {CURRENCIES}, got {self.currency!r}")
