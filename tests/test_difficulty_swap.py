"""The BitOoda-style difficulty swap: settlement by hand, BitOoda's published example, the random
pay date, which epochs are settled, the fair strike, and bad terms named by their field."""

import datetime as dt

import numpy as np
import pytest

from curves.market import Market
from curves.toml_io import InputError
from products.difficulty_swap import DifficultySwap, mean_pay_date
from products.fixings import EpochFixing
from products.portfolio import parse_portfolio

MARKET = Market.default()  # height 934,546: the epoch in force began at 933,408, 793,718 s before the close
CURRENT, PREVIOUS, NEXT = 933_408, 931_392, 935_424


def swap(**kw) -> DifficultySwap:
    terms = {"epoch_height": NEXT, "strike_difficulty": 1e14, "notional_usd": 1e6}
    return DifficultySwap("s", **{**terms, **kw})


def refused(build, field: str, reason: str = "") -> InputError:
    with pytest.raises(InputError) as info:
        build()
    assert info.value.field == field, str(info.value)
    assert reason in info.value.reason, str(info.value)
    return info.value


def test_settlement_by_hand():
    buyer, seller = swap(), swap(side="sell")
    (flow,) = buyer.cash_flows([1.1e14, 10.0], MARKET)
    assert flow.currency == "USD" and float(flow.amount) == pytest.approx(100_000.0, rel=1e-12)
    assert float(seller.cash_flows([1.1e14, 10.0], MARKET)[0].amount) == pytest.approx(-100_000.0, rel=1e-12)
    # per path: D below the strike pays the seller
    (flow,) = buyer.cash_flows(np.array([[1.1e14, 10.0], [0.95e14, 11.0], [1e14, 12.0]]), MARKET)
    assert np.allclose(flow.amount, [100_000.0, -50_000.0, 0.0], rtol=1e-12, atol=1e-6)
    assert buyer.notional == 1e6 and buyer.initial_margin is None and buyer.currency == "USD"


def test_bitooda_published_example():
    # BitOoda, "BTC Difficulty Swap Example Trade" (2019): D+1 bought at 6.3 T, 10 contracts of
    # 10k USD (100,000 USD); the epoch of 2019-03-24 started at 6,379,265,451,411: +1.2582%,
    # "the buyer would have made $1,258.18"
    s = swap(strike_difficulty=6.3e12, notional_usd=100_000.0)
    (flow,) = s.cash_flows([6_379_265_451_411.0, 3.0], MARKET)
    assert round(float(flow.amount), 2) == 1258.18


def test_pay_days_are_the_epoch_start_plus_the_lag():
    s = swap(payment_lag_days=2.0)
    assert s.fixings() == (EpochFixing("difficulty", NEXT), EpochFixing("start_day", NEXT))
    start = np.array([3.2, 4.9, 5.6, 6.5])  # days from the as-of close to the epoch's first block, per path
    values = np.column_stack([np.full(4, 1.2e14), start])
    (flow,) = s.cash_flows(values, MARKET)
    assert np.array_equal(flow.pay_days, start + 2.0)
    # the mean pay time, 7.05 days after the close of 01-31, falls on 02-08
    assert flow.pay_date == dt.date(2026, 2, 8) == MARKET.asof + dt.timedelta(days=1 + 7)
    assert swap(payment_lag_days=0).cash_flows(values, MARKET)[0].pay_date == dt.date(2026, 2, 6)  # 5.05 days
    assert mean_pay_date(MARKET.asof, [0.2, 0.4]) == dt.date(2026, 2, 1)
    assert mean_pay_date(MARKET.asof, np.nan) == MARKET.asof  # an unknown start: the amount is unknown too


def test_the_epoch_in_force_pays_lag_days_after_its_start():
    elapsed_days = MARKET.epoch_seconds_elapsed / 86_400  # 9.19 days
    s = swap(epoch_height=CURRENT, payment_lag_days=10.0)
    assert not s.settled(MARKET)
    s.check_market(MARKET)
    # the engine supplies the market's values for the epoch in force: D and a negative start day
    (flow,) = s.cash_flows([MARKET.difficulty, -elapsed_days], MARKET)
    assert float(flow.pay_days) == pytest.approx(10.0 - elapsed_days, rel=1e-12)
    assert flow.pay_date == dt.date(2026, 2, 1)  # 0.81 days after the close
    assert float(flow.amount) == pytest.approx(1e6 * (MARKET.difficulty - 1e14) / 1e14, rel=1e-12)


def test_settled_epochs():
    assert swap(epoch_height=CURRENT).settled(MARKET)  # began 9.19 days ago, paid 2 days after
    assert swap(epoch_height=PREVIOUS).settled(MARKET)  # began earlier still
    assert swap(epoch_height=0).settled(MARKET)
    assert not swap(epoch_height=NEXT).settled(MARKET)
    assert not swap(epoch_height=CURRENT, payment_lag_days=9.5).settled(MARKET)
    for h in (CURRENT, PREVIOUS, 0):  # a settled swap passes the market check: the engine values it at zero
        swap(epoch_height=h).check_market(MARKET)
    # an earlier epoch whose payment may be pending: its difficulty is not in the market
    err = refused(lambda: swap(epoch_height=PREVIOUS, payment_lag_days=9.5).check_market(MARKET), "epoch_height",
                  "931,392 is an epoch before the one in force")
    assert "may still be pending" in err.reason


