"""The miner's hedge against closed forms: with difficulty and fees frozen, BTC lognormal (no
jumps), the fleet's BTC output is deterministic, so the hedges and curtailment have closed forms."""

import os

import numpy as np
import pytest
import QuantLib as ql

from curves.market import Market
from engine.mc.model import ModelParams
from engine.mc.simulation import Simulation
from engine.risk import fleet_paths
from engine.risk.hedge import hedge_fleet
from products.fleet_file import parse_fleet_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FROZEN = ModelParams.load(os.path.join(ROOT, "examples", "frozen_network_model.toml"))
MARKET = Market.default().with_(strict=False, hashrate_log_sd=0.0)  # today's hashrate known: no spread
PATHS = 20_000


def fleet_doc(**fleet):
    base = {"hashrate_phs": 100.0, "efficiency_j_per_th": 20.0, "power_usd_per_kwh": 0.05, "uptime": 0.95,
            "opex_usd_per_day": 500.0}
    base.update(fleet)
    return {"fleet": base, "hedge": {"horizon_months": 3}}


def daily_hashvalue(ff, market=MARKET):
    """hashvalue per day on the frozen network (every path the same: checked)."""
    fleet = ff.position(market.asof)
    n_days = (fleet.expiries[-1] - market.asof).days
    sim = Simulation(market, FROZEN, n_days=n_days, n_paths=64, seed=3)
    _, wv, _, _ = next(sim.path_chunks([(t, t) for t in range(n_days)]))
    hv = wv[:, :, 0] / wv[:, :, 3]
    np.testing.assert_allclose(hv, np.broadcast_to(hv[0], hv.shape), rtol=1e-12)
    return hv[0]


def test_btc_sold_at_expiry_min_variance_equals_delta_equals_btc_mined():
    ff = parse_fleet_file(fleet_doc(btc_sold="at_expiry"))
    rep = hedge_fleet(ff, MARKET, FROZEN, paths=PATHS, seed=1).report
    for m in rep["months"]:
        assert m["expected_btc_mined_stderr"] < 1e-9 * m["expected_btc_mined"]  # deterministic output
        assert m["delta_hedge_btc"] == pytest.approx(m["expected_btc_mined"], rel=1e-12)
        assert m["min_variance_hedge_btc"] == pytest.approx(m["delta_hedge_btc"], rel=0.01)
        assert m["hedge_effectiveness"]["delta"] > 0.99
        assert m["hedge_effectiveness"]["min_variance"] > 0.99
    assert rep["pnl"]["delta"]["effectiveness"] > 0.99
    assert rep["pnl"]["unhedged"]["std_usd"] > 100 * rep["pnl"]["delta"]["std_usd"]


def closed_form_min_variance(a_btc, fwd, var, k_expiry):
    """Daily sales sum_t a_t S_t hedged with S_T (T = day k_expiry), S lognormal with total
    variance var_t: h* = sum a_t F_t (e^v_t - 1) / (F_T (e^v_T - 1)), effectiveness = corr^2."""
    ex = np.expm1(var)
    cov_xs = np.sum(a_btc * fwd * fwd[k_expiry] * ex)
    var_s = fwd[k_expiry] ** 2 * ex[k_expiry]
    vmin = np.minimum.outer(var, var)
    var_x = np.sum(np.outer(a_btc * fwd, a_btc * fwd) * np.expm1(vmin))
    return cov_xs / var_s, cov_xs**2 / (var_x * var_s)


def test_daily_sales_min_variance_hedge_and_effectiveness_match_lognormal_closed_forms():
    ff = parse_fleet_file(fleet_doc())
    rep = hedge_fleet(ff, MARKET, FROZEN, paths=PATHS, seed=2).report
    fleet = ff.position(MARKET.asof)
    hv = daily_hashvalue(ff)[:fleet.n_days]
    q = np.asarray(fleet.hashrate_phs)[fleet.month_of_day] * fleet.uptime
    days = fleet.days
    fwd = np.array([MARKET.btc_forward_usd(d) for d in days])
    var = np.array([MARKET.btc_total_variance(d) for d in days])
    for m in range(len(fleet.periods)):
        sel = fleet.month_of_day == m
        k_exp = int(np.flatnonzero(sel)[-1])
        idx = np.flatnonzero(sel)
        h, eff = closed_form_min_variance(q[idx] * hv[idx], fwd[idx], var[idx], len(idx) - 1)
        row = rep["months"][m]
        se = row["min_variance_hedge_btc_stderr"]
        assert abs(row["min_variance_hedge_btc"] - h) < 3 * se, (m, row["min_variance_hedge_btc"], h, se)
        assert se < 0.02 * h  # the test has power
        assert row["delta_hedge_btc"] == pytest.approx(float(np.sum(q[idx] * hv[idx])), rel=1e-9)
        pm = rep["pnl"]["min_variance"]["months"][m]
        assert abs(pm["effectiveness"] - eff) < 3 * pm["effectiveness_stderr"], (m, pm["effectiveness"], eff)
        assert k_exp == idx[-1]
    # the month's BTC is sold through the month, so the best hedge is about half the BTC mined
    assert rep["months"][0]["min_variance_hedge_btc"] < 0.7 * rep["months"][0]["delta_hedge_btc"]


