"""The product protocol: fixings, cash flows, and a registry that keeps schema and dataclass in step."""

import dataclasses
import datetime as dt

import numpy as np
import pytest

from curves.market import Market
from curves.schema import Schema, Spec
from curves.toml_io import InputError
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
    assert np.allclose(pv, f.pv_usd(values, MARKET), rtol=1e-13, atol=0)
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
