"""Today's network hashrate, filtered from daily block counts: a persistent level and a transient.

Nobody observes the network hashrate. What is observed is the number of blocks found each
day at a known difficulty, so the daily block-count estimate ``D * blocks * 2^32 / 86,400``
carries Poisson noise (about 8% a day), and weather curtailment, outages and pool glitches
dip it for a few days at a time. A raw 7-day mean takes both at face value: the week to
2026-01-31 held a storm dip of 98-110 blocks a day and gave 866 EH/s, where the 30-day mean
was 977 and the difficulty implied 1,014.

**Model** (a state space on ``y_t = ln(hashrate estimate_t)``)::

    L_{t+1} = L_t + g + eta_L,        eta_L ~ N(0, q_L)                 persistent level
    c_{t+1} = phi c_t + eta_c,        eta_c ~ N(0, q_c), or N(0, q_dip)  transient: small daily
                                      moves, and with probability p a dip (storm, outage)
    y_t     = L_t + c_t + eps_t,      eps_t ~ N(0, 1/blocks_t)           Poisson count noise

``q_L`` is the model's hashrate diffusion (``sigma_H^2 / 365``); ``g`` the level's trend
over the window (OLS slope of ``y``). ``phi, q_c, q_dip, p`` are fitted by maximum
likelihood on the trailing window with a two-mode Gaussian-sum filter (GPB1: each day is
updated under both shock modes and the mixture collapsed to its first two moments). A
Gaussian transient cannot tell a rare 5-day storm dip from a level change, and its fitted
variance is then near zero; the dip mode can. ``phi <= 0.8`` (half-life at most 3.1 days):
curtailment and outages end within days, so a dip that lasts longer moves into the level
(after the 2021 China ban, the filter had the level at 108 EH/s a month later, against a
30-day mean of 100). The current epoch's progress, blocks found since its first block over
the seconds elapsed, is the sum of the same daily counts, so it enters through them.

**Output.** The level ``L_T`` and its posterior standard deviation: the persistent hashrate
the simulation starts from, each path drawing its own start from ``N(L_T, sd^2)``. The
transient is taken to revert within days (its fitted half-life is reported) and is not
carried into the paths. At 2026-01-31: level 1,010 EH/s, sd 4.6%, transient -6.5%.

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> blocks = rng.poisson(144, 200).astype(float)
>>> blocks[-8:-3] = rng.poisson(100, 5)          # a 5-day storm dip, recovering
>>> f = filter_hashrate(np.log(blocks / 144 * 1e21), blocks, hashrate_vol_annual=0.3)
>>> bool(abs(f.level_log_hs - np.log(1e21)) < 0.05), bool(0.0 < f.level_log_sd < 0.06)
(True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy import optimize

DAYS_PER_YEAR = 365.0
FILTER_WINDOW_DAYS = 365
MIN_FILTER_DAYS = 30
PHI_BOUNDS = (0.05, 0.8)  # transient half-life between 0.2 and 3.1 days
LOG_QC_BOUNDS = (math.log(1e-7), math.log(1e-2))  # daily transient moves: sd 0.03% to 10%
LOG_QDIP_BOUNDS = (math.log(0.05**2), math.log(0.5**2))  # a dip: sd 5% to 50%
LOGIT_P_BOUNDS = (-7.0, -1.0)  # dip probability 0.1% to 27% a day


@njit(cache=True)
def _filter(y, r, g, q_l, phi, q_c, q_dip, p_dip):
    """GPB1 two-mode filter: log-likelihood and the final level, transient and level variance."""
    m_l = y[0]
    m_c = 0.0
    p_ll = r[0]
    p_cc = q_c / (1.0 - phi * phi)
    p_lc = 0.0
    loglik = 0.0
    ml = np.empty(2)
    mc = np.empty(2)
    pll = np.empty(2)
    plc = np.empty(2)
    pcc = np.empty(2)
    lw = np.empty(2)
    for t in range(y.size):
        if t > 0:  # predict, before the transient's shock
            m_l += g
            m_c *= phi
            p_ll += q_l
            p_lc *= phi
            p_cc *= phi * phi
        v = y[t] - m_l - m_c
        for k in range(2):
            shock = 0.0 if t == 0 else (q_c if k == 0 else q_dip)
            prior = (1.0 - p_dip) if k == 0 else p_dip
            cc = p_cc + shock
            s = p_ll + 2.0 * p_lc + cc + r[t]
            lw[k] = math.log(prior) - 0.5 * (math.log(2.0 * math.pi * s) + v * v / s)
            a = p_ll + p_lc
            b = p_lc + cc
            ml[k] = m_l + a / s * v
            mc[k] = m_c + b / s * v
            pll[k] = p_ll - a * a / s
            plc[k] = p_lc - a * b / s
            pcc[k] = cc - b * b / s
        top = max(lw[0], lw[1])
        w0 = math.exp(lw[0] - top)
        w1 = math.exp(lw[1] - top)
        if t > 0:
            loglik += top + math.log(w0 + w1)
        w0, w1 = w0 / (w0 + w1), w1 / (w0 + w1)
        m_l = w0 * ml[0] + w1 * ml[1]
        m_c = w0 * mc[0] + w1 * mc[1]
        p_ll = w0 * (pll[0] + (ml[0] - m_l) ** 2) + w1 * (pll[1] + (ml[1] - m_l) ** 2)
        p_lc = (w0 * (plc[0] + (ml[0] - m_l) * (mc[0] - m_c))
                + w1 * (plc[1] + (ml[1] - m_l) * (mc[1] - m_c)))
        p_cc = w0 * (pcc[0] + (mc[0] - m_c) ** 2) + w1 * (pcc[1] + (mc[1] - m_c) ** 2)
    return loglik, m_l, m_c, p_ll


@dataclass(frozen=True)
class HashrateFilter:
    """Filtered log hashrate (H/s) today: the persistent level, its sd, and the transient."""

    level_log_hs: float
    level_log_sd: float
    transient_log: float
    transient_phi: float
    transient_sd_daily: float
    dip_sd: float
    dip_probability_daily: float
    trend_per_day: float
    days: int

    @property
    def level_ehs(self) -> float:
        return math.exp(self.level_log_hs) / 1e18

    @property
    def transient_half_life_days(self) -> float:
        return math.log(0.5) / math.log(self.transient_phi)


def filter_hashrate(log_hashrate_hs: np.ndarray, blocks: np.ndarray, *, hashrate_vol_annual: float,
                    window_days: int = FILTER_WINDOW_DAYS) -> HashrateFilter:
    """Filter the trailing ``window_days`` of daily log hashrate estimates (oldest first)."""
    y = np.asarray(log_hashrate_hs, dtype=float)[-window_days:]
    b = np.asarray(blocks, dtype=float)[-window_days:]
    ok = np.isfinite(y) & np.isfinite(b) & (b > 0)
    y, b = y[ok], b[ok]
    if len(y) < MIN_FILTER_DAYS:
        raise ValueError(f"need at least {MIN_FILTER_DAYS} days of block counts, got {len(y)}")
    if not (math.isfinite(hashrate_vol_annual) and hashrate_vol_annual >= 0):
        raise ValueError(f"hashrate_vol_annual must be finite and >= 0, got {hashrate_vol_annual!r}")
    r = 1.0 / b
    t = np.arange(len(y), dtype=float)
    g = float(np.polyfit(t, y, 1)[0])
    q_l = max(hashrate_vol_annual, 1e-4) ** 2 / DAYS_PER_YEAR

    def unpack(x):
        return x[0], math.exp(x[1]), math.exp(x[2]), 1.0 / (1.0 + math.exp(-x[3]))

    def nll(x):
        return -_filter(y, r, g, q_l, *unpack(x))[0]

    best = None
    for phi0 in (0.3, 0.7):  # two starts: the likelihood can be flat in phi
        res = optimize.minimize(nll, x0=[phi0, math.log(1e-4), math.log(0.04), -3.0], method="L-BFGS-B",
                                bounds=[PHI_BOUNDS, LOG_QC_BOUNDS, LOG_QDIP_BOUNDS, LOGIT_P_BOUNDS])
        if best is None or res.fun < best.fun:
            best = res
    phi, q_c, q_dip, p_dip = unpack(best.x)
    _, m_l, m_c, p_ll = _filter(y, r, g, q_l, phi, q_c, q_dip, p_dip)
    return HashrateFilter(level_log_hs=float(m_l), level_log_sd=math.sqrt(max(p_ll, 0.0)),
                          transient_log=float(m_c), transient_phi=phi,
                          transient_sd_daily=math.sqrt(q_c), dip_sd=math.sqrt(q_dip),
                          dip_probability_daily=p_dip, trend_per_day=g, days=len(y))
