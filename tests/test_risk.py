"""Risk around the Greeks: theta's rolled market against the protocol and a closed form, the joint
moments behind the portfolio's stderr, deltas to quoted forwards, the scenario grid, bad trades
and bad scenario strings, and the ``hashprice risk`` command."""

import datetime as dt
import json
import math
import os

import numpy as np
import pandas as pd
import pytest
import tomli_w
from cli_run import run_main

from curves import protocol
from curves.market import Market
from curves.toml_io import InputError
from engine.calibration.quotes import load_quotes
from engine.mc.model import ModelParams
from engine.mc.moments import PairMoments
from engine.risk.greeks import portfolio_risk
from engine.risk.joint_moments import JointMoments
from engine.risk.roll import market_rolled_one_day, rolled_day_fixings
from engine.risk.scenario_grid import DEFAULT_SCENARIOS, ScenarioGrid
from products.btc_future import BtcFuture
from products.btc_option import BtcOption
from products.hashrate_forward import HashrateForward
from products.portfolio import parse_portfolio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FROZEN_MODEL = os.path.join(ROOT, "examples", "frozen_network_model.toml")
QUOTES = os.path.join(ROOT, "examples", "quotes.csv")
MARKET = Market.default()


# ---- theta's market --------------------------------------------------------------------------------
def test_rolled_market_inside_an_epoch():
    m = MARKET
    r = market_rolled_one_day(m, ModelParams.default())
    assert r.asof == m.asof + dt.timedelta(days=1) and r.height == m.height + 144
    assert r.difficulty == m.difficulty and r.epoch_seconds_elapsed == m.epoch_seconds_elapsed + 86_400
    assert (r.btc_spot_usd, r.fee_btc_per_block, r.hashrate_ehs) == (m.btc_spot_usd, m.fee_btc_per_block,
                                                                     m.hashrate_ehs)
    tau = ModelParams.default().hashprice_ema_days
    ema = m.hashprice_ema_usd_per_ph_day
    assert r.hashprice_ema_usd_per_ph_day == pytest.approx(ema + (m.spot_hashprice_usd_per_ph_day() - ema) / tau)
    day = rolled_day_fixings(m)
    assert day["hashprice_usd_per_ph_day"] == pytest.approx(m.spot_hashprice_usd_per_ph_day(), rel=1e-12)


def test_rolled_market_across_a_retarget_follows_the_protocol():
    # the epoch's last block comes 99 blocks after the close (600 s each); the day's other 45 blocks
    # are mined at the new difficulty, the first of them the new epoch's block 0
    start = MARKET.height - MARKET.height % 2016
    height = start + 2016 - 100
    elapsed = 1_300_000.0
    m = MARKET.with_(strict=False, height=height, epoch_seconds_elapsed=elapsed)
    r = market_rolled_one_day(m, ModelParams.default())
    timespan = elapsed + 99 * 600.0
    d_new = m.difficulty * 1_209_600.0 / timespan
    assert r.difficulty == pytest.approx(d_new, rel=1e-14)
    assert r.height == height + 144 and r.height % 2016 == 44
    assert r.epoch_seconds_elapsed == pytest.approx(44 * 600.0)  # the new epoch's first block is its block 0
    day = rolled_day_fixings(m)
    assert day["difficulty_x_blocks"] == pytest.approx(99 * m.difficulty + 45 * d_new, rel=1e-14)
    hv = [protocol.hashvalue_btc_per_ph_day(d, 3.125, m.fee_btc_per_block) for d in (m.difficulty, d_new)]
    assert day["hashvalue_btc_per_ph_day"] == pytest.approx((99 * hv[0] + 45 * hv[1]) / 144, rel=1e-12)


