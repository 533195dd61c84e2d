"""The BTC window average as control variate for every simulated quantity: its mean is the BTC
forward's, so the estimate stays unbiased, and through the hashrate's feedback on hashprice it
follows the hashvalue in BTC, whose stderr it cuts in the late months."""

import numpy as np
import pytest

from curves.market import Market
from curves.periods import monthly_periods
from engine.mc import kernel as K
from engine.mc.model import ModelParams
from engine.mc.simulation import Simulation
from engine.pricing.curve_builder import day_windows

MONTHS = 24


@pytest.fixture(scope="module")
def runs():
    m, model = Market.default(), ModelParams.default()
    periods = monthly_periods(m.asof, MONTHS)
    n_days = (periods[-1].end - m.asof).days
    out = []
    for seed in (11, 12):
        sim = Simulation(m, model, n_days=n_days, n_paths=40_000, seed=seed)
        out.append(sim.run(day_windows(sim, periods), daily=False))
    return out


def test_control_cuts_the_hashvalue_stderr_in_the_late_months(runs):
    run = runs[0]
    controlled = run.window_stderr("hashvalue_btc_per_ph_day")[:MONTHS]
    plain = run.window_moments.stderr()[:MONTHS, K.Q_HASHVALUE_BTC]
    assert np.all(controlled <= plain * (1 + 1e-9))
    assert np.median(controlled[-6:] / plain[-6:]) < 0.9


@pytest.mark.parametrize(("name", "q"), [("hashvalue_btc_per_ph_day", K.Q_HASHVALUE_BTC),
                                         ("difficulty", K.Q_DIFFICULTY),
                                         ("hashprice_usd_per_ph_day", K.Q_HASHPRICE_USD)])
def test_controlled_estimates_agree_with_plain_ones_on_other_paths(runs, name, q):
    a, b = runs
    mean_a, se_a = a.window_mean(name)[:MONTHS], a.window_stderr(name)[:MONTHS]
    mean_b, se_b = b.window_moments.mean()[:MONTHS, q], b.window_moments.stderr()[:MONTHS, q]
    z = (mean_a - mean_b) / np.hypot(se_a, se_b)
    assert np.all(np.abs(z) < 4.5), z  # 24 correlated months: a loose per-month bound
    assert abs(z.mean()) < 3.0
