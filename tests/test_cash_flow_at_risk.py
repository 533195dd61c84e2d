"""VaR, CVaR and hedge effectiveness of known distributions against their closed forms, within
a few of the reported standard errors."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from engine.risk.pnl_stats import LEVELS, cash_flow_at_risk, effectiveness

N = 400_000


def _check(got: dict, key: str, want: float, k: float = 3.5):
    se = got[f"{key}_stderr"]
    assert se > 0 and abs(got[key] - want) <= k * se, (key, got[key], want, se)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_normal_cash_flows(seed):
    mu, sigma = 1_000.0, 250.0
    got = cash_flow_at_risk(np.random.default_rng(seed).normal(mu, sigma, N))
    _check(got, "mean_usd", mu)
    _check(got, "std_usd", sigma)
    for level in LEVELS:
        tail, z = int(round(100 * level)), norm.ppf(level)
        _check(got, f"var_{tail}_usd", sigma * z)
        _check(got, f"cvar_{tail}_usd", sigma * norm.pdf(z) / (1 - level))
    _check(got, "prob_negative", norm.cdf(-mu / sigma))


@pytest.mark.parametrize("seed", [4, 5])
def test_lognormal_cash_flows(seed):
    m, s = math.log(500.0), 0.6
    got = cash_flow_at_risk(np.exp(np.random.default_rng(seed).normal(m, s, N)))
    mean = math.exp(m + s * s / 2)
    _check(got, "mean_usd", mean)
    for level in LEVELS:
        tail, z = int(round(100 * level)), norm.ppf(1 - level)
        q = math.exp(m + s * z)
        _check(got, f"var_{tail}_usd", mean - q)
        _check(got, f"cvar_{tail}_usd", mean - mean * norm.cdf(z - s) / (1 - level))


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9, 0.99])
def test_minimum_variance_hedge_removes_rho_squared(rho):
    rng = np.random.default_rng(7)
    f = rng.standard_normal(N)
    u = 3.0 * (rho * f + math.sqrt(1 - rho * rho) * rng.standard_normal(N))
    beta = np.cov(u, f)[0, 1] / f.var(ddof=1)
    value, se = effectiveness(u - beta * f, u)
    assert abs(value - rho * rho) <= max(4 * se, 2e-5), (value, rho * rho, se)
