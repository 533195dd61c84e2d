"""Backtest: no look-ahead, the scoring rules against closed forms, calibration checks on
synthetic truths, the historical market snapshot against the data, and the CLI command."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from real_data import DAILY_CSV as DAILY
from real_data import EPOCHS_CSV as EPOCHS
from real_data import needs_data
from scipy import stats
from typer.testing import CliRunner

from curves.schema import relaxed
from engine.app.cli import app
from engine.backtest import backtest as B
from engine.backtest import forecast_scores as FS
from engine.data import historical_market as HM

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def history():
    from engine.data.load import load_network_history

    return load_network_history(DAILY)


# ---- scoring rules --------------------------------------------------------------------------------
def crps_normal(mu, sigma, y):
    z = (y - mu) / sigma
    return sigma * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / math.sqrt(math.pi))


@pytest.mark.parametrize("y", [-2.5, -0.3, 0.0, 0.7, 4.0])
def test_crps_matches_normal_closed_form(y):
    mu, sigma = 0.4, 1.3
    grid = mu + sigma * stats.norm.ppf((np.arange(200_000) + 0.5) / 200_000)  # a quasi-sample
    assert FS.crps_sample(grid, y) == pytest.approx(crps_normal(mu, sigma, y), rel=2e-4, abs=1e-5)
    draws = np.random.default_rng(7).normal(mu, sigma, 100_000)  # a random one: MC error only
    assert FS.crps_sample(draws, y) == pytest.approx(crps_normal(mu, sigma, y), rel=2e-2)


def test_crps_sorting_formula_equals_the_double_sum():
    rng = np.random.default_rng(3)
    x, y = rng.lognormal(size=(4, 301)), rng.lognormal(size=4)
    brute = (np.abs(x - y[:, None]).mean(axis=1)
             - 0.5 * np.abs(x[:, :, None] - x[:, None, :]).mean(axis=(1, 2)))
    np.testing.assert_allclose(FS.crps_sample(x, y), brute, rtol=1e-12)
    assert FS.crps_sample(np.full(10, 2.0), 2.0) == 0.0  # a point forecast that is right


def test_pit_counts_ties_half():
    x = np.array([1.0, 2.0, 2.0, 3.0])
    assert FS.pit_sample(x, 2.0) == pytest.approx(0.5)
    assert FS.pit_sample(x, 0.0) == 0.0 and FS.pit_sample(x, 9.0) == 1.0


def test_coverage_and_pit_nominal_when_truth_is_drawn_from_the_forecast():
    rng = np.random.default_rng(11)
    n_cases, n_draws = 4_000, 400
    mu, s = rng.normal(3.0, 1.0, n_cases), rng.uniform(0.05, 0.6, n_cases)
    samples = np.exp(mu[:, None] + s[:, None] * rng.standard_normal((n_cases, n_draws)))
    truth = np.exp(mu + s * rng.standard_normal(n_cases))
    sc = FS.score_samples(samples, truth)
    cov = FS.coverage_summary(sc["pit"], sc["in50"], sc["in90"])
    for nominal, key in ((0.5, "coverage_50"), (0.9, "coverage_90")):
        tol = 4 * math.sqrt(nominal * (1 - nominal) / n_cases)  # binomial, 4 sd
        assert abs(cov[key] - nominal) < tol, (key, cov[key])
    hist = np.array(cov["pit_histogram"])
    assert hist.sum() == n_cases
    assert stats.chisquare(hist).pvalue > 1e-3  # PIT uniform
    # a forecast half as wide is caught: coverage well below nominal, PIT U-shaped
    narrow = np.exp(mu[:, None] + 0.5 * (np.log(samples) - mu[:, None]))
    cn = FS.score_samples(narrow, truth)
    assert cn["in90"].mean() < 0.7
    h = np.histogram(cn["pit"], bins=10, range=(0, 1))[0]
    assert h[0] + h[-1] > 3 * (h[4] + h[5]) / 2


def test_diebold_mariano_sign():
    rng = np.random.default_rng(5)
    a, b = rng.uniform(0, 1, 500), rng.uniform(0.2, 1.2, 500)
    mean, t = FS.diebold_mariano(a, b, lags=3)
    assert mean == pytest.approx(np.mean(a - b)) and t < -5


# ---- model pieces ---------------------------------------------------------------------------------
def test_vol_term_structure_reverts_to_the_history_variance():
    rng = np.random.default_rng(2)
    calm, wild = 0.02 * rng.standard_normal(900), 0.05 * rng.standard_normal(90)
    vols = HM.btc_vol_term_structure(np.r_[calm, wild], 90)
    v0 = math.sqrt(np.mean(wild**2) * 365)
    vl = math.sqrt(np.mean(np.r_[calm, wild] ** 2) * 365)
    assert v0 > vols[0] > vols[-1] > vl and np.all(np.diff(vols) < 0)
    assert vols[0] == pytest.approx(v0, rel=0.05)  # one day out: still the recent level
    flat = HM.btc_vol_term_structure(0.03 * rng.standard_normal(2000), 90)
    assert flat[-1] == pytest.approx(0.03 * math.sqrt(365), rel=0.05)  # 2,000 days of history
    assert flat[0] == pytest.approx(0.03 * math.sqrt(365), rel=0.25)  # 90 days: sampling noise


def test_origins_and_windows():
    days = pd.date_range("2016-01-01", "2019-12-31", name="date")
    hist = pd.DataFrame({"price_usd": 1.0}, index=days)
    origins = B.monthly_origins(hist, start=dt.date(2018, 1, 15), max_horizon=6)
    assert origins[0] == dt.date(2018, 2, 1)
    assert origins[-1] + dt.timedelta(days=180) <= days[-1].date()
    assert origins[-1] + dt.timedelta(days=180 + 31) > days[-1].date()
    assert B.target_windows((1, 3, 6)) == [(0, 29), (60, 89), (150, 179)]


# ---- real data ----------------------------------------------------------------------------------------
@needs_data
def test_market_from_history_matches_the_data(history):
    from engine.data.load import load_difficulty_epochs

    epochs = load_difficulty_epochs(EPOCHS)
    day = dt.date(2023, 6, 14)
    row = history.loc[pd.Timestamp(day)]
    m = HM.market_from_history(history, day, vol_window_days=90, vol_model="flat")
    assert m.asof == day and m.btc_spot_usd == row["price_usd"] and m.height == row["height_end"]
    assert m.fee_btc_per_block == pytest.approx(row["fees_btc"] / row["blocks"], rel=1e-15)
    week = history.loc[pd.Timestamp(day) - pd.Timedelta(days=6):pd.Timestamp(day), "hashrate_ths"]
    assert m.hashrate_ehs == pytest.approx(week.mean() / 1e6, rel=0.05) and 0 < m.hashrate_log_sd < 0.1
    r = np.diff(np.log(history.loc[:pd.Timestamp(day), "price_usd"].to_numpy()))[-90:]
    assert m.btc_vol == pytest.approx(np.std(r, ddof=1) * math.sqrt(365), rel=1e-12)
    assert m.usd_rate == 0.0 and m.btc_basis_annual == 0.0 and m.btc_vols == ()
    first = m.height - m.height % 2016
    ep = epochs.set_index("height").loc[first]
    assert m.difficulty == pytest.approx(ep["difficulty"], rel=1e-9)
    exact = HM.market_from_history(history, day, epochs=epochs)
    secs = (pd.Timestamp(day) + pd.Timedelta(days=1) - ep["timestamp_utc"].tz_convert(None)).total_seconds()
    assert exact.epoch_seconds_elapsed == pytest.approx(secs)
    assert m.epoch_seconds_elapsed == pytest.approx(secs, abs=86_400)  # block-rate estimate, ~1 day
    # the reconstructed epoch difficulty is exact on every day with a retarget inside it
    df = HM._daily(history)
    by_height = epochs.set_index("height")["difficulty"]
    n_new = df["height_end"].to_numpy() % 2016 + 1
    for pos in np.flatnonzero(n_new < df["blocks"].to_numpy())[1:]:
        h = int(df["height_end"].iloc[pos])
        assert HM.current_difficulty(df, pos) == pytest.approx(by_height[h - h % 2016], rel=1e-9)


def corrupt_after(history: pd.DataFrame, cutoff: dt.date, path: Path) -> pd.DataFrame:
    """Every row after ``cutoff`` made garbage that still passes the loader's validation."""
    from engine.data.load import load_network_history

    df = history.copy()
    after = df.index > pd.Timestamp(cutoff)
    rng = np.random.default_rng(0)
    n = int(after.sum())
    df.loc[after, "price_usd"] *= 10.0 * rng.uniform(0.5, 2.0, n)
    df.loc[after, "difficulty"] *= 3.0
    df.loc[after, "hashrate_ths"] *= rng.uniform(0.2, 5.0, n)
    df.loc[after, "fees_btc"] = rng.uniform(0.0, 500.0, n)
    df.loc[after, "subsidy_btc"] *= 7.0
    df.reset_index().to_csv(path, index=False)
    return load_network_history(path)  # the loader accepts it: nothing here is invalid


