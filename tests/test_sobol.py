"""Randomised QMC (``rng="sobol"``): the scrambled points, the Brownian bridge, the estimates and
their stderrs from the spread of the scrambles, reproducibility, and the command line."""

import json

import numba
import numpy as np
import pytest
from scipy import stats
from scipy.stats import qmc

from curves.market import Market
from curves.toml_io import InputError
from engine.mc import sobol
from engine.mc.model import ModelParams
from engine.mc.moments import PairMoments
from engine.mc.simulation import Simulation
from engine.pricing.curve_builder import build_curve
from tests.test_cli import assert_one_line_error, invoke

HP = "hashprice_usd_per_ph_day"
WINDOWS = [(0, 27), (28, 58), (59, 88), (10, 80)]


def test_plain_points_are_scipys_sobol_points():
    for n_dims in (40, 3 * 1096):
        ours = sobol.uniforms(seed=0, scrambles=1, scramble=0, first=0, count=256, n_dims=n_dims, scrambled=False)
        ref = qmc.Sobol(n_dims, scramble=False, bits=32).random(256)
        np.testing.assert_allclose(ours, ref + 0.5 / 2**32, rtol=0, atol=1e-15)


@pytest.mark.parametrize(("seed", "scramble", "first"), [(1, 0, 0), (7, 5, 0), (7, 15, 1024), (123, 3, 2048)])
def test_scrambled_points_are_nets_in_every_coordinate(seed, scramble, first):
    """Each of 2^k equal bins of a coordinate holds exactly one of 2^k points (from index 0, or
    any aligned run of 2^k indices): the nested scramble keeps the net structure."""
    n_dims = 3 * 1096
    u = sobol.uniforms(seed, 16, scramble, first, 1024, n_dims)
    assert np.all((u > 0) & (u < 1))
    for k in (1, 4, 7, 10):
        m = 2**k
        for d in (0, 1, 2, 3, 57, 1000, n_dims - 1):
            bins = np.sort((u[:m, d] * m).astype(int))
            np.testing.assert_array_equal(bins, np.arange(m), err_msg=f"dim {d}, 2^{k} points")
    assert abs(u.mean() - 0.5) < 1e-3  # every coordinate's mean is within 1/2048 of 1/2
    # two-dimensional strata: 1024 points in 32 x 32 boxes of two early coordinates (t = 0, 1 for
    # Sobol's first pairs of dimensions: at most a few per box, never empty runs of many)
    boxes = np.bincount((u[:, 0] * 32).astype(int) * 32 + (u[:, 1] * 32).astype(int), minlength=1024)
    assert boxes.max() <= 2


def test_scrambles_are_independent_uniforms():
    """Across many scrambles, a given point's coordinate is uniform (the random digital part)
    and two scrambles' points differ."""
    n_scr = 2048
    first = np.array([sobol.uniforms(11, n_scr, s, 5, 1, 8)[0] for s in range(n_scr)])
    for d in range(8):
        assert stats.kstest(first[:, d], "uniform").pvalue > 1e-4
    assert np.corrcoef(first[:, 0], first[:, 1])[0, 1] ** 2 < 16 / n_scr
    a = sobol.uniforms(11, 16, 0, 0, 64, 30)
    b = sobol.uniforms(11, 16, 1, 0, 64, 30)
    c = sobol.uniforms(12, 16, 0, 0, 64, 30)
    assert not np.array_equal(a, b) and not np.array_equal(a, c)


def _bridge_matrix(n):
    """W = A z: the bridge applied to each unit vector."""
    b, lft, rgt, lw, rw, sd = sobol.bridge(n)
    w = np.zeros((n + 1, n))
    eye = np.eye(n)
    for k in range(n):
        w[b[k]] = lw[k] * w[lft[k]] + rw[k] * w[rgt[k]] + sd[k] * eye[k]
    return w[1:]


