"""The product protocol: fixings, cash flows, and a registry that keeps schema and dataclass in step."""

import dataclasses
import datetime as dt

import numpy as np
import pytest

from curves.market import Market
from curves.schema import Schema, Spec
from curves.toml_io import InputError
from engine.pricing.batch import discounted_pv
from products.fixings import CashFlow, EpochFixing, WindowFixing
from products.hashrate_forward import HashrateForward
from products.registry import TRADE_TYPES, Product, file_fields, register

MARKET = Market.default()


@pytest.mark.parametrize("currency,strike", [("USD", 36.0), ("BTC", 0.00046)])
def test_cash_flows_discounted_are_the_pv(currency, strike):
    f = HashrateForward("t", dt.date(2026, 3, 10), dt.date(2026, 6, 5), strike=strike, currency=currency,
                        size_phs=7.0, side="sell")
    fx = f.fixings()
    assert [(x.start, x.end) for x in fx] == [(p.start, p.end) for p in f.fixing_periods()]
    assert all(x.quantity == "hashprice_usd_per_ph_day" for x in fx)
    values = np.array([[35.0, 34.0, 33.5, 33.0], [30.0, 41.0, 29.0, 38.0]])  # two paths
    flows = f.cash_flows(values, MARKET)
    assert [c.pay_date for c in flows] == [x.end for x in fx] and {c.currency for c in flows} == {"USD"}
    pv = sum(MARKET.discount(c.pay_date) * c.amount for c in flows)
    assert np.allclose(pv, discounted_pv(f, values, MARKET), rtol=1e-13, atol=0)
    # by hand, first slice of the first path: the seller pays the index and receives K
    k = strike if currency == "USD" else strike * np.mean(
        [MARKET.btc_forward_usd(dt.date(2026, 3, 10) + dt.timedelta(days=d)) for d in range(22)])
    assert flows[0].amount[0] == pytest.approx(-7.0 * 22 * (35.0 - k), rel=1e-12)


def test_registry_maps_types_and_checks_the_schema():
    assert TRADE_TYPES["hashprice_forward"] is HashrateForward
    assert isinstance(HashrateForward("a", dt.date(2026, 3, 1), dt.date(2026, 3, 31), 36.0, "USD", 1.0), Product)
    assert set(file_fields(HashrateForward)) == set(HashrateForward.schema.specs)

    @dataclasses.dataclass(frozen=True)
    class Drifted:  # its schema lost a field the dataclass has
        trade_id: str
        strike: float
        type_name = "drifted"
        schema = Schema("drifted", {"id": Spec("text"), "type": Spec("choice", choices=("drifted",))})

        def fixings(self):
            return ()

        def cash_flows(self, values, market):
            return []

        def check_market(self, market):
            return None

    with pytest.raises(TypeError, match="schema fields"):
        register(Drifted)
    with pytest.raises(TypeError, match="registered twice"):
        register(HashrateForward)
    with pytest.raises(TypeError, match="not a dataclass"):
        register(object)
    assert "drifted" not in TRADE_TYPES


def test_fixings_refuse_bad_terms():
    with pytest.raises(InputError, match="quantity"):
        WindowFixing("hashrate", dt.date(2026, 3, 1), dt.date(2026, 3, 2))
    with pytest.raises(InputError, match="end"):
        WindowFixing("difficulty", dt.date(2026, 3, 2), dt.date(2026, 3, 1))
    with pytest.raises(InputError, match="start_height"):
        EpochFixing("difficulty", 935_425)
    assert EpochFixing("difficulty", 935_424).start_height == 935_424
    with pytest.raises(InputError, match="currency"):
        CashFlow(dt.date(2026, 3, 1), 1.0, "EUR")


# ---- the engine prices products through their cash flows ---------------------------------------
@dataclasses.dataclass(frozen=True)
class SquaredForward:
    """A convex toy: each month pays size x (index - K)^2 at its end (not affine in the fixing)."""

    trade_id: str
    start: dt.date
    end: dt.date
    strike: float
    size_phs: float
    type_name = "squared_forward"
    currency = "USD"
    notional = None
    initial_margin = None

    def fixings(self):
        return HashrateForward(self.trade_id, self.start, self.end, self.strike, "USD", 1.0).fixings()

    def cash_flows(self, values, market):
        x = np.asarray(values, dtype=float)
        return [CashFlow(f.end, self.size_phs * f.days * (x[..., s] - self.strike) ** 2, "USD")
                for s, f in enumerate(self.fixings())]

    def check_market(self, market):
        return None

    def fair_rate_from_pv(self, pv, market):
        return None


