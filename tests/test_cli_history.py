"""The ``history`` and ``calibrate`` commands, on the real history when it is present."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from real_data import DAILY_CSV as DAILY
from real_data import EPOCHS_CSV as EPOCHS
from real_data import needs_data
from typer.testing import CliRunner

from engine.app.cli import app
from engine.mc.model import ModelParams

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@needs_data
def test_history_json_matches_hand_computation(tmp_path):
    res = invoke("history", DAILY, "--epochs", EPOCHS, "--json", "--out", tmp_path / "h.csv",
                 "--plot", tmp_path / "h.png")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    day = next(d for d in doc["days"] if d["date"] == "2024-05-01")
    raw = pd.read_csv(DAILY).set_index("date").loc["2024-05-01"]
    reward = (raw.subsidy_btc + raw.fees_btc) / raw.blocks
    expected = 86_400 * 1e15 * reward / (raw.difficulty * 2**32) * raw.price_usd
    assert day["hashprice_usd_per_ph_day"] == pytest.approx(expected, rel=1e-9)
    assert 44 < expected < 46
    assert doc["signals"] and doc["epochs"]
    table = pd.read_csv(tmp_path / "h.csv")
    assert len(table) == len(doc["days"])
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"


def test_history_bad_file_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("date,price_usd,hashrate_ths,difficulty,fees_btc,subsidy_btc,blocks\n"
                   "2024-01-01,-5,1e8,1e14,1,450,144\n")
    res = invoke("history", bad, "--out", tmp_path / "out.csv")
    assert res.exit_code == 2
    assert "price_usd" in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "out.csv").exists()


@needs_data
def test_calibrate_writes_a_model_the_curve_accepts(tmp_path):
    model = tmp_path / "model.toml"
    res = invoke("calibrate", DAILY, "--asof", "2024-12-31", "--out", model, "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["asof"] == "2024-12-31" and doc["data_end"] == "2024-12-31"
    params = ModelParams.load(model)
    assert params.marginal_cost_reference_date.isoformat() == "2024-12-31"
    assert params != ModelParams.default()
    res = invoke("curve", "--model", model, "--months", "2", "--paths", "2000", "--json")
    assert res.exit_code == 0, res.output
    assert all(m["hashprice_usd_per_ph_day"] > 0 for m in json.loads(res.stdout)["months"])


@needs_data
def test_calibrate_bad_inputs(tmp_path):
    res = invoke("calibrate", DAILY, "--out", tmp_path / "model.json")
    assert res.exit_code == 2 and "out" in res.output
    res = invoke("calibrate", DAILY, "--asof", "not-a-date", "--out", tmp_path / "m.toml")
    assert res.exit_code == 2 and "asof" in res.output
    assert not (tmp_path / "m.toml").exists()


@needs_data
def test_snapshot_rebuilds_the_default_market_network_state(tmp_path):
    from curves.market import Market

    out = tmp_path / "m.toml"
    res = invoke("snapshot", DAILY, "--asof", "2026-01-31", "--epochs", EPOCHS, "--out", out)
    assert res.exit_code == 0, res.output
    made, default = Market.load(out), Market.default()
    for name in ("asof", "height", "difficulty", "epoch_seconds_elapsed", "btc_spot_usd"):
        assert getattr(made, name) == getattr(default, name), name
    for name in ("fee_btc_per_block", "hashrate_ehs", "hashrate_log_sd", "hashprice_ema_usd_per_ph_day"):
        assert getattr(made, name) == pytest.approx(getattr(default, name), rel=1e-6), name
    assert made.usd_rate == 0.0 and made.btc_vols  # physical: no discounting, trailing vols
    bad = invoke("snapshot", DAILY, "--asof", "2030-01-01", "--out", tmp_path / "x.toml")
    assert bad.exit_code == 2 and "asof" in bad.stderr and not (tmp_path / "x.toml").exists()
