"""The Bitnomial-style hashprice future: settlement, fair price against the curve, tick rounding."""

import datetime as dt

import pytest

from curves.market import Market
from engine.mc.model import ModelParams
from engine.pricing.curve_builder import build_curve
from engine.pricing.pricer import price_trades
from products.hashrate_future import CONTRACT_DAYS, HashrateFuture
from products.portfolio import parse_portfolio

MARKET = Market.default()
MODEL = ModelParams.default()


def test_settlement_by_hand():
    f = HashrateFuture("f", dt.date(2026, 3, 10), contracts=3, price_usd_per_ph_day=34.0, side="sell")
    assert f.end == dt.date(2026, 4, 8) and f.fixings()[0].days == CONTRACT_DAYS
    (flow,) = f.cash_flows([36.0], MARKET)
    assert flow.pay_date == MARKET.asof and flow.currency == "USD"  # margined daily: no discounting
    assert float(flow.amount) == -3 * 30 * (36.0 - 34.0)
    assert f.notional == 34.0 * 3 * 30 and f.initial_margin is None
    assert [f.on_tick(x) for x in (34.12, 34.13, 34.37, 34.38)] == [34.0, 34.25, 34.25, 34.5]


def test_fair_price_is_the_curves_window_forward():
    f = HashrateFuture("f", dt.date(2026, 3, 10), contracts=10, price_usd_per_ph_day=30.0)
    r = price_trades([f], MARKET, MODEL, paths=20_000, seed=6).trades[0]
    assert r.error is None
    curve = build_curve(MARKET, MODEL, months=3, paths=20_000, seed=7)
    fwd, se = curve.forward_usd_per_ph_day(f.start, f.end)
    assert abs(r.fair_rate - fwd) <= 3 * (r.fair_rate_stderr ** 2 + se ** 2) ** 0.5
    assert r.pv_usd == pytest.approx(10 * 30 * (r.fair_rate - 30.0), rel=1e-12)  # undiscounted
    assert r.fair_rate_on_tick == f.on_tick(r.fair_rate)


def test_file_schema():
    trades, errors = parse_portfolio({"trade": [
        {"id": "ok", "type": "hashrate_future", "start": dt.date(2026, 3, 1), "contracts": 2,
         "price_usd_per_ph_day": 35.0},
        {"id": "half", "type": "hashrate_future", "start": dt.date(2026, 3, 1), "contracts": 2.5,
         "price_usd_per_ph_day": 35.0}]})
    assert [t.trade_id for t in trades] == ["ok"] and errors[0].error.startswith("contracts:")
