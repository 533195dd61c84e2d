"""The prepaid (deliverable) hashrate forward: settlement by hand in USD and BTC, the financing
spread, a payment already made, the one-price rule, bad input, the discount to the NDF, and the
fair prepaid price against the NDF's fair rate on the same paths."""

import datetime as dt
import math

import numpy as np
import pytest

from curves.market import Market
from curves.toml_io import InputError
from engine.mc.model import ModelParams
from engine.pricing.batch import discounted_pv, trade_terms
from engine.pricing.pricer import price_trades
from products.deliverable_forward import DeliverableForward, discount_to_ndf
from products.hashrate_forward import HashrateForward, mean_btc_forward
from products.portfolio import parse_portfolio

MARKET = Market.default()
MODEL = ModelParams.default()
START, END = dt.date(2026, 3, 1), dt.date(2026, 5, 15)  # slices of 31, 30 and 15 days
PAY = dt.date(2026, 2, 20)
VALUES = np.array([35.0, 36.0, 37.0])


def prepaid(usd=40.0, btc=None, start=START, end=END, size=10.0, pay=PAY, spread=0.0, side="buy", trade_id="p"):
    return DeliverableForward(trade_id, start, end, size_phs=size, payment_date=pay, price_usd_per_ph_day=usd,
                              price_btc_per_ph_day=btc, financing_spread=spread, side=side)


def refused(build, field: str) -> InputError:
    with pytest.raises(InputError) as info:
        build()
    assert info.value.field == field, str(info.value)
    return info.value


# ---- settlement by hand -------------------------------------------------------------------------
def test_usd_settlement_by_hand():
    d = prepaid(usd=40.0)
    assert d.currency == "USD" and d.days == 76 and d.notional == 40.0 * 10.0 * 76
    assert [(f.quantity, f.start, f.end) for f in d.fixings()] == [
        ("hashprice_usd_per_ph_day", dt.date(2026, 3, 1), dt.date(2026, 3, 31)),
        ("hashprice_usd_per_ph_day", dt.date(2026, 4, 1), dt.date(2026, 4, 30)),
        ("hashprice_usd_per_ph_day", dt.date(2026, 5, 1), dt.date(2026, 5, 15))]
    flows = d.cash_flows(VALUES, MARKET)
    assert [(c.pay_date, c.currency) for c in flows] == [
        (dt.date(2026, 3, 31), "USD"), (dt.date(2026, 4, 30), "USD"), (dt.date(2026, 5, 15), "USD"), (PAY, "USD")]
    assert [float(c.amount) for c in flows] == [10 * 31 * 35.0, 10 * 30 * 36.0, 10 * 15 * 37.0, -40.0 * 10 * 76]
    seller = [float(c.amount) for c in prepaid(usd=40.0, side="sell").cash_flows(VALUES, MARKET)]
    assert seller == [-float(c.amount) for c in flows]
    pv = sum(MARKET.discount(c.pay_date) * float(c.amount) for c in flows)
    assert float(discounted_pv(d, VALUES, MARKET)) == pytest.approx(pv, rel=1e-13)
    assert trade_terms(d, MARKET).affine


def test_btc_settlement_by_hand():
    d = prepaid(usd=None, btc=0.0005)
    assert d.currency == "BTC" and d.price == 0.0005 and d.notional == pytest.approx(0.0005 * 10 * 76, rel=1e-15)
    flows = d.cash_flows(VALUES, MARKET)
    # the output is the same hash in either currency; the BTC price is paid at the payment date's close
    assert [float(c.amount) for c in flows[:3]] == [10 * 31 * 35.0, 10 * 30 * 36.0, 10 * 15 * 37.0]
    assert flows[3].pay_date == PAY
    assert float(flows[3].amount) == pytest.approx(-0.0005 * 10 * 76 * MARKET.btc_forward_usd(PAY), rel=1e-13)


def test_financing_spread_discounts_the_receipts():
    d = prepaid(spread=0.25)
    flows = d.cash_flows(VALUES, MARKET)
    for c, v, days in zip(flows[:3], VALUES, (31, 30, 15)):
        t = (c.pay_date - MARKET.asof).days / 365.0  # Actual/365 from the as-of date to the slice's end
        assert float(c.amount) == pytest.approx(10 * days * v * math.exp(-0.25 * t), rel=1e-13)
    assert float(flows[3].amount) == -40.0 * 10 * 76  # the payment carries no spread
    pv0, pv = (float(discounted_pv(x, VALUES, MARKET)) for x in (prepaid(spread=0.0), d))
    assert pv < pv0
    # the fair prepaid price falls with the spread, by about the spread times the time to delivery
    f0, f = (x.fair_rate_from_pv(float(discounted_pv(x, VALUES, MARKET)), MARKET) for x in (prepaid(), d))
    assert 0.25 * 0.1 < 1 - f / f0 < 0.25 * 0.3


