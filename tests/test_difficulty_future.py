"""The FTX-style difficulty future: settlement in points by hand, FTX's published index example,
the fair price in points, and bad terms named by their field."""

import datetime as dt

import numpy as np
import pytest

from curves.market import Market
from curves.toml_io import InputError
from products.difficulty_future import DIFFICULTY_PER_POINT, DifficultyFuture
from products.fixings import WindowFixing
from products.portfolio import parse_portfolio

MARKET = Market.default()
Q2 = (dt.date(2026, 4, 1), dt.date(2026, 6, 30))


def fut(**kw) -> DifficultyFuture:
    return DifficultyFuture("f", **{"start": Q2[0], "end": Q2[1], "contracts": 3, "price_points": 150.0, **kw})


def refused(build, field: str, reason: str = "") -> InputError:
    with pytest.raises(InputError) as info:
        build()
    assert info.value.field == field, str(info.value)
    assert reason in info.value.reason, str(info.value)
    return info.value


def test_settlement_by_hand():
    f = fut()
    assert f.fixings() == (WindowFixing("difficulty_per_block", *Q2),)
    (flow,) = f.cash_flows([160e12], MARKET)
    assert flow.pay_date == MARKET.asof and flow.currency == "USD"  # margined daily: no discounting
    assert float(flow.amount) == pytest.approx(3 * 1.0 * (160.0 - 150.0), rel=1e-12)
    (flow,) = fut(side="sell", usd_per_point=25.0).cash_flows(np.array([[160e12], [140e12], [150e12]]), MARKET)
    assert np.allclose(flow.amount, [-3 * 25 * 10.0, 3 * 25 * 10.0, 0.0], rtol=1e-12, atol=1e-9)
    assert f.notional == 150.0 * 3 and f.initial_margin is None and f.affine
    assert not hasattr(f, "on_tick")  # FTX's tick is not in the sources found


def test_ftx_published_index_example():
    # FTX's Hashrate Futures specs: the expiry is the average of each block's difficulty over the
    # period, divided by 1 trillion; "as of May 2020, the difficulty is roughly 16 trillion,
    # meaning the index is roughly 16"
    assert DIFFICULTY_PER_POINT == 1e12
    f = fut(price_points=16.0, contracts=1)
    (flow,) = f.cash_flows([16e12], MARKET)
    assert float(flow.amount) == 0.0
    # a Q3 2020 contract bought at 18 (beincrypto's launch-day quote) expiring at 16: -2 points a contract
    assert float(fut(price_points=18.0, contracts=10).cash_flows([16e12], MARKET)[0].amount) == pytest.approx(-20.0)


def test_block_weighted_average_by_hand():
    # 2,016 blocks at 1.40e14 then 1,008 at 1.54e14 within the window: (2016 x 140 + 1008 x 154) / 3024 points
    a = (2016 * 1.40e14 + 1008 * 1.54e14) / 3024
    (flow,) = fut(contracts=1).cash_flows([a], MARKET)
    assert float(flow.amount) == pytest.approx((2016 * 140 + 1008 * 154) / 3024 - 150.0, rel=1e-12)


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_fair_price_is_the_expected_average_in_points(side):
    f = fut(side=side, usd_per_point=5.0, contracts=7)
    expected = 163.4e12  # E[A]
    (flow,) = f.cash_flows([expected], MARKET)
    pv = float(flow.amount)  # undiscounted
    assert f.fair_rate_from_pv(pv, MARKET) == pytest.approx(163.4, rel=1e-12)
    assert f.fair_rate_from_pv(0.0, MARKET) == 150.0
    # affine: the amount at the mean of two paths is the mean of their amounts
    two = f.cash_flows(np.array([[1.2e14], [1.9e14]]), MARKET)[0].amount
    assert float(np.mean(two)) == pytest.approx(float(f.cash_flows([1.55e14], MARKET)[0].amount), rel=1e-12)


def test_dates_and_price_against_the_market():
    fut().check_market(MARKET)
    fut(start=MARKET.asof).check_market(MARKET)  # started: seasoned, its realised days from --fixings
    refused(lambda: fut(end=dt.date(2090, 1, 1)).check_market(MARKET), "end", "20,000 days")
    # a price of 0.1 points is difficulty 1e11, 7e-4x today's 1.42e14: a unit slip
    refused(lambda: fut(price_points=0.1).check_market(MARKET), "price_points", "today's")
    fut(price_points=0.1).check_market(MARKET.with_(strict=False))


@pytest.mark.parametrize(("kw", "field", "reason"), [
    ({"contracts": 2.5}, "contracts", "integer"),
    ({"contracts": 0}, "contracts", ">= 1"),
    ({"price_points": 0.0}, "price_points", "> 0"),
    ({"price_points": 1.4e14}, "price_points", "plausible"),  # an absolute difficulty, not points
    ({"usd_per_point": 0.0}, "usd_per_point", "> 0"),
    ({"usd_per_point": True}, "usd_per_point", "boolean"),
    ({"end": dt.date(2026, 3, 31)}, "end", "before start"),
    ({"start": "2026-13-01"}, "start", "ISO"),
    ({"side": "short"}, "side", "buy, sell"),
])
def test_bad_terms_name_the_field(kw, field, reason):
    err = refused(lambda: fut(**kw), field, reason)
    assert str(err).startswith(f"{field}: ")


def test_file_schema_and_defaults():
    row = {"id": "a", "type": "difficulty_future", "start": "2026-04-01", "end": Q2[1], "contracts": 4,
           "price_points": 150.5}
    trades, errors = parse_portfolio({"trade": [row, {**row, "id": "b", "contracts": 4.0}]})
    assert errors[0].trade_id == "b" and errors[0].error.startswith("contracts: ")
    (t,) = trades
    assert (t.start, t.usd_per_point, t.side) == (Q2[0], 1.0, "buy")
