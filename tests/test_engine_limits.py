"""Monte Carlo against closed forms in limits derived by hand, and statistical checks."""

import datetime as dt
import math

import numpy as np
import pytest

from curves import protocol
from curves.market import Market
from engine.mc import kernel as K
from engine.mc.model import ModelParams
from engine.mc.simulation import Simulation

HV_K = 86_400 * 1e15 / 2**32


def frozen_model(fee_btc_per_block: float, **changes) -> ModelParams:
    base = dict(
        hashrate_vol_annual=0.0, hashrate_growth_per_year=0.0, hashrate_feedback_per_year=0.0,
        fee_vol_annual=0.0, fee_long_run_btc_per_block=fee_btc_per_block, fee_mean_reversion_per_year=5.0,
        corr_btc_hashrate=0.0, corr_btc_fee=0.0, corr_hashrate_fee=0.0,
    )
    base.update(changes)
    return ModelParams(**base)


def quiet_market(height: int, hashrate_multiple: float, seconds_elapsed: float, btc_vol: float = 1e-9):
    """Default market with zero-ish vol and hashrate = multiple x the difficulty-implied rate.

    Limit states (a 1e-9 vol, 10x or 0.1x the difficulty-implied hashrate, an epoch that took
    no time) are outside the plausible bounds: the market is relaxed explicitly.
    """
    m = Market.default()
    h_ehs = protocol.hashrate_hs_from_difficulty(m.difficulty) * hashrate_multiple / 1e18
    return m.with_(strict=False, height=height, hashrate_ehs=h_ehs, hashrate_log_sd=0.0,
                   epoch_seconds_elapsed=seconds_elapsed, btc_vols=(), btc_vol=btc_vol)