def test_theta_of_an_ndf_delivering_from_tomorrow_matches_its_closed_form():
    # a frozen network with no retarget in sight and a BTC with (almost) no vol: the index is
    # hv0 x F(d) on every day; rolled, tomorrow fixes at today's index hv0 x S and the rest at the
    # rolled forwards, all discounted from the new as-of date
    implied = protocol.hashrate_hs_from_difficulty(MARKET.difficulty) / 1e18
    m = MARKET.with_(strict=False, hashrate_ehs=0.1 * implied, hashrate_log_sd=0.0, epoch_seconds_elapsed=0.0,
                     btc_vols=(), btc_vol=1e-9)
    ndf = HashrateForward("f", dt.date(2026, 2, 1), dt.date(2026, 2, 28), 32.0, "USD", 10.0, "buy")
    rep = portfolio_risk([ndf], m, ModelParams.load(FROZEN_MODEL), paths=1_024, seed=4, grid=None)
    theta, se = rep.value("f", "theta_1d")
    hv0, s, b, r = m.spot_hashvalue_btc_per_ph_day(), m.btc_spot_usd, m.btc_basis_annual, m.usd_rate
    base = 28 * math.exp(-r * 28 / 365) * (np.mean([hv0 * s * math.exp(b * d / 365) for d in range(1, 29)]) - 32.0)
    rolled_days = [hv0 * s] + [hv0 * s * math.exp(b * (d - 1) / 365) for d in range(2, 29)]
    rolled = 28 * math.exp(-r * 27 / 365) * (np.mean(rolled_days) - 32.0)
    expected = 10.0 * (rolled - base)
    assert theta == pytest.approx(expected, rel=1e-6), (theta, expected)
    assert se < 1e-6 * abs(expected)


# ---- the portfolio's stderr from the joint moments ---------------------------------------------------
def test_joint_moments_give_the_stderr_of_the_sum_of_control_variate_estimates():
    rng = np.random.default_rng(3)
    n, t = 6_000, 3
    c = rng.lognormal(0.0, 0.4, size=(n, 1, t)) * np.array([1.0, 2.0, 0.5])
    common = rng.normal(0.0, 0.5, size=(n, 1, 1))  # noise the trades share: their residuals correlate
    x = c * np.array([1.5, -0.7, 3.0]) + rng.normal(0.0, 0.3, size=(n, 1, t)) + common
    mu = np.array([1.0, 2.0, 0.5]) * math.exp(0.08)
    pm = PairMoments((1, t + 1), block_pairs=256)
    x_full = np.concatenate([x, x.sum(axis=2, keepdims=True)], axis=2)
    c_full = np.concatenate([c, c.sum(axis=2, keepdims=True)], axis=2)
    pm.add(x_full, c_full)
    jm = JointMoments(1, t, block_pairs=256)
    jm.add(x_full[:, :, t], c)
    # by hand on the pair means: each trade's beta, then Y = X - sum beta_i c_i per pair
    px, pc = 0.5 * (x[0::2, 0] + x[1::2, 0]), 0.5 * (c[0::2, 0] + c[1::2, 0])
    beta = np.array([np.cov(px[:, i], pc[:, i])[0, 1] / np.var(pc[:, i], ddof=1) for i in range(t)])
    y = px.sum(axis=1) - pc @ beta
    expected_se = y.std(ddof=1) / math.sqrt(y.size)
    expected_mean = float(np.sum(pm.mean(np.append(mu, mu.sum()))[0, :t]))
    got = jm.total_stderr(pm.sums[0][:, t], pm.sums[1][:, t], pm.sums[2][:, :t], beta[None, :])[0]
    assert got == pytest.approx(expected_se, rel=1e-9)
    assert y.mean() + beta @ mu == pytest.approx(expected_mean, rel=1e-12)
    # the sum's stderr is neither the root-sum-square of the trades' nor the summed-control one
    rss = math.sqrt(float(np.sum(pm.stderr(np.append(mu, mu.sum()))[0, :t] ** 2)))
    assert abs(got - rss) > 0.05 * rss


# ---- deltas to quoted forwards --------------------------------------------------------------------------
def test_quote_delta_of_an_ndf_on_a_quoted_window():
    # after re-bootstrapping, the model forward of March equals its quote: an NDF on March moves by
    # size x days x DF per USD/PH/day of the March quote, and hardly at all with the February quote
    quotes = load_quotes(QUOTES, MARKET.asof)[:2]
    ndf = HashrateForward("mar", dt.date(2026, 3, 1), dt.date(2026, 3, 31), 35.0, "USD", 10.0, "buy")
    rep = portfolio_risk([ndf], MARKET, ModelParams.default(), paths=4_096, seed=7, quotes=quotes,
                         calibration_paths=4_096, grid=None)
    weight = 10.0 * 31 * MARKET.discount(dt.date(2026, 3, 31))
    feb, feb_se = rep.value("mar", "quote_delta", "feb26 2026-02-01..2026-02-28")
    mar, mar_se = rep.value("mar", "quote_delta", "mar26 2026-03-01..2026-03-31")
    print(f"quote deltas: feb {feb:.2f} +/- {feb_se:.2f}, mar {mar:.2f} +/- {mar_se:.2f} (size x days x DF "
          f"{weight:.2f})")
    # the pricing paths are the calibration's (same seed and paths): the move is the quote's, to the fit
    assert mar == pytest.approx(weight, rel=1e-3)
    assert abs(feb) < 1e-3 * weight
    assert rep.extra["shift"] == "bootstrapped from the quotes"


