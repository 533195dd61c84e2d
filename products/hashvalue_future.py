"""SynFutures-style BTC hash-rate future (BTCHASH): the subsidy 1 PH/s earns over the 2,016
blocks after maturity, in BTC.

A contract is 1 PH/s. It settles on R, the block subsidy (fees excluded) that 1 PH/s earns over
the 2,016 blocks mined after the close of ``maturity``, each block taking 600 s of hashing:
``R = sum_b subsidy_b x 600 x 1e15 / (D_b x 2^32)`` BTC. The buyer receives ``contracts x (R -
price_btc)`` BTC (long the reward, short difficulty); the seller the reverse. SynFutures names a
maturity by its block height; here it is a date and the blocks are those after its close.

The payment is in BTC on a fixed date: ``maturity + 14 days``, the 2,016 blocks at 600 s
(2,016 x 600 s = 14 days), when the reward is known on the blocks' schedule. Its USD value
converts at the BTC close of that day, so the fixings are the reward and BTC/USD on the pay date,
and the USD cash flow ``sign x contracts x (R - price_btc) x S_pay`` is discounted to today. It
is not affine in the fixings (R x S); its fair price is the BTC-numeraire expectation of R,
``E[R S] / E[S]`` (:meth:`HashvalueFuture.fair_price_btc`), not a function of the PV alone.

>>> import datetime as dt
>>> from curves.market import Market
>>> f = HashvalueFuture("b", dt.date(2026, 3, 1), contracts=10.0, price_btc=0.006)
>>> f.pay_date, f.notional
(datetime.date(2026, 3, 15), 0.06)
>>> (flow,) = f.cash_flows([0.0065, 80_000.0], Market.default())
>>> round(float(flow.amount), 6), flow.pay_date
(400.0, datetime.date(2026, 3, 15))
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import numpy as np

from curves import protocol
from curves.market import MAX_HORIZON_DAYS, Market
from curves.schema import Schema, Spec
from curves.toml_io import InputError
from curves.units import H_PER_PH, SECONDS_PER_DAY, TWO_POW_32
from products.fixings import CashFlow, RewardFixing, WindowFixing
from products.hashrate_forward import STRIKE_RATIO_BOUNDS
from products.registry import register
from products.validation import TRADE_DATE

REWARD_BLOCKS = protocol.RETARGET_BLOCKS  # 2,016: one difficulty period
PAY_LAG_DAYS = round(REWARD_BLOCKS * protocol.BLOCK_INTERVAL_S / SECONDS_PER_DAY)  # 14
_LO, _HI = STRIKE_RATIO_BOUNDS
SCHEMA = Schema("hashvalue_future", {
    "id": Spec("text", doc="trade id, unique in the file"),
    "type": Spec("choice", choices=("hashvalue_future",), doc="the product"),
    "maturity": replace(TRADE_DATE, doc="the reward counts the 2,016 blocks after this day's close; on or after "
                                        "the market's as-of date; paid 14 days later"),
    "contracts": Spec("number", "PH/s", low=0, low_open=True, plausible=(None, 1e7), doc="1 PH/s each",
                      why="at most ten times the 2026 network, which is about 1e6 PH/s"),
    "price_btc": Spec("number", "BTC per PH/s", low=0, low_open=True, plausible=(None, 100_800.0),
                      doc="the trade's price: BTC that 1 PH/s earns over the 2,016 blocks",
                      why=f"at most every subsidy of 2,016 blocks at 50 BTC; within {_LO:g}-{_HI:g}x of the "
                          "reward at today's difficulty and subsidy (checked against the market)"),
    "side": Spec("choice", choices=("buy", "sell"), required=False, default="buy",
                 doc="buy receives the reward and pays the price"),
})


def reward_btc_per_ph(difficulty: float, subsidy_btc: float, blocks: int = REWARD_BLOCKS) -> float:
    """Subsidy 1 PH/s earns over ``blocks`` blocks at one difficulty and subsidy (600 s a block)."""
    return blocks * subsidy_btc * protocol.BLOCK_INTERVAL_S * H_PER_PH / (difficulty * TWO_POW_32)


@register
@dataclass(frozen=True)
class HashvalueFuture:
    """``contracts`` x 1 PH/s of the subsidy over the 2,016 blocks after ``maturity``, at ``price_btc``."""

    trade_id: str
    maturity: dt.date
    contracts: float
    price_btc: float
    side: str = "buy"

    type_name = "hashvalue_future"
    fair_rate_unit = "BTC per PH/s"
    schema = SCHEMA
    currency = "BTC"  # the contract's currency: the notional is in BTC; cash flows are valued in USD
    initial_margin = None  # set by the exchange
    # not affine: the payment is R x S

    def __post_init__(self):
        SCHEMA.check("id", self.trade_id)
        for name in ("maturity", "contracts", "price_btc", "side"):
            object.__setattr__(self, name, SCHEMA.check(name, getattr(self, name)))

    @property
    def sign(self) -> float:
        return 1.0 if self.side == "buy" else -1.0

    @property
    def pay_date(self) -> dt.date:
        """Maturity + 14 days: the 2,016 blocks at 600 s."""
        return self.maturity + dt.timedelta(days=PAY_LAG_DAYS)

    @property
    def notional(self) -> float:
        """Price x contracts, BTC."""
        return self.price_btc * self.contracts

    def check_market(self, market: Market) -> None:
        """Maturity on or after the as-of date (the blocks after its close are all still to be
        mined) and the pay date within the horizon; for a strict market, the price within
        ``STRIKE_RATIO_BOUNDS`` of the reward at today's difficulty and subsidy."""
        if self.maturity < market.asof:
            raise InputError("maturity", f"{self.maturity} is before the as-of date {market.asof}: the blocks "
                             "after it are partly mined")
        if (self.pay_date - market.asof).days > MAX_HORIZON_DAYS:
            raise InputError("maturity", f"{self.maturity} pays {self.pay_date}, more than "
                             f"{MAX_HORIZON_DAYS:,} days after the as-of date")
        if market.strict:
            today = reward_btc_per_ph(market.difficulty, market.subsidy_btc)
            ratio = self.price_btc / today
            if not _LO <= ratio <= _HI:
                raise InputError("price_btc", f"{self.price_btc:.6g} BTC is {ratio:.3g}x the {today:.6g} BTC 1 PH/s "
                                 f"earns over 2,016 blocks at today's difficulty; must lie within {_LO:g}-{_HI:g}x "
                                 "(units?)")

    def fixings(self) -> tuple[RewardFixing, WindowFixing]:
        """The reward over the 2,016 blocks after maturity, and BTC/USD at the pay date's close."""
        return (RewardFixing(self.maturity, REWARD_BLOCKS), WindowFixing("btc_usd", self.pay_date, self.pay_date))

    def cash_flows(self, values, market: Market) -> list[CashFlow]:
        """``sign x contracts x (R - price_btc)`` BTC on the pay date, in USD at that day's close."""
        x = np.asarray(values, dtype=float)
        reward, btc_usd = x[..., 0], x[..., 1]
        return [CashFlow(self.pay_date, self.sign * self.contracts * (reward - self.price_btc) * btc_usd, "USD")]

    @staticmethod
    def fair_price_btc(expected_reward_times_btc: float, expected_btc: float) -> float:
        """The price that makes the PV zero: ``PV = DF x sign x contracts x (E[R S] - price E[S])``
        (a fixed pay date), so ``price* = E[R S] / E[S]``, the expectation of R with BTC as the
        numeraire. It does not depend on the side or the size."""
        if not expected_btc > 0:
            raise ValueError(f"E[S] must be positive, got {expected_btc!r}")
        return expected_reward_times_btc / expected_btc

    def fair_rate_from_pv(self, pv_usd: float, market: Market) -> float:
        """The fair price in BTC: PV is affine in the price, ``dPV/dprice = -DF x sign x contracts
        x F(pay)`` (E[S_pay] is the forward), so price* = price + PV / (DF x sign x contracts x F)."""
        per_btc = market.discount(self.pay_date) * self.sign * self.contracts * market.btc_forward_usd(self.pay_date)
        return self.price_btc + pv_usd / per_btc
