"""Products: the hashrate NDF, its consistency with the curve, the miner fleet, protocol properties."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from curves import protocol
from curves.market import Market
from curves.periods import Period, month_slices
from curves.toml_io import InputError
from engine.mc.model import ModelParams
from engine.pricing.batch import discounted_pv
from engine.pricing.curve_builder import build_curve
from engine.pricing.pricer import price_trades
from products.hashrate_forward import HashrateForward
from products.miner_fleet import MinerFleet
from products.portfolio import parse_portfolio

MARKET = Market.default()
MAR = (dt.date(2026, 3, 1), dt.date(2026, 3, 31))
Q2 = (dt.date(2026, 4, 1), dt.date(2026, 6, 30))
PROPS = settings(max_examples=25, deadline=None)


def fwd(start=MAR[0], end=MAR[1], strike=40.0, currency="USD", size_phs=10.0, side="buy", trade_id="t"):
    return HashrateForward(trade_id, start, end, strike=strike, currency=currency, size_phs=size_phs,
                           side=side)


# ---- HashrateForward terms ----------------------------------------------------------------------
def test_usd_notional_and_margin_by_hand():
    f = fwd(strike=40.0, size_phs=10.0)
    assert f.days == 31
    assert f.notional == pytest.approx(40.0 * 10.0 * 31)
    assert f.initial_margin == pytest.approx(0.35 * 40.0 * 10.0 * 31)


def test_btc_notional_and_margin_by_hand():
    f = fwd(start=Q2[0], end=Q2[1], strike=0.0005, currency="btc", size_phs=25.0, side="Sell")
    assert (f.currency, f.side, f.days) == ("BTC", "sell", 91)
    assert f.notional == pytest.approx(0.0005 * 25.0 * 91, rel=1e-12)
    assert f.initial_margin == pytest.approx(0.18 * 0.0005 * 25.0 * 91, rel=1e-12)


def test_dates_parse_from_iso_strings():
    f = fwd(start="2026-03-01", end="2026-03-31")
    assert (f.start, f.end) == MAR


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"start": dt.date(2026, 3, 31), "end": dt.date(2026, 3, 1)}, "end"),
        ({"start": "2026-13-01"}, "start"),
        ({"size_phs": -5.0}, "size_phs"),
        ({"size_phs": 0.0}, "size_phs"),
        ({"strike": float("nan")}, "strike"),
        ({"strike": float("inf")}, "strike"),
        ({"strike": "abc"}, "strike"),
        ({"strike": True}, "strike"),
        ({"currency": "EUR"}, "currency"),
        ({"side": "long"}, "side"),
    ],
)
def test_forward_bad_inputs(kwargs, field):
    with pytest.raises(InputError) as info:
        fwd(**kwargs)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_a_started_trade_needs_its_realised_days_unless_they_are_settled():
    """A period that began on or before the as-of date is seasoned: its realised part comes from
    --fixings, and without them the trade alone gets an error naming them. A monthly slice paid
    by the as-of date is settled: its fixings are not needed."""
    from products.hashrate_future import HashrateFuture

    started = HashrateFuture("s", dt.date(2026, 1, 20), contracts=1, price_usd_per_ph_day=35.0)
    started.check_market(MARKET)  # the terms are fine
    settled_first = fwd(trade_id="n", start=dt.date(2026, 1, 15), end=MAR[1])  # Jan 15..31 paid on the 31st
    res = price_trades([started, settled_first], MARKET, ModelParams.default(), paths=2_000, seed=1,
                       cash_flows=True)
    assert res.trades[0].error.startswith("fixings: s: hashprice_usd_per_ph_day over 2026-01-20..2026-02-18")
    assert "--fixings" in res.trades[0].error
    n = res.trades[1]
    assert n.error is None and [c["settled"] for c in n.cashflows] == [False, False, True]
    assert [c["pay_date"] for c in n.cashflows] == ["2026-02-28", "2026-03-31", "2026-01-31"]


def test_month_slices_of_multi_month_period():
    f = fwd(start=dt.date(2026, 2, 10), end=dt.date(2026, 4, 5))
    slices = f.fixing_periods()
    assert slices == [Period(dt.date(2026, 2, 10), dt.date(2026, 2, 28)),
                      Period(dt.date(2026, 3, 1), dt.date(2026, 3, 31)),
                      Period(dt.date(2026, 4, 1), dt.date(2026, 4, 5))]
    assert sum(p.days for p in slices) == f.days == 55


def test_month_slices_edge_cases():
    one_day = dt.date(2026, 3, 5)
    assert month_slices(one_day, one_day) == [Period(one_day, one_day)]
    year = month_slices(dt.date(2027, 1, 1), dt.date(2027, 12, 31))
    assert len(year) == 12 and sum(p.days for p in year) == 365
    assert all(p.start.day == 1 and (p.end + dt.timedelta(days=1)).day == 1 for p in year)
    leap = month_slices(dt.date(2027, 12, 15), dt.date(2028, 3, 1))
    assert [p.days for p in leap] == [17, 31, 29, 1]


def test_pv_by_hand_and_linear_in_strike():
    f = fwd(start=Q2[0], end=Q2[1], strike=35.0, size_phs=4.0)
    hp = np.array([41.0, 40.0, 39.0])
    expected = sum(4.0 * p.days * MARKET.discount(p.end) * (h - 35.0)
                   for p, h in zip(f.fixing_periods(), hp, strict=True))
    assert float(discounted_pv(f, hp, MARKET)) == pytest.approx(expected, rel=1e-12)
    pv = {k: float(discounted_pv(fwd(start=Q2[0], end=Q2[1], strike=k, size_phs=4.0), hp, MARKET))
          for k in (30, 35, 40)}
    assert pv[30] - pv[35] == pytest.approx(pv[35] - pv[40], rel=1e-12)
    seller = fwd(start=Q2[0], end=Q2[1], strike=35.0, size_phs=4.0, side="sell")
    assert float(discounted_pv(seller, hp, MARKET)) == pytest.approx(-expected, rel=1e-12)


def test_pv_on_paths_is_per_path():
    f = fwd(start=Q2[0], end=Q2[1])
    paths = np.array([[41.0, 40.0, 39.0], [30.0, 31.0, 32.0]])
    pv = discounted_pv(f, paths, MARKET)
    assert pv.shape == (2,)
    assert pv[1] == pytest.approx(float(discounted_pv(f, paths[1], MARKET)), rel=1e-14)


def hand_slice_terms(f):
    """Per monthly slice: weight sign x size x days x DF(slice end), and the strike in USD/PH/day.

    The flat-basis forward F(d) = S exp(basis (d - asof)/365) and the flat-rate discount factor
    are closed forms; a BTC strike converts at the average of F over the slice's days.
    """
    s, b, r = MARKET.btc_spot_usd, MARKET.btc_basis_annual, MARKET.usd_rate
    weights, strikes = [], []
    for p in f.fixing_periods():
        days = [p.start + dt.timedelta(days=k) for k in range(p.days)]
        avg_fwd = sum(s * math.exp(b * (d - MARKET.asof).days / 365) for d in days) / p.days
        weights.append(f.sign * f.size_phs * p.days * math.exp(-r * (p.end - MARKET.asof).days / 365))
        strikes.append(f.strike if f.currency == "USD" else f.strike * avg_fwd)
    return np.array(weights), np.array(strikes)


@pytest.mark.parametrize(("currency", "strike", "side"),
                         [("USD", 33.0, "buy"), ("USD", 47.0, "sell"),
                          ("BTC", 0.0004, "buy"), ("BTC", 0.0006, "sell")])
def test_fair_rate_reprices_to_zero(currency, strike, side):
    hp = np.array([41.0, 40.0, 39.0])
    f = fwd(start=Q2[0], end=Q2[1], strike=strike, currency=currency, side=side)
    k_star = f.fair_rate_from_pv(float(discounted_pv(f, hp, MARKET)), MARKET)
    # independently: PV = sum w (hp - K c) is zero at K* = sum w hp / sum w c, c = 1 (USD) or
    # the slice-average BTC forward (BTC)
    w, k = hand_slice_terms(f)
    c = k / strike
    assert k_star == pytest.approx(float((w * hp).sum() / (w * c).sum()), rel=1e-12)
    at_fair = fwd(start=Q2[0], end=Q2[1], strike=k_star, currency=currency, side=side)
    assert abs(float(discounted_pv(at_fair, hp, MARKET))) < 1e-9 * f.size_phs * f.days * 40.0


def test_btc_strike_converts_at_the_slice_average_forward():
    # Q2 slices of 30, 31 and 30 days: the slice-end forward is ~0.2% above the slice average
    f = fwd(start=Q2[0], end=Q2[1], strike=0.0005, currency="BTC", size_phs=25.0, side="buy")
    hp = np.array([41.0, 40.0, 39.0])
    w, k = hand_slice_terms(f)
    assert float(discounted_pv(f, hp, MARKET)) == pytest.approx(float((w * (hp - k)).sum()), rel=1e-12)
    at_end = np.array([0.0005 * MARKET.btc_forward_usd(p.end) for p in f.fixing_periods()])
    assert np.all(at_end / k - 1 > 1e-3)  # the two conventions differ well beyond the tolerance above
    fair = f.fair_rate_from_pv(float(discounted_pv(f, hp, MARKET)), MARKET)
    assert fair == pytest.approx(float((w * hp).sum() / (w * k / 0.0005).sum()), rel=1e-12)


# ---- consistency with the curve -----------------------------------------------------------------
@pytest.fixture(scope="module")
def curve_and_portfolio():
    model = ModelParams.default()
    curve = build_curve(MARKET, model, months=3, paths=2000, seed=11)
    trades, errors = parse_portfolio({"trade": [
        {"id": "mar-buy", "type": "hashprice_forward", "start": MAR[0], "end": MAR[1], "strike": 35.0,
         "currency": "USD", "size_phs": 10.0, "side": "buy"},
        {"id": "feb-sell", "type": "hashprice_forward", "start": "2026-02-01", "end": "2026-02-28",
         "strike": 45.0, "currency": "USD", "size_phs": 3.0, "side": "sell"},
    ]})
    assert errors == []
    res = price_trades(trades, MARKET, model, paths=2000, seed=11)
    return curve, {t.trade_id: t for t in res.trades}, {t.trade_id: t for t in trades}


@pytest.mark.parametrize(("trade_id", "month"), [("mar-buy", 1), ("feb-sell", 0)])
def test_one_month_ndf_matches_curve_forward(curve_and_portfolio, trade_id, month):
    curve, results, trades = curve_and_portfolio
    r, t = results[trade_id], trades[trade_id]
    assert r.error is None
    forward = float(curve.hashprice_usd_per_ph_day[month])
    p = curve.periods[month]
    assert (p.start, p.end) == (t.start, t.end)
    assert r.fair_rate == pytest.approx(forward, rel=1e-9)
    expected_pv = t.sign * t.size_phs * t.days * MARKET.discount(t.end) * (forward - t.strike)
    assert r.pv_usd == pytest.approx(expected_pv, rel=1e-9)
    # stderr scales the same way: size x days x DF x the forward's stderr
    se = t.size_phs * t.days * MARKET.discount(t.end) * float(curve.hashprice_stderr[month])
    assert r.pv_stderr == pytest.approx(se, rel=1e-6)


def test_multi_month_ndf_prices_off_the_curve(curve_and_portfolio):
    curve, _, _ = curve_and_portfolio
    model = ModelParams.default()
    f = fwd(start=dt.date(2026, 2, 1), end=dt.date(2026, 4, 30), strike=38.0, size_phs=2.0)
    res = price_trades([f], MARKET, model, paths=2000, seed=11).trades[0]
    expected = float(discounted_pv(f, curve.hashprice_usd_per_ph_day, MARKET))
    # each slice's control-variate estimate is the curve's; the trade's beta mixes slices, so
    # the two agree within a few standard errors rather than to rounding
    assert res.pv_usd == pytest.approx(expected, abs=4 * res.pv_stderr + 1e-9)


# ---- property tests -----------------------------------------------------------------------------
strikes = st.floats(min_value=1e-3, max_value=500.0, allow_nan=False)
sizes = st.floats(min_value=1e-3, max_value=1e4, allow_nan=False)
HP = np.array([41.0, 40.0, 39.0])


@PROPS
@given(k1=strikes, k2=strikes, size=sizes)
def test_buyer_pv_decreases_in_strike(k1, k2, size):
    assume(k2 > k1 * (1 + 1e-9))
    pv1 = float(discounted_pv(fwd(start=Q2[0], end=Q2[1], strike=k1, size_phs=size), HP, MARKET))
    pv2 = float(discounted_pv(fwd(start=Q2[0], end=Q2[1], strike=k2, size_phs=size), HP, MARKET))
    assert pv1 > pv2


@PROPS
@given(k=strikes, size=sizes, currency=st.sampled_from(["USD", "BTC"]))
def test_buyer_seller_parity(k, size, currency):
    buy = fwd(start=Q2[0], end=Q2[1], strike=k, size_phs=size, currency=currency, side="buy")
    sell = fwd(start=Q2[0], end=Q2[1], strike=k, size_phs=size, currency=currency, side="sell")
    assert float(discounted_pv(buy, HP, MARKET)) == -float(discounted_pv(sell, HP, MARKET))
    assert buy.notional == sell.notional and buy.initial_margin == sell.initial_margin


@PROPS
@given(k=strikes, size=sizes, scale=st.floats(min_value=1e-2, max_value=1e2))
def test_notional_linear_in_size(k, size, scale):
    a = fwd(strike=k, size_phs=size)
    b = fwd(strike=k, size_phs=size * scale)
    assert b.notional == pytest.approx(scale * a.notional, rel=1e-12)
    assert b.initial_margin == pytest.approx(scale * a.initial_margin, rel=1e-12)


fleet_args = {
    "fleet_phs": st.floats(min_value=0.01, max_value=1e5),
    "eff": st.floats(min_value=5.0, max_value=150.0),
    "uptime": st.floats(min_value=0.05, max_value=1.0),
    "hp": st.floats(min_value=0.0, max_value=500.0),
}


@PROPS
@given(p1=st.floats(min_value=0.0, max_value=1.0), p2=st.floats(min_value=0.0, max_value=1.0), **fleet_args)
def test_fleet_net_decreases_and_breakeven_fixed_in_power_price(p1, p2, fleet_phs, eff, uptime, hp):
    assume(p2 > p1 + 1e-6)
    e1 = MinerFleet(fleet_phs, eff, p1, uptime).economics(hp)
    e2 = MinerFleet(fleet_phs, eff, p2, uptime).economics(hp)
    assert e2["net_usd_per_day"] < e1["net_usd_per_day"]
    assert e2["breakeven_power_usd_per_kwh"] == e1["breakeven_power_usd_per_kwh"]
    # at the breakeven power price the fleet's net is zero
    be = MinerFleet(fleet_phs, eff, e1["breakeven_power_usd_per_kwh"], uptime).economics(hp)
    assert abs(be["net_usd_per_day"]) <= 1e-9 * max(1.0, e1["revenue_usd_per_day"])


def test_fleet_by_hand():
    e = MinerFleet(100.0, 20.0, 0.05, capex_usd=1_000_000.0).economics(50.0)
    assert e["power_kw"] == 2000.0  # 20 J/TH x 100,000 TH/s / 1000
    assert e["revenue_usd_per_day"] == pytest.approx(5000.0)
    assert e["power_cost_usd_per_day"] == pytest.approx(2000.0 * 24 * 0.05)
    assert e["breakeven_power_usd_per_kwh"] == pytest.approx(5000.0 / 48_000.0)
    assert e["payback_months"] == pytest.approx(1_000_000.0 / (2600.0 * 365.25 / 12))
    # a loss-making fleet never pays back
    assert MinerFleet(100.0, 20.0, 0.5, capex_usd=1e6).economics(50.0)["payback_months"] is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"uptime": 0.0}, "uptime"),
        ({"uptime": 1.5}, "uptime"),
        ({"uptime": float("nan")}, "uptime"),
        ({"power_usd_per_kwh": -0.01}, "power_usd_per_kwh"),
        ({"power_usd_per_kwh": float("nan")}, "power_usd_per_kwh"),
        ({"fleet_phs": 0.0}, "fleet_phs"),
        ({"efficiency_j_per_th": -20.0}, "efficiency_j_per_th"),
        ({"opex_usd_per_day": -1.0}, "opex_usd_per_day"),
        ({"capex_usd": -1.0}, "capex_usd"),
    ],
)
def test_fleet_bad_inputs(kwargs, field):
    args = {"fleet_phs": 100.0, "efficiency_j_per_th": 20.0, "power_usd_per_kwh": 0.05, **kwargs}
    with pytest.raises(InputError) as info:
        MinerFleet(**args)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


# ---- protocol properties ------------------------------------------------------------------------
difficulties = st.floats(min_value=1.0, max_value=1e20)
fees = st.floats(min_value=0.0, max_value=10.0)


@PROPS
@given(d1=difficulties, d2=difficulties, fee=fees)
def test_hashvalue_decreasing_in_difficulty(d1, d2, fee):
    assume(d2 > d1 * (1 + 1e-9))
    hv = protocol.hashvalue_btc_per_ph_day
    assert hv(d1, 3.125, fee) > hv(d2, 3.125, fee)


@PROPS
@given(d=difficulties, f1=fees, f2=fees, subsidy=st.sampled_from([50.0, 6.25, 3.125, 0.0]))
def test_hashvalue_increasing_in_fee(d, f1, f2, subsidy):
    assume(f2 > f1 + 1e-9)
    hv = protocol.hashvalue_btc_per_ph_day
    assert hv(d, subsidy, f2) > hv(d, subsidy, f1)


@PROPS
@given(height=st.integers(min_value=0, max_value=70 * 210_000))
def test_subsidy_halves_every_210000_blocks(height):
    sats = protocol.subsidy_sats(height)
    assert isinstance(sats, int) and 0 <= sats <= 50 * 100_000_000
    era = height // 210_000
    assert sats == ((50 * 100_000_000) >> era if era < 64 else 0)
    assert protocol.subsidy_sats(height + 210_000) == sats // 2
    assert protocol.subsidy_btc(height) * 100_000_000 == sats
    era_start = height - height % 210_000
    assert protocol.subsidy_sats(era_start) == sats == protocol.subsidy_sats(era_start + 209_999)


def test_subsidy_known_heights():
    assert protocol.subsidy_btc(0) == 50.0
    assert protocol.subsidy_btc(839_999) == 6.25
    assert protocol.subsidy_btc(840_000) == 3.125
    assert protocol.subsidy_btc(1_049_999) == 3.125
    assert protocol.subsidy_btc(1_050_000) == 1.5625
    assert protocol.subsidy_sats(33 * 210_000) == 0  # 5e9 >> 33


@PROPS
@given(d=st.floats(min_value=1.0, max_value=1e18),
       t=st.one_of(st.floats(min_value=0.0, max_value=1e9),
                   st.sampled_from([0.0, 1.0, 302_400.0, 4_838_400.0])))
def test_retarget_moves_at_most_4x(d, t):
    new = protocol.retarget_difficulty(d, t)
    assert d / 4.0 * (1 - 1e-15) <= new <= d * 4.0 * (1 + 1e-15)
    expected = d * 1_209_600.0 / min(max(t, 302_400.0), 4_838_400.0)
    assert new == pytest.approx(expected, rel=1e-15)


def test_retarget_exact_points():
    assert protocol.retarget_difficulty(1e14, 1_209_600.0) == 1e14
    assert protocol.retarget_difficulty(1e14, 1.0) == 4e14
    assert protocol.retarget_difficulty(1e14, 1e12) == 2.5e13
    d = protocol.difficulty_from_hashrate_hs(8e20)
    assert math.isclose(protocol.hashrate_hs_from_difficulty(d), 8e20)