@needs_data
def test_no_look_ahead_forecasts_before_the_cutoff_are_bit_identical(history, tmp_path):
    cutoff = dt.date(2022, 3, 1)
    broken = corrupt_after(history, cutoff, tmp_path / "broken.csv")
    assert (broken.index == history.index).all()
    assert not np.allclose(broken["price_usd"].to_numpy(), history["price_usd"].to_numpy())
    origins = [dt.date(2022, 1, 1), dt.date(2022, 2, 1), cutoff, dt.date(2022, 5, 1)]
    kw = {"horizons": (1, 3), "paths": 400, "seed": 9, "origins": origins}
    clean = B.run_backtest(history, **kw)
    with relaxed():  # the garbage after the cutoff (a 1,000% realised vol) is beyond plausible bounds
        dirty = B.run_backtest(broken, **kw)
    for fc, fd in zip(clean.forecasts, dirty.forecasts):
        same = fc.origin <= cutoff
        for c in B.TARGETS:
            for kind in ("model", "naive"):
                a, b = getattr(fc, kind)[c], getattr(fd, kind)[c]
                assert np.array_equal(a, b) == same, (fc.origin, c, kind)
        assert (fc.market == fd.market) == same
        assert (fc.params == fd.params) == same
    # the corruption reaches the scores: a realised target changes iff its window ends after
    # the cutoff (so the identical forecasts above are not an artefact of unused data)
    keys = ["origin", "horizon_months", "target"]
    rc, rd = clean.records.set_index(keys), dirty.records.set_index(keys)
    late = rc["target_end"] > cutoff
    assert late.any() and (~late).any()
    assert ((rc["realised"] != rd["realised"]) == late).all()


