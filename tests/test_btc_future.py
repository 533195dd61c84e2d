"""BTC futures, linear and inverse: settlement by hand, the fair price against the BTC forward, the
inverse's convexity (the expected BTC payoff is not the value), the zero-vol limit, bad input,
and the cash flows' expectation on a lognormal sample against the closed form."""

import datetime as dt
import math

import numpy as np
import pytest
from scipy import integrate, stats

from curves.market import Market
from curves.toml_io import InputError
from engine.mc.model import ModelParams
from engine.pricing.pricer import price_trades
from products.btc_future import BtcFuture
from products.portfolio import parse_portfolio

MARKET = Market.default()
EXPIRY = dt.date(2026, 6, 26)
F = MARKET.btc_forward_usd(EXPIRY)
S0 = MARKET.btc_spot_usd
VAR = MARKET.btc_total_variance(EXPIRY)


def future(style="linear", price=80_000.0, contracts=3, contract_btc=5.0, side="buy", expiry=EXPIRY, trade_id="f"):
    return BtcFuture(trade_id, expiry, contracts=contracts, contract_btc=contract_btc, price_usd=price, style=style,
                     side=side)


def lognormal(n: int, seed: int) -> np.ndarray:
    z = np.random.default_rng(seed).standard_normal(n)
    return F * np.exp(math.sqrt(VAR) * z - 0.5 * VAR)


# ---- settlement by hand -------------------------------------------------------------------------
def test_linear_settlement_by_hand():
    f = future("linear", price=80_000.0, contracts=3, contract_btc=5.0, side="sell")
    assert f.fixings()[0].quantity == "btc_usd" and f.fixings()[0].start == f.fixings()[0].end == EXPIRY
    (flow,) = f.cash_flows([90_000.0], MARKET)
    assert flow.pay_date == MARKET.asof and flow.currency == "USD"  # margined daily: settled from today
    assert float(flow.amount) == -15.0 * (90_000.0 - 80_000.0)
    assert f.notional == 15.0 * 80_000.0 and f.initial_margin is None


def test_inverse_settlement_by_hand():
    # 4 contracts of 0.1 BTC at 80,000: a face of 32,000 USD; BTC ends at 100,000
    f = future("inverse", price=80_000.0, contracts=4, contract_btc=0.1)
    assert f.face_usd == pytest.approx(32_000.0, rel=1e-15) and f.notional == f.face_usd
    btc_payoff = 32_000.0 * (1 / 80_000.0 - 1 / 100_000.0)  # 0.08 BTC at expiry
    assert btc_payoff * 100_000.0 == pytest.approx(0.4 * (100_000.0 - 80_000.0), rel=1e-12)  # the linear payoff
    (flow,) = f.cash_flows([100_000.0], MARKET)
    # that payoff in the BTC measure (density S_T / F), credited in BTC today at today's close
    assert float(flow.amount) == pytest.approx(btc_payoff * 100_000.0 / F * S0, rel=1e-12)
    assert flow.pay_date == MARKET.asof
    assert float(future("inverse", price=80_000.0, contracts=4, contract_btc=0.1, side="sell")
                 .cash_flows([100_000.0], MARKET)[0].amount) == pytest.approx(-float(flow.amount), rel=1e-15)


# ---- against the forward curve ------------------------------------------------------------------
@pytest.mark.parametrize("style", ["linear", "inverse"])
def test_fair_price_is_the_btc_forward(style):
    f = future(style, price=75_000.0)
    pv = f.analytic_pv_usd(MARKET)
    assert f.fair_rate_from_pv(pv, MARKET) == pytest.approx(F, rel=1e-12)
    assert future(style, price=F).analytic_pv_usd(MARKET) == pytest.approx(0.0, abs=1e-9)
    q = 15.0
    expected = q * (F - 75_000.0) * (S0 / F if style == "inverse" else 1.0)
    assert pv == pytest.approx(expected, rel=1e-12)
    assert future(style, price=75_000.0, side="sell").analytic_pv_usd(MARKET) == pytest.approx(-pv, rel=1e-15)
    assert f.pv_btc(MARKET) == pytest.approx(pv / S0, rel=1e-15)


def test_inverse_pv_is_the_btc_margin_at_todays_close():
    f = future("inverse", price=75_000.0, contracts=2, contract_btc=0.5)
    # marked at the fair price F, the margin account holds N (1/K - 1/F) BTC
    assert f.pv_btc(MARKET) == pytest.approx(f.face_usd * (1 / 75_000.0 - 1 / F), rel=1e-12)
    linear = future("linear", price=75_000.0, contracts=2, contract_btc=0.5)
    # the BTC margin earns the BTC rate, not the USD rate: the linear PV times the carry discount S_0 / F
    assert f.analytic_pv_usd(MARKET) / linear.analytic_pv_usd(MARKET) == pytest.approx(S0 / F, rel=1e-12)
    assert 0.97 < S0 / F < 0.99  # five months at the default 5% basis


def test_engine_reports_the_closed_form_and_the_forward():
    lin, inv = future("linear", price=76_000.0), future("inverse", price=76_000.0, trade_id="g")
    res = price_trades([lin, inv], MARKET, ModelParams.default(), paths=512).trades
    for r, t in zip(res, (lin, inv)):
        assert r.error is None and r.pv_stderr == 0.0 and r.fair_rate_stderr == 0.0
        assert r.pv_usd == t.analytic_pv_usd(MARKET)
        assert r.fair_rate == pytest.approx(F, rel=1e-12)
        assert [row["unit"] for row in r.rows() if row["measure"] == "fair_rate"] == ["USD/BTC"]


