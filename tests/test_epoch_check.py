"""``hashprice epochs-check``: the model's difficulty per epoch against the epochs that followed."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from fractions import Fraction

import pandas as pd
import pytest
import tomli_w
from real_data import EPOCHS_CSV, needs_data
from typer.testing import CliRunner

from curves.market import Market
from engine.app.cli import app
from engine.backtest.epoch_check import check_epochs
from engine.data.load import difficulty_from_bits
from engine.data.load import load_difficulty_epochs as load_epochs_file
from engine.mc.model import ModelParams

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FROZEN_MODEL = os.path.join(ROOT, "examples", "frozen_network_model.toml")
HEADER = "height,date,timestamp_utc,difficulty,change_pct,bits,date_source"
runner = CliRunner()


def compact_bits(difficulty: float) -> str:
    """nBits of the target 0xffff * 2^208 / difficulty (Bitcoin's compact form)."""
    target = Fraction(0xFFFF << 208) / Fraction(difficulty)
    size = (int(target).bit_length() + 7) // 8
    mantissa = round(target * Fraction(2) ** (8 * (3 - size)))  # to the nearest representable target
    if mantissa & 0x00800000:
        mantissa >>= 8
        size += 1
    return f"0x{size << 24 | mantissa:08x}"


def write_epochs(path, rows: list[tuple[int, dt.date, float]]):
    """An epochs CSV like the real file: the difficulty is what each row's nBits decodes to."""
    lines, prev = [HEADER], None
    for height, date, difficulty in rows:
        bits = compact_bits(difficulty)
        d = difficulty_from_bits(bits)
        change = "" if prev is None else f"{100 * (d / prev - 1):.4f}"
        lines.append(f"{height},{date},,{d:.3f},{change},{bits},estimated:retarget_arithmetic")
        prev = d
    path.write_text("\n".join(lines) + "\n")
    return path


def frozen_next_two(m: Market) -> list[tuple[int, dt.date, float]]:
    """The next two retargets of a frozen network, by the protocol rule (see test_epochs)."""
    h, d0 = m.hashrate_hs, m.difficulty
    t1 = (2016 - (m.height % 2016 + 1)) / (h * 86_400 / (d0 * 2**32))
    d1 = d0 * 1_209_600 / (m.epoch_seconds_elapsed + t1 * 86_400)
    d2 = h * 600 / 2**32 * 2016 / 2015
    t2 = t1 + 2016 * d1 * 2**32 / (h * 86_400)
    day = [m.asof + dt.timedelta(days=1 + math.floor(t)) for t in (t1, t2)]
    return [(933_408, dt.date(2026, 1, 22), d0), (935_424, day[0], d1), (937_440, day[1], d2)]


def test_compact_bits_round_trip():
    assert compact_bits(141668107417558.25) == "0x1701fca1"
    assert compact_bits(1.0) == "0x1d00ffff"
    d = 129_611_270_714_245.45
    assert difficulty_from_bits(compact_bits(d)) == pytest.approx(d, rel=2**-15)


def test_frozen_network_actual_equal_to_model_sits_at_the_median(tmp_path):
    m = Market.default().with_(hashrate_log_sd=0.0)
    path = write_epochs(tmp_path / "epochs.csv", frozen_next_two(m))
    res = check_epochs(load_epochs_file(path), m, ModelParams.load(FROZEN_MODEL), paths=2_000, seed=1)
    r = res.rows
    assert r["start_height"].tolist() == [935_424, 937_440]  # the epoch before the as-of date is left out
    assert (r["date_error_days"] == 0).all()
    assert (r["reach_probability"] == 1.0).all()
    # the file's difficulty is the nBits-rounded model value (2^-15 relative at worst): a tie
    assert (r["log_error"].abs() < 1e-4).all()
    assert r["percentile"].tolist() == [50.0, 50.0]
    assert r["inside_90"].all()
    assert (r["model_p05"] == r["model_p95"]).all()
    s = res.summary()
    assert s["epochs"] == 2 and s["inside_90"] == 2 and abs(s["mean_log_error"]) < 1e-4


def test_actual_off_the_model_lands_in_the_tail(tmp_path):
    m = Market.default().with_(hashrate_log_sd=0.0)
    rows = frozen_next_two(m)
    rows[1] = (rows[1][0], rows[1][1], rows[1][2] * 1.01)  # 1% above a point mass
    res = check_epochs(load_epochs_file(write_epochs(tmp_path / "e.csv", rows)), m,
                       ModelParams.load(FROZEN_MODEL), paths=2_000, seed=1)
    first = res.rows.iloc[0]
    assert first["percentile"] == 100.0 and not first["inside_90"]
    assert first["log_error"] == pytest.approx(math.log(1.01), abs=1e-4)


def test_default_model_percentiles_follow_the_quantiles(tmp_path):
    # actuals at the model's own 5% and 50% quantiles come back at those percentiles
    m, model = Market.default(), ModelParams.default()
    probe = check_epochs(load_epochs_file(write_epochs(tmp_path / "a.csv", frozen_next_two(m))), m, model,
                         paths=4_000, seed=2)
    rows = [(933_408, dt.date(2026, 1, 22), m.difficulty),
            (935_424, probe.rows["expected_start"][0], probe.rows["model_p05"][0] * (1 + 2e-4)),  # nBits rounding
            (937_440, probe.rows["expected_start"][1], probe.rows["model_p50"][1])]
    res = check_epochs(load_epochs_file(write_epochs(tmp_path / "b.csv", rows)), m, model, paths=4_000, seed=2)
    assert res.rows["percentile"][0] == pytest.approx(5.0, abs=0.2)
    assert res.rows["percentile"][1] == pytest.approx(50.0, abs=0.2)
    assert res.rows["inside_90"].tolist() == [True, True]
    assert res.horizon_days == (rows[-1][1] - m.asof).days + 28


def test_cli_json_and_out(tmp_path):
    m = Market.default().with_(hashrate_log_sd=0.0)
    mkt = tmp_path / "m.toml"
    mkt.write_text(tomli_w.dumps(m.to_dict()))
    path = write_epochs(tmp_path / "epochs.csv", frozen_next_two(m))
    out = tmp_path / "check.csv"
    res = runner.invoke(app, ["epochs-check", str(path), "--market", str(mkt), "--model", FROZEN_MODEL,
                              "--paths", "2000", "--json", "--out", str(out)])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert set(doc) == {"asof", "paths", "seed", "horizon_days", "epochs", "summary"}
    assert [e["start_height"] for e in doc["epochs"]] == [935_424, 937_440]
    assert doc["epochs"][0]["percentile"] == 50.0 and doc["epochs"][0]["inside_90"] is True
    assert doc["summary"]["inside_90"] == 2
    assert pd.read_csv(out)["start_height"].tolist() == [935_424, 937_440]
    table = runner.invoke(app, ["epochs-check", str(path), "--market", str(mkt), "--model", FROZEN_MODEL,
                                "--paths", "2000"])
    assert table.exit_code == 0 and "935,424" in table.stdout and "inside the 5-95% band 2 of 2" in table.stdout


def _one_line_error(res, field: str) -> str:
    assert res.exit_code == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}: "), res.stderr
    return lines[0]


