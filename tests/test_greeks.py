"""Greeks by bump and reprice on common random numbers, against closed forms: an NDF's BTC delta
under a frozen network, a BTC option's delta and vega valued on the paths against QuantLib's
BlackCalculator, a future's closed-form Greeks; the stderr that common random numbers buy; the
same numbers whatever the threads or chunk size."""

import datetime as dt
import math
import os

import numba
import numpy as np
import pytest
import QuantLib as ql

from curves import protocol
from curves.market import Market
from engine.mc.model import ModelParams
from engine.pricing.pricer import price_trades
from engine.risk.bumps import shocked_market
from engine.risk.greeks import portfolio_risk
from engine.risk.scenario_grid import ScenarioGrid
from products.btc_future import BtcFuture
from products.btc_option import BtcOption
from products.hashprice_options import HashpriceCap
from products.hashrate_forward import HashrateForward, mean_btc_forward

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FROZEN_MODEL = os.path.join(ROOT, "examples", "frozen_network_model.toml")
MARKET = Market.default()


class OnPaths:
    """A closed-form trade valued on the simulated paths instead (its closed form hidden)."""

    def __init__(self, trade):
        self._trade = trade

    def __getattr__(self, name):
        if name == "analytic_pv_usd":
            raise AttributeError(name)
        return getattr(self._trade, name)


# ---- an NDF under a frozen network -----------------------------------------------------------------
def frozen_market() -> Market:
    """A tenth of the difficulty-implied hashrate, started at its level: no retarget for 61 days,
    so hashvalue is today's on every day through March 2026."""
    implied_ehs = protocol.hashrate_hs_from_difficulty(MARKET.difficulty) / 1e18
    return MARKET.with_(strict=False, hashrate_ehs=0.1 * implied_ehs, hashrate_log_sd=0.0,
                        epoch_seconds_elapsed=0.0)


@pytest.mark.parametrize(("currency", "strike", "side"), [("USD", 30.0, "buy"), ("BTC", 0.0004, "sell")])
def test_frozen_network_ndf_btc_delta_matches_its_closed_form(currency, strike, side):
    m = frozen_market()
    model = ModelParams.load(FROZEN_MODEL)
    ndf = HashrateForward("f", dt.date(2026, 2, 1), dt.date(2026, 3, 31), strike, currency, 25.0, side)
    rep = portfolio_risk([ndf], m, model, paths=2_048, seed=3, grid=None)
    delta, se = rep.value("f", "btc_delta")
    # hashprice_d = hv0 x S_d with hv0 fixed: the floating leg is hv0 x sum(days x DF x mean forward),
    # linear in spot; a BTC strike is struck at the mean forward too, so it moves with spot as well
    hv0 = m.spot_hashvalue_btc_per_ph_day()
    expected = 0.0
    for p in ndf.fixing_periods():
        fwd = mean_btc_forward(m, p)
        k_usd = 0.0 if currency == "USD" else strike * fwd
        expected += ndf.sign * ndf.size_phs * p.days * m.discount(p.end) * (hv0 * fwd - k_usd) / m.btc_spot_usd
    assert delta == pytest.approx(expected, rel=1e-9), (delta, expected)
    assert se <= 1e-9 * abs(expected)
    if currency == "BTC":  # both legs scale with spot: delta = PV / S
        pv, _ = rep.value("f", "pv")
        assert delta == pytest.approx(pv / m.btc_spot_usd, rel=1e-9)


# ---- a BTC option on the paths against QuantLib ---------------------------------------------------------
def black(m: Market, option: BtcOption) -> ql.BlackCalculator:
    kind = ql.Option.Call if option.option == "call" else ql.Option.Put
    return ql.BlackCalculator(ql.PlainVanillaPayoff(kind, option.strike_usd), m.btc_forward_usd(option.expiry),
                              math.sqrt(m.btc_total_variance(option.expiry)), m.discount(option.expiry))


@pytest.mark.parametrize("kind", ["call", "put"])
def test_option_delta_and_vega_through_the_simulation_match_black_calculator(kind):
    m = MARKET.with_(btc_vols=(), btc_vol=0.5)  # a flat vol: +0.01 moves the expiry's vol by 0.01
    model = ModelParams.default().with_(btc_jump_intensity_per_year=0.0)
    option = BtcOption("o", dt.date(2026, 5, 29), strike_usd=85_000.0, option=kind, size_btc=2.0)
    rep = portfolio_risk([OnPaths(option)], m, model, paths=16_384, seed=5, grid=None)
    calc = black(m, option)
    t = m.year_fraction(option.expiry)
    ql_delta = option.size_btc * calc.delta(m.btc_spot_usd)
    ql_vega = option.size_btc * calc.vega(t) * 0.01
    delta, delta_se = rep.value("o", "btc_delta")
    vega, vega_se = rep.value("o", "vega_per_vol_point")
    print(f"{kind}: delta {delta:.5f} +/- {delta_se:.5f} (QuantLib {ql_delta:.5f}); "
          f"vega {vega:.3f} +/- {vega_se:.3f} (QuantLib {ql_vega:.3f})")
    assert 0 < delta_se < 0.02 * abs(ql_delta) and 0 < vega_se < 0.02 * ql_vega
    assert abs(delta - ql_delta) <= 3 * delta_se
    assert abs(vega - ql_vega) <= 3 * vega_se
    # the closed form itself, bumped analytically: no stderr, the finite differences' error alone
    closed = portfolio_risk([option], m, model, paths=512, seed=5, grid=None)
    assert closed.value("o", "btc_delta") == pytest.approx((ql_delta, 0.0), rel=1e-4, abs=1e-12)
    assert closed.value("o", "vega_per_vol_point") == pytest.approx((ql_vega, 0.0), rel=1e-4, abs=1e-12)


