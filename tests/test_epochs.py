"""Difficulty per epoch and the daily distributions: the kernel's histograms and pair sums against
per-path references, the grid's quantiles, and a frozen network whose retargets are computed by hand."""

from __future__ import annotations

import datetime as dt
import json
import math
import os

import numpy as np
import pytest
import tomli_w
from typer.testing import CliRunner

from curves.market import Market
from engine.app.cli import app
from engine.mc import histogram
from engine.mc import kernel as K
from engine.mc.distributions import daily_bands, distribution_days, epoch_frame, epoch_percentile, expected_start_date
from engine.mc.model import ModelParams
from engine.mc.simulation import Simulation
from engine.pricing.curve_builder import build_curve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FROZEN_MODEL = os.path.join(ROOT, "examples", "frozen_network_model.toml")
W = histogram.BIN_WIDTH_LOG


def bins_numpy(x: np.ndarray) -> np.ndarray:
    """The grid's bin of each log ratio, computed independently of ``histogram.bin_index``."""
    inner = 1 + np.floor((x - histogram.LOG_MIN) / W).astype(np.int64)
    return np.where(x < histogram.LOG_MIN, 0, np.where(x >= histogram.LOG_MAX, histogram.N_INNER + 1, inner))


def counts_numpy(x: np.ndarray) -> np.ndarray:
    return np.bincount(bins_numpy(x), minlength=histogram.N_BINS)


# ---- the grid ------------------------------------------------------------------------------------
def test_bin_index_edges():
    assert histogram.N_BINS == 2050
    assert histogram.bin_index(-4.0 - 1e-12) == 0
    assert histogram.bin_index(-4.0) == 1
    assert histogram.bin_index(-4.0 + W) == 2
    assert histogram.bin_index(0.0) == 1 + 1024
    assert histogram.bin_index(-W / 2) == 1024
    assert histogram.bin_index(4.0 - 1e-12) == histogram.N_INNER
    assert histogram.bin_index(4.0) == histogram.N_INNER + 1
    assert histogram.bin_index(math.nan) == 0


def test_quantiles_and_cdf_against_numpy():
    x = np.random.default_rng(1).normal(-0.05, 0.04, 200_000)
    counts = counts_numpy(x)
    for p in (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99):
        q = histogram.quantile(counts, x.min(), x.max(), p)
        assert abs(q - np.quantile(x, p)) < 0.1 * W, p  # interpolation within a bin: a small fraction of it
        assert histogram.cdf_mid(counts, x.min(), x.max(), q) == pytest.approx(p, abs=1e-12)
        v = np.quantile(x, p)
        assert histogram.cdf_mid(counts, x.min(), x.max(), v) == pytest.approx(np.mean(x < v), abs=2e-3)
    assert histogram.quantile(counts, x.min(), x.max(), 0.0) == x.min()
    assert histogram.quantile(counts, x.min(), x.max(), 1.0) == x.max()
    assert histogram.mean_log(counts, x.min(), x.max()) == pytest.approx(x.mean(), abs=0.01 * W)


def test_point_mass_and_tails_use_the_exact_range():
    counts = counts_numpy(np.full(10, 0.1234))
    assert histogram.quantile(counts, 0.1234, 0.1234, [0.05, 0.95]).tolist() == [0.1234, 0.1234]
    assert histogram.cdf_mid(counts, 0.1234, 0.1234, 0.1234) == 0.5
    assert histogram.cdf_mid(counts, 0.1234, 0.1234, 0.1235) == 1.0
    assert histogram.cdf_mid(counts, 0.1234, 0.1234, 0.1235, tie=2e-4) == 0.5
    # beyond the grid: the under/overflow bins span up to the exact min and max
    x = np.array([-9.0, -7.0, 0.0, 6.0, 8.0])
    counts = counts_numpy(x)
    assert counts[0] == 2 and counts[-1] == 2
    assert histogram.quantile(counts, -9.0, 8.0, 0.0) == -9.0
    assert histogram.quantile(counts, -9.0, 8.0, 1.0) == 8.0
    assert -9.0 < histogram.quantile(counts, -9.0, 8.0, 0.2) < -4.0
    assert math.isnan(histogram.quantile(np.zeros(histogram.N_BINS, int), np.inf, -np.inf, 0.5))


# ---- the kernel against per-path references --------------------------------------------------------
PAIRS_PATHS = 2_000