def test_cli_errors(tmp_path):
    line = _one_line_error(runner.invoke(app, ["epochs-check", str(tmp_path / "none.csv")]), "epochs")
    assert "file not found" in line
    old = write_epochs(tmp_path / "old.csv", [(931_392, dt.date(2026, 1, 8), 146472570619930.78),
                                              (933_408, dt.date(2026, 1, 22), 141668107417558.25)])
    assert "no epoch starts after" in _one_line_error(runner.invoke(app, ["epochs-check", str(old)]), "epochs")
    bad = tmp_path / "bad.csv"
    *head, last = old.read_text().strip().splitlines()
    cells = last.split(",")
    cells[5] = f"{int(cells[5], 16) + 1:#010x}"  # nBits one step off the difficulty
    bad.write_text("\n".join([*head, ",".join(cells)]) + "\n")
    assert "bits" in _one_line_error(runner.invoke(app, ["epochs-check", str(bad)]), "epochs")
    out = tmp_path / "x.xlsx"
    _one_line_error(runner.invoke(app, ["epochs-check", str(old), "--out", str(out)]), "out")
    assert not out.exists()
    _one_line_error(runner.invoke(app, ["epochs-check", str(tmp_path)]), "epochs")  # a folder


@needs_data
def test_real_epochs_after_the_default_snapshot():
    res = check_epochs(load_epochs_file(EPOCHS_CSV), Market.default(), ModelParams.default(), paths=4_000, seed=3)
    r = res.rows
    assert r["start_height"].tolist() == [935_424 + 2016 * k for k in range(10)]
    assert r["actual_date"][0] == dt.date(2026, 2, 7) and r["expected_start"][0] == dt.date(2026, 2, 7)
    assert (r["date_error_days"].abs() <= 3).all()
    assert (r["reach_probability"] == 1.0).all()
    assert ((r["percentile"] > 0) & (r["percentile"] < 100)).all()
    assert (r["model_p05"] < r["model_p95"]).all()
    # the storm of late January 2026 cut the first retarget by 11%: in the model's lower tail
    assert r["actual_difficulty"][0] / Market.default().difficulty - 1 == pytest.approx(-0.1116, abs=1e-3)
    assert r["percentile"][0] < 25
