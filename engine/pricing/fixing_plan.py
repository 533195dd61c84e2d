"""Where each fixing of a trade comes from: a simulated column, a realised value, or the market.

A trade's fixing value on a path is ``scale * X[:, column] + offset``, with ``X`` the chunk's
simulated fixings (:class:`ColumnSpace`): a window simulated in full has scale 1; a window that
began on or before the as-of date (a seasoned trade) adds its realised days from ``--fixings``
(scale = simulated days / days, offset = realised sum / days); a value known today (the epoch
in force, a window wholly past) has scale 0. Cash flows paid by the as-of date are settled and
dropped; a fixing no live cash flow depends on need not be known.

>>> import datetime as dt
>>> from curves.market import Market
>>> from products.hashrate_forward import HashrateForward
>>> m = Market.default()
>>> p = plan_trade(HashrateForward("a", dt.date(2026, 3, 1), dt.date(2026, 3, 31), 36.0, "USD", 1.0), m)
>>> p.sources[0].block, p.sources[0].key, p.live
('window', ((28, 58), 'hashprice_usd_per_ph_day'), (True,))
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from curves import protocol
from curves.market import MAX_HORIZON_DAYS, Market
from curves.toml_io import InputError
from curves.units import SECONDS_PER_DAY
from products.fixings import EpochFixing, RewardFixing, WindowFixing

DAYS_MARGIN = 1.5  # an epoch or reward is first simulated to 1.5x its days at today's block rate
EXTRA_DAYS = 30


@dataclass(frozen=True)
class Source:
    """``block``: "window" (key (first, last) day index, quantity), "dpb" (block-weighted
    difficulty: key (first, last) of the simulated part, realised D x blocks and blocks sums),
    "epoch" (key (k, quantity)), "reward" (key (day, blocks)) or "const" (no column)."""

    block: str
    key: tuple
    scale: float = 1.0
    offset: float = 0.0
    past: bool = False  # fixed by the as-of date (known, or realised but not given)


@dataclass(frozen=True)
class TradePlan:
    trade: object
    sources: tuple[Source, ...]
    live: tuple[bool, ...]  # per cash flow: False once paid by the as-of date
    days_needed: int  # simulated days its fixings need (at least)

    @property
    def settled(self) -> bool:
        return not any(self.live)


def current_epoch_start(market: Market) -> int:
    return market.height - market.height % protocol.RETARGET_BLOCKS


def _block_rate_per_day(market: Market) -> float:
    return market.hashrate_hs * SECONDS_PER_DAY / (market.difficulty * 2.0**32)


def _day(market: Market, d: dt.date) -> int:
    """Day index of ``d`` (0 = the day after the as-of date)."""
    return (d - market.asof).days - 1


def _window_source(f: WindowFixing, market: Market, realised) -> tuple[Source, str | None]:
    lo, hi = _day(market, f.start), _day(market, f.end)
    if lo >= 0:
        if f.quantity == "difficulty_per_block":
            return Source("dpb", ((lo, hi), 0.0, 0.0)), None
        return Source("window", ((lo, hi), f.quantity)), None
    past_end = min(f.end, market.asof)
    if realised is None:
        return (Source("const", (), 0.0, math.nan, past=hi < 0),
                f"fixings: {f.quantity} over {f.start}..{f.end} began on or before the as-of date "
                f"{market.asof}; pass its realised days with --fixings FILE.csv")
    try:
        if f.quantity == "difficulty_per_block":
            r_dxb = realised.window_sum("difficulty_x_blocks", f.start, past_end)
            r_blocks = realised.window_sum("blocks_per_day", f.start, past_end)
            if hi < 0:
                return Source("const", (), 0.0, r_dxb / r_blocks, past=True), None
            return Source("dpb", ((0, hi), r_dxb, r_blocks)), None
        r_sum = realised.window_sum(f.quantity, f.start, past_end)
    except InputError as exc:
        return Source("const", (), 0.0, math.nan, past=hi < 0), str(exc)
    if hi < 0:
        return Source("const", (), 0.0, r_sum / f.days, past=True), None
    return Source("window", ((0, hi), f.quantity), (hi + 1) / f.days, r_sum / f.days), None


def _epoch_source(f: EpochFixing, market: Market) -> tuple[Source, str | None, int]:
    start = current_epoch_start(market)
    k = (f.start_height - start) // protocol.RETARGET_BLOCKS - 1
    if k >= 0:
        days = (f.start_height - market.height) / _block_rate_per_day(market)
        return Source("epoch", (k, f.quantity)), None, int(DAYS_MARGIN * days) + EXTRA_DAYS
    if k == -1:  # the epoch in force: its difficulty is the market's, it began `elapsed` ago
        value = market.difficulty if f.quantity == "difficulty" else -market.epoch_seconds_elapsed / SECONDS_PER_DAY
        return Source("const", (), 0.0, value, past=True), None, 1
    return (Source("const", (), 0.0, math.nan, past=True),
            f"epoch_height: {f.start_height:,} is before the epoch in force at the as-of date (first block "
            f"{start:,}); its {f.quantity} is not in the market", 1)


def _reward_source(f: RewardFixing, market: Market) -> tuple[Source, str | None, int]:
    day = _day(market, f.after)
    if day < -1:
        return (Source("const", (), 0.0, math.nan),
                f"maturity: {f.after} is before the as-of date {market.asof}; the blocks after it are "
                "partly mined", 1)
    days = f.blocks / _block_rate_per_day(market)
    return Source("reward", (day, f.blocks)), None, day + 1 + int(DAYS_MARGIN * days) + EXTRA_DAYS


def plan_trade(trade, market: Market, realised=None) -> TradePlan:
    """The trade's fixing sources and live cash flows; an InputError if a live flow needs a
    fixing that cannot be had, or its fixings lie beyond the simulation's horizon."""
    sources, reasons, days, field = [], [], 1, "end"
    for f in trade.fixings():
        if isinstance(f, WindowFixing):
            src, why = _window_source(f, market, realised)
            need, name = _day(market, f.end) + 1, "end"
        elif isinstance(f, EpochFixing):
            (src, why, need), name = _epoch_source(f, market), "epoch_height"
        elif isinstance(f, RewardFixing):
            (src, why, need), name = _reward_source(f, market), "maturity"
        else:
            raise InputError("fixings", f"{trade.trade_id}: {type(f).__name__} is not a fixing the engine makes")
        sources.append(src)
        reasons.append(why)
        if need > days:
            days, field = need, name
    live = _live_flows(trade, market, sources, reasons)
    if any(live) and days > MAX_HORIZON_DAYS:
        raise InputError(field, f"{trade.trade_id}: its fixings need about {days:,} simulated days, beyond the "
                                f"{MAX_HORIZON_DAYS:,}-day horizon")
    return TradePlan(trade, tuple(sources), live, min(days, MAX_HORIZON_DAYS))


