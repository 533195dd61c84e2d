"""The SynFutures-style BTCHASH future: the reward of 2,016 blocks at a frozen difficulty by hand,
the BTC payment converted at the pay date's close, the fair price in BTC, and bad terms."""

import datetime as dt

import numpy as np
import pytest

from curves.market import Market
from curves.toml_io import InputError
from products.fixings import RewardFixing, WindowFixing
from products.hashvalue_future import PAY_LAG_DAYS, HashvalueFuture, reward_btc_per_ph
from products.portfolio import parse_portfolio

MARKET = Market.default()
MATURITY = dt.date(2026, 3, 1)


def fut(**kw) -> HashvalueFuture:
    return HashvalueFuture("h", **{"maturity": MATURITY, "contracts": 10.0, "price_btc": 0.006, **kw})


def refused(build, field: str, reason: str = "") -> InputError:
    with pytest.raises(InputError) as info:
        build()
    assert info.value.field == field, str(info.value)
    assert reason in info.value.reason, str(info.value)
    return info.value


def test_reward_of_2016_blocks_at_a_frozen_difficulty_by_hand():
    d = 1.4e14  # every one of the 2,016 blocks at this difficulty, subsidy 3.125 BTC
    by_hand = 2016 * 3.125 * 600 * 1e15 / (d * 4_294_967_296)  # 1 PH/s hashes 600 x 1e15 times a block
    assert by_hand == pytest.approx(0.0062866, rel=1e-4)
    assert reward_btc_per_ph(d, 3.125) == pytest.approx(by_hand, rel=1e-15)
    # = 14 days of the protocol's hashvalue at that difficulty, fees excluded
    from curves.protocol import hashvalue_btc_per_ph_day
    assert 14 * hashvalue_btc_per_ph_day(d, 3.125, 0.0) == pytest.approx(by_hand, rel=1e-12)
    f = fut(contracts=10.0, price_btc=0.006)
    (flow,) = f.cash_flows([by_hand, 82_000.0], MARKET)
    assert flow.pay_date == dt.date(2026, 3, 15) and flow.currency == "USD" and flow.pay_days is None
    assert float(flow.amount) == pytest.approx(10.0 * (by_hand - 0.006) * 82_000.0, rel=1e-12)
    (flow,) = fut(side="sell").cash_flows([by_hand, 82_000.0], MARKET)
    assert float(flow.amount) == pytest.approx(-10.0 * (by_hand - 0.006) * 82_000.0, rel=1e-12)


def test_fixings_and_the_fixed_pay_date():
    f = fut()
    assert PAY_LAG_DAYS == 14 == 2016 * 600 / 86_400
    assert f.pay_date == MATURITY + dt.timedelta(days=14)
    assert f.fixings() == (RewardFixing(MATURITY, 2016), WindowFixing("btc_usd", f.pay_date, f.pay_date))
    # per path: the reward and BTC at the pay date
    (flow,) = f.cash_flows(np.array([[0.0070, 90_000.0], [0.0050, 60_000.0]]), MARKET)
    assert np.allclose(flow.amount, [10 * 0.001 * 90_000.0, -10 * 0.001 * 60_000.0], rtol=1e-12)
    assert f.notional == pytest.approx(0.06, rel=1e-15) and f.currency == "BTC" and f.initial_margin is None


def test_fair_price_is_the_btc_numeraire_expectation():
    r = np.array([0.0070, 0.0050, 0.0062, 0.0058])
    s = np.array([90_000.0, 60_000.0, 80_000.0, 75_000.0])  # a high reward with a high BTC price
    k = HashvalueFuture.fair_price_btc(float(np.mean(r * s)), float(np.mean(s)))
    assert k == pytest.approx(float(np.sum(r * s) / np.sum(s)), rel=1e-15)
    assert k > np.mean(r)  # the positive co-movement lifts it above E[R]
    for side in ("buy", "sell"):
        (flow,) = fut(price_btc=k, side=side, contracts=3.0).cash_flows(np.column_stack([r, s]), MARKET)
        assert abs(float(np.mean(flow.amount))) <= 1e-9 * 3 * 0.006 * 90_000.0
    with pytest.raises(ValueError):
        HashvalueFuture.fair_price_btc(1.0, 0.0)
    # priced at price p, PV = DF sign c (E[RS] - p F): the fair rate solves PV = 0 from one PV
    f = fut(price_btc=0.006, contracts=3.0, side="sell")
    e_rs, fwd = 0.0065 * 80_000.0, MARKET.btc_forward_usd(f.pay_date)
    pv = MARKET.discount(f.pay_date) * -3.0 * (e_rs - 0.006 * fwd)
    assert f.fair_rate_from_pv(pv, MARKET) == pytest.approx(e_rs / fwd, rel=1e-12)
    assert not getattr(HashvalueFuture, "affine", False)  # R x S: not affine


def test_maturity_and_price_against_the_market():
    fut().check_market(MARKET)
    fut(maturity=MARKET.asof).check_market(MARKET)  # the blocks after the as-of close: all to come
    refused(lambda: fut(maturity=MARKET.asof - dt.timedelta(days=1)).check_market(MARKET), "maturity",
            "partly mined")
    refused(lambda: fut(maturity=dt.date(2080, 10, 21)).check_market(MARKET), "maturity", "20,000 days")
    fut(maturity=dt.date(2080, 10, 20)).check_market(MARKET)  # pays on the 20,000th day
    today = reward_btc_per_ph(MARKET.difficulty, MARKET.subsidy_btc)  # about 0.0062 BTC
    assert 0.006 < today < 0.0065
    refused(lambda: fut(price_btc=today / 1000).check_market(MARKET), "price_btc", "units?")  # per TH/s
    fut(price_btc=today / 1000).check_market(MARKET.with_(strict=False))


@pytest.mark.parametrize(("kw", "field", "reason"), [
    ({"contracts": 0.0}, "contracts", "> 0"),
    ({"contracts": -1.0}, "contracts", "> 0"),
    ({"contracts": True}, "contracts", "boolean"),
    ({"price_btc": 0.0}, "price_btc", "> 0"),
    ({"price_btc": 628_660.0}, "price_btc", "plausible"),  # satoshis, not BTC
    ({"price_btc": "0.006"}, "price_btc", "text"),
    ({"maturity": dt.datetime(2026, 3, 1, 12)}, "maturity", "date-time"),
    ({"side": "long"}, "side", "buy, sell"),
])
def test_bad_terms_name_the_field(kw, field, reason):
    err = refused(lambda: fut(**kw), field, reason)
    assert str(err).startswith(f"{field}: ")


def test_file_schema_and_defaults():
    row = {"id": "a", "type": "hashvalue_future", "maturity": "2026-03-01", "contracts": 5, "price_btc": 0.0061}
    trades, errors = parse_portfolio({"trade": [row, {**row, "id": "b", "strike": 1.0}]})
    assert errors[0].trade_id == "b" and errors[0].error.startswith("strike: unknown")
    (t,) = trades
    assert (t.maturity, t.contracts, t.side) == (MATURITY, 5.0, "buy")
