"""BTC options: Black-76 through QuantLib against a hand formula, put-call parity, and Monte Carlo
(jumps off) on the simulated BTC against Black-76 within 3 SE."""

import datetime as dt
import math

import pytest
from scipy.stats import norm

from curves.market import Market
from engine.mc import kernel as K
from engine.mc.model import ModelParams
from engine.mc.moments import PairMoments
from engine.mc.simulation import Simulation
from engine.pricing.pricer import price_trades
from products.btc_option import BtcOption
from products.portfolio import parse_portfolio

MARKET = Market.default()
EXPIRY = dt.date(2026, 6, 26)


def black76(f, k, stdev, df, call):
    d1 = (math.log(f / k) + 0.5 * stdev**2) / stdev
    d2 = d1 - stdev
    return df * (f * norm.cdf(d1) - k * norm.cdf(d2)) if call else df * (k * norm.cdf(-d2) - f * norm.cdf(-d1))


@pytest.mark.parametrize("option", ["call", "put"])
def test_black76_by_hand(option):
    o = BtcOption("o", EXPIRY, strike_usd=85_000.0, option=option, size_btc=3.0, side="sell")
    f, df = MARKET.btc_forward_usd(EXPIRY), MARKET.discount(EXPIRY)
    stdev = MARKET.btc_implied_vol(EXPIRY) * math.sqrt(MARKET.year_fraction(EXPIRY))
    assert o.analytic_pv_usd(MARKET) == pytest.approx(-3.0 * black76(f, 85_000.0, stdev, df, option == "call"),
                                                      rel=1e-9)


def test_put_call_parity_and_portfolio_report():
    c = BtcOption("c", EXPIRY, strike_usd=70_000.0, option="call", size_btc=1.0)
    p = BtcOption("p", EXPIRY, strike_usd=70_000.0, option="put", size_btc=1.0)
    res = {t.trade_id: t for t in price_trades([c, p], MARKET, ModelParams.default(), paths=512).trades}
    fwd = MARKET.discount(EXPIRY) * (MARKET.btc_forward_usd(EXPIRY) - 70_000.0)
    assert res["c"].pv_usd - res["p"].pv_usd == pytest.approx(fwd, rel=1e-10)
    assert res["c"].pv_stderr == 0.0 and res["c"].error is None


def test_monte_carlo_without_jumps_matches_black76():
    model = ModelParams.default().with_(btc_jump_intensity_per_year=0.0)
    o = BtcOption("o", EXPIRY, strike_usd=90_000.0, option="call", size_btc=1.0)
    sim = Simulation(MARKET, model, n_days=(EXPIRY - MARKET.asof).days, n_paths=40_000, seed=12)
    day = sim.day_index(EXPIRY)
    mc = PairMoments((1,), sim.block_pairs)

    def on_chunk(_s, wv):
        (flow,) = o.cash_flows(wv[:, :, K.Q_BTC_USD], MARKET)
        mc.add((MARKET.discount(flow.pay_date) * flow.amount)[:, None])

    sim.run([(day, day)], on_chunk=on_chunk)
    mean, se = float(mc.mean()[0]), float(mc.stderr()[0])
    assert abs(mean - o.analytic_pv_usd(MARKET)) <= 3 * se, (mean, se, o.analytic_pv_usd(MARKET))


def test_file_schema():
    trades, errors = parse_portfolio({"trade": [
        {"id": "ok", "type": "btc_option", "expiry": EXPIRY, "strike_usd": 80_000.0, "option": "put",
         "size_btc": 1.5},
        {"id": "bad", "type": "btc_option", "expiry": EXPIRY, "strike_usd": 80_000.0, "option": "straddle",
         "size_btc": 1.5}]})
    assert [t.trade_id for t in trades] == ["ok"] and errors[0].error.startswith("option:")
