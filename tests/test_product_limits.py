"""Every simulated product against a closed form: with the network frozen and BTC's vol ~0 each
settles on numbers computed here by hand; with the network frozen but BTC random, a USD cap is
hashvalue x an arithmetic Asian call on BTC (QuantLib's Choi engine)."""

import datetime as dt
import math

import numpy as np
import pytest
import QuantLib as ql

from curves.market import to_ql_date
from curves.schema import relaxed
from engine.pricing.pricer import price_trades
from products.difficulty_future import DifficultyFuture
from products.difficulty_swap import DifficultySwap
from products.hashprice_options import HashpriceCap, HashpriceCollar, HashpriceFloor
from products.hashrate_forward import HashrateForward
from products.hashrate_future import HashrateFuture
from products.hashvalue_future import HashvalueFuture
from tests.test_engine_limits import HV_K, closed_form_daily_hv, frozen_model, quiet_market

REWARD_K = 600 * 1e15 / 2**32
# 144 blocks a day and 877 left in the epoch: one retarget at day 877/144 to D0 x 2016/2015, after
# which every epoch takes exactly two weeks and keeps that difficulty
MARKET = quiet_market(height=934_546, hashrate_multiple=1.0, seconds_elapsed=1138 * 600.0)
D0 = MARKET.difficulty
D1 = D0 * 2016 / 2015
T1 = 877 / 144
RATE1 = 144 * 2015 / 2016
FEE = MARKET.fee_btc_per_block
with relaxed():
    MODEL = frozen_model(FEE, btc_jump_intensity_per_year=0.0)
N_DAYS = 120
HV = closed_form_daily_hv(N_DAYS, D0, D1, T1, 3.125, 3.125, 1e9, FEE)
DATES = [MARKET.asof + dt.timedelta(days=k + 1) for k in range(N_DAYS)]
HP = HV * np.array([MARKET.btc_forward_usd(d) for d in DATES])
EPOCH0 = MARKET.height - MARKET.height % 2016


def day(d: dt.date) -> int:
    return (d - MARKET.asof).days - 1


def window_mean(series, a: dt.date, b: dt.date) -> float:
    return float(series[day(a):day(b) + 1].mean())


def df_at(pay_days: float) -> float:
    """USD discount factor at ``pay_days`` after the as-of close, log-linear between days."""
    t = 1.0 + pay_days
    lo = math.floor(t)
    d_lo, d_hi = (MARKET.discount(MARKET.asof + dt.timedelta(days=k)) for k in (lo, lo + 1))
    return math.exp(math.log(d_lo) + (t - lo) * (math.log(d_hi) - math.log(d_lo)))


MAR = (dt.date(2026, 3, 1), dt.date(2026, 3, 31))
APR = (dt.date(2026, 4, 1), dt.date(2026, 4, 30))
A_MAR = window_mean(HP, *MAR)


def expected_pvs():
    """(trade, closed-form PV in USD) for each simulated product type."""
    df_mar = MARKET.discount(MAR[1])
    a_feb = (877 * D0 + (10 - T1) * RATE1 * D1) / (877 + (10 - T1) * RATE1)  # Feb 1..10, by block
    hup_start = dt.date(2026, 3, 10)
    swap_start_day = T1 + 2016 / RATE1  # the epoch two retargets ahead
    maturity = dt.date(2026, 2, 20)
    pay = maturity + dt.timedelta(days=14)
    reward = REWARD_K * 3.125 * 2016 / D1  # every block after day 19's close is at D1
    return [
        (HashrateForward("ndf", *MAR, strike=36.0, currency="USD", size_phs=10.0),
         df_mar * 10 * 31 * (A_MAR - 36.0)),
        (HashrateForward("ndf-q2", MAR[0], APR[1], strike=38.0, currency="USD", size_phs=4.0, side="sell"),
         -4 * (df_mar * 31 * (A_MAR - 38.0) + MARKET.discount(APR[1]) * 30 * (window_mean(HP, *APR) - 38.0))),
        (HashpriceCap("cap", *MAR, strike=A_MAR - 2.0, currency="USD", size_phs=5.0), df_mar * 5 * 31 * 2.0),
        (HashpriceCap("cap-otm", *MAR, strike=A_MAR + 2.0, currency="USD", size_phs=5.0), 0.0),
        (HashpriceFloor("floor", *MAR, strike=A_MAR + 3.0, currency="USD", size_phs=5.0), df_mar * 5 * 31 * 3.0),
        (HashpriceCollar("collar", *MAR, floor_strike=A_MAR - 4.0, cap_strike=A_MAR - 1.0, currency="USD",
                         size_phs=2.0), -df_mar * 2 * 31 * 1.0),
        (HashrateFuture("hup", hup_start, contracts=3, price_usd_per_ph_day=30.0),
         3 * 30 * (window_mean(HP, hup_start, hup_start + dt.timedelta(days=29)) - 30.0)),
        (DifficultySwap("swap", epoch_height=EPOCH0 + 2 * 2016, strike_difficulty=1.3e14, notional_usd=1e6),
         1e6 * (D1 - 1.3e14) / 1.3e14 * df_at(swap_start_day + 2)),
        (DifficultyFuture("dfut", dt.date(2026, 2, 1), dt.date(2026, 2, 10), contracts=7, price_points=140.0,
                          usd_per_point=10.0),
         7 * 10.0 * (a_feb / 1e12 - 140.0)),
        (HashvalueFuture("hvf", maturity, contracts=2.0, price_btc=0.003, side="sell"),
         -2.0 * (reward - 0.003) * MARKET.btc_forward_usd(pay) * MARKET.discount(pay)),
    ]


