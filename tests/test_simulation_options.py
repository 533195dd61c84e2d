"""What a run can skip (the per-day sums, difficulty x blocks) changes nothing else, bit for bit."""

import numpy as np
import pytest

from curves.market import Market
from curves.toml_io import InputError
from engine.mc import kernel as K
from engine.mc.model import ModelParams
from engine.mc.simulation import Simulation

WINDOWS = [(0, 27), (28, 58)]


@pytest.fixture(scope="module")
def sim():
    return Simulation(Market.default(), ModelParams.default(), n_days=59, n_paths=1_024, seed=3)


def test_skipped_work_leaves_the_rest_unchanged(sim):
    full = sim.run(WINDOWS, difficulty_x_blocks=True)
    lean = sim.run(WINDOWS, daily=False)
    assert not lean.daily.any() and full.daily.any()
    kept = [q for q in range(K.N_QUANTITIES) if q != K.Q_DIFF_X_BLOCKS]
    assert np.array_equal(full.window_moments.sums[..., kept], lean.window_moments.sums[..., kept])
    assert np.array_equal(full.epochs, lean.epochs)
    for name in ("hashprice_usd_per_ph_day", "difficulty", "blocks_per_day"):
        assert np.array_equal(full.window_mean(name), lean.window_mean(name))
    assert np.isfinite(full.window_mean("difficulty_x_blocks")).all()
    with pytest.raises(InputError, match="not simulated"):
        lean.window_mean("difficulty_x_blocks")


def test_per_path_values_without_difficulty_x_blocks(sim):
    (_, full, _, _), = sim.path_chunks(WINDOWS)
    (_, lean, _, _), = sim.path_chunks(WINDOWS, difficulty_x_blocks=False)
    assert np.isnan(lean[:, :, K.Q_DIFF_X_BLOCKS]).all()
    kept = [q for q in range(K.N_QUANTITIES) if q != K.Q_DIFF_X_BLOCKS]
    assert np.array_equal(full[:, :, kept], lean[:, :, kept])
    # the per-path values average to the run's window means (same paths, same seed)
    run = sim.run(WINDOWS, difficulty_x_blocks=True)
    plain = run.window_moments.mean()  # without the BTC control
    for q in (K.Q_DIFFICULTY, K.Q_DIFF_X_BLOCKS):
        np.testing.assert_allclose(full.mean(axis=0)[:, q], plain[:, q], rtol=1e-12)
    assert run.window_mean("difficulty_x_blocks") == pytest.approx(plain[:, K.Q_DIFF_X_BLOCKS], rel=1e-3)
