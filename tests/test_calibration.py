"""Physical calibration: recovery on engine-simulated history, real data, no look-ahead."""

import datetime as dt
import math
import time
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
from real_data import DAILY_CSV, needs_data

from curves import protocol
from curves.market import Market
from curves.toml_io import InputError
from curves.units import SECONDS_PER_DAY, TWO_POW_32
from engine.calibration.physical import (
    TABLE_COLUMNS,
    CalibrationError,
    _nearest_pd,
    calibrate,
)
from engine.mc import kernel as K
from engine.mc.model import ModelParams
from engine.mc.simulation import Simulation

PARAM_NAMES = [f.name for f in fields(ModelParams)
               if f.name not in ("provenance", "marginal_cost_reference_date")]

# Jumps and spikes large enough for a 4-sigma threshold to see them all (the method counts
# large moves; see the engine.calibration.physical docstring).
TRUE = ModelParams(
    btc_jump_intensity_per_year=2.0, btc_jump_mean_log=-0.25, btc_jump_std_log=0.04,
    hashrate_vol_annual=0.25, hashrate_growth_per_year=0.0, hashrate_feedback_per_year=0.8,
    marginal_cost_usd_per_ph_day=30.0, marginal_cost_reference_date=dt.date(2026, 1, 31),
    marginal_cost_decline_per_year=0.15, hashprice_ema_days=60.0,
    hashrate_jump_intensity_per_year=0.5, hashrate_jump_mean_log=-0.5, hashrate_jump_std_log=0.05,
    fee_mean_reversion_per_year=40.0, fee_long_run_btc_per_block=0.05, fee_vol_annual=3.0,
    fee_spike_intensity_per_year=4.0, fee_spike_mean_log=1.5, fee_spike_std_log=0.3,
    corr_btc_hashrate=0.3, corr_btc_fee=0.4, corr_hashrate_fee=0.1,
)
SYNTH_DAYS = 8 * 365
SYNTH_SEED = 3


