"""The physical model's start state, growth and guardrails: filter, start draws, recovering jumps,
the cost-decline prior and the backtest's bias statistic."""

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from real_data import DAILY_CSV, EPOCHS_CSV, needs_data

from curves import protocol
from curves.market import Market
from curves.schema import relaxed
from engine.backtest import backtest as B
from engine.calibration import physical as C
from engine.calibration.newey_west import mean_and_stderr
from engine.data.hashrate_filter import filter_hashrate
from engine.mc import kernel as K
from engine.mc.model import ModelParams
from engine.mc.simulation import Simulation, build_inputs


def frozen(**changes) -> ModelParams:
    base = dict(hashrate_vol_annual=0.0, hashrate_feedback_per_year=0.0, fee_vol_annual=0.0,
                fee_long_run_btc_per_block=0.02, corr_btc_hashrate=0.0, corr_btc_fee=0.0,
                corr_hashrate_fee=0.0, marginal_cost_decline_per_year=0.0)
    base.update(changes)
    with relaxed():  # tests build states beyond the plausible bounds on purpose
        return ModelParams(**base)


def poisson_history(rng, level_hs: float, days: int, dip=None):
    """Daily block-count hashrate estimates around a constant level (D fixed), with an optional
    (start, length, factor) dip."""
    difficulty = level_hs * 600 / 2**32  # one block per 600 s at the level
    rate = np.full(days, 144.0)
    if dip is not None:
        start, length, factor = dip
        rate[start:start + length] *= factor
    blocks = rng.poisson(rate).astype(float)
    return np.log(difficulty * blocks * 2**32 / 86_400), blocks


# ---- the hashrate filter ---------------------------------------------------------------------------
def test_filter_is_unbiased_with_an_honest_sd():
    rng = np.random.default_rng(7)
    z = []
    for _ in range(25):
        y, b = poisson_history(rng, 1e21, 365)
        f = filter_hashrate(y, b, hashrate_vol_annual=0.3)
        z.append((f.level_log_hs - math.log(1e21)) / f.level_log_sd)
    z = np.array(z)
    assert abs(z.mean()) < 0.6 and 0.3 < z.std() < 1.6


def test_filter_reads_a_storm_dip_as_transient():
    rng = np.random.default_rng(3)
    y, b = poisson_history(rng, 1e21, 365, dip=(357, 5, 0.72))  # 5 days at 72%, 3 days before today
    f = filter_hashrate(y, b, hashrate_vol_annual=0.28)
    raw_week = math.log(np.mean(np.exp(y[-7:])))
    assert raw_week - math.log(1e21) < -0.12  # the raw 7-day mean is far off
    assert abs(f.level_log_hs - math.log(1e21)) < 3 * f.level_log_sd
    assert f.transient_log < 0 and f.transient_half_life_days <= 3.2


def test_filter_refuses_short_or_bad_input():
    with pytest.raises(ValueError, match="at least"):
        filter_hashrate(np.zeros(10), np.full(10, 144.0), hashrate_vol_annual=0.3)
    with pytest.raises(ValueError, match="hashrate_vol_annual"):
        filter_hashrate(np.zeros(60), np.full(60, 144.0), hashrate_vol_annual=math.nan)


@needs_data
def test_filter_on_real_history():
    from engine.data.load import load_network_history

    h = load_network_history(DAILY_CSV)
    h = h.set_index("date") if "date" in h.columns else h
    for day, lo, hi in (("2026-01-31", 0.96, 1.04), ("2021-07-31", 0.97, 1.15)):
        d = h.loc[:day]
        f = filter_hashrate(np.log(d["hashrate_ths"].to_numpy() * 1e12), d["blocks"].to_numpy(float),
                            hashrate_vol_annual=0.28)
        # today's level against the difficulty-implied rate (2026: a storm dip; 2021: after the ban)
        implied = protocol.hashrate_hs_from_difficulty(float(d["difficulty"].iloc[-1]))
        month = float(d["hashrate_ths"].iloc[-30:].mean()) * 1e12
        ref = implied if day.startswith("2026") else month
        assert lo < math.exp(f.level_log_hs) / ref < hi, day
        assert 0.02 < f.level_log_sd < 0.08


# ---- start state in the kernel ----------------------------------------------------------------------
def start_blocks(sd: float, paths: int = 4000, seed: int = 5) -> np.ndarray:
    m = Market.default().with_(strict=False, hashrate_log_sd=sd, btc_vols=(), btc_vol=1e-9)
    sim = Simulation(m, frozen(), n_days=3, n_paths=paths, seed=seed)
    out = []
    sim.run([(0, 0)], on_chunk=lambda s, wv: out.append(wv[:, 0, K.Q_BLOCKS].copy()))
    return np.concatenate(out)


def test_start_hashrate_is_drawn_per_path_from_the_posterior():
    m = Market.default()
    rate0 = protocol.blocks_per_day(m.hashrate_hs, m.difficulty)
    fixed = start_blocks(0.0)
    assert np.allclose(fixed, rate0, rtol=1e-12)
    drawn = np.log(start_blocks(0.08) / rate0)
    assert abs(drawn.mean()) < 1e-12  # antithetic: each pair's draws are +/- z
    assert drawn.std() == pytest.approx(0.08, rel=0.05)
    assert np.array_equal(start_blocks(0.08, seed=5), start_blocks(0.08, seed=5))