@pytest.mark.parametrize(("usd", "btc"), [(40.0, None), (None, 0.0005)])
@pytest.mark.parametrize("pay", [PAY, MARKET.asof, MARKET.asof - dt.timedelta(days=20)])
def test_fair_price_prices_to_zero(usd, btc, pay):
    d = prepaid(usd=usd, btc=btc, pay=pay, spread=0.1, side="sell")
    pv = float(discounted_pv(d, VALUES, MARKET))
    fair = d.fair_rate_from_pv(pv, MARKET)
    if d.is_paid(MARKET):  # the price that, paid today (DF 1, today's close), buys the receipts
        conv = 1.0 if usd else MARKET.btc_spot_usd
        assert pv == pytest.approx(-fair * 10 * 76 * conv, rel=1e-12)  # the seller owes the receipts
    else:
        at_fair = prepaid(usd=fair if usd else None, btc=fair if btc else None, pay=pay, spread=0.1, side="sell")
        assert float(discounted_pv(at_fair, VALUES, MARKET)) == pytest.approx(0.0, abs=1e-8)


def test_payment_already_made():
    for pay in (MARKET.asof, MARKET.asof - dt.timedelta(days=40)):
        d = prepaid(pay=pay)
        assert d.is_paid(MARKET)
        flows = d.cash_flows(VALUES, MARKET)
        assert [c.pay_date for c in flows] == [dt.date(2026, 3, 31), dt.date(2026, 4, 30), dt.date(2026, 5, 15)]
        receipts = sum(MARKET.discount(c.pay_date) * float(c.amount) for c in flows)
        assert float(discounted_pv(d, VALUES, MARKET)) == pytest.approx(receipts, rel=1e-13)
        assert d.fair_rate_from_pv(receipts, MARKET) == pytest.approx(receipts / (10 * 76), rel=1e-13)
    tomorrow = prepaid(pay=MARKET.asof + dt.timedelta(days=1))
    assert not tomorrow.is_paid(MARKET) and len(tomorrow.cash_flows(VALUES, MARKET)) == 4
    # the fair price of a paid trade is that of the same delivery paid today: tomorrow's, to a day's interest
    paid_fair = prepaid(pay=MARKET.asof).fair_rate_from_pv(receipts, MARKET)
    fair = tomorrow.fair_rate_from_pv(float(discounted_pv(tomorrow, VALUES, MARKET)), MARKET)
    assert fair / paid_fair - 1 == pytest.approx(0.04 / 365, rel=1e-3)


# ---- the NDF strip and the discount to it -------------------------------------------------------
def test_discount_to_ndf_luxor_quote():
    # Luxor: an upfront 0.00185 BTC/PH/day against an NDF at 0.00190 BTC/PH/day
    assert discount_to_ndf(0.00185, 0.00190) == pytest.approx(0.05 / 1.90, rel=1e-12)
    assert round(100 * discount_to_ndf(0.00185, 0.00190), 2) == 2.63
    assert discount_to_ndf(40.0, 40.0) == 0.0
    refused(lambda: discount_to_ndf(0.00185, 0.0), "ndf_rate")


def test_ndf_strip_has_the_same_terms():
    d = prepaid(usd=None, btc=0.00046, side="sell", trade_id="lux")
    ndf = d.ndf_strip()
    assert isinstance(ndf, HashrateForward) and ndf.trade_id == "lux-ndf"
    assert (ndf.start, ndf.end, ndf.currency, ndf.size_phs, ndf.strike, ndf.side) == (
        d.start, d.end, "BTC", 10.0, 0.00046, "sell")
    assert [(f.start, f.end) for f in ndf.fixings()] == [(f.start, f.end) for f in d.fixings()]