@needs_data
def test_cli_backtest_writes_json_and_png(tmp_path):
    out, png = tmp_path / "bt.json", tmp_path / "bt.png"
    res = CliRunner().invoke(app, ["backtest", str(DAILY), "--start", "2025-03-01", "--horizons", "1,2",
                                   "--paths", "512", "--out", str(out), "--plot", str(png)])
    assert res.exit_code == 0, res.stderr + repr(res.exception)
    doc = json.loads(out.read_text())
    assert set(doc) >= {"settings", "summary", "acceptance", "records"}
    assert doc["settings"]["first_origin"] == "2025-03-01" and doc["settings"]["paths"] == 512
    summary = pd.DataFrame(doc["summary"])
    assert sorted(summary["horizon_months"].unique()) == [1, 2]
    for r in doc["summary"]:
        assert 0 <= r["model_coverage_90"] <= 1 and r["model_crps"] > 0
        assert sum(r["model_pit_histogram"]) == r["origins"]
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert "acceptance" in res.stdout


def test_cli_backtest_bad_horizons_is_one_line_error(tmp_path):
    res = CliRunner().invoke(app, ["backtest", str(tmp_path / "none.csv"), "--horizons", "1,x",
                                   "--out", str(tmp_path / "x.json")])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: horizons")
    assert not (tmp_path / "x.json").exists()
