"""Pair moments: the same sums whatever the memory layout, the chunking or the block split."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.mc.moments import PairMoments, block_sums, block_sums_t
from engine.pricing.batch import _exp_on_grid


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 300), st.integers(1, 9), st.integers(1, 64), st.integers(0, 2**32 - 1))
def test_block_sums_are_bit_identical_in_either_layout(n_pairs, n, block_pairs, seed):
    rng = np.random.default_rng(seed)
    x, c = rng.standard_normal((2 * n_pairs, n)) * 1e3, rng.standard_normal((2 * n_pairs, n))
    rows = block_sums(x, c, block_pairs)
    cols = block_sums_t(np.ascontiguousarray(x.T), np.ascontiguousarray(c.T), block_pairs)
    assert np.array_equal(rows, cols)


def test_block_sums_match_numpy_per_block():
    rng = np.random.default_rng(3)
    x, c = rng.lognormal(size=(2 * 100, 3)), rng.standard_normal((2 * 100, 3))
    out = block_sums(x, c, 32)
    px, pc = 0.5 * (x[0::2] + x[1::2]), 0.5 * (c[0::2] + c[1::2])
    for b, s in enumerate(range(0, 100, 32)):
        bx, bc = px[s:s + 32], pc[s:s + 32]
        d = bx - bx.mean(axis=0)
        want = [bx.sum(0), (bx * bx).sum(0), bc.sum(0), (bc * bc).sum(0), (bx * bc).sum(0),
                (d**2).sum(0), (d**3).sum(0), (d**4).sum(0)]
        np.testing.assert_allclose(out[b], want, rtol=1e-12, atol=1e-12)


def test_pair_moments_do_not_depend_on_chunking_or_layout():
    rng = np.random.default_rng(5)
    x, c = rng.standard_normal((2 * 512, 4)), rng.standard_normal((2 * 512, 4))
    whole, pieces, f_order = PairMoments((4,), 64), PairMoments((4,), 64), PairMoments((4,), 64)
    whole.add(x, c)
    for s in range(0, 1024, 256):
        pieces.add(x[s:s + 256], c[s:s + 256])
    f_order.add(np.asfortranarray(x), np.asfortranarray(c))
    for m in (pieces, f_order):
        assert np.array_equal(m.sums, whole.sums) and np.array_equal(m.central, whole.central)
    np.testing.assert_allclose(whole.mean(), 0.5 * (x[0::2] + x[1::2]).mean(axis=0), rtol=1e-12, atol=1e-15)


def test_discount_grid_interpolates_like_numpy():
    log_df = np.log(np.linspace(1.0, 0.7, 400))
    t = np.concatenate([np.random.default_rng(1).uniform(-5, 420, 1000), [0.0, 399.0, np.inf, -np.inf, np.nan]])
    want = np.exp(np.interp(t, np.arange(log_df.size), log_df))
    np.testing.assert_allclose(_exp_on_grid(t, log_df), want, rtol=1e-14, equal_nan=True)