def synthetic_history(params: ModelParams, *, n_days: int, seed: int, sample: int = 0):
    """A daily history in the project schema from one engine sample path.

    Blocks are Poisson draws around the path's expected blocks, and the hashrate column is
    the block-count estimate D * blocks * 2^32 / 86,400, as in the real data.
    """
    market = Market.default()
    sim = Simulation(market, params, n_days=n_days, n_paths=2 * (sample // 2 + 1), seed=seed,
                     n_samples=sample + 1, block_pairs=1)
    s = sim.run(windows=[(0, n_days - 1)]).samples[sample]
    blocks = np.random.default_rng(seed).poisson(s[:, K.SP_BLOCKS]).astype(float)
    height = market.height + np.cumsum(s[:, K.SP_BLOCKS])
    subsidy = np.array([protocol.subsidy_btc(int(h)) for h in height])
    d = s[:, K.SP_DIFFICULTY]
    return pd.DataFrame({
        "price_usd": s[:, K.SP_BTC_USD],
        "hashrate_ths": d * blocks * TWO_POW_32 / SECONDS_PER_DAY / 1e12,
        "difficulty": d,
        "fees_btc": s[:, K.SP_FEE_BTC_PER_BLOCK] * blocks,
        "subsidy_btc": subsidy * blocks,
        "blocks": blocks,
    }, index=pd.DatetimeIndex(sim.dates, name="date"))


@pytest.fixture(scope="module")
def synth():
    return synthetic_history(TRUE, n_days=SYNTH_DAYS, seed=SYNTH_SEED)


@pytest.fixture(scope="module")
def real():
    if not DAILY_CSV.is_file():
        pytest.skip("shared/data not present")
    from engine.data.load import load_network_history

    return load_network_history(DAILY_CSV)


def recovery_failures(res, truth: ModelParams, n_se: float = 3.0) -> list[str]:
    """Parameters whose true value is outside both the stated CI and n_se standard errors."""
    tab = res.table.set_index("parameter")
    true = truth.to_dict()
    true["marginal_cost_usd_per_ph_day"] = truth.marginal_cost_usd_per_ph_day_at(res.asof)
    checks = [
        "btc_jump_intensity_per_year", "btc_jump_mean_log", "btc_jump_std_log",
        "hashrate_vol_annual", "hashrate_feedback_per_year", "marginal_cost_usd_per_ph_day",
        "marginal_cost_decline_per_year", "hashprice_ema_days", "hashrate_jump_intensity_per_year",
        "fee_mean_reversion_per_year", "fee_long_run_btc_per_block", "fee_vol_annual",
        "fee_spike_intensity_per_year", "fee_spike_mean_log", "fee_spike_std_log",
        "corr_btc_hashrate", "corr_btc_fee", "corr_hashrate_fee",
    ]
    if len(res.diagnostics["hashrate_jump_weeks"]) >= 2:  # sizes need two jumps
        checks += ["hashrate_jump_mean_log", "hashrate_jump_std_log"]
    bad = []
    for name in checks:
        est, se, lo, hi = tab.loc[name, ["estimate", "stderr", "ci_low", "ci_high"]]
        in_ci = lo <= true[name] <= hi
        in_se = math.isfinite(se) and abs(est - true[name]) <= n_se * se
        if not (in_ci or in_se):
            bad.append(f"{name}: true {true[name]:.4g}, est {est:.4g} +/- {se:.3g} CI [{lo:.4g}, {hi:.4g}]")
    return bad


# ---- (1) recovery on a synthetic history made by the engine -----------------------------
def test_recovers_known_parameters(synth):
    res = calibrate(synth, fee_window_days=None, source="synthetic")
    assert recovery_failures(res, TRUE) == []
    # the hashrate column is block-based and the noise-free MA(1) check agrees with sigma_H
    assert res.diagnostics["hashrate_block_based"]
    assert abs(res.diagnostics["hashrate_vol_annual_ma1_check"] - res.params.hashrate_vol_annual) < 0.1
    assert res.params.marginal_cost_reference_date == res.asof == synth.index[-1].date()
    assert res.data_start == synth.index[0].date()


def test_table_and_toml_round_trip(synth, tmp_path):
    res = calibrate(synth, fee_window_days=None)
    assert tuple(res.table.columns) == TABLE_COLUMNS
    assert set(PARAM_NAMES) <= set(res.table["parameter"])
    assert res.table["method"].str.len().min() > 0
    path = tmp_path / "model.toml"
    res.to_toml(path, header="synthetic test\nsecond line")
    text = path.read_text()
    assert text.startswith("# synthetic test\n# second line\n")
    assert ModelParams.load(path) == res.params
    import tomllib

    cal = tomllib.loads(text)["calibration"]
    assert cal["asof"] == res.asof
    assert cal["hashrate_vol_annual"]["stderr"] == res.stderr("hashrate_vol_annual")


def test_fee_window_uses_trailing_days_only(synth):
    res = calibrate(synth, fee_window_days=200)
    start, end = res.diagnostics["fee_window"].split("..")
    assert (dt.date.fromisoformat(end) - dt.date.fromisoformat(start)).days == 198
    assert "trailing 200 days" in res.params.provenance


# ---- (2) real data ----------------------------------------------------------------------
@needs_data
def test_real_history_calibrates(real):
    t0 = time.perf_counter()
    res = calibrate(real, dt.date(2026, 1, 31), source="btc_network_daily.csv")
    assert time.perf_counter() - t0 < 5.0
    res.params.validate()
    tab = res.table.set_index("parameter")
    assert np.all(np.isfinite(tab.loc[PARAM_NAMES, "estimate"].to_numpy(float)))
    p = res.params
    assert 0 < p.hashrate_feedback_per_year < 5
    assert 5 < p.marginal_cost_usd_per_ph_day < 200
    assert 0.05 < p.hashrate_vol_annual < 1.0
    assert 0 < p.fee_long_run_btc_per_block < 1
    assert np.linalg.eigvalsh(p.correlation_matrix()).min() > 0
    assert "2016-01-01..2026-01-31" in p.provenance and "btc_network_daily.csv" in p.provenance
    # the 2021 China ban is among the hashrate jumps
    assert any(w.startswith("2021-0") for w in res.diagnostics["hashrate_jump_weeks"])


@needs_data
def test_shipped_defaults_match_calibration(real):
    """engine/data/default_model.toml is calibrate() on the full history (regenerate if not)."""
    res = calibrate(real, dt.date(2026, 1, 31), source="btc_network_daily.csv")
    default = ModelParams.default()
    for name in PARAM_NAMES:
        assert getattr(default, name) == pytest.approx(getattr(res.params, name), rel=1e-9,
                                                        abs=1e-12), name
    assert default.marginal_cost_reference_date == dt.date(2026, 1, 31)


# ---- (3) no look-ahead ------------------------------------------------------------------
def _assert_same(a, b):
    assert a.params == b.params
    pd.testing.assert_frame_equal(a.table, b.table)
    assert a.diagnostics == b.diagnostics


def _corrupt_after(frame: pd.DataFrame, cut: pd.Timestamp) -> pd.DataFrame:
    bad = frame.copy()
    after = bad.index > cut
    rng = np.random.default_rng(0)
    for col in ("price_usd", "hashrate_ths", "difficulty", "fees_btc"):
        bad.loc[after, col] = bad.loc[after, col] * rng.uniform(0.01, 100.0, after.sum())
    bad.loc[after, "blocks"] = 1.0
    return bad


@pytest.mark.parametrize("which", ["synthetic", "real"])
def test_no_look_ahead(which, synth, request):
    if which == "real":
        if not DAILY_CSV.is_file():
            pytest.skip("shared/data not present")
        frame = request.getfixturevalue("real")
        asof = dt.date(2022, 6, 30)
    else:
        frame = synth
        asof = (synth.index[0] + pd.Timedelta(days=5 * 365 + 17)).date()
    cut = pd.Timestamp(asof)
    at_asof = calibrate(frame, asof)
    truncated = calibrate(frame.loc[frame.index <= cut])
    _assert_same(at_asof, truncated)
    assert at_asof.data_end == asof
    _assert_same(at_asof, calibrate(_corrupt_after(frame, cut), asof))


def test_asof_after_data_and_bad_inputs(synth):
    res = calibrate(synth.iloc[:1500])
    assert res.asof == res.data_end == synth.index[1499].date()
    with pytest.raises(InputError, match="^asof: .* after the history's last day"):
        calibrate(synth.iloc[:1500], synth.index[1499].date() + dt.timedelta(days=1))
    with pytest.raises(CalibrationError, match="no history"):
        calibrate(synth, synth.index[0].date() - dt.timedelta(days=1))
    with pytest.raises(CalibrationError, match="at least"):
        calibrate(synth.iloc[:300])
    with pytest.raises(CalibrationError, match="lacks"):
        calibrate(synth.drop(columns=["fees_btc"]))


def test_gaps_are_tolerated(synth):
    holey = synth.drop(synth.index[[100, 101, 102, 900, 1800]])
    res = calibrate(holey, fee_window_days=None)
    res.params.validate()
    assert res.params.hashrate_vol_annual == pytest.approx(
        calibrate(synth, fee_window_days=None).params.hashrate_vol_annual, rel=0.1)


def test_nearest_pd_repairs_an_indefinite_matrix():
    c = np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])
    fixed, repaired = _nearest_pd(c)
    assert repaired
    assert np.linalg.eigvalsh(fixed).min() > 0
    np.testing.assert_allclose(np.diag(fixed), 1.0)
    same, again = _nearest_pd(np.eye(3))
    assert not again and np.array_equal(same, np.eye(3))


def test_cost_decline_is_the_posterior_mode(synth, monkeypatch):
    """A sharp prior pins the cost decline at its mean; a flat one leaves the data's estimate
    (within the bounds): the calibration combines the two, it does not hard-code either."""
    import engine.calibration.physical as physical

    monkeypatch.setattr(physical, "C_PRIOR_SD", 1e-4)
    sharp = calibrate(synth, fee_window_days=None).params.marginal_cost_decline_per_year
    assert sharp == pytest.approx(physical.C_PRIOR_MEAN, abs=physical.C_GRID[2])
    monkeypatch.setattr(physical, "C_PRIOR_SD", 1e4)
    res = calibrate(synth, fee_window_days=None)
    data_only = res.diagnostics["marginal_cost_decline_data_only"]
    expected = min(max(data_only, physical.C_BOUNDS[0]), physical.C_BOUNDS[1])
    assert res.params.marginal_cost_decline_per_year == pytest.approx(expected, abs=2 * physical.C_GRID[2])