def test_settled_on_a_market_half_a_day_into_its_epoch():
    m = MARKET.with_(height=CURRENT + 72, epoch_seconds_elapsed=43_200.0)  # a consistent, strict market
    assert m.strict
    assert not swap(epoch_height=CURRENT).settled(m)  # paid 1.5 days from now
    assert swap(epoch_height=CURRENT, payment_lag_days=0.5).settled(m)  # paid exactly at the close
    assert swap(epoch_height=CURRENT, payment_lag_days=0).settled(m)
    assert not swap(epoch_height=CURRENT, payment_lag_days=0.51).settled(m)
    refused(lambda: swap(epoch_height=PREVIOUS).check_market(m), "epoch_height", "pending")
    assert swap(epoch_height=PREVIOUS, payment_lag_days=0.5).settled(m)
    swap(epoch_height=CURRENT).check_market(m)
    # a relaxed market (no cross-field checks): its first block at the close
    r = MARKET.with_(strict=False, height=CURRENT, epoch_seconds_elapsed=0.0)
    assert swap(epoch_height=CURRENT, payment_lag_days=0).settled(r)
    assert not swap(epoch_height=CURRENT, payment_lag_days=1e-6).settled(r)


def test_fair_strike_zeroes_the_pv():
    s, seller = swap(), swap(side="sell", notional_usd=3e5)
    d = np.array([1.2e14, 1.5e14, 1.1e14, 1.8e14])
    df = np.array([0.999, 0.990, 0.995, 0.985])  # a later start pays later: a smaller DF
    k = s.fair_strike(float(np.mean(df * d)), float(np.mean(df)))
    assert k == pytest.approx(float(np.sum(df * d) / np.sum(df)), rel=1e-15)
    assert seller.fair_strike(float(np.mean(df * d)), float(np.mean(df))) == k  # neither side nor size
    for t in (s, seller):
        priced = DifficultySwap("k", NEXT, k, t.notional_usd, side=t.side)
        (flow,) = priced.cash_flows(np.column_stack([d, np.zeros(4)]), MARKET)
        assert abs(float(np.mean(df * flow.amount))) <= 1e-9 * t.notional_usd
    assert s.fair_strike(1.3e14, 1.0) == 1.3e14  # DF = 1: E[D]
    with pytest.raises(ValueError):
        s.fair_strike(1.3e14, 0.0)
    assert s.fair_rate_from_pv(1234.0, MARKET) is None
    assert not getattr(DifficultySwap, "affine", False)  # the pay date is random: not affine


@pytest.mark.parametrize(("kw", "field", "reason"), [
    ({"epoch_height": 2017}, "epoch_height", "multiple of 2,016"),
    ({"epoch_height": -2016}, "epoch_height", ">= 0"),
    ({"epoch_height": 935_424.0}, "epoch_height", "integer"),
    ({"epoch_height": True}, "epoch_height", "boolean"),
    ({"payment_lag_days": -1.0}, "payment_lag_days", ">= 0"),
    ({"payment_lag_days": 365.0}, "payment_lag_days", "plausible"),
    ({"notional_usd": 0.0}, "notional_usd", "> 0"),
    ({"notional_usd": -5.0}, "notional_usd", "> 0"),
    ({"strike_difficulty": 0.0}, "strike_difficulty", "> 0"),
    ({"strike_difficulty": float("nan")}, "strike_difficulty", "finite"),
    ({"side": "long"}, "side", "buy, sell"),
])
def test_bad_terms_name_the_field(kw, field, reason):
    err = refused(lambda: swap(**kw), field, reason)
    assert str(err).startswith(f"{field}: ")


def test_strike_in_trillions_is_a_unit_slip():
    refused(lambda: swap(strike_difficulty=141.7).check_market(MARKET), "strike_difficulty", "today's")
    swap(strike_difficulty=141.7).check_market(MARKET.with_(strict=False))  # a relaxed market skips it
    swap(strike_difficulty=1.5e14).check_market(MARKET)


def test_file_schema_and_defaults():
    row = {"id": "a", "type": "difficulty_swap", "epoch_height": NEXT, "strike_difficulty": 1.5e14,
           "notional_usd": 250_000}
    trades, errors = parse_portfolio({"trade": [row, {**row, "id": "b", "epoch_height": NEXT + 1}]})
    assert errors[0].trade_id == "b" and errors[0].error.startswith("epoch_height: ")
    (t,) = trades
    assert (t.side, t.payment_lag_days, t.notional_usd) == ("buy", 2.0, 250_000.0)
