"""Caps, floors and collars on the monthly-average index: settlement, parity on the same paths,
and the zero-volatility limit."""

import datetime as dt

import numpy as np
import pytest

from curves.market import Market
from curves.toml_io import InputError
from engine.mc.model import ModelParams
from engine.pricing.batch import trade_terms
from engine.pricing.pricer import price_trades
from products.hashprice_options import HashpriceCap, HashpriceCollar, HashpriceFloor
from products.hashrate_forward import HashrateForward, mean_btc_forward
from products.portfolio import parse_portfolio

MARKET = Market.default()
MODEL = ModelParams.default()
Q2 = (dt.date(2026, 4, 1), dt.date(2026, 6, 30))


def test_settlement_on_hand_fixings():
    cap = HashpriceCap("c", *Q2, strike=34.0, currency="USD", size_phs=10.0)
    floor = HashpriceFloor("f", *Q2, strike=34.0, currency="USD", size_phs=10.0, side="sell")
    collar = HashpriceCollar("k", *Q2, floor_strike=30.0, cap_strike=38.0, currency="USD", size_phs=2.0)
    a = np.array([36.5, 31.0, 40.0])  # April, May, June averages
    assert [float(c.amount) for c in cap.cash_flows(a, MARKET)] == [10 * 30 * 2.5, 0.0, 10 * 30 * 6.0]
    assert [float(c.amount) for c in floor.cash_flows(a, MARKET)] == [0.0, -10 * 31 * 3.0, 0.0]
    assert [float(c.amount) for c in collar.cash_flows(a, MARKET)] == [0.0, 0.0, -2 * 30 * 2.0]
    assert [c.pay_date for c in cap.cash_flows(a, MARKET)] == [dt.date(2026, 4, 30), dt.date(2026, 5, 31),
                                                               dt.date(2026, 6, 30)]
    lower = np.array([29.0, 30.0, 30.5])
    assert [float(c.amount) for c in collar.cash_flows(lower, MARKET)] == [2 * 30 * 1.0, 0.0, 0.0]
    # a BTC strike converts at the slice's average BTC forward, as the NDF's does
    btc = HashpriceCap("b", *Q2, strike=0.00045, currency="USD", size_phs=1.0)
    assert btc.strike == 0.00045
    bcap = HashpriceCap("bc", *Q2, strike=0.00045, currency="BTC", size_phs=1.0)
    k_apr = 0.00045 * mean_btc_forward(MARKET, bcap.fixings()[0])
    assert float(bcap.cash_flows(a, MARKET)[0].amount) == pytest.approx(30 * max(36.5 - k_apr, 0.0), rel=1e-14)


def test_parity_on_the_same_paths():
    """cap - floor = NDF at the same strike, and a collar = long floor + short cap, to rounding:
    the engine's control is shared by trades on the same windows, so its estimator is linear."""
    for currency, k in (("USD", 34.0), ("BTC", 0.00043)):
        trades = [HashpriceCap("cap", *Q2, strike=k, currency=currency, size_phs=5.0),
                  HashpriceFloor("floor", *Q2, strike=k, currency=currency, size_phs=5.0),
                  HashrateForward("ndf", *Q2, strike=k, currency=currency, size_phs=5.0),
                  HashpriceCollar("collar", *Q2, floor_strike=k, cap_strike=k * 1.1, currency=currency,
                                  size_phs=5.0),
                  HashpriceCap("cap_hi", *Q2, strike=k * 1.1, currency=currency, size_phs=5.0)]
        r = {t.trade_id: t for t in price_trades(trades, MARKET, MODEL, paths=8_000, seed=4).trades}
        assert all(t.error is None for t in r.values()), r
        assert not trade_terms(trades[0], MARKET).affine and trade_terms(trades[2], MARKET).affine
        far = HashpriceCap("far", *Q2, strike=k * 3, currency=currency, size_phs=5.0)  # flat at every probe
        assert not trade_terms(far, MARKET).affine
        scale = abs(r["cap"].pv_usd) + abs(r["floor"].pv_usd)
        assert r["cap"].pv_usd - r["floor"].pv_usd == pytest.approx(r["ndf"].pv_usd, abs=1e-9 * scale)
        assert r["collar"].pv_usd == pytest.approx(r["floor"].pv_usd - r["cap_hi"].pv_usd, abs=1e-9 * scale)
        assert r["cap"].pv_usd > 0 and r["floor"].pv_usd > 0 and r["cap"].pv_stderr > 0


