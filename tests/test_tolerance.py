"""--tolerance: paths are added until every figure's stderr is within the target; the result is
the same, to the bit, as a run of the paths it reports."""

import json
from pathlib import Path

import numpy as np
import pytest

from curves.market import Market
from engine.mc.model import ModelParams
from engine.mc.tolerance import Tolerance
from engine.pricing.curve_builder import build_curve
from tests.test_cli import assert_one_line_error, invoke


def test_curve_stops_once_every_month_is_within_tolerance_and_equals_a_fixed_run():
    m, model = Market.default(), ModelParams.default()
    tol = Tolerance(0.0006)
    a = build_curve(m, model, months=4, paths=1_000_000, seed=5, tolerance=tol, chunk_paths=4_096)
    assert 3 * 4_096 <= a.paths < 1_000_000
    assert tol.met(a.hashprice_usd_per_ph_day, a.hashprice_stderr)
    assert tol.met(a.hashvalue_btc_per_ph_day, a.hashvalue_stderr)
    b = build_curve(m, model, months=4, paths=a.paths, seed=5)  # another chunk size, the same paths
    np.testing.assert_array_equal(a.hashprice_usd_per_ph_day, b.hashprice_usd_per_ph_day)
    np.testing.assert_array_equal(a.hashprice_stderr, b.hashprice_stderr)
    # one chunk fewer would not have met it: the run stopped at the first chunk that did
    c = build_curve(m, model, months=4, paths=a.paths - 4_096, seed=5)
    assert not (tol.met(c.hashprice_usd_per_ph_day, c.hashprice_stderr)
                and tol.met(c.hashvalue_btc_per_ph_day, c.hashvalue_stderr))


def test_cli_reports_paths_used_and_an_unmet_tolerance():
    res = invoke("curve", "--months", "2", "--tolerance", "0.00001", "--max-paths", "65536", "--json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    t = doc["tolerance"]
    assert doc["paths"] == t["paths_used"] == 65_536 and not t["met"] and t["worst_stderr_over_allowed"] > 1
    res = invoke("curve", "--months", "2", "--tolerance", "0.005", "--json")
    doc = json.loads(res.stdout)
    assert doc["tolerance"]["met"] and doc["paths"] < 4_000_000


@pytest.mark.parametrize("args,field", [
    (["--tolerance", "0"], "tolerance"), (["--tolerance", "1.5"], "tolerance"),
    (["--abs-tolerance", "0.1"], "abs_tolerance"), (["--tolerance", "0.01", "--abs-tolerance", "-1"], "abs_tolerance"),
    (["--tolerance", "0.01", "--max-paths", "1000"], "max_paths")])
def test_bad_tolerance_options(args, field):
    assert_one_line_error(invoke("curve", "--months", "2", *args), field)


def test_price_stops_once_every_pv_and_fair_rate_is_within_tolerance_and_equals_a_fixed_run():
    from engine.pricing.pricer import price_trades
    from products.portfolio import load_portfolio

    trades, _ = load_portfolio(Path(__file__).resolve().parents[1] / "examples" / "portfolio.toml")
    m, model = Market.default(), ModelParams.default()
    tol = Tolerance(0.02, abs=200.0)
    a = price_trades(trades, m, model, paths=2_000_000, seed=9, tolerance=tol)
    assert 16_384 <= a.paths < 2_000_000
    for t in a.trades:
        assert t.pv_stderr <= max(tol.rel * abs(t.pv_usd), tol.abs), t.trade_id
        if t.fair_rate is not None and t.fair_rate_stderr is not None:
            assert t.fair_rate_stderr <= tol.rel * abs(t.fair_rate), t.trade_id
    b = price_trades(trades, m, model, paths=a.paths, seed=9)
    assert [(t.pv_usd, t.pv_stderr) for t in a.trades] == [(t.pv_usd, t.pv_stderr) for t in b.trades]


def test_hedge_reruns_with_more_paths_until_its_figures_are_within_tolerance():
    from engine.risk.hedge import hedge_fleet, hedge_to_tolerance, worst_against
    from products.fleet_file import parse_fleet_file

    ff = parse_fleet_file({"fleet": {"hashrate_phs": 100.0, "efficiency_j_per_th": 20.0, "power_usd_per_kwh": 0.05,
                                     "curtailment": True}, "hedge": {"horizon_months": 2}})
    m, model = Market.default(), ModelParams.default()
    tol = Tolerance(0.005, abs=30.0)
    a = hedge_to_tolerance(ff, m, model, tol, max_paths=1_000_000, seed=2).report
    assert a["tolerance"]["met"] and a["paths"] > 2 * 16_384  # a first pass was not enough
    assert worst_against(tol, a) <= 1.0
    b = hedge_fleet(ff, m, model, paths=a["paths"], seed=2).report
    assert {k: v for k, v in a.items() if k != "tolerance"} == b