# ---- the scenario grid ---------------------------------------------------------------------------------
def test_scenario_grid_of_a_linear_future_is_exact():
    fut = BtcFuture("f", dt.date(2026, 6, 26), contracts=2, contract_btc=5.0, price_usd=80_000.0, style="linear")
    grid = ScenarioGrid.parse("-20,0,15:-10,0")
    rep = portfolio_risk([fut], MARKET, ModelParams.default(), paths=512, seed=1, grid=grid)
    fwd = MARKET.btc_forward_usd(fut.expiry)
    frame = rep.grid_frame()
    assert len(frame) == 6 and frame["error"].isna().all()
    for cell in frame.itertuples():
        assert cell.change_usd == pytest.approx(10.0 * fwd * cell.btc_pct / 100, rel=1e-9, abs=1e-6)
        assert cell.pv_usd == pytest.approx(10.0 * (fwd * (1 + cell.btc_pct / 100) - 80_000.0), rel=1e-9)
        assert cell.change_stderr == 0.0


def test_scenario_grid_cells_move_the_way_the_greeks_say():
    ndf = HashrateForward("q", dt.date(2026, 3, 1), dt.date(2026, 4, 30), 35.0, "USD", 100.0)
    grid = ScenarioGrid.parse("-1,0,1:0,1")
    rep = portfolio_risk([ndf], MARKET, ModelParams.default(), paths=4_096, seed=3, grid=grid)
    cells = {(c.btc_pct, c.hashrate_pct): c for c in rep.grid}
    # the +-1% BTC cells are the delta's own scenarios, the +1% hashrate cell the hashrate bump's
    delta, _ = rep.value("q", "btc_delta")
    assert (cells[(1.0, 0.0)].change_usd - cells[(-1.0, 0.0)].change_usd) / (0.02 * MARKET.btc_spot_usd) == \
        pytest.approx(delta, rel=1e-9)
    assert cells[(0.0, 1.0)].change_usd == pytest.approx(rep.value("q", "hashrate_start_per_1pct")[0], rel=1e-9)
    # the base cell is the ladder's PV: every total is the sum of the trades' estimates
    assert cells[(0.0, 0.0)].change_usd == 0.0
    assert (cells[(0.0, 0.0)].pv_usd, cells[(0.0, 0.0)].pv_stderr) == rep.value("portfolio", "pv")


@pytest.mark.parametrize(("text", "words"), [
    ("10", "expected BTC_PCTS:HASHRATE_PCTS"), ("a:0", "BTC percentages: 'a' is not a number"),
    ("0:x", "hashrate percentages: 'x'"), ("0,0:1", "repeats"), ("-100:0", "(-100, 1000]"),
    ("0:1,,2", "comma-separated"), ("1:2:3", "expected"), ("nan:0", "finite"),
])
def test_bad_scenario_strings_name_the_field(text, words):
    with pytest.raises(InputError) as err:
        ScenarioGrid.parse(text)
    assert err.value.field == "scenarios" and words in str(err.value)


def test_default_scenarios_parse():
    g = ScenarioGrid.parse(DEFAULT_SCENARIOS)
    assert g.btc_pcts == (-20, -10, 0, 10, 20) and g.hashrate_pcts == (-10, 0, 10)