def _live_flows(trade, market: Market, sources, reasons) -> tuple[bool, ...]:
    """Per cash flow: still to pay. A flow is paid when its fixings are all known and its pay
    date is on or before the as-of date. A live flow must not depend on a fixing that cannot be
    had: each unknown fixing is set to NaN in turn and must not reach a live flow."""
    sim = np.array([not s.past for s in sources], dtype=bool)
    known = np.array([s.offset if s.block == "const" else 1.0 for s in sources])
    known = np.where(np.isnan(known), 1.0, known)

    def nan_flows(x) -> list[bool]:
        with np.errstate(all="ignore"):
            return [bool(np.any(np.isnan(c.amount)) or (c.pay_days is not None and np.any(np.isnan(c.pay_days))))
                    for c in trade.cash_flows(x, market)]

    with np.errstate(all="ignore"):
        flows = trade.cash_flows(known, market)
    floating = nan_flows(np.where(sim, np.nan, known))
    live = []
    for c, floats in zip(flows, floating, strict=True):
        paid = not floats and c.pay_date <= market.asof
        if paid and c.pay_days is not None:
            paid = bool(np.all(np.asarray(c.pay_days) <= 0.0))
        live.append(not paid)
    for j, why in enumerate(reasons):
        if why is None:
            continue
        x = known.copy()
        x[j] = math.nan
        if any(h and v for h, v in zip(nan_flows(x), live, strict=True)):
            raise InputError(why.split(":", 1)[0], f"{trade.trade_id}: {why.split(': ', 1)[1]}")
    return tuple(live)
