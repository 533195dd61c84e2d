"""The kernel's per-path fixings against the protocol by hand: epoch difficulty and start day,
block-weighted difficulty, and the subsidy 1 PH/s earns over N blocks; and their independence
from threads, chunks and the first guess at the horizon."""

import datetime as dt

import numpy as np
import pytest

from curves.market import Market
from engine.mc import kernel as K
from engine.mc.model import ModelParams
from engine.mc.simulation import Simulation
from engine.pricing import fixing_plan, pricer
from products.difficulty_swap import DifficultySwap
from tests.test_engine_limits import frozen_model, quiet_market

REWARD_K = 600 * 1e15 / 2**32  # BTC per PH/s per block, per (subsidy / D)


def run_fixings(sim, windows, epochs=(), rewards=()):
    out = {}

    def keep(_start, wv, ep=None, rw=None):
        out.setdefault("wv", []).append(wv.copy())
        if ep is not None:
            out.setdefault("ep", []).append(ep.copy())
            out.setdefault("rw", []).append(rw.copy())

    run = sim.run(windows, on_chunk=keep, epoch_fixings=epochs, reward_fixings=rewards)
    return run, {k: np.concatenate(v) for k, v in out.items()}


def test_frozen_network_fixings_by_hand():
    # 144 blocks a day, 877 left in the epoch (on schedule): the retarget at day 877 / 144 sets
    # D1 = D0 * 2016 / 2015, and blocks then come at 144 * 2015 / 2016 a day
    m = quiet_market(height=934_546, hashrate_multiple=1.0, seconds_elapsed=1138 * 600.0)
    d0 = m.difficulty
    d1 = d0 * 2016 / 2015
    t1 = 877 / 144
    rate1 = 144 * 2015 / 2016
    sim = Simulation(m, frozen_model(m.fee_btc_per_block), n_days=40, n_paths=8, seed=3)
    _, x = run_fixings(sim, [(0, 9), (10, 14)], epochs=[0, 1], rewards=[(-1, 2016), (9, 100)])
    ep, rw, wv = x["ep"], x["rw"], x["wv"]
    np.testing.assert_allclose(ep[:, 0, K.EF_DIFFICULTY], d1, rtol=1e-12)
    np.testing.assert_allclose(ep[:, 0, K.EF_START_DAY], t1, rtol=1e-10)
    np.testing.assert_allclose(ep[:, 1, K.EF_START_DAY], t1 + 2016 / rate1, rtol=1e-10)
    # block-weighted difficulty over days 0..9: 877 blocks at D0, then (10 - t1) days at D1
    n1 = (10 - t1) * rate1
    dpb = wv[:, 0, K.Q_DIFF_X_BLOCKS] / wv[:, 0, K.Q_BLOCKS]
    np.testing.assert_allclose(dpb, (877 * d0 + n1 * d1) / (877 + n1), rtol=1e-10)
    np.testing.assert_allclose(wv[:, 1, K.Q_DIFF_X_BLOCKS] / wv[:, 1, K.Q_BLOCKS], d1, rtol=1e-12)
    # 2,016 blocks from now: 877 at D0 and 1,139 at D1; 100 after day 9's close, all at D1
    np.testing.assert_allclose(rw[:, 0], REWARD_K * 3.125 * (877 / d0 + 1139 / d1), rtol=1e-10)
    np.testing.assert_allclose(rw[:, 1], REWARD_K * 3.125 * 100 / d1, rtol=1e-10)


def test_reward_across_a_halving_and_a_retarget():
    # 1,000 blocks to the halving (day 6.94), 1,336 to the retarget (day 9.28): the 2,016 blocks
    # after the start are 1,000 at 3.125, 336 at 1.5625 (both at D0), 680 at 1.5625 and D1
    m = quiet_market(height=1_048_999, hashrate_multiple=1.0, seconds_elapsed=679 * 600.0)
    d0 = m.difficulty
    d1 = d0 * 2016 / 2015
    sim = Simulation(m, frozen_model(m.fee_btc_per_block), n_days=30, n_paths=4, seed=1)
    _, x = run_fixings(sim, [(0, 0)], rewards=[(-1, 2016), (5, 500)])
    expected = REWARD_K * (1000 * 3.125 / d0 + 336 * 1.5625 / d0 + 680 * 1.5625 / d1)
    np.testing.assert_allclose(x["rw"][:, 0], expected, rtol=1e-10)
    # after day 5's close (height 1,048,999 + 6 x 144 = 1,049,863): 136 blocks at 3.125, then 336
    # at 1.5625 to the retarget (height 1,050,335), and 28 at 1.5625 and D1
    np.testing.assert_allclose(x["rw"][:, 1], REWARD_K * ((136 * 3.125 + 336 * 1.5625) / d0 + 28 * 1.5625 / d1),
                               rtol=1e-10)