# ---- bad trades ------------------------------------------------------------------------------------------
def test_bad_trades_are_reported_and_the_others_get_risk():
    trades, errors = parse_portfolio({"trade": [
        {"id": "ok", "type": "hashprice_forward", "start": "2026-03-01", "end": "2026-03-31", "strike": 35.0,
         "currency": "USD", "size_phs": 10.0},
        {"id": "unparsable", "type": "hashprice_forward", "start": "2026-03-01", "end": "2026-03-31",
         "strike": 35.0, "currency": "EUR", "size_phs": 10.0},
        {"id": "unit-slip", "type": "hashprice_forward", "start": "2026-03-01", "end": "2026-03-31",
         "strike": 35_000.0, "currency": "USD", "size_phs": 10.0},
        {"id": "expires-tomorrow", "type": "btc_option", "expiry": "2026-02-01", "strike_usd": 80_000.0,
         "option": "call", "size_btc": 1.0},
    ]})
    rep = portfolio_risk(trades, MARKET, ModelParams.default(), paths=2_048, seed=1, errors=errors, grid=None)
    frame = rep.to_frame()
    assert list(dict.fromkeys(frame.trade)) == ["ok", "unparsable", "unit-slip", "expires-tomorrow", "portfolio"]
    bad = frame[frame.trade.isin(["unparsable", "unit-slip"])]
    assert len(bad) == 2 and bad.value.isna().all()
    assert bad.set_index("trade").error["unparsable"].startswith("currency:")
    assert bad.set_index("trade").error["unit-slip"].startswith("strike:")
    ok = frame[frame.trade == "ok"].set_index("measure")
    assert ok.error.isna().all() and np.isfinite(ok.value.astype(float)).all()
    # the option has every measure but theta: rolled one day on, it expires on the as-of date
    opt = frame[frame.trade == "expires-tomorrow"].set_index("measure")
    assert opt.error.drop("theta_1d").isna().all()
    assert opt.error["theta_1d"].startswith("market rolled one day: expiry:")
    total = frame[frame.trade == "portfolio"].set_index("measure")
    assert total.value["theta_1d"] == pytest.approx(ok.value["theta_1d"], rel=1e-12)
    assert "excludes expires-tomorrow" in total.error["theta_1d"]
    assert total.value["pv"] == pytest.approx(ok.value["pv"] + opt.value["pv"], rel=1e-12)


def test_a_scenario_that_cannot_be_built_fails_only_its_measures():
    m = MARKET.with_(strict=False, btc_vols=(), btc_vol=0.005)  # minus a vol point: a negative vol
    opt = BtcOption("o", dt.date(2026, 6, 26), 80_000.0, "call", 1.0)
    rep = portfolio_risk([opt], m, ModelParams.default(), paths=512, seed=1, grid=None)
    frame = rep.to_frame().set_index(["trade", "measure"])
    assert frame.error[("o", "vega_per_vol_point")].startswith("BTC vols -0.01: btc_vol:")
    assert frame.error.drop(("o", "vega_per_vol_point")).drop(("portfolio", "vega_per_vol_point")).isna().all()


# ---- the command -----------------------------------------------------------------------------------------
def small_portfolio(tmp_path):
    p = tmp_path / "book.toml"
    p.write_text(tomli_w.dumps({"trade": [
        {"id": "ndf", "type": "hashprice_forward", "start": dt.date(2026, 3, 1), "end": dt.date(2026, 4, 30),
         "strike": 35.0, "currency": "USD", "size_phs": 10.0, "side": "buy"},
        {"id": "put", "type": "btc_option", "expiry": dt.date(2026, 4, 24), "strike_usd": 70_000.0,
         "option": "put", "size_btc": 1.0, "side": "buy"}]}))
    return p


def test_cli_risk_json_and_ladder_file(tmp_path):
    book, out = small_portfolio(tmp_path), tmp_path / "ladder.csv"
    res = run_main(["risk", book, "--paths", "2000", "--scenarios", "-10,0,10:0", "--json", "--out", out])
    assert res.code == 0, res.stderr + res.trace
    doc = json.loads(res.stdout)
    assert {"asof", "paths", "seed", "conventions", "ladder", "grid"} <= set(doc)
    ladder = pd.DataFrame(doc["ladder"])
    assert set(ladder.trade) == {"ndf", "put", "portfolio"}
    assert {"btc_delta", "vega_per_vol_point", "usd_dv01", "theta_1d"} <= set(ladder.measure)
    assert doc["grid"]["btc_pcts"] == [-10, 0, 10] and len(doc["grid"]["cells"]) == 3
    written = pd.read_csv(out)
    assert list(written.columns) == ["trade", "type", "measure", "bucket", "value", "stderr", "unit", "error"]
    assert len(written) == len(ladder)
    assert np.allclose(written.value.to_numpy(float), ladder.value.to_numpy(float), rtol=1e-12)


