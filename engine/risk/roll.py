"""Theta's market: the as-of date rolled one day on, with the network stepped consistently.

Held fixed over the day: BTC spot, today's fee per block, the filtered hashrate and its
uncertainty, the USD zero rates, BTC vols and futures prices of each dated point (the flat
rate, basis and vol too: a flat curve is held as a rate). So a BTC forward to a fixed date
rolls down its carry, and discount factors roll up. Points dated on or before the new as-of
date are dropped.

The network: 144 blocks (height + 144) at 600 s each. Inside the epoch, its elapsed time grows
by a day; if the epoch's last block falls within the day, difficulty retargets by the exact rule
and the new epoch starts. The feedback's trailing hashprice EMA takes one daily step toward
today's index (the kernel's own update, weight 1 / ``hashprice_ema_days``). The rolled day
itself is a realised fixing at today's values (the market did not move): its index is today's
spot index, its difficulty the day's time-weighted one.

>>> from curves.market import Market
>>> from engine.mc.model import ModelParams
>>> m = Market.default()
>>> r = market_rolled_one_day(m, ModelParams.default())
>>> (r.asof - m.asof).days, r.height - m.height, r.epoch_seconds_elapsed - m.epoch_seconds_elapsed
(1, 144, 86400.0)
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from curves import protocol
from curves.market import Market
from engine.data.realised_fixings import HISTORY_QUANTITIES, RealisedFixings
from engine.mc.model import ModelParams

BLOCKS_PER_DAY = 144
SECONDS_PER_BLOCK = 600.0
SECONDS_PER_DAY = 86_400.0


def _day_blocks(market: Market) -> tuple[list[float], float, float]:
    """Difficulty of each of the day's 144 blocks, and the epoch's state at the day's close:
    (difficulties, difficulty at the close, seconds elapsed in the epoch at the close)."""
    first = market.height - market.height % protocol.RETARGET_BLOCKS
    last = first + protocol.RETARGET_BLOCKS - 1
    d, elapsed = market.difficulty, market.epoch_seconds_elapsed
    out = []
    for j in range(1, BLOCKS_PER_DAY + 1):
        h = market.height + j
        if h == last + 1:  # the epoch's last block came at (last - height) blocks: retarget
            d = float(protocol.retarget_difficulty(d, elapsed + (last - market.height) * SECONDS_PER_BLOCK))
            first, last = h, h + protocol.RETARGET_BLOCKS - 1
        out.append(d)
    elapsed = (market.height + BLOCKS_PER_DAY - first) * SECONDS_PER_BLOCK if first > market.height else \
        elapsed + SECONDS_PER_DAY
    return out, d, elapsed


def market_rolled_one_day(market: Market, model: ModelParams) -> Market:
    """The market one day on (module docstring)."""
    asof = market.asof + dt.timedelta(days=1)
    _, difficulty, elapsed = _day_blocks(market)
    spot_index = market.spot_hashprice_usd_per_ph_day()
    ema = market.hashprice_ema_usd_per_ph_day
    if ema is not None:
        ema = ema + (spot_index - ema) / model.hashprice_ema_days

    def after(points):
        return tuple(p for p in points if p.date > asof)

    return market.with_(strict=False, asof=asof, height=market.height + BLOCKS_PER_DAY, difficulty=difficulty,
                        epoch_seconds_elapsed=elapsed, hashprice_ema_usd_per_ph_day=ema,
                        usd_zero_rates=after(market.usd_zero_rates), btc_futures_usd=after(market.btc_futures_usd),
                        btc_vols=after(market.btc_vols))


def rolled_day_fixings(market: Market) -> dict[str, float]:
    """The rolled day's realised values at today's market: per-block difficulty and subsidy over
    its 144 blocks (time-weighted: each block's interval counts equally), today's fee and BTC."""
    diffs, _, _ = _day_blocks(market)
    hv = [protocol.hashvalue_btc_per_ph_day(d, protocol.subsidy_btc(market.height + j + 1), market.fee_btc_per_block)
          for j, d in enumerate(diffs)]
    hashvalue = float(np.mean(hv))
    return {"hashprice_usd_per_ph_day": hashvalue * market.btc_spot_usd, "hashvalue_btc_per_ph_day": hashvalue,
            "btc_usd": market.btc_spot_usd, "difficulty": float(np.mean(diffs)),
            "blocks_per_day": float(BLOCKS_PER_DAY), "difficulty_per_block": float(np.mean(diffs)),
            "difficulty_x_blocks": float(np.sum(diffs))}


def realised_with_rolled_day(market: Market, realised: RealisedFixings | None) -> RealisedFixings:
    """``realised`` (days up to the as-of date, or None) with the rolled day added."""
    day = pd.Timestamp(market.asof + dt.timedelta(days=1))
    values = rolled_day_fixings(market)
    index = pd.DatetimeIndex([day], name="date")
    if realised is None:
        return RealisedFixings(pd.DataFrame({q: [values[q]] for q in HISTORY_QUANTITIES}, index=index))
    daily = realised.daily[realised.daily.index < day]
    row = pd.DataFrame({q: [values[q]] for q in daily.columns if q in values},
                       index=index.as_unit(daily.index.unit))
    return RealisedFixings(pd.concat([daily, row]))
