"""Market and model bumps, their sizes and what each holds fixed.

Every bumped state is a relaxed copy (``with_(strict=False)``): the base market was checked
strictly; a bump may step past a plausible bound (a vol of 5.0 + 0.01) without being a typo.

>>> from curves.market import Market
>>> m = Market.default()
>>> up = shocked_market(m, btc_rel=0.01)
>>> round(up.btc_forward_usd(m.asof.replace(year=2027)) / m.btc_forward_usd(m.asof.replace(year=2027)), 12)
1.01
>>> round(usd_rates_bumped(m, 1e-4).usd_rate - m.usd_rate, 12)
0.0001
"""

from __future__ import annotations

from dataclasses import replace

from curves.market import CurvePoint, Market
from engine.mc.model import ModelParams

# bump sizes (see the README's "Risk" section for the conventions)
BTC_SPOT_BUMP_REL = 0.01  # BTC spot and the whole forward curve x (1 +- 1%): central delta and gamma
BTC_VOL_BUMP = 0.01  # every BTC implied vol +- 1 vol point: central vega
HASHRATE_BUMP_REL = 0.01  # starting hashrate x 1.01, one-sided
HASHRATE_DRIFT_BUMP_PER_YEAR = 0.01  # + 0.01 / 365 a day on ln hashrate's drift shift, one-sided
FEE_BUMP_REL = 0.01  # today's fee per block x 1.01, one-sided
FEE_LONG_RUN_BUMP_REL = 0.01  # the model's long-run fee per block x 1.01, one-sided
USD_RATE_BUMP = 1e-4  # one basis point on every USD zero rate, one-sided; BTC forwards held
QUOTE_BUMP_USD_PER_PH_DAY = 0.1  # a quoted forward (with its bid and ask) + 0.1 USD/PH/day


def _scaled(points: tuple[CurvePoint, ...], factor: float) -> tuple[CurvePoint, ...]:
    return tuple(CurvePoint(p.date, p.value * factor) for p in points)


def _shifted(points: tuple[CurvePoint, ...], add: float) -> tuple[CurvePoint, ...]:
    return tuple(CurvePoint(p.date, p.value + add) for p in points)


def shocked_market(market: Market, btc_rel: float = 0.0, hashrate_rel: float = 0.0) -> Market:
    """BTC spot and every ``btc_futures_usd`` point times ``1 + btc_rel`` (the forward curve moves
    in proportion: the carry is held), the starting hashrate times ``1 + hashrate_rel``. Held: the
    network's difficulty, height and epoch, fees, rates, vols, and the trailing hashprice EMA when
    the market gives one (without it, the feedback starts from today's spot index, which moves)."""
    if btc_rel == 0.0 and hashrate_rel == 0.0:
        return market
    return market.with_(strict=False, btc_spot_usd=market.btc_spot_usd * (1.0 + btc_rel),
                        btc_futures_usd=_scaled(market.btc_futures_usd, 1.0 + btc_rel),
                        hashrate_ehs=market.hashrate_ehs * (1.0 + hashrate_rel))


def btc_vols_bumped(market: Market, add: float) -> Market:
    """Every BTC implied vol (the flat ``btc_vol`` and each ``btc_vols`` point) plus ``add``."""
    return market.with_(strict=False, btc_vol=market.btc_vol + add, btc_vols=_shifted(market.btc_vols, add))


def usd_rates_bumped(market: Market, add: float) -> Market:
    """Every USD zero rate (flat ``usd_rate`` and each ``usd_zero_rates`` point) plus ``add``.

    The BTC forward curve does not move: it is spot times the BTC carry (``btc_basis_annual`` or
    the ``btc_futures_usd`` prices), quoted on its own, so futures prices are held fixed."""
    return market.with_(strict=False, usd_rate=market.usd_rate + add,
                        usd_zero_rates=_shifted(market.usd_zero_rates, add))


def fee_today_bumped(market: Market, rel: float) -> Market:
    """Today's fee per block times ``1 + rel`` (the model's long-run level held)."""
    return market.with_(strict=False, fee_btc_per_block=market.fee_btc_per_block * (1.0 + rel))


def fee_long_run_bumped(model: ModelParams, rel: float) -> ModelParams:
    """The model's long-run fee per block times ``1 + rel`` (today's fee held)."""
    return model.with_(strict=False, fee_long_run_btc_per_block=model.fee_long_run_btc_per_block * (1.0 + rel))


def quotes_bumped(quotes, k: int, add: float):
    """The quotes with quote ``k`` (and its bid and ask, if any) plus ``add`` USD/PH/day."""
    q = quotes[k]
    moved = replace(q, hashprice_usd_per_ph_day=q.hashprice_usd_per_ph_day + add,
                    bid=None if q.bid is None else q.bid + add, ask=None if q.ask is None else q.ask + add)
    return [moved if j == k else other for j, other in enumerate(quotes)]