def test_zero_vol_limit_is_the_intrinsic_value_on_the_curve():
    """BTC and hashrate frozen (vol ~0, no jumps, no fee moves): the average index is the curve's,
    and a cap is worth exactly its intrinsic value on it."""
    from curves.schema import relaxed
    from engine.pricing.curve_builder import build_curve

    m = MARKET.with_(strict=False, btc_vols=(), btc_vol=1e-9, hashrate_log_sd=0.0)
    with relaxed():
        frozen = MODEL.with_(btc_jump_intensity_per_year=0.0, hashrate_vol_annual=0.0,
                             hashrate_jump_intensity_per_year=0.0, fee_vol_annual=0.0,
                             fee_spike_intensity_per_year=0.0)
    curve = build_curve(m, frozen, months=5, paths=512, seed=1)
    cap = HashpriceCap("c", *Q2, strike=33.0, currency="USD", size_phs=3.0)
    fwd = np.array([curve.forward_usd_per_ph_day(f.start, f.end)[0] for f in cap.fixings()])
    intrinsic = sum(m.discount(c.pay_date) * c.amount for c in cap.cash_flows(fwd, m))
    res = price_trades([cap], m, frozen, paths=512, seed=1).trades[0]
    assert res.pv_usd == pytest.approx(float(intrinsic), rel=1e-6)


def test_file_fields_and_bad_terms():
    trades, errors = parse_portfolio({"trade": [
        {"id": "c", "type": "hashprice_collar", "start": Q2[0], "end": Q2[1], "floor_strike": 30.0,
         "cap_strike": 38.0, "currency": "USD", "size_phs": 1.0},
        {"id": "bad", "type": "hashprice_collar", "start": Q2[0], "end": Q2[1], "floor_strike": 38.0,
         "cap_strike": 30.0, "currency": "USD", "size_phs": 1.0},
        {"id": "nostrike", "type": "hashprice_cap", "start": Q2[0], "end": Q2[1], "currency": "USD",
         "size_phs": 1.0}]})
    assert [t.trade_id for t in trades] == ["c"]
    assert errors[0].error.startswith("cap_strike:") and errors[1].error.startswith("strike:")
    with pytest.raises(InputError, match="^end: "):
        HashpriceFloor("f", dt.date(2026, 3, 1), dt.date(2086, 2, 28), 30.0, "USD", 1.0).check_market(MARKET)


def test_option_legs_price_as_the_cash_flows():
    """The engine prices every option slice in one vectorised pass of legs: on any fixing values
    it must equal the options' own cash flows, discounted (BTC strikes converted alike)."""
    from engine.pricing.batch import Discounter, discounted_pv, trade_terms
    from engine.pricing.columns import ColumnSpace
    from engine.pricing.fixing_plan import plan_trade
    from engine.pricing.option_legs import OptionLegs

    trades = [HashpriceCap("c", *Q2, strike=33.0, currency="USD", size_phs=3.0),
              HashpriceFloor("f", *Q2, strike=0.0004, currency="BTC", size_phs=2.0, side="sell"),
              HashpriceCollar("k", *Q2, floor_strike=30.0, cap_strike=41.0, currency="USD", size_phs=5.0)]
    space, disc = ColumnSpace(), Discounter(MARKET, 200)
    terms = [trade_terms(plan_trade(t, MARKET), MARKET, space, disc) for t in trades]
    legs = OptionLegs(terms, MARKET, disc)
    assert legs.trades == [0, 1, 2]
    x = np.random.default_rng(5).uniform(20.0, 50.0, (64, space.n_cols))
    got = legs.pv(x)
    for k, t in enumerate(terms):
        want = discounted_pv(t.plan, t.values(x), MARKET, disc)
        np.testing.assert_allclose(got[:, k], want, rtol=1e-12, atol=1e-9)


def test_cash_flows_of_options_in_one_pass_equal_those_through_the_trades(monkeypatch):
    """The cash-flow report values every option slice in one compiled pass; through each trade's
    own cash flows (the path any other product takes) it gives the same amounts, PVs and stderrs,
    and each trade's flows add up to its PV."""
    import engine.pricing.cash_flow_report as report

    trades = [HashpriceCap("cap", *Q2, strike=34.0, currency="USD", size_phs=5.0),
              HashpriceFloor("floor", *Q2, strike=0.00043, currency="BTC", size_phs=3.0, side="sell"),
              HashpriceCollar("collar", dt.date(2026, 3, 15), dt.date(2026, 8, 10), floor_strike=30.0,
                              cap_strike=38.0, currency="USD", size_phs=2.0),
              HashrateForward("ndf", *Q2, strike=34.0, currency="USD", size_phs=5.0)]

    def flows():
        res = price_trades(trades, MARKET, MODEL, paths=4_000, seed=9, cash_flows=True)
        assert all(t.error is None for t in res.trades)
        return {t.trade_id: (t.pv_usd, t.cashflows) for t in res.trades}

    fast = flows()
    monkeypatch.setattr(report, "takes", lambda t: False)
    slow = flows()
    for tid, (pv, cfs) in fast.items():
        assert len(cfs) == len(slow[tid][1]) > 0
        assert sum(c["pv_usd"] for c in cfs) == pytest.approx(pv, rel=1e-9, abs=1e-6)
        for c, s in zip(cfs, slow[tid][1], strict=True):
            assert c["pay_date"] == s["pay_date"] and c["fixed"] == s["fixed"]
            for key in ("expected_amount", "stderr", "pv_usd", "pv_stderr"):
                assert c[key] == pytest.approx(s[key], rel=1e-10, abs=1e-9), (tid, key)
    assert any(c["expected_amount"] != 0 for c in fast["collar"][1])
