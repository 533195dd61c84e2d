"""`hashprice hedge`: the example fleet on the default market, its JSON, files and bad input."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
import tomli_w

from products.fleet_file import parse_fleet_file
from tests.test_cli import PNG_SIGNATURE, assert_one_line_error, invoke, run_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE_FLEET = os.path.join(ROOT, "examples", "fleet.toml")
MONTH_KEYS = {"start", "end", "futures_expiry", "expected_btc_mined", "expected_revenue_usd",
              "expected_power_cost_usd", "expected_net_usd", "delta_hedge_btc", "min_variance_hedge_btc",
              "hedge_effectiveness"}
PNL_KEYS = {"mean_usd", "std_usd", "var_95_usd", "cvar_95_usd", "var_99_usd", "cvar_99_usd", "effectiveness"}


@pytest.fixture(scope="module")
def hedge_doc():
    return run_json("hedge", EXAMPLE_FLEET, "--paths", "2000")


def test_example_fleet_reports_every_hedge_and_the_token(hedge_doc):
    d = hedge_doc
    assert {"asof", "paths", "seed", "months", "curtailment_value_usd", "curtailment_value_usd_stderr", "token",
            "pnl"} <= set(d)
    assert len(d["months"]) == 12
    for m in d["months"]:
        assert MONTH_KEYS <= set(m)
        for k in ("expected_btc_mined", "expected_revenue_usd", "expected_power_cost_usd", "expected_net_usd"):
            assert f"{k}_stderr" in m and m[f"{k}_stderr"] >= 0
        assert set(m["hedge_effectiveness"]) == {"delta", "min_variance", "hashprice_forward", "collar"}
    assert set(d["pnl"]) == {"unhedged", "delta", "min_variance", "hashprice_forward", "collar"}
    for p in d["pnl"].values():
        assert PNL_KEYS <= set(p)
        assert p["cvar_95_usd"] >= p["var_95_usd"] and p["cvar_99_usd"] >= p["var_99_usd"]
    assert d["token"]["pv_usd"] > 0


def test_same_seed_same_report():
    a = run_json("hedge", EXAMPLE_FLEET, "--paths", "1000", "--seed", "3")
    b = run_json("hedge", EXAMPLE_FLEET, "--paths", "1000", "--seed", "3")
    assert a == b


def test_out_json_csv_and_plot(tmp_path):
    out, csv, png = tmp_path / "h.json", tmp_path / "h.csv", tmp_path / "h.png"
    res = invoke("hedge", EXAMPLE_FLEET, "--paths", "1000", "--out", out, "--plot", png)
    assert res.exit_code == 0, res.stderr
    assert "cash flow at risk" in res.stdout and "token" in res.stdout
    assert json.loads(out.read_text())["paths"] == 1000
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    res = invoke("hedge", EXAMPLE_FLEET, "--paths", "1000", "--out", csv)
    assert res.exit_code == 0, res.stderr
    df = pd.read_csv(csv)
    assert len(df) == 12 and "effectiveness_min_variance" in df.columns


BAD = [
    ({"fleet": {"efficiency_j_per_th": 20.0, "power_usd_per_kwh": 0.05}}, "fleet.hashrate_phs"),
    ({"fleet": {"hashrate_phs": True, "efficiency_j_per_th": 20.0, "power_usd_per_kwh": 0.05}}, "fleet.hashrate_phs"),
    ({"fleet": {"hashrate_phs": [100.0, 90.0], "efficiency_j_per_th": 20.0, "power_usd_per_kwh": 0.05}},
     "fleet.hashrate_phs"),
    ({"fleet": {"hashrate_phs": 100.0, "efficiency_j_per_th": 20.0, "power_usd_per_kwh": 5.0}},
     "fleet.power_usd_per_kwh"),
    ({"fleet": {"hashrate_phs": 100.0, "efficiency_j_per_th": 20.0, "power_usd_per_kwh": 0.05, "uptime": 1.5}},
     "fleet.uptime"),
    ({"fleet": {"hashrate_phs": 100.0, "efficiency_j_per_th": 20.0, "power_usd_per_kwh": 0.05,
                "curtailment": "yes"}}, "fleet.curtailment"),
    ({"fleet": {"hashrate_phs": 100.0, "efficiency_j_per_th": 20.0, "power_usd_per_kwh": 0.05,
                "btc_sold": "weekly"}}, "fleet.btc_sold"),
    ({"fleet": {"hashrate_phs": 100.0, "efficiency_j_per_th": 20.0, "power_usd_per_kwh": 0.05, "colour": 1}},
     "fleet.colour"),
    ({"fleet": {"hashrate_phs": 100.0, "efficiency_j_per_th": 20.0, "power_usd_per_kwh": 0.05},
      "hedge": {"hedges": ["btc_future", "swaption"]}}, "hedge.hedges"),
    ({"fleet": {"hashrate_phs": 100.0, "efficiency_j_per_th": 20.0, "power_usd_per_kwh": 0.05},
      "hedge": {"horizon_months": 0}}, "hedge.horizon_months"),
    ({"fleet": {"hashrate_phs": 100.0, "efficiency_j_per_th": 20.0, "power_usd_per_kwh": 0.05},
      "hedge": {"collar_floor_usd_per_ph_day": 50.0, "collar_cap_usd_per_ph_day": 40.0}},
     "hedge.collar_cap_usd_per_ph_day"),
    ({"fleet": {"hashrate_phs": 100.0, "efficiency_j_per_th": 20.0, "power_usd_per_kwh": 0.05},
      "token": {"ths_per_token": 1.0, "fee_usd_per_th_day": 0.001}}, "token.life_months"),
    ({"fleet": {"hashrate_phs": 100.0, "efficiency_j_per_th": 20.0, "power_usd_per_kwh": 0.05}, "trade": []},
     "trade"),
    ({"hedge": {}}, "fleet"),
]


@pytest.mark.parametrize("doc,field", BAD, ids=[f for _, f in BAD])
def test_bad_fleet_file_is_one_line_naming_the_field(tmp_path, doc, field):
    path = tmp_path / "fleet.toml"
    path.write_bytes(tomli_w.dumps(doc).encode())
    out = tmp_path / "out.json"
    line = assert_one_line_error(invoke("hedge", path, "--paths", "1000", "--out", out), field)
    assert str(path) in line
    assert not out.exists()


def test_fleet_file_defaults_and_lists():
    ff = parse_fleet_file({"fleet": {"hashrate_phs": [100.0, 110.0, 120.0], "efficiency_j_per_th": 20.0,
                                     "power_usd_per_kwh": 0.05}, "hedge": {"horizon_months": 3}})
    import datetime as dt

    pos = ff.position(dt.date(2026, 1, 15))  # a partial first month
    assert [(str(p.start), str(p.end)) for p in pos.periods] == [
        ("2026-01-16", "2026-01-31"), ("2026-02-01", "2026-02-28"), ("2026-03-01", "2026-03-31")]
    assert pos.hashrate_phs == (100.0, 110.0, 120.0) and pos.power_usd_per_kwh == (0.05,) * 3
    assert not pos.curtailment and pos.btc_sold == "daily" and ff.hedge.expiry_rule == "month_end"


def test_missing_and_unreadable_fleet_files(tmp_path):
    assert_one_line_error(invoke("hedge", tmp_path / "nope.toml"), "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[fleet\n")
    assert_one_line_error(invoke("hedge", bad), "bad.toml")
    assert_one_line_error(invoke("hedge", EXAMPLE_FLEET, "--paths", "10"), "paths")
    assert_one_line_error(invoke("hedge", EXAMPLE_FLEET, "--plot", tmp_path / "x.jpg"), "plot")