def test_random_network_reward_is_exact_given_the_paths_epoch():
    # the 2,016 blocks after the start span exactly one retarget: 877 at today's D, 1,139 at the
    # next epoch's, whatever the path did; the epoch fixing gives that D per path
    m = Market.default()
    sim = Simulation(m, ModelParams.default(), n_days=40, n_paths=2_000, seed=11)
    _, x = run_fixings(sim, [(0, 0)], epochs=[0], rewards=[(-1, 2016)])
    d1 = x["ep"][:, 0, K.EF_DIFFICULTY]
    assert np.ptp(d1) > 0.05 * m.difficulty  # the paths differ
    left = 2016 - m.epoch_blocks_elapsed
    np.testing.assert_allclose(x["rw"][:, 0], REWARD_K * 3.125 * (left / m.difficulty + (2016 - left) / d1),
                               rtol=1e-9)
    # and the per-path epoch values average to the kernel's epoch table
    run, _ = run_fixings(sim, [(0, 0)], epochs=[0])
    assert run.epoch_table()[1][0] == pytest.approx(d1.mean(), rel=1e-12)


def test_unreached_epochs_are_nan():
    m = Market.default()
    sim = Simulation(m, ModelParams.default(), n_days=5, n_paths=64, seed=1)
    _, x = run_fixings(sim, [(0, 4)], epochs=[3], rewards=[(2, 5000)])
    assert np.isnan(x["ep"]).all() and np.isnan(x["rw"]).all()


@pytest.mark.parametrize(("threads", "chunk_paths"), [(1, 512), (2, 1024), (2, 65_536)])
def test_per_path_fixings_do_not_depend_on_threads_or_chunks(threads, chunk_paths):
    m = Market.default()

    def fixings(threads, chunk_paths):
        sim = Simulation(m, ModelParams.default(), n_days=50, n_paths=3_000, seed=9, threads=threads,
                         chunk_paths=chunk_paths)
        return run_fixings(sim, [(3, 40)], epochs=[0, 2], rewards=[(10, 2016), (-1, 300)])[1]

    ref = fixings(2, 4096)
    got = fixings(threads, chunk_paths)
    for key in ("wv", "ep", "rw"):
        assert np.array_equal(ref[key], got[key], equal_nan=True), key


def test_the_horizon_guess_does_not_change_the_price(monkeypatch):
    """A swap far enough ahead that a short first guess at the horizon leaves paths short of its
    epoch: the pricer simulates more days, and the price is the same to the bit."""
    m = Market.default()
    start = m.height - m.height % 2016
    swap = DifficultySwap("s", epoch_height=start + 6 * 2016, strike_difficulty=1.6e14, notional_usd=1e6)
    ref = pricer.price_trades([swap], m, ModelParams.default(), paths=2_000, seed=4).trades[0]
    calls = []

    class CountingPass(pricer.PricingPass):
        def __init__(self, *args, **kwargs):
            calls.append(kwargs["n_days"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(fixing_plan, "DAYS_MARGIN", 0.6)
    monkeypatch.setattr(pricer, "PricingPass", CountingPass)
    short = pricer.price_trades([swap], m, ModelParams.default(), paths=2_000, seed=4).trades[0]
    assert len(calls) >= 2 and calls[0] < calls[-1]  # a second, longer pass
    assert ref.error is None and (short.pv_usd, short.pv_stderr) == (ref.pv_usd, ref.pv_stderr)


def test_an_epoch_beyond_the_horizon_is_that_trades_error():
    m = Market.default()
    far = DifficultySwap("far", epoch_height=(m.height // 2016 + 1_000_000) * 2016, strike_difficulty=1.4e14,
                         notional_usd=1e6)
    near = DifficultySwap("near", epoch_height=(m.height // 2016 + 2) * 2016, strike_difficulty=1.4e14,
                          notional_usd=1e6)
    res = pricer.price_trades([far, near], m.with_(strict=False), ModelParams.default(), paths=1_000, seed=1)
    assert res.trades[0].error.startswith("epoch_height: far: its fixings need about")
    assert "20,000-day horizon" in res.trades[0].error and res.trades[1].error is None


def test_dates_of_random_payments():
    assert pricer.Discounter.pay_date(Market.default(), [0.2, 0.9]) == dt.date(2026, 2, 1)