@pytest.fixture(scope="module")
def reference_run():
    """14 days, every path stored: the first retarget falls on days 5-7, the second after day 14."""
    sim = Simulation(Market.default(), ModelParams.default(), n_days=14, n_paths=PAIRS_PATHS, seed=9,
                     n_samples=PAIRS_PATHS, block_pairs=64)
    return sim.run([(0, 13)], distribution_days=[0, 3, 10, 13])


def _pair_ratio_estimator(values: np.ndarray, reached: np.ndarray) -> tuple[float, float]:
    """Mean of ``values`` over reaching paths, and its stderr with pairs (2p, 2p+1) as units."""
    x = reached.reshape(-1, 2).sum(axis=1).astype(float)
    y = np.where(reached, values, 0.0).reshape(-1, 2).sum(axis=1)
    r = y.sum() / x.sum()
    n = x.size
    var = ((y - r * x) ** 2).sum() / (n * (n - 1)) / x.mean() ** 2
    return r, math.sqrt(var)


def test_first_epoch_matches_per_path_values(reference_run):
    run = reference_run
    d0 = run.difficulty_ref
    diff = run.samples[:, :, K.SP_DIFFICULTY]
    assert np.all(diff[:, 4] == d0) and np.all(diff[:, 13] != d0)  # every path retargets on days 5..12
    d1 = diff[:, 12]  # a full day after the first retarget, before the second
    assert np.all(np.abs(np.log(diff[:, 11] / d1)) < 1e-12)
    lr = np.log(d1 / d0)
    # the histogram is the per-path values' histogram, and the range their exact min and max
    assert np.array_equal(run.epoch_hist[0], counts_numpy(lr))
    assert run.epoch_range[0].tolist() == pytest.approx([lr.min(), lr.max()], abs=1e-12)
    frame = epoch_frame(run, Market.default().asof, Market.default().height)
    row = frame.iloc[0]
    assert row["epoch"] == 1 and row["start_height"] == 935_424 and row["reach_probability"] == 1.0
    mean, se = _pair_ratio_estimator(d1 / d0 - 1.0, np.ones(d1.size, bool))
    assert row["difficulty_mean"] == pytest.approx(d0 * (1 + mean), rel=1e-12)
    assert row["difficulty_mean_stderr"] == pytest.approx(d0 * se, rel=1e-7)
    # with every path reaching it, the stderr is that of the antithetic pair means
    pair_means = 0.5 * (d1[0::2] + d1[1::2])
    assert row["difficulty_mean_stderr"] == pytest.approx(pair_means.std(ddof=1) / math.sqrt(pair_means.size),
                                                          rel=1e-7)
    for col, p in (("difficulty_p05", 0.05), ("difficulty_p50", 0.5), ("difficulty_p95", 0.95)):
        assert math.log(row[col] / d0) == pytest.approx(np.quantile(lr, p), abs=0.5 * W), col
    # the actual's percentile: the histogram's CDF
    assert epoch_percentile(run, 1, float(np.quantile(d1, 0.3))) == pytest.approx(30.0, abs=1.0)


def test_partial_reach_matches_per_path_values(reference_run):
    # the same paths over 6 days (draws are keyed on path and day): only some reach the retarget
    d0 = reference_run.difficulty_ref
    diff = reference_run.samples[:, :, K.SP_DIFFICULTY]
    reached = diff[:, 5] != d0  # retargeted on day 5 or before
    d1 = diff[:, 12]
    short = Simulation(Market.default(), ModelParams.default(), n_days=6, n_paths=PAIRS_PATHS, seed=9,
                       block_pairs=64).run([(0, 5)])
    assert 0.05 < reached.mean() < 0.95  # a real test of the conditional estimator
    frame = epoch_frame(short, Market.default().asof, Market.default().height, min_reach=0.0)
    row = frame.iloc[0]
    assert row["reach_probability"] == reached.mean()
    mean, se = _pair_ratio_estimator(d1 / d0 - 1.0, reached)
    assert row["difficulty_mean"] == pytest.approx(d0 * (1 + mean), rel=1e-12)
    assert row["difficulty_mean_stderr"] == pytest.approx(d0 * se, rel=1e-7)
    assert np.array_equal(short.epoch_hist[0], counts_numpy(np.log(d1[reached] / d0)))
    # the curve's table leaves out an epoch reached by fewer than half the paths
    if reached.mean() < 0.5:
        assert epoch_frame(short, Market.default().asof, Market.default().height).empty