def test_cli_risk_tables(tmp_path):
    res = run_main(["risk", small_portfolio(tmp_path), "--paths", "1000", "--scenarios", "0,10:-5,0"])
    assert res.code == 0, res.stderr + res.trace
    for words in ("Risk of book.toml", "Risk ladder by trade", "Scenario grid", "hashrate -5%", "base PV"):
        assert words in res.stdout, words


@pytest.mark.parametrize(("args", "start"), [
    (["--scenarios", "10"], "error: scenarios: expected BTC_PCTS:HASHRATE_PCTS"),
    (["--scenarios", "0:zero"], "error: scenarios: hashrate percentages: 'zero' is not a number"),
    (["--paths", "100"], "error: paths:"),
    (["--quotes", "missing.csv"], "error: quotes:"),
    (["--out", "ladder.xlsx"], "error: out:"),
])
def test_cli_risk_bad_input_is_one_line(tmp_path, args, start):
    res = run_main(["risk", small_portfolio(tmp_path), "--paths", "600", *args])
    assert res.code == 2 and res.exception is None, res.trace
    assert res.stderr.startswith(start) and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert res.stdout == "" and not (tmp_path / "ladder.xlsx").exists()


def small_fleet(tmp_path):
    p = tmp_path / "fleet.toml"
    p.write_text(tomli_w.dumps({
        "fleet": {"hashrate_phs": 50.0, "efficiency_j_per_th": 20.0, "power_usd_per_kwh": 0.05, "uptime": 0.97,
                  "opex_usd_per_day": 500.0, "curtailment": True, "btc_sold": "daily"},
        "hedge": {"horizon_months": 2},
        "token": {"ths_per_token": 1.0, "life_months": 2, "fee_usd_per_th_day": 0.0015}}))
    return p


def test_cli_risk_with_a_fleet_ladders_it_with_the_portfolio(tmp_path):
    res = run_main(["risk", small_portfolio(tmp_path), "--fleet", small_fleet(tmp_path), "--paths", "2000",
                    "--scenarios", "-10,0,10:-10,0", "--json"])
    assert res.code == 0, res.stderr + res.trace
    ladder = pd.DataFrame(json.loads(res.stdout)["ladder"])
    assert set(ladder.trade) == {"ndf", "put", "fleet", "token", "portfolio"}
    assert ladder.error.isna().all(), ladder[ladder.error.notna()]
    value = ladder.set_index(["trade", "measure"]).value
    # a miner is long BTC and hashprice: more BTC is worth more, more network hashrate less
    assert value["fleet", "pv"] > 0 and value["fleet", "btc_delta"] > 0
    assert value["fleet", "hashrate_start_per_1pct"] < 0 and value["token", "hashrate_start_per_1pct"] < 0
    assert np.isfinite(value["fleet", "theta_1d"])
    total = sum(value[t, "pv"] for t in ("ndf", "put", "fleet", "token"))
    assert value["portfolio", "pv"] == pytest.approx(total, rel=1e-12)


def test_cli_risk_fleet_bad_input_is_one_line(tmp_path):
    book = tmp_path / "clash.toml"
    book.write_text(tomli_w.dumps({"trade": [
        {"id": "fleet", "type": "hashprice_forward", "start": dt.date(2026, 3, 1), "end": dt.date(2026, 3, 31),
         "strike": 35.0, "currency": "USD", "size_phs": 1.0, "side": "buy"}]}))
    for args, start in ((["--fleet", small_fleet(tmp_path)], "error: fleet: the portfolio already has a trade 'fleet'"),
                        (["--fleet", tmp_path / "missing.toml"], "error: fleet:")):
        res = run_main(["risk", book, "--paths", "600", *args])
        assert res.code == 2 and res.exception is None, res.trace
        assert res.stderr.startswith(start) and len(res.stderr.strip().splitlines()) == 1, res.stderr