def test_every_simulated_type_at_zero_vol_is_its_closed_form():
    cases = expected_pvs()
    res = price_trades([t for t, _ in cases], MARKET.with_(btc_vol=1e-9), MODEL, paths=512, seed=3)
    assert sorted({t.type_name for t, _ in cases}) == sorted(
        {"hashprice_forward", "hashprice_cap", "hashprice_floor", "hashprice_collar", "hashrate_future",
         "difficulty_swap", "difficulty_future", "hashvalue_future"})
    for (trade, expected), r in zip(cases, res.trades, strict=True):
        assert r.error is None, (trade.trade_id, r.error)
        scale = max(abs(expected), 1.0)
        assert r.pv_usd == pytest.approx(expected, rel=1e-7, abs=1e-7 * scale), trade.trade_id
        assert r.pv_stderr <= 1e-6 * scale, trade.trade_id


def test_usd_cap_is_hashvalue_times_a_quantlib_asian_call():
    """Difficulty and fees frozen through March (one difficulty after the first retarget): the
    March cap pays 31 x size x hv x max(A_S - K / hv, 0), A_S the average of BTC's 31 daily
    closes: an arithmetic-average Asian call, priced by QuantLib's Monte Carlo Asian engine (with
    the geometric average as control variate) on the market's forward and vol, within 3 combined
    stderrs.

    QuantLib's Choi engine is not the reference: it converges slowly in its lambda (15: 8,183.7,
    40: 8,187.9, 100: 8,188.7 USD of expected payoff per unit, against 8,192.3 +/- 0.2 by
    QuantLib's Monte Carlo and 8,192.9 +/- 0.7 by an exact 40M-path simulation of the same
    fixings), so at any practical lambda it sits about 0.05% low."""
    market = MARKET.with_(btc_vols=(), btc_vol=0.6)
    hv = HV_K * (3.125 + FEE) / D1
    assert np.allclose(HV[day(MAR[0]):day(MAR[1]) + 1], hv, rtol=1e-12)
    strike = 0.95 * A_MAR
    cap = HashpriceCap("cap", *MAR, strike=strike, currency="USD", size_phs=8.0)
    r = price_trades([cap], market, MODEL, paths=1_000_000, seed=21).trades[0]
    assert r.error is None

    spot = ql.QuoteHandle(ql.SimpleQuote(market.btc_spot_usd))
    carry = ql.YieldTermStructureHandle(market.btc_carry_curve)  # forward = spot / DF_carry
    zero = ql.YieldTermStructureHandle(ql.FlatForward(to_ql_date(market.asof), 0.0, ql.Actual365Fixed()))
    process = ql.GeneralizedBlackScholesProcess(spot, zero, carry, ql.BlackVolTermStructureHandle(
        market.btc_vol_curve))  # (spot, dividend, risk-free, vol): no dividend, carry as the rate
    fixings = [to_ql_date(MAR[0] + dt.timedelta(days=k)) for k in range(31)]
    option = ql.DiscreteAveragingAsianOption(ql.Average.Arithmetic, fixings,
                                             ql.PlainVanillaPayoff(ql.Option.Call, strike / hv),
                                             ql.EuropeanExercise(fixings[-1]))
    option.setPricingEngine(ql.MCDiscreteArithmeticAPEngine(process, "pseudorandom", requiredSamples=2**18,
                                                            seed=7, controlVariate=True))
    settings = ql.Settings.instance()
    before = settings.evaluationDate
    settings.evaluationDate = to_ql_date(market.asof)
    try:
        df_carry = market.btc_carry_curve.discount(fixings[-1])
        payoff, payoff_se = option.NPV() / df_carry, option.errorEstimate() / df_carry  # E[max(A - K', 0)]
    finally:
        settings.evaluationDate = before
    unit = market.discount(MAR[1]) * 31 * 8.0 * hv
    expected, expected_se = unit * payoff, unit * payoff_se
    assert abs(r.pv_usd - expected) <= 3 * math.hypot(r.pv_stderr, expected_se), (r.pv_usd, expected, r.pv_stderr)
    assert r.pv_stderr < 0.0005 * expected  # a test that can fail: 0.15% of the price is 3 SE here