def test_day_histograms_match_per_path_values(reference_run):
    run = reference_run
    assert run.distribution_days == (0, 3, 10, 13)
    for j, t in enumerate(run.distribution_days):
        for h, field, ref in ((K.H_INDEX_USD, K.SP_HASHPRICE_USD, run.index_ref_usd),
                              (K.H_DIFFICULTY, K.SP_DIFFICULTY, run.difficulty_ref)):
            x = np.log(run.samples[:, t, field] / ref)
            assert np.array_equal(run.day_hist[j, h], counts_numpy(x)), (t, h)
            assert run.day_range[j, h].tolist() == pytest.approx([x.min(), x.max()], abs=1e-12)
    bands = daily_bands(run)
    day0 = bands.iloc[0]
    d0 = run.difficulty_ref
    assert day0["difficulty_p05"] == day0["difficulty_p95"] == pytest.approx(d0, rel=1e-15)  # no retarget yet
    hp = run.samples[:, 13, K.SP_HASHPRICE_USD]
    last = bands.iloc[-1]
    for p in ("05", "25", "50", "75", "95"):
        assert math.log(last[f"hashprice_usd_per_ph_day_p{p}"] / np.quantile(hp, int(p) / 100)) == \
            pytest.approx(0.0, abs=0.5 * W)
    assert last["difficulty_mean"] == pytest.approx(run.samples[:, 13, K.SP_DIFFICULTY].mean(), rel=1e-12)


def test_histogram_totals_and_epoch_counts():
    sim = Simulation(Market.default(), ModelParams.default(), n_days=100, n_paths=3_000, seed=4)
    run = sim.run([(0, 99)], distribution_days=distribution_days(100))
    counts = run.epochs[:, K.E_COUNT]
    assert np.array_equal(run.epoch_hist.sum(axis=1), counts[: run.epoch_hist.shape[0]])
    assert counts[0] == run.n_paths and counts[-1] == 0  # the cap leaves room
    assert np.all(run.day_hist.sum(axis=2) == run.n_paths)
    assert run.distribution_days == tuple(range(0, 100, 7)) + (99,)
    assert distribution_days(5_000)[:3] == [0, 26, 52] and len(distribution_days(5_000)) <= 200


def test_stderr_matches_the_spread_across_seeds():
    # 16 independent runs: the reported stderr of the mean agrees with the seeds' spread
    means, ses = [], []
    for seed in range(16):
        run = Simulation(Market.default(), ModelParams.default(), n_days=40, n_paths=1_000,
                         seed=100 + seed).run([(0, 39)])
        f = epoch_frame(run, Market.default().asof, Market.default().height)
        means.append(f["difficulty_mean"].to_numpy()[:2])
        ses.append(f["difficulty_mean_stderr"].to_numpy()[:2])
    ratio = np.std(means, axis=0, ddof=1) / np.mean(ses, axis=0)
    assert np.all((ratio > 0.6) & (ratio < 1.5)), ratio


# ---- a frozen network: retargets and dates by hand -------------------------------------------------
def frozen_market() -> Market:
    return Market.default().with_(hashrate_log_sd=0.0)


def hand_retargets(m: Market):
    """Start times (fractional day index) and difficulties of the next two epochs, by the protocol."""
    h, d0 = m.hashrate_hs, m.difficulty
    rate0 = h * 86_400 / (d0 * 2**32)  # blocks a day
    left = 2016 - (m.height % 2016 + 1)  # blocks to the current epoch's last
    t1 = left / rate0
    d1 = d0 * 1_209_600 / (m.epoch_seconds_elapsed + t1 * 86_400)
    rate1 = h * 86_400 / (d1 * 2**32)
    t2 = t1 + 2016 / rate1
    d2 = d1 * 1_209_600 / (2015 * 86_400 / rate1)  # 2,015 intervals from first to last block
    return (t1, d1), (t2, d2)