def months(sim, n):
    out, start = [], 0
    d0 = sim.market.asof + dt.timedelta(days=1)
    for _ in range(n):
        first = sim.dates[start]
        nxt = (first.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        end = (nxt - d0).days - 1
        out.append((start, end))
        start = end + 1
    return out


def closed_form_daily_hv(n_days, d0, d_after, t_retarget, sub_before, sub_after, t_halving, fee):
    """Time-weighted hashvalue per day with D switching at t_retarget and subsidy at t_halving."""
    hv = np.empty(n_days)
    for k in range(n_days):
        grid = sorted({k, k + 1, *(t for t in (t_retarget, t_halving) if k < t < k + 1)})
        acc = 0.0
        for a, b in zip(grid[:-1], grid[1:]):
            mid = 0.5 * (a + b)
            d = d0 if mid < t_retarget else d_after
            sub = sub_before if mid < t_halving else sub_after
            acc += (b - a) * HV_K * (sub + fee) / d
        hv[k] = acc
    return hv


def test_zero_vol_matches_closed_form_with_retarget():
    # balanced hashrate: 144 blocks a day; 877 blocks left in the epoch, on schedule so far
    m = quiet_market(height=934_546, hashrate_multiple=1.0, seconds_elapsed=1138 * 600.0)
    fee = m.fee_btc_per_block
    sim = Simulation(m, frozen_model(fee), n_days=90, n_paths=64, seed=5, n_samples=2)
    wins = months(sim, 3)
    run = sim.run(wins)
    t1 = 877 / 144  # days to the retarget; T = 2015 intervals of 600 s => D * 2016 / 2015
    d_after = m.difficulty * 2016 / 2015
    hv = closed_form_daily_hv(90, m.difficulty, d_after, t1, 3.125, 3.125, 1e9, fee)
    fwd = np.array([m.btc_forward_usd(d) for d in sim.dates])
    expected = [np.mean(hv[s:e + 1] * fwd[s:e + 1]) for s, e in wins]
    np.testing.assert_allclose(run.window_mean("hashprice_usd_per_ph_day"), expected, rtol=1e-8)
    np.testing.assert_allclose(run.window_mean("hashvalue_btc_per_ph_day"),
                               [np.mean(hv[s:e + 1]) for s, e in wins], rtol=1e-9)
    # every later epoch keeps D * 2016 / 2015 (constant hashrate, 2,015 intervals)
    reach, diff, day = run.epoch_table()
    assert reach[0] == 1.0
    np.testing.assert_allclose(diff[:5], d_after, rtol=1e-12)
    np.testing.assert_allclose(day[0], t1, rtol=1e-9)
    np.testing.assert_allclose(np.diff(day[:5]), 2016 / (144 * 2015 / 2016), rtol=1e-9)


def test_halving_crossing_on_path():
    # last block 1,048,999: 1,000 blocks to the halving (day 6.94), 1,336 to the retarget (day 9.28)
    height = 1_048_999
    assert height % 2016 + 1 == 680
    m = quiet_market(height=height, hashrate_multiple=1.0, seconds_elapsed=679 * 600.0)
    fee = 0.02
    sim = Simulation(m.with_(fee_btc_per_block=fee), frozen_model(fee), n_days=20, n_paths=8, seed=1,
                     n_samples=1)
    run = sim.run([(0, 5), (6, 6), (7, 19)])
    hv = closed_form_daily_hv(20, m.difficulty, m.difficulty * 2016 / 2015, 1336 / 144, 3.125, 1.5625,
                              1000 / 144, fee)
    samples_hv = run.samples[0, :, K.SP_HASHPRICE_USD] / run.samples[0, :, K.SP_BTC_USD]
    np.testing.assert_allclose(samples_hv, hv, rtol=1e-9)
    assert samples_hv[8] / samples_hv[0] == pytest.approx((1.5625 + fee) / (3.125 + fee), rel=1e-12)


def test_retarget_clamps_at_four_times():
    # ten times the balanced hashrate: the first epoch takes 2015/1440 days, clamped to 302,400 s
    height = 933_408
    assert height % 2016 == 0
    m = quiet_market(height=height, hashrate_multiple=10.0, seconds_elapsed=0.0)
    sim = Simulation(m, frozen_model(m.fee_btc_per_block), n_days=30, n_paths=4, seed=1)
    run = sim.run([(0, 29)])
    _, diff, day = run.epoch_table()
    assert diff[0] == pytest.approx(4 * m.difficulty, rel=1e-14)
    # second epoch: 360 blocks/day, T = 2015 * 86400 / 360 s, inside the clamp
    assert diff[1] == pytest.approx(4 * m.difficulty * 1_209_600 / (2015 * 86_400 / 360), rel=1e-10)
    assert day[0] == pytest.approx(2015 / 1440, rel=1e-10)


def test_frozen_difficulty_and_fees_hashprice_is_hashvalue_times_ql_forward():
    # a tenth of the balanced hashrate: no retarget in 60 days; BTC has vol and jumps
    m = quiet_market(height=934_546, hashrate_multiple=0.1, seconds_elapsed=0.0, btc_vol=0.6)
    model = frozen_model(m.fee_btc_per_block, btc_jump_intensity_per_year=6.0, btc_jump_mean_log=-0.08,
                         btc_jump_std_log=0.12)
    sim = Simulation(m, model, n_days=59, n_paths=40_000, seed=11)
    wins = [(0, 27), (28, 58), (58, 58)]
    run = sim.run(wins)
    hv0 = m.spot_hashvalue_btc_per_ph_day()
    mean = run.window_moments.mean()[:, K.Q_HASHPRICE_USD]  # plain estimator, no control variate
    se = run.window_moments.stderr()[:, K.Q_HASHPRICE_USD]
    for k, (s, e) in enumerate(wins):
        ql_fwd = np.mean([m.btc_forward_usd(d) for d in sim.dates[s:e + 1]])
        assert abs(mean[k] - hv0 * ql_fwd) < 3 * se[k], (k, mean[k], hv0 * ql_fwd, se[k])
        assert se[k] > 0
    np.testing.assert_allclose(run.window_mean("hashvalue_btc_per_ph_day"), hv0, rtol=1e-12)


def test_btc_martingale_under_jumps_against_quantlib_forward():
    m = Market.default()
    model = ModelParams.default().with_(btc_jump_intensity_per_year=4.0, btc_jump_mean_log=-0.1,
                                        btc_jump_std_log=0.15)
    sim = Simulation(m, model, n_days=365, n_paths=20_000, seed=3)
    run = sim.run([(364, 364)])
    mean = run.window_moments.mean()[0, K.Q_BTC_USD]
    se = run.window_moments.stderr()[0, K.Q_BTC_USD]
    fwd = m.btc_forward_usd(sim.dates[-1])
    assert fwd == pytest.approx(m.btc_spot_usd * math.exp(m.btc_basis_annual * 365 / 365), rel=1e-12)
    assert abs(mean - fwd) < 3 * se


def test_stderr_shrinks_as_one_over_sqrt_n():
    m, model = Market.default(), ModelParams.default()
    ses = []
    for n in (4_000, 16_000):
        run = Simulation(m, model, n_days=180, n_paths=n, seed=21).run([(150, 179)])
        ses.append(run.window_moments.stderr()[0, K.Q_HASHPRICE_USD])
    assert ses[0] / ses[1] == pytest.approx(2.0, rel=0.15)


def test_control_variate_removes_btc_noise():
    # frozen network: hashprice = hashvalue x BTC exactly, so the control removes all the noise
    m = quiet_market(height=934_546, hashrate_multiple=0.1, seconds_elapsed=0.0, btc_vol=0.6)
    run = Simulation(m, frozen_model(m.fee_btc_per_block), n_days=30, n_paths=4_000, seed=2).run([(0, 29)])
    plain = run.window_moments.stderr()[0, K.Q_HASHPRICE_USD]
    assert plain > 0
    assert run.window_stderr("hashprice_usd_per_ph_day")[0] < 1e-4 * plain


def test_fee_reverts_to_its_level_at_the_exponential_rate():
    # frozen network (a tenth of the balanced hashrate: no retarget in 60 days), no fee vol or
    # spikes, the fee started at 0.0219 BTC/block, far from its long-run level 0.2: the kernel's
    # daily step ln F += (1 - e^{-kappa/365}) (ln F_bar - ln F) gives exactly
    # ln F_k = ln F_bar + (ln F_0 - ln F_bar) e^{-kappa k / 365} after k days
    m = quiet_market(height=934_546, hashrate_multiple=0.1, seconds_elapsed=0.0)
    kappa, level, f0 = 120.0, 0.2, m.fee_btc_per_block
    sim = Simulation(m, frozen_model(level, fee_mean_reversion_per_year=kappa), n_days=60, n_paths=8, seed=4,
                     n_samples=2)
    run = sim.run([(0, 29), (30, 59)])
    k = np.arange(1, 61)  # day 0's index uses the fee after one step
    fee = np.exp(math.log(level) + (math.log(f0) - math.log(level)) * np.exp(-kappa * k / 365.0))
    np.testing.assert_allclose(run.samples[0, :, K.SP_FEE_BTC_PER_BLOCK], fee, rtol=1e-10)
    hv = HV_K * (3.125 + fee) / m.difficulty
    samples_hv = run.samples[0, :, K.SP_HASHPRICE_USD] / run.samples[0, :, K.SP_BTC_USD]
    np.testing.assert_allclose(samples_hv, hv, rtol=1e-10)
    np.testing.assert_allclose(run.window_mean("hashvalue_btc_per_ph_day"), [hv[:30].mean(), hv[30:].mean()],
                               rtol=1e-10)
    assert fee[-1] / f0 > 5  # the test is not vacuous: the fee moved a long way


# ---- the daily curve: per-day control-variate estimates, for ranges that are not whole months ----
def test_daily_curve_with_a_frozen_network_is_hashvalue_times_the_forward():
    # hashprice = hashvalue x BTC exactly, so the control removes all noise, day by day
    m = quiet_market(height=934_546, hashrate_multiple=0.1, seconds_elapsed=0.0, btc_vol=0.6)
    model = frozen_model(m.fee_btc_per_block, btc_jump_intensity_per_year=6.0, btc_jump_mean_log=-0.08,
                         btc_jump_std_log=0.12)
    sim = Simulation(m, model, n_days=59, n_paths=4_000, seed=11)
    run = sim.run([(0, 58)])
    mean, se = run.daily_hashprice_cv()
    hv0 = m.spot_hashvalue_btc_per_ph_day()
    np.testing.assert_allclose(mean, hv0 * np.array([m.btc_forward_usd(d) for d in sim.dates]), rtol=1e-9)
    d = run.daily / run.n_pairs
    plain = np.sqrt((d[:, K.D_HP2] - d[:, K.D_HP] ** 2) / run.n_pairs)
    assert np.all(plain > 0) and np.all(se < 1e-4 * plain)  # rounding noise only


def test_daily_curve_prices_a_range_that_is_not_whole_months():
    from engine.pricing.curve_builder import build_curve

    m, model = Market.default(), ModelParams.default()
    a, b = dt.date(2026, 3, 10), dt.date(2026, 4, 20)
    curve = build_curve(m, model, months=3, paths=20_000, seed=5)
    fwd, se = curve.forward_usd_per_ph_day(a, b)
    # an independent estimate: another seed, the range as one window with its own control variate
    sim = Simulation(m, model, n_days=(b - m.asof).days, n_paths=20_000, seed=6)
    run = sim.run([(sim.day_index(a), sim.day_index(b))])
    ref, ref_se = run.window_mean("hashprice_usd_per_ph_day")[0], run.window_stderr("hashprice_usd_per_ph_day")[0]
    assert 0 < se < 0.01 * fwd and 0 < ref_se < 0.01 * ref
    assert abs(fwd - ref) < 4 * math.hypot(se, ref_se), (fwd, se, ref, ref_se)


def test_daily_control_variate_estimate_and_stderr_by_hand():
    # synthetic pair means: the estimate is the intercept of x on (c - F), its stderr the residual
    # sd / sqrt(n) (n - 1 degrees of freedom, as for the window estimates)
    from engine.mc.simulation import SimulationRun

    rng = np.random.default_rng(7)
    n, days = 500, 3
    c = 80_000.0 * np.exp(0.3 * rng.standard_normal((days, n)))
    x = 5e-4 * c * np.exp(0.2 * rng.standard_normal((days, n))) + rng.normal(0.0, 2.0, (days, n))
    fwd = c.mean(axis=1) * np.array([1.2, 0.85, 1.1])  # forwards away from the sample means
    daily = np.zeros((days, K.N_DAILY))
    daily[:, K.D_HP], daily[:, K.D_HP2] = x.sum(1), (x * x).sum(1)
    daily[:, K.D_BTC], daily[:, K.D_BTC2], daily[:, K.D_HP_BTC] = c.sum(1), (c * c).sum(1), (x * c).sum(1)
    run = SimulationRun(dates=[], btc_forward_usd=fwd, windows=[], n_paths=2 * n, daily=daily, window_moments=None,
                        window_control_mean=None, epochs=np.zeros((1, 3)), samples=np.zeros((0, days, 6)),
                        seconds=0.0)
    mean, se = run.daily_hashprice_cv()
    for t in range(days):
        X = np.column_stack([np.ones(n), c[t] - fwd[t]])
        coef = np.linalg.lstsq(X, x[t], rcond=None)[0]
        resid = x[t] - X @ coef
        assert mean[t] == pytest.approx(coef[0], rel=1e-9)
        assert se[t] == pytest.approx(math.sqrt(resid @ resid / (n - 1) / n), rel=1e-8)
        assert abs(mean[t] - x[t].mean()) > 5 * se[t]  # the control moved the estimate: not vacuous
