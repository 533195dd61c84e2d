"""The plain NumPy reference (benchmarks/numpy_reference.py) and the fused Numba engine simulate
the same model: with different random numbers, their monthly hashprice curves agree within
4 combined standard errors, month by month (default model, a model with jumps, a halving)."""

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.numpy_reference import monthly_windows, simulate_numpy  # noqa: E402
from curves.market import Market  # noqa: E402
from engine.mc.model import ModelParams  # noqa: E402
from engine.mc.simulation import Simulation  # noqa: E402

HP = "hashprice_usd_per_ph_day"
PATHS = 20_000
MONTHS = 12


def test_monthly_windows_36_months_to_2029_01_31():
    windows, labels, n_days = monthly_windows(dt.date(2026, 1, 31), 36)
    assert n_days == 1096
    assert windows[0] == (0, 27) and labels[0] == "2026-02"
    assert windows[-1] == (1065, 1095) and labels[-1] == "2029-01"
    assert all(b[0] == a[1] + 1 for a, b in zip(windows, windows[1:], strict=False))


def _compare(market, model, seed_engine, seed_numpy):
    windows, _, n_days = monthly_windows(market.asof, MONTHS)
    run = Simulation(market, model, n_days=n_days, n_paths=PATHS, seed=seed_engine).run(windows=windows)
    ref = simulate_numpy(market, model, n_days=n_days, n_paths=PATHS, windows=windows, seed=seed_numpy)
    # control-variate estimates (the engine's curve) and raw means
    z_cv = (run.window_mean(HP) - ref.hashprice_mean_cv) / np.hypot(run.window_stderr(HP),
                                                                     ref.hashprice_stderr_cv)
    raw, raw_se = run.window_moments.mean()[:, 0], run.window_moments.stderr()[:, 0]
    z_raw = (raw - ref.hashprice_mean) / np.hypot(raw_se, ref.hashprice_stderr)
    assert np.all(np.abs(z_cv) < 4.0), z_cv
    assert np.all(np.abs(z_raw) < 4.0), z_raw
    # the reference's BTC is a martingale to the forward: monthly averages match the forward
    fwd = np.array([run.btc_forward_usd[s:e + 1].mean() for s, e in windows])
    assert np.all(np.abs(ref.btc_mean - fwd) < 4.0 * ref.btc_stderr)
    assert np.all(ref.hashprice_stderr_cv > 0) and np.all(ref.hashprice_stderr_cv <= ref.hashprice_stderr)
    return run, ref


def test_numpy_reference_matches_engine_default_model():
    _compare(Market.default(), ModelParams.default(), seed_engine=11, seed_numpy=12)


def test_numpy_reference_matches_engine_with_jumps():
    model = ModelParams.default().with_(
        btc_jump_intensity_per_year=12.0, btc_jump_mean_log=-0.03, btc_jump_std_log=0.08,
        hashrate_jump_intensity_per_year=6.0, hashrate_jump_mean_log=-0.1, hashrate_jump_std_log=0.1,
        fee_spike_intensity_per_year=20.0, fee_spike_mean_log=1.0, fee_spike_std_log=0.5)
    _compare(Market.default(), model, seed_engine=21, seed_numpy=22)


def test_numpy_reference_matches_engine_through_a_halving():
    # halving ~35 days in, mid-epoch start: a height two years ahead of the as-of date, so the
    # market is relaxed explicitly (a strict market refuses a height from another era)
    market = Market.default().with_(strict=False, height=1_045_000)
    run, ref = _compare(market, ModelParams.default(), seed_engine=31, seed_numpy=32)
    # the subsidy halves: hashprice drops by roughly a third after the halving month
    assert ref.hashprice_mean_cv[3] < 0.8 * ref.hashprice_mean_cv[0]


@pytest.mark.parametrize("chunk_pairs", [1_000, 4_096])
def test_numpy_reference_is_reproducible(chunk_pairs):
    windows, _, n_days = monthly_windows(Market.default().asof, 2)
    a = simulate_numpy(Market.default(), ModelParams.default(), n_days=n_days, n_paths=3_000,
                       windows=windows, seed=5, chunk_pairs=chunk_pairs)
    b = simulate_numpy(Market.default(), ModelParams.default(), n_days=n_days, n_paths=3_000,
                       windows=windows, seed=5, chunk_pairs=chunk_pairs)
    assert np.array_equal(a.hashprice_mean, b.hashprice_mean)