def test_feedback_average_starts_at_its_trailing_value():
    m = Market.default()
    init = build_inputs(m, ModelParams.default(), 5)[4]
    assert init[K.I_HASHPRICE_EMA] == m.hashprice_ema_usd_per_ph_day != m.spot_hashprice_usd_per_ph_day()
    init = build_inputs(m.with_(hashprice_ema_usd_per_ph_day=None), ModelParams.default(), 5)[4]
    assert init[K.I_HASHPRICE_EMA] == m.spot_hashprice_usd_per_ph_day()
    assert init[K.I_LOG_HASHRATE_SD] == m.hashrate_log_sd


# ---- hashrate jumps come back ----------------------------------------------------------------------
@pytest.mark.parametrize("recovery", [0.0, 36.5])
def test_jumps_recover_at_their_rate(recovery):
    """A jump of -0.2 every day (intensity 365, no size noise) and recovery a a day: the offline
    log share follows X_t = (X_{t-1} - 0.2)(1 - a), so the hashrate, and with difficulty fixed
    the blocks per day, are exp(X_t) x today's, a closed form."""
    m = Market.default().with_(strict=False, hashrate_log_sd=0.0, btc_vols=(), btc_vol=1e-9, height=933_408,
                               epoch_seconds_elapsed=0.0)
    model = frozen(hashrate_jump_intensity_per_year=365.0, hashrate_jump_mean_log=-0.2,
                   hashrate_jump_recovery_per_year=recovery)
    days = 6
    sim = Simulation(m, model, n_days=days, n_paths=2, seed=1)
    run = sim.run([(t, t) for t in range(days)])
    a = 1.0 - math.exp(-recovery / 365.0)
    x, want = 0.0, []
    for _ in range(days):
        x += -0.2
        want.append(math.exp(x))
        x -= a * x
    rate0 = protocol.blocks_per_day(m.hashrate_hs, m.difficulty)
    got = run.window_mean("blocks_per_day") / rate0
    assert np.allclose(got, want, rtol=1e-9)


# ---- guardrails --------------------------------------------------------------------------------------
@needs_data
def test_short_history_calibrates_to_plausible_growth():
    from engine.data.load import load_network_history

    res = C.calibrate(load_network_history(DAILY_CSV), dt.date(2018, 2, 1))
    p, tab = res.params, res.table.set_index("parameter")
    assert res.diagnostics["marginal_cost_decline_data_only"] > 1.0  # the data alone: absurd
    assert C.C_BOUNDS[0] <= p.marginal_cost_decline_per_year <= C.C_BOUNDS[1]
    assert abs(p.marginal_cost_decline_per_year - C.C_PRIOR_MEAN) < 2 * C.C_PRIOR_SD
    assert 0 <= p.hashrate_feedback_per_year <= C.BETA_MAX_PER_YEAR
    assert tab.loc["marginal_cost_decline_per_year", "ci_low"] >= 0.0
    assert p.hashrate_jump_recovery_per_year == C.JUMP_RECOVERY_PER_YEAR


def test_ci_exp_never_overflows():
    lo, hi, unbounded = C._ci_exp(math.log(30.0), 1e6)
    assert unbounded and math.isfinite(lo) and hi == C.CI_UNBOUNDED
    lo, hi, unbounded = C._ci_exp(math.log(30.0), 0.1)
    assert not unbounded and (lo, hi) == pytest.approx((30 * math.exp(-C.Z95 * 0.1), 30 * math.exp(C.Z95 * 0.1)))


# ---- the backtest's bias statistic ------------------------------------------------------------------
def test_median_bias_is_the_mean_log_error_with_a_hac_stderr():
    rng = np.random.default_rng(2)
    n = 40
    rec = pd.DataFrame({"origin": [dt.date(2020, 1, 1) + dt.timedelta(days=31 * i) for i in range(n)],
                        "realised": np.exp(rng.normal(0.1, 0.2, n)), "model_q50": 1.0})
    got = B.median_bias(rec.sample(frac=1.0, random_state=1), lags=3)  # order restored inside
    m, se = mean_and_stderr(np.log(rec["realised"].to_numpy()), 3)
    assert got["n"] == n and got["mean"] == pytest.approx(m, rel=1e-12)
    assert got["stderr"] == pytest.approx(se, rel=1e-12)


@needs_data
def test_realised_difficulty_extends_past_the_daily_file_with_the_epochs():
    from engine.data.index import hashprice_history
    from engine.data.load import load_difficulty_epochs, load_network_history

    h = load_network_history(DAILY_CSV)
    ep = load_difficulty_epochs(EPOCHS_CSV)
    daily = h.set_index("date") if "date" in h.columns else h
    real = B.realised_series(daily, hashprice_history(daily), ep)
    assert real.index[-1] > daily.index[-1]
    assert real.loc["2026-02-20", "difficulty"] == pytest.approx(144398401518100.94)  # epoch 937,440
    assert np.isnan(real.loc["2026-02-20", "hashprice_usd_per_ph_day"])
    row = daily.index[-1]
    assert real.loc[row, "difficulty"] == daily.loc[row, "difficulty"]
