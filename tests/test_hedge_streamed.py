"""The streamed hedge (histogram quantiles, bounded memory) against the per-path one, its
determinism for any chunking, the histogram helpers against exact order statistics, and its
memory not growing with the paths."""

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curves.market import Market
from engine.mc.model import ModelParams
from engine.risk import hedge as H
from engine.risk import hedge_stream
from engine.risk.batch_moments import BatchMoments
from engine.risk.hedge import hedge_fleet
from engine.risk.pnl_histogram import Grid, quantile, tail_mean
from products.fleet_file import parse_fleet_file

PATHS = 4_096
DOC = {"fleet": {"hashrate_phs": 100.0, "efficiency_j_per_th": 18.0, "power_usd_per_kwh": 0.05, "uptime": 0.97,
                 "opex_usd_per_day": 800.0},
       "hedge": {"horizon_months": 3}, "token": {"ths_per_token": 1, "life_months": 3, "fee_usd_per_th_day": 0.0015}}


def run(mode, **kw):
    kw = {"paths": PATHS, "seed": 11, "threads": 1, **kw}
    return hedge_fleet(parse_fleet_file(DOC), Market.default(), ModelParams.default(), quantiles=mode, **kw)


@pytest.fixture(scope="module")
def both():
    return run("per_path").report, run("histogram").report


def test_streamed_matches_per_path(both):
    a, b = both
    assert a["quantiles"] == "per_path" and b["quantiles"] == "histogram"
    res = b["quantile_grid"]["resolution_usd"]
    for ma, mb in zip(a["months"], b["months"]):
        for k in ("expected_net_usd", "delta_hedge_btc", "min_variance_hedge_btc"):
            assert mb[k] == pytest.approx(ma[k], rel=1e-12)
        for h, e in ma["hedge_effectiveness"].items():
            assert mb["hedge_effectiveness"][h] == pytest.approx(e, abs=1e-12)
    for ca, cb in zip(a["hedges"]["collar"], b["hedges"]["collar"]):
        assert cb["premium_usd"] == ca["premium_usd"]
    assert b["fleet_pv_usd"] == a["fleet_pv_usd"]
    assert set(a["pnl"]) == set(b["pnl"])
    for name, pa in a["pnl"].items():
        pb = b["pnl"][name]
        assert set(pb) == set(pa)
        rows = [(pa, pb, res[name]["horizon"])] + [(x, y, res[name]["worst_month"])
                                                    for x, y in zip(pa["months"], pb["months"])]
        for x, y, width in rows:
            assert y["mean_usd"] == pytest.approx(x["mean_usd"], rel=1e-12, abs=1e-6)
            assert y["std_usd"] == pytest.approx(x["std_usd"], rel=1e-10, abs=1e-9 * abs(x["mean_usd"]))
            assert y["effectiveness"] == pytest.approx(x["effectiveness"], abs=1e-10)
            assert y["prob_negative"] == x["prob_negative"]
            for k in ("var_95_usd", "cvar_95_usd", "var_99_usd", "cvar_99_usd"):
                assert abs(y[k] - x[k]) <= width + 0.01, (name, k)
        assert pb["prob_negative_month"] == pa["prob_negative_month"]
    ta, tb = a["token"], b["token"]
    for k in ("value_usd", "paid_btc"):
        width = b["quantile_grid"]["token_resolution"][k]
        assert tb[k]["mean"] == ta[k]["mean"]
        for q in ("p05", "p50", "p95"):
            assert abs(tb[k][q] - ta[k][q]) <= width * 1.0001
    assert tb["pv_usd"] == ta["pv_usd"]


def test_streamed_is_bit_identical_for_any_chunking():
    a = run("histogram", chunk_paths=1024).report
    b = run("histogram", chunk_paths=2048, threads=2).report
    assert a == b


def test_default_mode_follows_the_memory_budget(monkeypatch):
    ff = parse_fleet_file(DOC)
    fleet, token = ff.position(Market.default().asof), ff.token_trade(Market.default().asof)
    assert H.choose_mode(fleet, token, 1_000_000, None) == "per_path"
    assert H.choose_mode(fleet, token, 10_000_000, None) == "histogram"
    monkeypatch.setattr(H, "MEMORY_BUDGET_BYTES", 1)
    assert run(None, paths=2_048).report["quantiles"] == "histogram"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=300),
       st.sampled_from([0.01, 0.05, 0.5, 0.95]), st.sampled_from([64, 1024, 65536]))
def test_histogram_quantile_and_tail_mean_within_a_bin_of_the_order_statistics(xs, p, bins):
    x = np.round(np.array(xs), 2)
    g = Grid(float(x.min()), float(x.max()), 0.01, bins)
    h = g.empty(1)
    g.add(h, x[:, None])
    q = float(np.quantile(x, p, method="inverted_cdf"))
    tail = float(x[x <= q].mean()) if np.sum(x == q) == 1 else None
    width = g.resolution + 1e-9 * max(1.0, abs(q))
    assert abs(quantile(g, h[0][0], p) - q) <= width
    if tail is not None:  # ties at the quantile make the tail's paths ambiguous
        assert abs(tail_mean(g, h[0][0], h[1][0], p) - tail) <= width


def test_histogram_exact_on_a_grid_of_integers():
    x = np.arange(1.0, 1001.0)
    g = Grid(0.5, 1000.5, 0.01, 1000)  # one value a bin
    h = g.empty(1)
    g.add(h, x[:, None])
    assert tail_mean(g, h[0][0], h[1][0], 0.05) == pytest.approx(25.5, abs=1e-9)  # mean of 1..50
    assert abs(quantile(g, h[0][0], 0.05) - 50.0) <= g.resolution


def test_batch_moments_do_not_depend_on_chunking():
    rng = np.random.default_rng(3)
    x = rng.normal(5.0, 2.0, (10_240, 3))
    whole = BatchMoments(x.shape[0], 3, [(0, 0), (0, 1), (2, 2)], 512)
    whole.add(x, 0)
    parts = BatchMoments(x.shape[0], 3, [(0, 0), (0, 1), (2, 2)], 512)
    for s in range(0, x.shape[0], 1024):
        parts.add(x[s:s + 1024], s)
    n, mean, com = whole.total()
    n2, mean2, com2 = parts.total()
    assert n == n2 == x.shape[0]
    assert np.array_equal(mean, mean2) and np.array_equal(com, com2)
    np.testing.assert_allclose(mean, x.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(com[0] / n, x[:, 0].var(), rtol=1e-12)
    np.testing.assert_allclose(com[1] / n, np.cov(x[:, 0], x[:, 1], ddof=0)[0, 1], rtol=1e-10)


def test_streamed_memory_does_not_grow_with_paths():
    """Peak traced allocations of a streamed run at 4k and 16k paths: a paths-sized array would
    add 8 bytes x 12k paths per value kept (about 100 kB per column; the per-path mode keeps
    ~20 columns), so the peaks stay within a few chunks' worth of each other."""
    run("histogram", paths=2_048)  # compile and cache first

    def peak(paths):
        tracemalloc.start()
        run("histogram", paths=paths, chunk_paths=2_048)
        out = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return out

    small, large = peak(4_096), peak(16_384)
    per_path_kept = 8 * 20 * (16_384 - 4_096)
    assert large - small < 0.25 * per_path_kept, (small, large)


def test_resolution_is_range_over_bins():
    g = hedge_stream._grid(-1000.0, 1000.0, 0.01)
    assert g.bins == hedge_stream.HIST_BINS
    assert math.isclose(g.resolution, 2000.0 / g.bins, rel_tol=1e-3)