def test_curtailment_on_the_days_own_index_is_a_strip_of_daily_black76_puts():
    ff = parse_fleet_file(fleet_doc(curtailment=True, curtailment_signal="same_day", power_usd_per_kwh=0.07))
    rep = hedge_fleet(ff, MARKET, FROZEN, paths=PATHS, seed=3).report
    fleet = ff.position(MARKET.asof)
    hv = daily_hashvalue(ff)[:fleet.n_days]
    q = np.asarray(fleet.hashrate_phs)[fleet.month_of_day] * fleet.uptime
    cost = fleet.power_cost_usd_per_ph_day[fleet.month_of_day]
    strip = 0.0
    for t, d in enumerate(fleet.days):
        put = ql.BlackCalculator(ql.PlainVanillaPayoff(ql.Option.Put, cost[t] / hv[t]), MARKET.btc_forward_usd(d),
                                 np.sqrt(MARKET.btc_total_variance(d)), 1.0)
        strip += q[t] * hv[t] * put.value()
    value, se = rep["curtailment_value_usd"], rep["curtailment_value_usd_stderr"]
    assert value > 0.05 * rep["months"][0]["expected_power_cost_usd"]  # the options matter
    assert abs(value - strip) < 3 * se, (value, strip, se)
    assert rep["curtailment_upper_bound_usd"] == value  # same-day signal: the bound itself


def test_yesterdays_index_earns_less_than_the_days_own():
    ff = parse_fleet_file(fleet_doc(curtailment=True, power_usd_per_kwh=0.07))
    rep = hedge_fleet(ff, MARKET, ModelParams.default(), paths=PATHS, seed=4).report
    gap = rep["curtailment_upper_bound_usd"] - rep["curtailment_value_usd"]
    assert gap > 3 * rep["curtailment_upper_bound_usd_stderr"]
    assert rep["curtailment_value_usd"] > 0


def test_ndf_hedge_removes_all_risk_without_curtailment_and_mean_is_unchanged():
    """Selling the month's expected output at the fair strike turns revenue into a fixed amount."""
    rep = hedge_fleet(parse_fleet_file(fleet_doc()), Market.default(), ModelParams.default(), paths=4_000,
                      seed=5).report
    assert rep["pnl"]["hashprice_forward"]["std_usd"] < 1e-6 * rep["pnl"]["unhedged"]["std_usd"]
    assert rep["pnl"]["hashprice_forward"]["mean_usd"] == pytest.approx(rep["pnl"]["unhedged"]["mean_usd"],
                                                                        rel=1e-12)
    for name in ("delta", "min_variance", "collar"):
        assert 0 < rep["pnl"][name]["effectiveness"] < 1


def test_cme_expiries_roll_the_last_days_into_the_next_contract():
    doc = fleet_doc(btc_sold="at_expiry")
    doc["hedge"]["expiry_rule"] = "cme_last_friday"
    ff = parse_fleet_file(doc)
    rep = hedge_fleet(ff, MARKET, FROZEN, paths=2_000, seed=6).report
    contracts = rep["hedges"]["btc_future"]
    assert [c["expiry"] for c in contracts] == ["2026-02-27", "2026-03-27", "2026-04-24", "2026-05-29"]
    assert rep["months"][-1]["roll_futures_expiry"] == "2026-05-29"
    total_btc = sum(m["expected_btc_mined"] for m in rep["months"])
    assert sum(c["delta_hedge_btc"] for c in contracts) == pytest.approx(total_btc, rel=1e-12)
    assert rep["pnl"]["delta"]["effectiveness"] > 0.99  # BTC held to the expiry it is hedged to


def test_results_do_not_depend_on_threads_or_chunk_size(monkeypatch):
    ff = parse_fleet_file(fleet_doc(curtailment=True))
    model = ModelParams.default()
    a = hedge_fleet(ff, Market.default(), model, paths=3_000, seed=7, threads=1).report
    monkeypatch.setattr(fleet_paths, "CHUNK_BYTES", 2**20)  # many small chunks
    b = hedge_fleet(ff, Market.default(), model, paths=3_000, seed=7, threads=2).report
    assert a == b


def test_token_is_a_strip_of_calls_worth_less_than_its_output():
    doc = fleet_doc()
    doc["token"] = {"ths_per_token": 10.0, "life_months": 6, "fee_usd_per_th_day": 0.002}
    rep = hedge_fleet(parse_fleet_file(doc), Market.default(), ModelParams.default(), paths=4_000, seed=8).report
    tok = rep["token"]
    assert tok["pv_usd"] > 0 and tok["pv_usd_stderr"] < 0.05 * tok["pv_usd"]
    assert tok["value_usd"]["p05"] >= 0 and tok["paid_btc"]["p05"] >= 0
    assert tok["value_usd"]["p05"] < tok["value_usd"]["p50"] < tok["value_usd"]["p95"]
    assert tok["end"] == "2026-07-31"