@pytest.mark.parametrize("n", [1, 2, 7, 64, 100, 1096])
def test_bridge_is_exactly_brownian(n):
    """cov(W_s, W_t) = min(s, t): the bridge is a square root of Brownian covariance, and
    variate 0 alone sets the end point, variate 1 the midpoint."""
    a = _bridge_matrix(n)
    t = np.arange(1, n + 1)
    np.testing.assert_allclose(a @ a.T, np.minimum.outer(t, t), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(a[-1], np.eye(n)[0] * np.sqrt(n), atol=1e-12)
    if n > 2:
        assert sobol.bridge(n)[0][1] in (n // 2, (n + 1) // 2)  # the midpoint next


def test_bridge_normals_have_brownian_moments():
    """On 8,192 pairs of the kernel's shocks: each day's shock has mean 0, variance 1; the sum of
    the first k has variance k; days and factors are uncorrelated."""
    n_days, n = 200, 8192
    z = sobol.normals(seed=3, scrambles=16, first_pair=0, n_pairs=n, n_days=n_days)
    assert np.abs(z.mean(axis=2)).max() < 0.05
    # on the whole closer to 1 than i.i.d. draws (mean |error| 0.8 sqrt(2 / n)), though a few
    # days' variances (the two halves of a last bridge step, whose Sobol dimensions are high)
    # stray further than i.i.d. ones would: unbiased across scrambles all the same
    dev = np.abs(z.var(axis=2) - 1)
    assert dev.mean() < 0.8 * np.sqrt(2 / n) and dev.max() < 0.2
    w = np.cumsum(z, axis=0)
    for k in (1, 10, 50, 100, 200):
        v = w[k - 1].var(axis=1)
        assert np.all(np.abs(v / k - 1) < 0.08), (k, v)
    c = np.cov(w[49, 0], w[149, 0])[0, 1]
    assert abs(c / 50 - 1) < 0.08
    for f, g in ((0, 1), (0, 2), (1, 2)):
        assert abs(np.corrcoef(w[-1, f], w[-1, g])[0, 1]) < 4 / np.sqrt(n)
    r = np.corrcoef(z[10, 0], z[11, 0])[0, 1]
    assert abs(r) < 4 / np.sqrt(n)


def test_block_normals_depend_only_on_the_pair():
    """Pair p's shocks are the same whichever block or block size computes them."""
    whole = sobol.normals(seed=9, scrambles=16, first_pair=0, n_pairs=700, n_days=40)
    part = sobol.normals(seed=9, scrambles=16, first_pair=123, n_pairs=300, n_days=40)
    np.testing.assert_array_equal(whole[:, :, 123:423], part)
    other = sobol.normals(seed=9, scrambles=8, first_pair=0, n_pairs=700, n_days=40)
    assert not np.array_equal(whole, other)


def _sobol_run(threads, chunk_paths, seed=7, n_paths=6_000, block_pairs=256):
    model = ModelParams.default().with_(btc_jump_intensity_per_year=3.0, btc_jump_mean_log=-0.05,
                                        btc_jump_std_log=0.1)
    sim = Simulation(Market.default(), model, n_days=89, n_paths=n_paths, seed=seed, threads=threads,
                     chunk_paths=chunk_paths, n_samples=3, rng="sobol", scrambles=16, block_pairs=block_pairs)
    return sim.run(WINDOWS)


@pytest.fixture(scope="module")
def sobol_reference():
    return _sobol_run(threads=1, chunk_paths=65_536)


@pytest.mark.parametrize(("threads", "chunk_paths"), [(2, 65_536), (1, 1_024), (2, 3_000)])
def test_bit_identical_across_threads_and_chunks(sobol_reference, threads, chunk_paths):
    if threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip("machine has fewer threads")
    other = _sobol_run(threads, chunk_paths)
    ref = sobol_reference
    np.testing.assert_array_equal(ref.window_moments.sums, other.window_moments.sums)
    np.testing.assert_array_equal(ref.window_moments.scramble_sums, other.window_moments.scramble_sums)
    np.testing.assert_array_equal(ref.daily, other.daily)
    np.testing.assert_array_equal(ref.samples, other.samples)
    np.testing.assert_array_equal(ref.window_stderr(HP), other.window_stderr(HP))


def test_paths_do_not_depend_on_block_size_or_path_count(sobol_reference):
    smaller_blocks = _sobol_run(threads=2, chunk_paths=65_536, block_pairs=100)
    np.testing.assert_array_equal(sobol_reference.samples, smaller_blocks.samples)
    np.testing.assert_allclose(sobol_reference.window_moments.scramble_sums,
                               smaller_blocks.window_moments.scramble_sums, rtol=1e-12)
    # 6,000 paths = 3,000 pairs: 187 or 188 points per scramble (3,000 is not a multiple of 16)
    assert sorted(set(sobol_reference.window_moments.scramble_pairs.tolist())) == [187, 188]
    bigger = _sobol_run(threads=2, chunk_paths=65_536, n_paths=8_000)
    np.testing.assert_array_equal(sobol_reference.samples, bigger.samples)


def test_sobol_and_counter_runs_differ_and_counter_is_the_default():
    m, model = Market.default(), ModelParams.default()
    a = Simulation(m, model, n_days=30, n_paths=2_000, seed=1).run([(0, 29)])
    b = Simulation(m, model, n_days=30, n_paths=2_000, seed=1, rng="counter").run([(0, 29)])
    c = Simulation(m, model, n_days=30, n_paths=2_000, seed=1, rng="sobol").run([(0, 29)])
    np.testing.assert_array_equal(a.window_moments.sums, b.window_moments.sums)
    assert a.scrambles == 0 and c.scrambles == 16
    assert not np.array_equal(a.window_moments.sums, c.window_moments.sums)


def test_curve_under_sobol_agrees_with_the_pseudo_random_curve():
    m, model = Market.default(), ModelParams.default()
    prn = build_curve(m, model, months=6, paths=40_000, seed=21)
    qmc_ = build_curve(m, model, months=6, paths=40_000, seed=21, rng="sobol")
    for value, se in (("hashprice_usd_per_ph_day", "hashprice_stderr"),
                      ("hashvalue_btc_per_ph_day", "hashvalue_stderr")):
        a, b = getattr(prn, value), getattr(qmc_, value)
        sa, sb = getattr(prn, se), getattr(qmc_, se)
        assert np.all(sb > 0) and np.all(np.isfinite(sb))
        z = (a - b) / np.hypot(sa, sb)
        assert np.all(np.abs(z) < 4), (value, z)


@pytest.fixture(scope="module")
def long_reference():
    """The counter RNG's monthly means on 400,000 paths (a quarter's horizon)."""
    sim = Simulation(Market.default(), ModelParams.default(), n_days=89, n_paths=400_000, seed=1_000)
    return sim.run(WINDOWS)


def test_scramble_stderrs_are_sane(long_reference):
    """Over several seeds, the Sobol means' z-scores against a long pseudo-random run are
    N(0, 1)-like: all within 4, and their mean square not far from 1."""
    zs = []
    for seed in range(6):
        sim = Simulation(Market.default(), ModelParams.default(), n_days=89, n_paths=16_384, seed=seed,
                         rng="sobol", scrambles=16)
        run = sim.run(WINDOWS)
        for name in (HP, "btc_usd", "hashvalue_btc_per_ph_day", "difficulty"):
            se = run.window_stderr(name)
            assert np.all(se > 0)
            z = (run.window_mean(name) - long_reference.window_mean(name)) / np.hypot(
                se, long_reference.window_stderr(name))
            zs.extend(z.tolist())
    zs = np.array(zs)
    assert np.all(np.abs(zs) < 4), zs
    assert 0.2 < np.mean(zs**2) < 3.0, np.mean(zs**2)


def test_scramble_stderr_is_the_spread_of_scramble_means():
    """Equal counts: the stderr is sd(scramble means) / sqrt(R); add() and the kernel's block
    sums agree; without a control the mean is the pooled mean."""
    rng_ = np.random.default_rng(0)
    r, n_pairs = 8, 8 * 40
    x = rng_.normal(size=(2 * n_pairs, 3))
    pm = PairMoments((3,), 16, scrambles=r)
    pm.add(x[: 2 * 96])
    pm.add(x[2 * 96:])
    pair = 0.5 * (x[0::2] + x[1::2])
    means = np.array([pair[s::r].mean(axis=0) for s in range(r)])
    np.testing.assert_allclose(pm.mean(), pair.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(pm.stderr(), means.std(axis=0, ddof=1) / np.sqrt(r), rtol=1e-10)
    np.testing.assert_array_equal(pm.scramble_pairs, np.full(r, 40))
    # with a control of known mean: the scramble means of x - beta (c - E c), pooled beta
    c = x[:, :1] + 0.1 * rng_.normal(size=(2 * n_pairs, 1))
    pc = PairMoments((1,), 16, scrambles=r)
    pc.add(x[:, :1], c)
    pcc = 0.5 * (c[0::2] + c[1::2])[:, 0]
    px = pair[:, 0]
    beta = np.cov(px, pcc)[0, 1] / np.var(pcc, ddof=1)
    y = np.array([(px[s::r] - beta * pcc[s::r]).mean() for s in range(r)])
    np.testing.assert_allclose(pc.stderr(0.0), [y.std(ddof=1) / np.sqrt(r)], rtol=1e-8)


def test_too_few_pairs_for_the_scrambles_is_a_problem():
    pm = PairMoments((1,), 16, scrambles=16)
    pm.add(np.random.default_rng(1).normal(size=(2 * 20, 1)))
    assert "scrambles" in pm.problems()[0]
    one = PairMoments((1,), 16, scrambles=4)
    one.add(np.ones((2, 1)))
    assert np.isnan(one.stderr()[0])


@pytest.mark.parametrize(("kwargs", "field"), [({"rng": "mersenne"}, "rng"),
                                               ({"rng": "sobol", "scrambles": 1}, "scrambles"),
                                               ({"rng": "sobol", "n_days": 8000}, "rng")])
def test_bad_rng_settings(kwargs, field):
    args = {"n_days": 30, "n_paths": 1_000, **kwargs}
    with pytest.raises(InputError) as exc:
        Simulation(Market.default(), ModelParams.default(), **args)
    assert exc.value.field == field


def test_cli_curve_takes_rng_sobol_and_price_refuses_it(tmp_path):
    res = invoke("curve", "--months", "2", "--paths", "4096", "--rng", "sobol", "--scrambles", "8", "--json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["rng"] == "sobol" and doc["scrambles"] == 8
    plain = json.loads(invoke("curve", "--months", "2", "--paths", "4096", "--json").stdout)
    assert "rng" not in plain
    assert doc["months"][0]["hashprice_usd_per_ph_day"] != plain["months"][0]["hashprice_usd_per_ph_day"]
    tol = invoke("curve", "--months", "2", "--rng", "sobol", "--tolerance", "0.002", "--max-paths", "200000",
                 "--json")
    assert tol.exit_code == 0, tol.stderr
    t = json.loads(tol.stdout)["tolerance"]
    assert t["met"] and t["paths_used"] % 16_384 == 0
    res = invoke("price", "examples/portfolio.toml", "--rng", "sobol")
    assert "curve" in assert_one_line_error(res, "rng")