def test_a_convex_payoff_through_the_control_variate_matches_plain_monte_carlo():
    from engine.mc import kernel as K
    from engine.mc.model import ModelParams
    from engine.mc.moments import PairMoments
    from engine.mc.simulation import Simulation
    from engine.pricing.batch import trade_terms
    from engine.pricing.pricer import price_trades

    model = ModelParams.default()
    toy = SquaredForward("sq", dt.date(2026, 3, 1), dt.date(2026, 5, 31), strike=30.0, size_phs=10.0)
    assert not trade_terms(toy, MARKET).affine
    res = price_trades([toy], MARKET, model, paths=20_000, seed=3).trades[0]
    assert res.error is None
    # plain Monte Carlo on the same paths: no control
    sim = Simulation(MARKET, model, n_days=(toy.end - MARKET.asof).days, n_paths=20_000, seed=3)
    fx = toy.fixings()
    windows = [(sim.day_index(f.start), sim.day_index(f.end)) for f in fx]
    plain = PairMoments((1,), sim.block_pairs)

    def on_chunk(_s, wv):
        x = wv[:, :, K.Q_HASHPRICE_USD]
        pv = sum(MARKET.discount(c.pay_date) * c.amount for c in toy.cash_flows(x, MARKET))
        plain.add(pv[:, None])

    sim.run(windows, on_chunk=on_chunk)
    mean, se = float(plain.mean()[0]), float(plain.stderr()[0])
    assert abs(res.pv_usd - mean) <= 3 * se, (res.pv_usd, res.pv_stderr, mean, se)
    assert 0 < res.pv_stderr <= se * 1.0001  # a regression control never adds variance


def test_batched_pricing_equals_trade_by_trade():
    from engine.mc.model import ModelParams
    from engine.pricing.pricer import price_trades

    model = ModelParams.default()
    trades = [HashrateForward(f"t{k}", dt.date(2026, 2 + k % 9, 1), dt.date(2026, 4 + k % 9, 15),
                              strike=30.0 + k if k % 2 == 0 else 0.0004 + k * 1e-6,
                              currency=("USD", "BTC")[k % 2], size_phs=1.0 + k,
                              side=("buy", "sell")[k % 3 == 0]) for k in range(12)]
    together = price_trades(trades, MARKET, model, paths=4_000, seed=8).trades
    for t, r in zip(trades, together):
        alone = price_trades([t], MARKET, model, paths=4_000, seed=8).trades[0]
        assert r.trade_id == alone.trade_id and r.error is None
        assert r.pv_usd == pytest.approx(alone.pv_usd, rel=1e-11, abs=1e-8)
        assert r.pv_stderr == pytest.approx(alone.pv_stderr, rel=1e-9)


def test_results_in_long_format_with_units_and_a_fair_rate_stderr():
    from engine.mc.model import ModelParams
    from engine.pricing.pricer import price_trades
    from products.portfolio import parse_portfolio

    good = HashrateForward("usd", dt.date(2026, 3, 1), dt.date(2026, 4, 30), 36.0, "USD", 5.0)
    btc = HashrateForward("btc", dt.date(2026, 3, 1), dt.date(2026, 3, 31), 0.00045, "BTC", 2.0, "sell")
    _, errors = parse_portfolio({"trade": [{"id": "bad", "type": "nope"}]})
    res = price_trades([good, btc], MARKET, ModelParams.default(), paths=4_000, seed=2, errors=errors)
    df = res.to_frame()
    assert list(df.columns) == ["trade", "type", "measure", "value", "stderr", "unit", "error"]
    rows = df.set_index(["trade", "measure"])
    assert rows.loc[("usd", "pv"), "unit"] == "USD" and rows.loc[("btc", "fair_rate"), "unit"] == "BTC/PH/day"
    assert rows.loc[("usd", "notional"), "value"] == good.notional and rows.loc[("usd", "notional"), "stderr"] == 0
    assert rows.loc[("bad", "pv"), "error"].startswith("type:") and np.isnan(rows.loc[("bad", "pv"), "value"])
    # fair-rate stderr = PV stderr / |dPV/dK|, dPV/dK = -sum of discounted size x days (the buyer)
    by_id = {t.trade_id: t for t in res.trades}
    dpv_dk = sum(MARKET.discount(p.end) * 5.0 * p.days for p in good.fixing_periods())
    assert by_id["usd"].fair_rate_stderr == pytest.approx(by_id["usd"].pv_stderr / dpv_dk, rel=1e-9)
    assert res.to_dict()["results"] == [r for t in res.trades for r in t.rows()]


def test_a_trade_declared_affine_must_be():
    from engine.mc.model import ModelParams
    from engine.pricing.pricer import price_trades

    wrong = SquaredForward("sq", dt.date(2026, 3, 1), dt.date(2026, 3, 31), 30.0, 1.0)
    object.__setattr__(wrong, "affine", True)  # a payoff that says it is affine but is not
    good = HashrateForward("ndf", dt.date(2026, 3, 1), dt.date(2026, 3, 31), 36.0, "USD", 1.0)
    res = {r.trade_id: r for r in price_trades([wrong, good], MARKET, ModelParams.default(), paths=512).trades}
    assert "declared affine" in res["sq"].error and res["ndf"].error is None