def test_frozen_preset_is_deterministic_and_matches_the_protocol():
    m = frozen_market()
    model = ModelParams.load(FROZEN_MODEL)
    run = Simulation(m, model, n_days=60, n_paths=2_000, seed=3).run([(0, 59)])
    frame = epoch_frame(run, m.asof, m.height)
    assert len(frame) == 4 and (frame["reach_probability"] == 1.0).all()
    for col in ("difficulty_p05", "difficulty_p50", "difficulty_p95"):
        np.testing.assert_allclose(frame[col], frame["difficulty_mean"], rtol=1e-12)
    assert (frame["difficulty_mean_stderr"] <= 1e-9 * frame["difficulty_mean"]).all()
    assert (frame["start_day_sd"] < 1e-4).all()
    (t1, d1), (t2, d2) = hand_retargets(m)
    assert frame["difficulty_mean"][0] == pytest.approx(d1, rel=1e-12)
    assert frame["difficulty_mean"][1] == pytest.approx(d2, rel=1e-12)
    assert frame["start_day_mean"][0] == pytest.approx(t1, rel=1e-12)
    assert frame["start_day_mean"][1] == pytest.approx(t2, rel=1e-9)
    # later epochs keep d2 = H * 600 / 2^32 * 2016 / 2015: 2,015 intervals at constant hashrate
    np.testing.assert_allclose(frame["difficulty_mean"][1:], m.hashrate_hs * 600 / 2**32 * 2016 / 2015, rtol=1e-12)


def test_expected_start_date_convention():
    asof = dt.date(2026, 1, 31)
    assert expected_start_date(asof, 0.0) == dt.date(2026, 2, 1)  # day 0 is as-of + 1
    assert expected_start_date(asof, 0.999) == dt.date(2026, 2, 1)
    assert expected_start_date(asof, 6.1) == dt.date(2026, 2, 7)


def write_market(path, market: Market):
    path.write_text(tomli_w.dumps(market.to_dict()))
    return path


def test_curve_cli_dates_retargets_on_the_right_day(tmp_path):
    m = frozen_market()
    (t1, d1), (t2, _) = hand_retargets(m)
    assert 0.05 < t1 % 1 < 0.95  # well inside a day, so the date is clear
    first = m.asof + dt.timedelta(days=1 + math.floor(t1))  # day t is as-of + 1 + t
    assert first == dt.date(2026, 2, 7)
    args = ["curve", "--months", "2", "--paths", "2000", "--model", FROZEN_MODEL,
            "--market", str(write_market(tmp_path / "frozen.toml", m))]
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.stderr
    epochs = json.loads(res.stdout)["epochs"]
    assert [e["start_height"] for e in epochs[:2]] == [935_424, 937_440]
    assert epochs[0]["expected_start"] == first.isoformat()
    assert epochs[1]["expected_start"] == (m.asof + dt.timedelta(days=1 + math.floor(t2))).isoformat()
    e = epochs[0]
    assert e["reach_probability"] == 1.0
    assert e["difficulty_p05"] == e["difficulty_p95"] == pytest.approx(d1, rel=1e-12)
    assert e["difficulty_mean_stderr"] <= 1e-9 * d1
    table = CliRunner().invoke(app, args).stdout
    row = next(line for line in table.splitlines() if "935,424" in line)
    assert "2026-02-07" in row and f"{100 * (d1 / m.difficulty - 1):+.1f}%" in row


# ---- the curve's epochs and bands on the default model ----------------------------------------------
def test_curve_epochs_and_bands():
    c = build_curve(Market.default(), ModelParams.default(), months=4, paths=4_000, seed=5, bands=True)
    e = c.epochs
    assert len(e) >= 7 and (e["reach_probability"] >= 0.5).all()
    assert (np.diff(e["start_height"]) == 2016).all() and e["start_height"][0] == 935_424
    assert (np.diff(np.array(e["expected_start"], dtype="datetime64[D]")).astype(int) > 0).all()
    assert (e["difficulty_p05"] <= e["difficulty_p50"]).all() and (e["difficulty_p50"] <= e["difficulty_p95"]).all()
    assert ((e["difficulty_p05"] < e["difficulty_mean"]) & (e["difficulty_mean"] < e["difficulty_p95"])).all()
    assert (e["difficulty_mean_stderr"] > 0).all()
    doc = c.to_dict()
    assert [x["start_height"] for x in doc["epochs"]] == e["start_height"].tolist()
    b = c.daily_bands
    assert b["day"].tolist() == distribution_days(len(c.daily_dates))
    for name in ("hashprice_usd_per_ph_day", "difficulty"):
        q = b[[f"{name}_p{p}" for p in ("05", "25", "50", "75", "95")]].to_numpy()
        assert (np.diff(q, axis=1) >= 0).all()
        assert (q[1:, 0] < q[1:, -1]).all()
    # the band's mean is the curve's expected daily index
    np.testing.assert_allclose(b["hashprice_usd_per_ph_day_mean"],
                               c.daily_hashprice_usd_per_ph_day[b["day"]], rtol=1e-12)