# ---- the inverse's convexity --------------------------------------------------------------------
def test_expected_btc_payoff_by_integration_and_closed_form():
    f = future("inverse", price=80_000.0, contracts=10, contract_btc=0.1)
    n, k, sd = f.face_usd, 80_000.0, math.sqrt(VAR)

    def payoff(z):  # N (1/K - 1/S_T) on the lognormal with mean F
        return n * (1 / k - 1 / (F * math.exp(sd * z - 0.5 * VAR))) * stats.norm.pdf(z)

    by_quad, _ = integrate.quad(payoff, -12, 12, epsabs=1e-14, epsrel=1e-12)
    closed = n * (1 / k - math.exp(VAR) / F)  # E[1/S_T] = e^{sigma^2 T} / F
    assert f.expected_btc_payoff(MARKET) == pytest.approx(closed, rel=1e-12)
    assert by_quad == pytest.approx(closed, rel=1e-9)
    # it is not the value: the BTC measure weights each path's BTC by S_T / F
    weighted, _ = integrate.quad(lambda z: payoff(z) * math.exp(sd * z - 0.5 * VAR), -12, 12,
                                 epsabs=1e-14, epsrel=1e-12)
    assert weighted == pytest.approx(f.pv_btc(MARKET), rel=1e-9)  # N (1/K - 1/F) BTC
    assert f.expected_btc_payoff(MARKET) < f.pv_btc(MARKET)  # the convexity: fewer BTC expected


def test_the_naive_fair_price_is_wrong():
    naive = 1 / (math.exp(VAR) / F)  # 1 / E[1/S_T] = F e^{-sigma^2 T}
    f = future("inverse", price=naive)
    assert f.expected_btc_payoff(MARKET) == pytest.approx(0.0, abs=1e-12)  # zero expected BTC ...
    # ... but the buyer holds a positive value, q (1 - e^{-sigma^2 T}) S_0, what the seller gives away
    assert f.analytic_pv_usd(MARKET) == pytest.approx(15.0 * (1 - math.exp(-VAR)) * S0, rel=1e-10)
    assert f.analytic_pv_usd(MARKET) > 0.01 * f.face_usd


def test_zero_vol_limit():
    flat = MARKET.with_(strict=False, btc_vols=(), btc_vol=1e-9)
    f = future("inverse", price=78_000.0)
    # no convexity: the expected BTC payoff is the BTC value at expiry, N (1/K - 1/F)
    assert f.expected_btc_payoff(flat) == pytest.approx(f.face_usd * (1 / 78_000.0 - 1 / F), rel=1e-9)
    assert f.expected_btc_payoff(flat) == pytest.approx(f.pv_btc(flat), rel=1e-9)
    assert f.analytic_pv_usd(flat) == f.analytic_pv_usd(MARKET)  # the PV does not depend on the vol
    assert f.expected_btc_payoff(MARKET) < f.expected_btc_payoff(flat)


# ---- the cash flows on a lognormal sample -------------------------------------------------------
@pytest.mark.parametrize("style", ["linear", "inverse"])
def test_cash_flows_expectation_on_a_lognormal_sample(style):
    f = future(style, price=50_000.0, contracts=7, contract_btc=0.1, side="sell")
    s = lognormal(200_000, seed=20260131)
    (flow,) = f.cash_flows(s[:, None], MARKET)
    amount = np.asarray(flow.amount)
    mean, se = amount.mean(), amount.std(ddof=1) / math.sqrt(amount.size)
    assert abs(mean - f.analytic_pv_usd(MARKET)) <= 3 * se, (mean, se, f.analytic_pv_usd(MARKET))
    if style == "inverse":
        # the sample tells the inverse's PV from the linear one (the carry factor S_0 / F)
        assert abs(mean - future("linear", price=50_000.0, contracts=7, contract_btc=0.1, side="sell")
                   .analytic_pv_usd(MARKET)) > 3 * se
        btc = -f.face_usd * (1 / 50_000.0 - 1 / s)  # the seller's BTC payoff at expiry
        m, e = btc.mean(), btc.std(ddof=1) / math.sqrt(btc.size)
        assert abs(m - f.expected_btc_payoff(MARKET)) <= 3 * e


# ---- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "field"), [
    ({"style": "quanto"}, "style"),
    ({"contracts": 0}, "contracts"),
    ({"contracts": 2.0}, "contracts"),
    ({"price": -80_000.0}, "price_usd"),
    ({"price": 0.0}, "price_usd"),
    ({"contract_btc": 0.0}, "contract_btc"),
    ({"contracts": 10_000_000, "contract_btc": 5.0}, "contracts"),  # 5e7 BTC
    ({"side": "long"}, "side"),
    ({"expiry": "2026-13-01"}, "expiry"),
])
def test_bad_input_names_the_field(kwargs, field):
    with pytest.raises(InputError) as info:
        future(**kwargs)
    assert info.value.field == field, str(info.value)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"expiry": MARKET.asof}, "expiry"),
    ({"expiry": MARKET.asof - dt.timedelta(days=30)}, "expiry"),
    ({"price": 80.0}, "price_usd"),  # thousands of USD: a unit slip
])
def test_terms_against_the_market(kwargs, field):
    with pytest.raises(InputError) as info:
        future(**kwargs).check_market(MARKET)
    assert info.value.field == field, str(info.value)


def test_file_schema():
    base = {"type": "btc_future", "expiry": EXPIRY, "contracts": 2, "contract_btc": 0.1, "price_usd": 80_000.0,
            "style": "inverse"}
    trades, errors = parse_portfolio({"trade": [{"id": "ok", **base}, {"id": "bad", **base, "style": "perp"}]})
    assert [t.trade_id for t in trades] == ["ok"] and trades[0].side == "buy"
    assert errors[0].error.startswith("style:")