def test_btc_future_greeks_are_its_closed_form():
    fut = BtcFuture("f", dt.date(2026, 6, 26), contracts=3, contract_btc=5.0, price_usd=80_000.0, style="linear",
                    side="sell")
    rep = portfolio_risk([fut], MARKET, ModelParams.default(), paths=512, seed=1, grid=None)
    fwd = MARKET.btc_forward_usd(fut.expiry)
    assert rep.value("f", "btc_delta") == pytest.approx((-15.0 * fwd / MARKET.btc_spot_usd, 0.0), rel=1e-10)
    for name in ("btc_gamma_per_1pct", "vega_per_vol_point", "hashrate_start_per_1pct", "usd_dv01"):
        assert rep.value("f", name) == (0.0, 0.0), name
    rolled = MARKET.btc_spot_usd * math.exp(MARKET.btc_basis_annual * ((fut.expiry - MARKET.asof).days - 1) / 365)
    assert rep.value("f", "theta_1d")[0] == pytest.approx(-15.0 * (rolled - fwd), rel=1e-9)


# ---- common random numbers ----------------------------------------------------------------------------
def test_common_random_numbers_shrink_a_bumps_stderr():
    ndf = HashrateForward("q", dt.date(2026, 3, 1), dt.date(2026, 4, 30), 35.0, "USD", 100.0)
    model = ModelParams.default()
    paths = 8_192
    rep = portfolio_risk([ndf], MARKET, model, paths=paths, seed=11, grid=None)
    crn, crn_se = rep.value("q", "hashrate_start_per_1pct")
    # the same bump as the difference of two independent runs
    base = price_trades([ndf], MARKET, model, paths=paths, seed=11).trades[0]
    bumped = price_trades([ndf], shocked_market(MARKET, hashrate_rel=0.01), model, paths=paths, seed=12).trades[0]
    independent, independent_se = bumped.pv_usd - base.pv_usd, math.hypot(base.pv_stderr, bumped.pv_stderr)
    ratio = crn_se / independent_se
    print(f"hashrate +1%: {crn:.2f} +/- {crn_se:.3f} USD on common random numbers; "
          f"{independent:.2f} +/- {independent_se:.2f} from two independent runs; stderr ratio {ratio:.4f}")
    assert crn < 0  # a buyer of the index loses when hashrate is higher
    assert ratio < 0.02
    assert abs(crn - independent) <= 4 * math.hypot(crn_se, independent_se)


# ---- reproducibility ----------------------------------------------------------------------------------
def small_book():
    return [HashrateForward("ndf", dt.date(2026, 3, 1), dt.date(2026, 4, 30), 35.0, "USD", 50.0),
            HashpriceCap("cap", dt.date(2026, 4, 1), dt.date(2026, 5, 31), 36.0, "USD", 40.0),
            BtcOption("put", dt.date(2026, 4, 24), 70_000.0, "put", 1.0)]


def test_greeks_are_bit_identical_for_any_threads_and_chunk_size():
    grid = ScenarioGrid.parse("-10,0:0,5")
    runs = []
    for threads, chunk in ((1, 1_024), (2, 4_096), (2, None)):
        if threads > numba.config.NUMBA_NUM_THREADS:
            pytest.skip("machine has fewer threads")
        rep = portfolio_risk(small_book(), MARKET, ModelParams.default(), paths=6_000, seed=9, grid=grid,
                             threads=threads, chunk_paths=chunk)
        runs.append(rep)
    ref = runs[0]
    assert ref.extra["chunk_paths"] == 1_024 and runs[1].extra["chunk_paths"] == 4_096
    for other in runs[1:]:
        assert other.to_frame().equals(ref.to_frame())
        assert other.grid_frame().equals(ref.grid_frame())
    values = ref.to_frame()["value"].to_numpy(dtype=float)
    assert np.isfinite(values).all() and ref.to_frame()["error"].isna().all()


def test_portfolio_total_is_the_per_path_sum():
    rep = portfolio_risk(small_book(), MARKET, ModelParams.default(), paths=4_096, seed=2, grid=None)
    for measure, rows in rep.to_frame().groupby("measure"):
        by = rows.set_index("trade")
        assert by.loc["portfolio", "value"] == pytest.approx(by.value.drop("portfolio").sum(), rel=1e-9,
                                                             abs=1e-9), measure
    # a trade and its mirror: each has a stderr, their total is zero on every path, and so is its
    # stderr (a root-sum-square of the trades' stderrs would not be)
    long = HashrateForward("long", dt.date(2026, 3, 1), dt.date(2026, 4, 30), 35.0, "USD", 50.0, "buy")
    short = HashrateForward("short", dt.date(2026, 3, 1), dt.date(2026, 4, 30), 35.0, "USD", 50.0, "sell")
    rep = portfolio_risk([long, short], MARKET, ModelParams.default(), paths=4_096, seed=2, grid=None)
    for measure, rows in rep.to_frame().groupby("measure"):
        by = rows.set_index("trade")
        assert by.loc["short", "stderr"] == pytest.approx(by.loc["long", "stderr"], rel=1e-12), measure
        assert abs(by.loc["portfolio", "value"]) <= 1e-9 * max(1.0, abs(by.loc["long", "value"])), measure
        assert by.loc["portfolio", "stderr"] <= 1e-9 * max(1.0, abs(by.loc["long", "value"])), measure
    assert rep.value("long", "pv")[1] > 0 and rep.value("long", "btc_delta")[1] > 0