def test_fair_prepaid_price_is_the_ndf_rate_on_the_same_paths():
    # no financing spread, paid at the end of a one-month delivery: the prepaid fair price is the NDF's
    mar = (dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    d = prepaid(usd=38.0, start=mar[0], end=mar[1], pay=mar[1], trade_id="prepaid")
    btc = prepaid(usd=None, btc=0.00048, start=mar[0], end=mar[1], pay=mar[1], trade_id="prepaid-btc")
    financed = prepaid(usd=38.0, start=mar[0], end=mar[1], pay=mar[1], spread=0.01, trade_id="financed")
    early = prepaid(usd=38.0, start=mar[0], end=mar[1], pay=dt.date(2026, 2, 27), trade_id="early")
    ndf = d.ndf_strip()
    ndf_btc = btc.ndf_strip()
    res = {r.trade_id: r for r in price_trades([d, btc, financed, early, ndf, ndf_btc], MARKET, MODEL,
                                               paths=20_000, seed=11).trades}
    assert all(r.error is None for r in res.values())
    assert res["prepaid"].fair_rate == pytest.approx(res["prepaid-ndf"].fair_rate, rel=1e-9)
    assert res["prepaid"].fair_rate_stderr == pytest.approx(res["prepaid-ndf"].fair_rate_stderr, rel=1e-6)
    # a BTC price is paid at the payment date's close, the NDF's strike at the month's average forward
    p = d.fixing_periods()[0]
    assert res["prepaid-btc"].fair_rate * MARKET.btc_forward_usd(mar[1]) == pytest.approx(
        res["prepaid-btc-ndf"].fair_rate * mean_btc_forward(MARKET, p), rel=1e-9)
    # the comparison can fail: a 1% spread, or paying a month early, moves the fair price far beyond 1e-9
    for other in ("financed", "early"):
        assert abs(res[other].fair_rate / res["prepaid-ndf"].fair_rate - 1) > 1e-4
    assert discount_to_ndf(res["financed"].fair_rate, res["prepaid-ndf"].fair_rate) == pytest.approx(
        1 - math.exp(-0.01 * MARKET.year_fraction(mar[1])), rel=1e-6)


# ---- the one-price rule and bad input -----------------------------------------------------------
def test_exactly_one_price():
    refused(lambda: prepaid(usd=None, btc=None), "price_usd_per_ph_day")
    refused(lambda: prepaid(usd=40.0, btc=0.0005), "price_btc_per_ph_day")
    base = {"type": "deliverable_forward", "start": START, "end": END, "size_phs": 5.0, "payment_date": PAY}
    trades, errors = parse_portfolio({"trade": [
        {"id": "usd", **base, "price_usd_per_ph_day": 40.0},
        {"id": "btc", **base, "price_btc_per_ph_day": 0.0005, "financing_spread": 0.12, "side": "sell"},
        {"id": "none", **base},
        {"id": "both", **base, "price_usd_per_ph_day": 40.0, "price_btc_per_ph_day": 0.0005}]})
    assert [(t.trade_id, t.currency, t.financing_spread) for t in trades] == [("usd", "USD", 0.0),
                                                                              ("btc", "BTC", 0.12)]
    assert [e.error.split(":")[0] for e in errors] == ["price_usd_per_ph_day", "price_btc_per_ph_day"]
    assert "exactly one" in errors[0].error and "not both" in errors[1].error


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"size": 0.0}, "size_phs"),
    ({"size": 1e8}, "size_phs"),
    ({"usd": -40.0}, "price_usd_per_ph_day"),
    ({"usd": True}, "price_usd_per_ph_day"),
    ({"usd": None, "btc": 0.0}, "price_btc_per_ph_day"),
    ({"usd": None, "btc": "0.0005"}, "price_btc_per_ph_day"),
    ({"spread": 20.0}, "financing_spread"),  # beyond the hard limit
    ({"spread": 2.0}, "financing_spread"),  # implausible
    ({"spread": math.nan}, "financing_spread"),
    ({"pay": END + dt.timedelta(days=1)}, "payment_date"),
    ({"pay": "2026-02-30"}, "payment_date"),
    ({"end": dt.date(2026, 2, 28)}, "end"),
    ({"side": "long"}, "side"),
])
def test_bad_input_names_the_field(kwargs, field):
    refused(lambda: prepaid(**kwargs), field)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"start": MARKET.asof}, "start"),
    ({"end": dt.date(2090, 1, 31)}, "end"),
    ({"usd": 40_000.0}, "price_usd_per_ph_day"),  # USD/TH for USD/PH: a unit slip
    ({"usd": None, "btc": 40.0}, "price_btc_per_ph_day"),  # a USD price in the BTC field
])
def test_terms_against_the_market(kwargs, field):
    refused(lambda: prepaid(**kwargs).check_market(MARKET), field)
