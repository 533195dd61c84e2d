"""A trade's reported measures from its PV: the fair rate (where it means something), its stderr
and tick, notional and margin, and any measure the product defines.

The fair rate is affine in the PV for the products that report one, so its stderr is the PV's
scaled by its slope.
"""

from __future__ import annotations

import math

import numpy as np

from curves.market import Market
from engine.pricing.results import TradeResult


def _rate_unit(trade) -> str:
    return getattr(trade, "fair_rate_unit", None) or f"{trade.currency}/PH/day"


def trade_result(terms, pv: float, se: float, market: Market) -> TradeResult:
    t = terms.plan.trade
    with np.errstate(over="ignore", invalid="ignore"):
        fair = t.fair_rate_from_pv(pv, market)
        fair_se = None if fair is None else abs(t.fair_rate_from_pv(pv + se, market) - fair)
    tick = t.on_tick(fair) if fair is not None and hasattr(t, "on_tick") and math.isfinite(fair) else None
    return TradeResult(t.trade_id, t.type_name, pv, se, fair, t.notional, t.initial_margin, t.currency,
                       fair_rate_stderr=fair_se, fair_rate_on_tick=tick, fair_rate_unit=_rate_unit(t))


def analytic_result(t, market: Market) -> TradeResult:
    """A closed-form trade: its PV, fair rate and its one cash flow carry no Monte Carlo error."""
    pv = float(t.analytic_pv_usd(market))
    fair = t.fair_rate_from_pv(pv, market)
    (fixing,) = t.fixings()
    (flow,) = t.cash_flows(np.array([market.btc_forward_usd(fixing.end)]), market)
    df = market.discount(flow.pay_date)
    cash = [{"pay_date": str(flow.pay_date), "pay_date_is_random": False, "currency": flow.currency,
             "expected_amount": pv / df, "stderr": 0.0, "pv_usd": pv, "pv_stderr": 0.0, "fixed": False,
             "settled": False}]
    return TradeResult(t.trade_id, t.type_name, pv, 0.0, fair, t.notional, t.initial_margin, t.currency,
                       fair_rate_stderr=None if fair is None else 0.0, fair_rate_unit=_rate_unit(t), cashflows=cash)
