"""The counter RNG's normals: the inverse-CDF transform against the exact quantile function
out to the largest |z| the 53-bit uniforms reach, and samples against N(0, 1)."""

import numpy as np
from scipy import special, stats

from engine.mc import rng

TWO53 = 2**53


def _normals(k53: np.ndarray) -> np.ndarray:
    """The transform at given 53-bit uniforms k (u = (k + 1) / (2^53 + 1))."""
    out = np.empty(k53.size)
    rng.normal_array(k53.astype(np.uint64) << np.uint64(11), out)
    return out


def test_transform_matches_the_normal_quantile_to_the_extreme_tails():
    lower = np.unique(np.concatenate([np.arange(0, 2_000), np.geomspace(1, TWO53 / 2 - 1, 20_000).astype(np.int64)]))
    lower = lower[lower < TWO53 // 2]
    z = _normals(lower)
    exact = special.ndtri((lower + 1.0) / (TWO53 + 1.0))
    np.testing.assert_allclose(z, exact, rtol=1.2e-9, atol=1e-15)
    assert z.min() < -8.2  # the smallest uniform, 1 / (2^53 + 1), is 8.2 standard deviations out
    upper = TWO53 - 1 - lower  # the mirror image: exactly the negated draw
    assert np.array_equal(_normals(upper), -z)


def test_transform_where_the_branches_meet():
    edge = int(rng.P_LOW * (TWO53 + 1.0))
    k = np.arange(edge - 1_000, edge + 1_000)
    z = _normals(k)
    assert np.abs(np.diff(z)).max() < 5e-9  # each branch is within 1.2e-9 relative of the quantile
    np.testing.assert_allclose(z, special.ndtri((k + 1.0) / (TWO53 + 1.0)), rtol=1.2e-9)


def test_samples_are_standard_normal_in_the_body_and_tails():
    z = np.concatenate([rng.normals(seed=5, n_pairs=1_000_000, step=s, factor=f) for s, f in ((0, 0), (3, 1), (9, 2))])
    n = z.size
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / n)
    assert abs(stats.skew(z)) < 4 * np.sqrt(6 / n)
    assert abs(stats.kurtosis(z)) < 4 * np.sqrt(24 / n)
    for q in (0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999):  # quantiles within 4 of their standard errors
        se = np.sqrt(q * (1 - q) / n) / stats.norm.pdf(stats.norm.ppf(q))
        assert abs(np.quantile(z, q) - stats.norm.ppf(q)) < 4 * se, q
    for c in (2.0, 3.0, 4.0):  # tail frequencies against the normal law (binomial sd)
        p = 2 * stats.norm.sf(c)
        assert abs(np.mean(np.abs(z) > c) - p) < 4 * np.sqrt(p / n), c
