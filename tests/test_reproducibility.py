"""Same seed, same numbers: whatever the thread count or chunk size."""

import numba
import numpy as np
import pytest
from scipy import stats

from curves.market import Market
from engine.mc import rng
from engine.mc.distributions import daily_bands, epoch_frame
from engine.mc.model import ModelParams
from engine.mc.simulation import Simulation

WINDOWS = [(0, 27), (28, 58), (59, 88), (10, 80)]


def _run(threads, chunk_paths, seed=7, n_paths=6_000):
    model = ModelParams.default().with_(btc_jump_intensity_per_year=3.0, btc_jump_mean_log=-0.05,
                                        btc_jump_std_log=0.1)
    sim = Simulation(Market.default(), model, n_days=89, n_paths=n_paths, seed=seed, threads=threads,
                     chunk_paths=chunk_paths, n_samples=3)
    return sim.run(WINDOWS, distribution_days=range(0, 89, 7))


@pytest.fixture(scope="module")
def reference():
    return _run(threads=1, chunk_paths=65_536)


@pytest.mark.parametrize(("threads", "chunk_paths"), [(2, 65_536), (1, 1_024), (2, 512), (2, 3_000)])
def test_bit_identical_across_threads_and_chunks(reference, threads, chunk_paths):
    if threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip("machine has fewer threads")
    other = _run(threads, chunk_paths)
    assert np.array_equal(reference.window_moments.sums, other.window_moments.sums)
    assert np.array_equal(reference.daily, other.daily)
    assert np.array_equal(reference.epochs, other.epochs)
    assert np.array_equal(reference.samples, other.samples)
    for name in ("epoch_hist", "epoch_range", "day_hist", "day_range"):
        assert np.array_equal(getattr(reference, name), getattr(other, name)), name
    m = Market.default()
    assert epoch_frame(reference, m.asof, m.height).equals(epoch_frame(other, m.asof, m.height))
    assert daily_bands(reference).equals(daily_bands(other))


def test_seed_changes_numbers(reference):
    other = _run(threads=1, chunk_paths=65_536, seed=8)
    assert not np.array_equal(reference.window_moments.sums, other.window_moments.sums)


def test_first_paths_do_not_depend_on_path_count(reference):
    # path p's draws are keyed on (seed, pair, step, factor): more paths leave earlier ones unchanged
    bigger = _run(threads=2, chunk_paths=65_536, n_paths=8_000)
    assert np.array_equal(reference.samples, bigger.samples)


def test_counter_normals_are_standard_normal():
    z = rng.normals(seed=123, n_pairs=400_000, step=17, factor=2)
    assert abs(z.mean()) < 4 / np.sqrt(z.size)
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / z.size)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    # tails come from the scalar branch: their frequency must match the normal law
    tail = np.mean(np.abs(z) > 1.972)  # P(|Z| > 1.972) = 0.0486 ~ 2 * P_LOW
    assert abs(tail - 2 * stats.norm.sf(1.972)) < 4 * np.sqrt(0.0486 / z.size)


def test_streams_for_factors_and_steps_are_uncorrelated():
    a = rng.normals(seed=1, n_pairs=200_000, step=0, factor=0)
    b = rng.normals(seed=1, n_pairs=200_000, step=0, factor=1)
    c = rng.normals(seed=1, n_pairs=200_000, step=1, factor=0)
    for x, y in ((a, b), (a, c), (b, c)):
        assert abs(np.corrcoef(x, y)[0, 1]) < 4 / np.sqrt(a.size)


def test_fast_exp_matches_numpy():
    x = np.linspace(-60.0, 60.0, 200_001)
    out = np.empty_like(x)
    rng.exp_array(x, out)
    np.testing.assert_allclose(out, np.exp(x), rtol=2e-15)
