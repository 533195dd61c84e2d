"""The ``hashprice`` CLI: spot economics, curve output files, portfolio pricing and error handling.

Commands run in-process through typer's CliRunner; two tests run the installed console script.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tomli_w
from typer.testing import CliRunner

from curves.market import Market
from engine.app.cli import app

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE_PORTFOLIO = os.path.join(ROOT, "examples", "portfolio.toml")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

SPOT_KEYS = {"hashvalue_btc_per_ph_day", "hashprice_usd_per_ph_day", "hashprice_usd_per_th_day"}
SPOT_ECHO_KEYS = {"difficulty", "subsidy_btc", "fee_btc_per_block"}  # inputs echoed back
FLEET_KEYS = {"revenue_usd_per_day", "power_kw", "power_cost_usd_per_day", "net_usd_per_day",
              "breakeven_power_usd_per_kwh", "payback_months"}
MONTH_KEYS = {"start", "end", "hashprice_usd_per_ph_day", "hashprice_stderr",
              "hashvalue_btc_per_ph_day", "hashvalue_stderr", "difficulty_mean"}
EPOCH_KEYS = {"start_height", "expected_start", "reach_probability", "difficulty_mean", "difficulty_mean_stderr",
              "difficulty_p05", "difficulty_p50", "difficulty_p95"}
TRADE_KEYS = {"id", "type", "pv_usd", "pv_stderr", "fair_rate", "error"}

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def run_json(*args: str) -> dict:
    res = invoke(*args, "--json")
    assert res.exit_code == 0, res.stderr + repr(res.exception)
    return json.loads(res.stdout)  # stdout holds the JSON document alone


def assert_one_line_error(res, field: str) -> str:
    assert res.exit_code == 2, (res.exit_code, res.stdout, res.stderr, res.exception)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert field in lines[0], (field, lines[0])
    return lines[0]


def hand_hashprice(price_usd: float, difficulty: float, reward_btc: float) -> float:
    """USD earned by 1 PH/s in a day: blocks found per day x reward x price."""
    hashes_per_day = 1e15 * 86_400
    blocks_per_day = hashes_per_day / (difficulty * 2**32)
    return blocks_per_day * reward_btc * price_usd


# ---- spot ---------------------------------------------------------------------------------------
SPOT_ARGS = ("spot", "--price-usd", "100000", "--difficulty", "1e14", "--subsidy-btc", "3.125")


def test_spot_hashprice_matches_hand_formula():
    doc = run_json(*SPOT_ARGS)
    assert set(doc) == SPOT_KEYS | SPOT_ECHO_KEYS
    assert round(doc["hashprice_usd_per_ph_day"], 2) == 62.86
    expected = hand_hashprice(100_000.0, 1e14, 3.125)
    assert doc["hashprice_usd_per_ph_day"] == pytest.approx(expected, rel=1e-12)
    assert doc["hashvalue_btc_per_ph_day"] == pytest.approx(expected / 100_000.0, rel=1e-12)
    assert doc["hashprice_usd_per_th_day"] == pytest.approx(expected / 1000.0, rel=1e-12)


def test_spot_fee_adds_to_reward():
    doc = run_json(*SPOT_ARGS, "--fee-btc-per-block", "0.125")
    assert doc["hashprice_usd_per_ph_day"] == pytest.approx(hand_hashprice(100_000.0, 1e14, 3.25), rel=1e-12)


def test_spot_fleet_economics_by_hand():
    fleet_phs, j_per_th, usd_per_kwh, capex = 100.0, 20.0, 0.05, 1_000_000.0
    doc = run_json(*SPOT_ARGS, "--fleet-phs", fleet_phs, "--efficiency-j-per-th", j_per_th,
                   "--power-usd-per-kwh", usd_per_kwh, "--capex-usd", capex)
    assert set(doc) == SPOT_KEYS | SPOT_ECHO_KEYS | FLEET_KEYS
    hp = hand_hashprice(100_000.0, 1e14, 3.125)
    power_kw = j_per_th * (fleet_phs * 1000.0) / 1000.0  # J/TH x TH/s / 1000
    kwh_per_day = power_kw * 24.0
    revenue = hp * fleet_phs
    power_cost = kwh_per_day * usd_per_kwh
    net = revenue - power_cost
    assert power_kw == 2000.0
    assert doc["power_kw"] == pytest.approx(power_kw, rel=1e-12)
    assert doc["revenue_usd_per_day"] == pytest.approx(revenue, rel=1e-12)
    assert doc["power_cost_usd_per_day"] == pytest.approx(power_cost, rel=1e-12)
    assert doc["net_usd_per_day"] == pytest.approx(net, rel=1e-12)
    assert doc["breakeven_power_usd_per_kwh"] == pytest.approx(revenue / kwh_per_day, rel=1e-12)
    assert doc["payback_months"] == pytest.approx(capex / (net * 365.25 / 12.0), rel=1e-12)


def test_spot_fleet_with_uptime_and_opex():
    doc = run_json(*SPOT_ARGS, "--fleet-phs", "10", "--efficiency-j-per-th", "25",
                   "--power-usd-per-kwh", "0.08", "--uptime", "0.9", "--opex-usd-per-day", "50")
    hp = hand_hashprice(100_000.0, 1e14, 3.125)
    kwh_per_day = 25.0 * 10_000.0 / 1000.0 * 24.0 * 0.9
    revenue = hp * 10.0 * 0.9
    assert doc["net_usd_per_day"] == pytest.approx(revenue - kwh_per_day * 0.08 - 50.0, rel=1e-12)
    assert doc["breakeven_power_usd_per_kwh"] == pytest.approx(revenue / kwh_per_day, rel=1e-12)
    assert doc["payback_months"] is None  # no capex given


def test_spot_hashrate_equals_equivalent_difficulty():
    d = 1e14
    ehs = d * 2**32 / 600.0 / 1e18  # H = D * 2^32 / 600
    by_h = run_json("spot", "--price-usd", "100000", "--hashrate-ehs", repr(ehs), "--subsidy-btc", "3.125")
    by_d = run_json(*SPOT_ARGS)
    assert by_h["difficulty"] == pytest.approx(d, rel=1e-12)
    for key in SPOT_KEYS:
        assert by_h[key] == pytest.approx(by_d[key], rel=1e-12)


def test_spot_height_sets_subsidy():
    doc = run_json("spot", "--price-usd", "100000", "--difficulty", "1e14", "--height", "840000")
    assert doc["subsidy_btc"] == 3.125
    assert doc["hashprice_usd_per_ph_day"] == pytest.approx(hand_hashprice(100_000.0, 1e14, 3.125), rel=1e-12)
    earlier = run_json("spot", "--price-usd", "1", "--difficulty", "1", "--height", "839999")
    assert earlier["subsidy_btc"] == 6.25


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("--price-usd", "nan", "--difficulty", "1e14", "--subsidy-btc", "3.125"), "price_usd"),
        (("--price-usd", "-5", "--difficulty", "1e14", "--subsidy-btc", "3.125"), "price_usd"),
        (("--price-usd", "1e5", "--difficulty", "1e14", "--hashrate-ehs", "700", "--subsidy-btc", "3.125"),
         "difficulty"),
        (("--price-usd", "1e5", "--subsidy-btc", "3.125"), "difficulty"),
        (("--price-usd", "1e5", "--difficulty", "-1", "--subsidy-btc", "3.125"), "difficulty"),
        (("--price-usd", "1e5", "--difficulty", "1e14", "--subsidy-btc", "60"), "subsidy_btc"),
        (("--price-usd", "1e5", "--difficulty", "1e14", "--height", "-1"), "height"),
        (("--price-usd", "1e5", "--difficulty", "1e14", "--subsidy-btc", "3.125", "--fleet-phs", "10"),
         "efficiency_j_per_th"),
        (("--price-usd", "1e5", "--difficulty", "1e14", "--subsidy-btc", "3.125", "--fleet-phs", "10",
          "--efficiency-j-per-th", "20", "--power-usd-per-kwh", "0.05", "--uptime", "1.5"), "uptime"),
    ],
)
def test_spot_bad_input_is_one_line_error(args, field):
    res = invoke("spot", *args, "--json")
    assert_one_line_error(res, field)
    assert res.stdout == ""


# ---- curve --------------------------------------------------------------------------------------
CURVE_ARGS = ("curve", "--months", "3", "--paths", "2000")


@pytest.fixture(scope="module")
def curve_doc():
    res = invoke(*CURVE_ARGS, "--json")
    assert res.exit_code == 0, res.stderr
    return res.stdout


def test_curve_json_schema(curve_doc):
    doc = json.loads(curve_doc)
    assert set(doc) == {"asof", "paths", "seed", "months", "epochs"}
    assert doc["asof"] == "2026-01-31"
    assert doc["paths"] == 2000
    assert doc["seed"] == 42
    assert [(m["start"], m["end"]) for m in doc["months"]] == [
        ("2026-02-01", "2026-02-28"), ("2026-03-01", "2026-03-31"), ("2026-04-01", "2026-04-30")]
    for m in doc["months"]:
        assert set(m) == MONTH_KEYS
        for key in MONTH_KEYS - {"start", "end"}:
            assert isinstance(m[key], float) and math.isfinite(m[key]) and m[key] > 0, (key, m[key])
        # hashprice = hashvalue x BTC price, at a plausible BTC level
        assert 10_000 < m["hashprice_usd_per_ph_day"] / m["hashvalue_btc_per_ph_day"] < 1_000_000
    # retargets reached by at least half the paths, in order, from the epoch after height 933,408
    assert len(doc["epochs"]) >= 6
    for k, e in enumerate(doc["epochs"], start=1):
        assert set(e) == EPOCH_KEYS
        assert e["start_height"] == 933_408 + 2016 * k
        assert 0.5 <= e["reach_probability"] <= 1.0
        assert e["difficulty_p05"] <= e["difficulty_p50"] <= e["difficulty_p95"]
        assert e["difficulty_p05"] < e["difficulty_mean"] < e["difficulty_p95"]
        assert 0 < e["difficulty_mean_stderr"] < 0.01 * e["difficulty_mean"]
    dates = [dt.date.fromisoformat(e["expected_start"]) for e in doc["epochs"]]
    assert dates[0] > dt.date(2026, 1, 31) and dates == sorted(set(dates))

def test_curve_same_seed_same_output(curve_doc):
    again = invoke(*CURVE_ARGS, "--json")
    assert again.exit_code == 0
    assert again.stdout == curve_doc


def test_curve_different_seed_different_output(curve_doc):
    other = json.loads(invoke(*CURVE_ARGS, "--seed", "7", "--json").stdout)
    base = json.loads(curve_doc)
    assert other["seed"] == 7
    assert [m["hashprice_usd_per_ph_day"] for m in other["months"]] != \
        [m["hashprice_usd_per_ph_day"] for m in base["months"]]


@pytest.mark.parametrize("suffix", [".csv", ".json", ".parquet"])
def test_curve_out_files(tmp_path, curve_doc, suffix):
    out = tmp_path / f"curve{suffix}"
    res = invoke("curve", "--months", "2", "--paths", "2000", "--out", out)
    assert res.exit_code == 0, res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temp files left
    if suffix == ".csv":
        df = pd.read_csv(out)
    elif suffix == ".parquet":
        df = pd.read_parquet(out)
    else:
        doc = json.loads(out.read_text())
        assert set(doc) == {"asof", "paths", "seed", "months", "epochs"}
        df = pd.DataFrame(doc["months"])
    assert MONTH_KEYS <= set(df.columns)
    assert len(df) == 2
    assert (df["hashprice_usd_per_ph_day"] > 0).all()
    # the file holds the same numbers as the --json document of the same run
    first = json.loads(curve_doc)["months"][0]
    assert df["hashprice_usd_per_ph_day"].iloc[0] == pytest.approx(first["hashprice_usd_per_ph_day"],
                                                                   rel=1e-12)


def test_curve_plot_png(tmp_path):
    png = tmp_path / "curve.png"
    res = invoke("curve", "--months", "2", "--paths", "2000", "--plot", png)
    assert res.exit_code == 0, res.stderr
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert [p.name for p in tmp_path.iterdir()] == ["curve.png"]


def write_market(path, **changes):
    table = Market.default().to_dict()
    table.update(changes)
    path.write_text(tomli_w.dumps(table))
    return path


@pytest.fixture
def dirs(tmp_path):
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    return inputs, outputs


def _curve_error_cases():
    def bad_market(**changes):
        return lambda d: ("--market", write_market(d / "m.toml", **changes))

    def bad_model(text):
        def make(d):
            p = d / "model.toml"
            p.write_text(text)
            return ("--model", p)
        return make

    return [
        ("xlsx", lambda d: ("--months", "1"), "out", ".xlsx"),
        ("months0", lambda d: ("--months", "0"), "months", ".csv"),
        ("paths1", lambda d: ("--months", "1", "--paths", "1"), "paths", ".csv"),
        ("market-nan-spot", bad_market(btc_spot_usd=float("nan")), "btc_spot_usd", ".csv"),
        ("market-negative-spot", bad_market(btc_spot_usd=-1.0), "btc_spot_usd", ".parquet"),
        ("market-unknown-field", bad_market(btc_spot_eur=1.0), "btc_spot_eur", ".json"),
        ("market-missing-file", lambda d: ("--market", d / "nope.toml"), "market", ".csv"),
        ("model-negative-vol", bad_model("hashrate_vol_annual = -0.5\n"), "hashrate_vol_annual", ".csv"),
        ("model-unknown-field", bad_model("hashrate_vol = 0.2\n"), "hashrate_vol", ".csv"),
        ("model-not-a-number", bad_model('fee_vol_annual = "high"\n'), "fee_vol_annual", ".csv"),
        ("plot-suffix", lambda d: ("--plot", d / "p.jpg"), "plot", ".csv"),
    ]


@pytest.mark.parametrize(("make_args", "field", "suffix"),
                         [c[1:] for c in _curve_error_cases()], ids=[c[0] for c in _curve_error_cases()])
def test_curve_errors_leave_no_output(dirs, make_args, field, suffix):
    inputs, outputs = dirs
    out = outputs / f"curve{suffix}"
    res = invoke("curve", "--paths", "2000", "--months", "2", *make_args(inputs), "--out", out, "--json")
    assert_one_line_error(res, field)
    assert res.stdout == ""
    assert not out.exists()
    assert list(outputs.iterdir()) == []  # nor stray temp files


# ---- price --------------------------------------------------------------------------------------
def test_price_example_portfolio():
    doc = run_json("price", EXAMPLE_PORTFOLIO, "--paths", "2000")
    assert {"trades", "total_pv_usd"} <= set(doc)
    assert [t["id"] for t in doc["trades"]] == [
        "ndf-mar26-usd", "ndf-q2-26-usd", "ndf-h2-26-btc", "ndf-cal27-usd", "cap-q3-26-usd",
        "floor-q3-26-usd", "collar-h2-26-btc", "hup-mar26", "btc-put-jun26", "dswap-939456", "hash-q2-26",
        "btchash-mar26", "btc-fut-jun26", "prepaid-q2-26-btc"]
    analytic = ("btc_option", "btc_future")  # closed forms: no stderr
    for t in doc["trades"]:
        assert TRADE_KEYS <= set(t)
        assert t["error"] is None
        assert math.isfinite(t["pv_usd"]) and (t["pv_stderr"] > 0 or t["type"] in analytic)
        if t["type"] in ("hashprice_forward", "hashrate_future", "deliverable_forward", "difficulty_future",
                         "hashvalue_future"):
            assert t["fair_rate"] > 0 and t["fair_rate_stderr"] > 0
        elif t["type"] == "btc_future":
            assert t["fair_rate"] > 0 and t["fair_rate_stderr"] == 0
        else:
            assert t["fair_rate"] is None and t["type"] in ("hashprice_cap", "hashprice_floor", "hashprice_collar",
                                                          "btc_option", "difficulty_swap")
        # its cash flows add up to its PV, each with a pay date and stderr
        assert sum(c["pv_usd"] for c in t["cashflows"]) == pytest.approx(t["pv_usd"], rel=1e-9, abs=1e-6)
        assert all(c["stderr"] >= 0 and not c["settled"] for c in t["cashflows"])
    assert doc["total_pv_usd"] == pytest.approx(sum(t["pv_usd"] for t in doc["trades"]), rel=1e-12)
    # the fair rate re-prices each trade to zero: PV = (fair - K) x dPV/dK, sign set by the side
    by_id = {t["id"]: t for t in doc["trades"]}
    mar, q2 = by_id["ndf-mar26-usd"], by_id["ndf-q2-26-usd"]  # a buyer and a seller
    assert np.sign(mar["pv_usd"]) == np.sign(mar["fair_rate"] - 40.0)
    assert np.sign(q2["pv_usd"]) == -np.sign(q2["fair_rate"] - 38.5)


def test_price_out_csv(tmp_path):
    out = tmp_path / "npv.csv"
    res = invoke("price", EXAMPLE_PORTFOLIO, "--paths", "2000", "--out", out)
    assert res.exit_code == 0, res.stderr
    df = pd.read_csv(out)
    assert TRADE_KEYS <= set(df.columns)
    assert len(df) == 14
    assert [p.name for p in tmp_path.iterdir()] == ["npv.csv"]


GOOD_TRADE = {"id": "good", "type": "hashprice_forward", "start": dt.date(2026, 3, 1),
              "end": dt.date(2026, 3, 31), "strike": 40.0, "currency": "USD", "size_phs": 5.0, "side": "buy"}


def _bad_trades():
    base = {**GOOD_TRADE, "id": "bad"}
    missing = dict(base)
    del missing["size_phs"]
    return {
        "strike-abc": ({**base, "strike": "abc"}, "strike"),
        "unknown-type": ({**base, "type": "hashprice_swaption"}, "type"),
        "missing-field": (missing, "size_phs"),
        "unknown-field": ({**base, "notional": 5.0}, "notional"),
        "end-before-start": ({**base, "end": dt.date(2026, 2, 15)}, "end"),
        "end-beyond-horizon": ({**base, "end": dt.date(2099, 3, 31)}, "end"),
        "currency": ({**base, "currency": "EUR"}, "currency"),
        "duplicate-id": ({**base, "id": "good"}, "id"),
    }


@pytest.mark.parametrize("case", list(_bad_trades()))
def test_price_bad_trade_is_reported_rest_priced(tmp_path, case):
    bad, field = _bad_trades()[case]
    pf = tmp_path / "pf.toml"
    pf.write_text(tomli_w.dumps({"trade": [GOOD_TRADE, bad]}))
    doc = run_json("price", pf, "--paths", "2000")
    assert len(doc["trades"]) == 2
    priced = [t for t in doc["trades"] if t["error"] is None]
    failed = [t for t in doc["trades"] if t["error"] is not None]
    assert len(priced) == 1 and len(failed) == 1
    assert priced[0]["id"] == "good" and math.isfinite(priced[0]["pv_usd"])
    assert failed[0]["error"].startswith(f"{field}:"), failed[0]["error"]
    assert failed[0]["pv_usd"] is None
    assert doc["total_pv_usd"] == pytest.approx(priced[0]["pv_usd"], rel=1e-12)


def test_price_invalid_toml(dirs):
    inputs, outputs = dirs
    pf = inputs / "pf.toml"
    pf.write_text('[[trade]]\nid = "x"\nstrike = [\n')
    out = outputs / "npv.csv"
    res = invoke("price", pf, "--paths", "2000", "--out", out)
    assert_one_line_error(res, "portfolio")
    assert list(outputs.iterdir()) == []


def test_price_empty_portfolio(dirs):
    inputs, outputs = dirs
    pf = inputs / "pf.toml"
    pf.write_text('title = "nothing"\n')
    res = invoke("price", pf, "--paths", "2000", "--out", outputs / "npv.json")
    assert_one_line_error(res, "trade")
    assert list(outputs.iterdir()) == []


def test_price_missing_portfolio(tmp_path):
    assert_one_line_error(invoke("price", tmp_path / "none.toml"), "portfolio")


# ---- the installed console script ---------------------------------------------------------------
def _script() -> str:
    exe = shutil.which("hashprice") or os.path.join(os.path.dirname(sys.executable), "hashprice")
    if not os.path.exists(exe):
        pytest.skip("hashprice console script not installed")
    return exe


def test_console_script_spot():
    proc = subprocess.run([_script(), *SPOT_ARGS, "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert round(doc["hashprice_usd_per_ph_day"], 2) == 62.86


def test_console_script_error(tmp_path):
    out = tmp_path / "c.xlsx"
    proc = subprocess.run([_script(), "curve", "--months", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: out:"), proc.stderr
    assert not out.exists()


def test_example_seasoned_trades_price_with_the_example_index():
    """The README's seasoned example: every trade priced, the slices paid by the as-of date
    listed as settled; without --fixings the HUP future, whose window began but is not paid yet,
    gets its own error naming the flag, and the others (their begun slices are settled) price."""
    seasoned = os.path.join(ROOT, "examples", "seasoned.toml")
    index = os.path.join(ROOT, "examples", "index.csv")
    doc = run_json("price", seasoned, "--fixings", index, "--paths", "2000")
    by_id = {t["id"]: t for t in doc["trades"]}
    assert set(by_id) == {"ndf-jan15-mar26", "hup-jan20", "cap-jan10-feb26"}
    assert all(t["error"] is None and math.isfinite(t["pv_usd"]) for t in by_id.values())
    settled = [c for c in by_id["ndf-jan15-mar26"]["cashflows"] if c["settled"]]
    assert [c["pay_date"] for c in settled] == ["2026-01-31"]
    bare = run_json("price", seasoned, "--paths", "2000")
    errors = {t["id"]: t["error"] for t in bare["trades"]}
    assert "--fixings" in errors.pop("hup-jan20") and set(errors.values()) == {None}
