"""Physical calibration of every :class:`~engine.mc.model.ModelParams` field from daily history.

``calibrate(history, asof)`` first truncates the daily frame (project schema of
:mod:`engine.data.load`) to the rows dated on or before ``asof``; everything below is computed
from that truncated frame only, so there is no look-ahead. Each estimate comes with a
standard error and a 95% confidence interval in ``CalibrationResult.table``.

Method
------
**Conventions.** Years of 365 days. Weeks are consecutive 7-day blocks ending on the last
day of data. ``W = (2 n^2 + 1) / (3 n) = 33/7`` (n = 7) is the number of days' worth of
diffusive variance in a difference of two consecutive weekly means of a daily random walk
(the triangular filter ``p/7`` on week k, ``(7-p)/7`` on week k+1); its lag-1 autocovariance
is ``(n^2 - 1)/(6 n) = 8/7`` days' worth. OLS standard errors are Newey-West (Bartlett)
HAC. Delta-method standard errors for derived quantities. CIs are ``est +/- 1.96 se``, on
the log scale for positive quantities, exact Poisson (Garwood) for intensities, Fisher z
for correlations.

**BTC jumps** (full history): daily log returns ``r_t``; a local diffusive vol from the
trailing 60-day bipower variation ``sigma_t^2 = (pi/2) mean(|r_{s}| |r_{s-1}|)`` (days
before t only); days with ``|r_t - m| > 4 sigma_t`` are jumps (Lee and Mykland 2008, with
local rather than global vol, so that calm-regime moves are not confused with the vol
clusters of 2017-2020). Intensity = jumps / years tested; jump mean = mean jump-day return
less the diffusive mean; jump std = sqrt(var(jump returns) - mean sigma_t^2) (removes the
diffusive part of the jump day). Small jumps below the threshold are left in the
diffusion: the intensity counts large moves (jumps smaller than ~4 local sigmas are
missed, which biases the intensity down and the size magnitude up when jumps are small).
Two likelihood alternatives were tried on 2016-2026 and rejected: a Gaussian mixture with
local vol turns the fat-tailed diffusion into ~90 "jumps" a year of 5%, and a
threshold-censored mixture extrapolates to 11-32 jumps a year depending on the threshold;
both put jump variance at or above today's implied variance, useless for the
risk-neutral split. The
diffusive vol (std of non-jump returns, and over the last 90 days) is reported for
information only: in pricing it comes from the market's implied vols.

**Hashrate** (full history): weekly ``y_k = ln Hbar_{k+1} - ln Hbar_k`` (``Hbar`` = mean
of the daily block-count hashrate estimates) regressed by OLS on
``[1, ln EMA_tau(hashprice)_{end of week k-1}, t_k]`` (``t_k`` in years from ``asof``,
hashprice from :func:`engine.data.index.hashprice_history`, the EMA the kernel's
``ema += (hp - ema) / tau``). With growth ``g = 0`` by definition (the marginal cost is the
hashprice at which hashrate growth stops): slope ``b1 = beta * 7/365``, ``b2 = beta * c``
per year, ``b0 = -b1 ln cost(asof)``, so ``beta = b1 * 365/7``, ``c = b2 / b1``,
``cost = exp(-b0 / b1)`` with delta-method SEs; the CI of ``c`` is the profile-likelihood
set ``n ln(SSR(c) / SSR) <= 3.84`` (``c`` enters nonlinearly, and is collinear with the
slope). The trend is weakly identified (on 2016-2026 data ``c = -0.04 +/- 0.22``); a
rising cost contradicts hardware progress, so ``c >= 0`` is imposed: when the estimate is
negative, ``c = 0`` and ``[1, ln EMA]`` is refitted (which also tightens ``beta``); if the
slope is still not positive, ``beta = 0`` and the cost is the EMA hashprice at ``asof``.
``tau`` is picked from (30, 60, 90, 120, 180) days by least SSR on a common sample; its CI
is the grid points within a likelihood-ratio 3.84 of the best. Jumps: two-week residual
sums ``u_k + u_{k+1}`` (a jump inside week k+1 is split between the two weekly
differences) with robust z below -4 are jump events (non-overlapping, most negative
first); size = that sum; intensity, mean and std (the non-jump variance of the sums
removed) with SEs; those weeks are dropped and the regression (and tau) refitted.
``sigma_H^2 = (mean(u^2) - mean(noise_k)) / W * 365`` where
``noise_k`` is the Poisson count noise of the two weekly means: ``sum D^2 b / (sum D b)^2``
per week (~1/1008) when the hashrate column is the block-count estimate
``D * blocks * 2^32 / 86,400``, zero otherwise. The MA(1) structure gives a check free of
any noise assumption, ``(gamma_0 + 2 gamma_1) / 7`` per day, reported as a diagnostic.

**Fees** (trailing ``fee_window_days``, default 365): ``x_t = ln(fees_btc / blocks)``;
AR(1) ``x_{t+1} = a + phi x_t + e`` by OLS: ``kappa = -365 ln phi`` (the kernel's exact
OU factor ``1 - exp(-kappa dt)``), level ``exp(a / (1 - phi))``, vol ``std(e) sqrt(365)``.
Positive residuals beyond 4 robust (MAD) sigmas are spikes (intensity, mean, std with the
diffusive variance removed); the AR(1) is refitted without them. A trailing window
because fee regimes are not stationary: the full-history long-run level is ~0.22
BTC/block (the 2017-2021 fee markets), ten times 2025's, and would put a decade-old mean
into every forward; ``fee_window_days=None`` uses the whole history.

**Correlations**: all three shock series are put through the same weekly triangular
filter, so contemporaneous daily correlations carry over exactly: weekly-mean log price
differences (BTC), the hashrate regression residuals ``u_k``, and the filtered daily fee
AR(1) residuals. Weeks touching a BTC jump, a hashrate jump or a fee spike are dropped.
Correlations with hashrate are disattenuated for the count noise
(``cov / (sd_x sqrt(var u - mean noise))``). Pairs are estimated on their common span
(fee pairs on the fee window). Fisher-z CIs use ``n_eff = n / (1 + 2 sum_l rho_x(l)
rho_y(l))`` (Bartlett, lags 1-2). The matrix is made positive definite by eigenvalue
clipping if needed.

Usage (the shipped ``engine/data/default_model.toml`` was made this way)::

    hashprice calibrate btc_network_daily.csv --asof 2026-01-31 --out engine/data/default_model.toml

    res = calibrate(load_network_history(path), asof=dt.date(2026, 1, 31))
    res.params, res.table, res.to_toml("model.toml")
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import tomli_w
from scipy import signal, stats

from curves.toml_io import InputError, write_atomic
from curves.units import H_PER_TH, SECONDS_PER_DAY, TWO_POW_32
from engine.calibration.newey_west import mean_and_stderr
from engine.data.index import hashprice_history
from engine.mc.model import MODEL_SCHEMA, ModelParams

DAYS_PER_YEAR = 365.0
Z95 = 1.959963984540054
CI_UNBOUNDED = 1e300  # the upper end of an interval whose log-scale bound overflows
LN_CI_UNBOUNDED = math.log(CI_UNBOUNDED)
TAU_GRID_DAYS = (30, 60, 90, 120, 180)
JUMP_THRESHOLD_SIGMAS = 4.0
BIPOWER_WINDOW_DAYS = 60
WEEK = 7
TRIANGLE_VAR_DAYS = (2 * WEEK**2 + 1) / (3 * WEEK)  # 33/7
TRIANGLE_COV1_DAYS = (WEEK**2 - 1) / (6 * WEEK)  # 8/7
HAC_LAGS_WEEKLY = 4
HAC_LAGS_DAILY = 5
MIN_WEEK_DAYS = 4
MIN_WEEKS = 60
MIN_FEE_DAYS = 60
FEE_FLOOR_BTC = 1e-8
PHI_MAX = 1.0 - 1e-4
PD_EIG_FLOOR = 1e-4
C_GRID = (-1.0, 1.0, 0.005)  # profile-likelihood grid for the cost decline (1/year)
# Prior on the marginal cost's decline: the frontier ASIC's J/TH fell 0.247 +/- 0.011 a year
# (log-linear fit to Antminer S9 98 J/TH 2016, S17 45 2019, S19 34.5 2020, S19 XP 21.5 2022,
# S21 17.5 2023, S21 XP 13.5 2024, S23 Hyd 9.5 2025, manufacturer specifications); the power
# cost of a PH/s falls with it at a given power price. The sd (0.08) allows for the gap between
# the frontier and the marginal fleet, power prices and capex.
C_PRIOR_MEAN, C_PRIOR_SD = 0.25, 0.08
C_BOUNDS = (0.0, 0.6)  # no ASIC generation improved efficiency by more than ~45% a year
BETA_MAX_PER_YEAR = 3.0  # a hashprice-cost gap closing within 4 months is faster than fleets deploy
COST_RATIO_MAX = 4.0  # the marginal cost within 4x of the trailing hashprice (one retarget's clamp)
JUMP_RECOVERY_PER_YEAR = 5.6  # a 45-day half-life, see the module docstring
TABLE_COLUMNS = ("parameter", "estimate", "stderr", "ci_low", "ci_high", "method", "units")


class CalibrationError(ValueError):
    """The history cannot support a calibration (too short, missing columns)."""


@dataclass
class CalibrationResult:
    """Calibrated parameters, the estimates table and fit diagnostics."""

    params: ModelParams
    table: pd.DataFrame
    asof: dt.date
    data_start: dt.date
    data_end: dt.date
    source: str
    diagnostics: dict = field(default_factory=dict)

    def estimate(self, name: str) -> float:
        return float(self.table.set_index("parameter").loc[name, "estimate"])

    def stderr(self, name: str) -> float:
        return float(self.table.set_index("parameter").loc[name, "stderr"])

    def to_toml_dict(self) -> dict:
        """All ModelParams fields at top level plus a ``[calibration]`` table."""
        out = {k: _plain(v) for k, v in self.params.to_dict().items()}
        cal = {"asof": self.asof, "data_start": self.data_start, "data_end": self.data_end,
               "source": self.source, "method": "engine.calibration.physical.calibrate (see module docstring)"}
        for row in self.table.itertuples(index=False):
            cal[row.parameter] = {
                "estimate": _plain(row.estimate), "stderr": _plain(row.stderr),
                "ci_low": _plain(row.ci_low), "ci_high": _plain(row.ci_high),
                "method": row.method, "units": row.units,
            }
        cal["diagnostics"] = {k: _plain(v) for k, v in self.diagnostics.items()}
        out["calibration"] = cal
        return out

    def to_toml(self, path, header: str | None = None) -> None:
        """Write the model TOML atomically; ``header`` lines become ``#`` comments."""
        text = tomli_w.dumps(self.to_toml_dict())
        if header:
            lines = [("# " + ln).rstrip() for ln in header.strip("\n").splitlines()]
            text = "\n".join(lines) + "\n\n" + text
        write_atomic(path, text.encode())


def _plain(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


# ---- statistics helpers ------------------------------------------------------------------
def _ols_hac(X: np.ndarray, y: np.ndarray, lags: int):
    """OLS coefficients, Newey-West covariance (Bartlett, ``lags``) and residuals."""
    xtx_inv = np.linalg.inv(X.T @ X)
    b = xtx_inv @ (X.T @ y)
    u = y - X @ b
    xu = X * u[:, None]
    s = xu.T @ xu
    for lag in range(1, min(lags, len(y) - 1) + 1):
        w = 1.0 - lag / (lags + 1.0)
        g = xu[lag:].T @ xu[:-lag]
        s += w * (g + g.T)
    n, k = X.shape
    cov = xtx_inv @ s @ xtx_inv * n / max(n - k, 1)
    return b, cov, u


def _robust_z(x: np.ndarray) -> np.ndarray:
    med = np.median(x)
    mad = 1.4826 * np.median(np.abs(x - med))
    return (x - med) / mad if mad > 0 else np.zeros_like(x)


def _ci(est: float, se: float) -> tuple[float, float]:
    if not (math.isfinite(est) and math.isfinite(se)):
        return math.nan, math.nan
    return max(est - Z95 * se, -CI_UNBOUNDED), min(est + Z95 * se, CI_UNBOUNDED)


def _ci_exp(ln_est: float, se_ln: float) -> tuple[float, float, bool]:
    """exp of a 95% CI on the log scale: (low, high, unbounded). Checked in logs: when the upper
    end passes CI_UNBOUNDED (a huge stderr) it is the flagged wide interval (low, CI_UNBOUNDED)."""
    if not (math.isfinite(ln_est) and math.isfinite(se_ln)):
        return math.nan, math.nan, False
    z = Z95 * se_ln
    if ln_est + z < LN_CI_UNBOUNDED:
        est = math.exp(ln_est)
        return est * math.exp(-z), est * math.exp(z), False
    lo = ln_est - z
    return (math.exp(lo) if lo < LN_CI_UNBOUNDED else CI_UNBOUNDED), CI_UNBOUNDED, True


def _ci_log(est: float, se: float) -> tuple[float, float]:
    """CI on the log scale for a positive quantity (falls back to linear at zero); a stderr so
    far above the estimate that the upper end passes CI_UNBOUNDED gives (low, CI_UNBOUNDED)."""
    if not (math.isfinite(est) and math.isfinite(se)) or est <= 0:
        return _ci(est, se)
    lf = Z95 * se / est
    if math.log(est) + lf < LN_CI_UNBOUNDED:
        f = math.exp(lf)
        return est / f, est * f
    return est * math.exp(-lf), CI_UNBOUNDED


def _poisson_ci(count: int, years: float) -> tuple[float, float]:
    lo = 0.0 if count == 0 else stats.chi2.ppf(0.025, 2 * count) / 2.0
    hi = stats.chi2.ppf(0.975, 2 * count + 2) / 2.0
    return lo / years, hi / years


def _jump_sizes(sizes: np.ndarray, base_mean: float, noise_var: float) -> dict:
    """Mean and std of jump sizes with SEs and CIs (Student t for the mean, chi-square for
    the std); ``noise_var``, the non-jump variance in each measured size, is removed from
    the std and from its CI bounds."""
    n = len(sizes)
    out = {"mean": 0.0, "se_mean": math.nan, "ci_mean": (math.nan, math.nan),
           "std": 0.0, "se_std": math.nan, "ci_std": (math.nan, math.nan)}
    if n == 0:
        return out
    out["mean"] = float(sizes.mean() - base_mean)
    if n == 1:
        out["se_mean"] = math.sqrt(noise_var)
        out["ci_mean"] = _ci(out["mean"], out["se_mean"])
        return out
    var = float(sizes.var(ddof=1))
    out["se_mean"] = math.sqrt(max(var, noise_var) / n)  # a size is at least that noisy
    half = stats.t.ppf(0.975, n - 1) * out["se_mean"]  # Student t: jumps are few
    out["ci_mean"] = (out["mean"] - half, out["mean"] + half)
    out["std"] = math.sqrt(max(var - noise_var, 0.0))
    se_var = var * math.sqrt(2.0 / (n - 1))
    out["se_std"] = se_var / (2.0 * out["std"]) if out["std"] > 0 else math.nan
    lo, hi = ((n - 1) * var / stats.chi2.ppf(q, n - 1) for q in (0.975, 0.025))
    out["ci_std"] = (math.sqrt(max(lo - noise_var, 0.0)), math.sqrt(max(hi - noise_var, 0.0)))
    return out


def _ema(x: np.ndarray, tau: float) -> np.ndarray:
    """The kernel's EMA: e_0 = x_0, e_t = e_{t-1} + (x_t - e_{t-1}) / tau."""
    w = 1.0 / tau
    y, _ = signal.lfilter([w], [1.0, -(1.0 - w)], x, zi=[(1.0 - w) * x[0]])
    return y


def _triangle_filter(daily: np.ndarray, off: int, n_weeks: int) -> np.ndarray:
    """Weekly-mean differences of the cumulative sum of daily increments ``daily[i]``.

    ``daily[i]`` is the increment from day i-1 to day i; element k of the output is
    mean(level over week k+1) - mean(level over week k), NaN where an increment is missing.
    """
    nan_any = ~np.isfinite(daily)
    level = np.concatenate([[0.0], np.cumsum(np.where(nan_any, 0.0, daily))])[1:]
    bad = np.concatenate([[0], np.cumsum(nan_any)])[1:]
    wk = level[off:off + WEEK * n_weeks].reshape(n_weeks, WEEK).mean(axis=1)
    # a week difference uses increments from the 2nd day of week k to the last of week k+1
    bad_end = bad[off + WEEK * np.arange(1, n_weeks) + WEEK - 1]
    bad_start = bad[off + WEEK * np.arange(n_weeks - 1)]
    out = np.diff(wk)
    out[bad_end - bad_start > 0] = np.nan
    return out


def _week_any(flags_daily: np.ndarray, off: int, n_weeks: int) -> np.ndarray:
    """For each weekly difference k: does a flagged day fall in weeks k or k+1?"""
    wk = flags_daily[off:off + WEEK * n_weeks].reshape(n_weeks, WEEK).any(axis=1)
    return wk[:-1] | wk[1:]


def _corr_fisher(x: np.ndarray, y: np.ndarray, attenuation: float = 1.0):
    """Correlation (divided by ``attenuation``), Fisher-z SE with a Bartlett n_eff, CI, n."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = len(x)
    if n < 10:
        return 0.0, math.nan, math.nan, math.nan, n
    r = float(np.corrcoef(x, y)[0, 1])
    adj = 1.0
    for lag in (1, 2):
        adj += 2.0 * np.corrcoef(x[lag:], x[:-lag])[0, 1] * np.corrcoef(y[lag:], y[:-lag])[0, 1]
    n_eff = max(n / max(adj, 0.1), 4.0)
    se_z = 1.0 / math.sqrt(n_eff - 3.0)
    z = math.atanh(max(min(r, 0.999999), -0.999999))
    lo, hi = math.tanh(z - Z95 * se_z), math.tanh(z + Z95 * se_z)
    rho = r / attenuation
    se = se_z * (1.0 - r * r) / attenuation
    clip = 0.999
    return (float(np.clip(rho, -clip, clip)), se, float(np.clip(lo / attenuation, -1, 1)),
            float(np.clip(hi / attenuation, -1, 1)), n)


def _nearest_pd(c: np.ndarray) -> tuple[np.ndarray, bool]:
    w, v = np.linalg.eigh(c)
    if w.min() > PD_EIG_FLOOR:
        return c, False
    c2 = v @ np.diag(np.maximum(w, PD_EIG_FLOOR)) @ v.T
    d = np.sqrt(np.diag(c2))
    return c2 / np.outer(d, d), True


# ---- the frame ---------------------------------------------------------------------------
_REQUIRED = ("price_usd", "hashrate_ths", "difficulty", "fees_btc", "subsidy_btc", "blocks")


def _prepare(history: pd.DataFrame, asof) -> tuple[pd.DataFrame, dt.date]:
    df = history.set_index("date") if "date" in history.columns else history
    missing = [c for c in _REQUIRED if c not in df.columns]
    if missing:
        raise CalibrationError(f"history lacks column(s) {missing}")
    idx = pd.DatetimeIndex(df.index).normalize()
    df = df.loc[:, list(_REQUIRED)].set_axis(idx).sort_index()
    if asof is not None:
        asof = pd.Timestamp(asof).date()
        if len(df) and asof > df.index[-1].date():
            raise InputError("asof", f"{asof} is after the history's last day {df.index[-1].date()}")
        df = df.loc[df.index <= pd.Timestamp(asof)]
    if len(df) == 0:
        raise CalibrationError("no history on or before the as-of date")
    if df.index.has_duplicates:
        raise CalibrationError("duplicate dates in history")
    if asof is None:
        asof = df.index[-1].date()
    full = pd.date_range(df.index[0], df.index[-1], freq="D")
    df = df.reindex(full).astype(float)
    if len(df) < WEEK * MIN_WEEKS + max(TAU_GRID_DAYS):
        raise CalibrationError(
            f"need at least {WEEK * MIN_WEEKS + max(TAU_GRID_DAYS)} days of history, got {len(df)}")
    return df, asof


# ---- BTC ---------------------------------------------------------------------------------
def _calibrate_btc(df: pd.DataFrame, rows: list, diag: dict) -> dict:
    lp = np.log(df["price_usd"].to_numpy())
    r = np.diff(lp)  # r[i-1] = increment into day i
    r_daily = np.concatenate([[np.nan], r])
    k = BIPOWER_WINDOW_DAYS
    bp = np.abs(r_daily[1:]) * np.abs(r_daily[:-1])  # bp[i-1] pairs days i-1, i
    bp_ok = np.isfinite(bp)
    cs = np.concatenate([[0.0], np.cumsum(np.where(bp_ok, bp, 0.0))])
    cn = np.concatenate([[0], np.cumsum(bp_ok)])
    n = len(r_daily)
    sig = np.full(n, np.nan)
    t = np.arange(k + 2, n)
    # pairs ending on days t-k .. t-1  ->  bp indices t-k-1 .. t-2
    cnt = cn[t - 1] - cn[t - 1 - k]
    sig[t] = np.sqrt(np.pi / 2.0 * (cs[t - 1] - cs[t - 1 - k]) / np.maximum(cnt, 1))
    sig[t[cnt < k // 2]] = np.nan
    tested = np.isfinite(sig) & np.isfinite(r_daily) & (sig > 0)
    m = float(np.median(r_daily[tested]))
    jump = np.zeros(n, bool)
    jump[tested] = np.abs(r_daily[tested] - m) > JUMP_THRESHOLD_SIGMAS * sig[tested]
    years = tested.sum() / DAYS_PER_YEAR
    nj = int(jump.sum())
    base = r_daily[tested & ~jump]
    lam = nj / years
    js = _jump_sizes(r_daily[jump], float(base.mean()),
                     float(np.mean(sig[jump] ** 2)) if nj else 0.0)
    mu, sd = js["mean"], js["std"]
    desc = (f"Lee-Mykland: |r - m| > {JUMP_THRESHOLD_SIGMAS:g} x trailing {k}d bipower vol, "
            f"{nj} jumps in {years:.2f} y")
    rows.append(("btc_jump_intensity_per_year", lam, math.sqrt(nj) / years,
                 *_poisson_ci(nj, years), desc + "; Poisson SE, Garwood CI", "1/year"))
    rows.append(("btc_jump_mean_log", mu, js["se_mean"], *js["ci_mean"],
                 "mean of jump-day log returns less the diffusive mean", "log"))
    rows.append(("btc_jump_std_log", sd, js["se_std"], *js["ci_std"],
                 "sqrt(var jump-day returns - mean local diffusive var); chi-square CI", "log"))
    # informational: diffusive vol
    vol = float(base.std(ddof=1) * math.sqrt(DAYS_PER_YEAR))
    kurt = stats.kurtosis(base, fisher=False)
    se_vol = vol * math.sqrt(max(kurt - 1.0, 0.5) / len(base)) / 2.0
    rows.append(("btc_diffusive_vol_annual", vol, se_vol, *_ci_log(vol, se_vol),
                 "informational: std of non-jump daily log returns x sqrt(365); pricing uses "
                 "the market implied vol", "1/sqrt(year)"))
    last = r_daily[-90:]
    last = last[np.isfinite(last) & ~jump[-90:]]
    vol90 = float(last.std(ddof=1) * math.sqrt(DAYS_PER_YEAR)) if len(last) > 10 else math.nan
    rows.append(("btc_diffusive_vol_annual_last_90d", vol90,
                 vol90 / math.sqrt(2 * max(len(last) - 1, 1)), *_ci_log(vol90, vol90 / math.sqrt(
                     2 * max(len(last) - 1, 1))),
                 "informational: same, over the last 90 days", "1/sqrt(year)"))
    diag["btc_jump_dates"] = [d.date().isoformat() for d in df.index[jump]]
    diag["btc_jump_variance_per_year"] = lam * (mu**2 + sd**2)
    return {"r_daily": r_daily, "jump": jump, "lambda": lam, "mu": mu, "sd": sd}


# ---- hashrate ----------------------------------------------------------------------------
def _weekly(df: pd.DataFrame):
    n = len(df)
    n_weeks = n // WEEK
    off = n - WEEK * n_weeks
    sl = slice(off, off + WEEK * n_weeks)
    h = df["hashrate_ths"].to_numpy()[sl].reshape(n_weeks, WEEK) * H_PER_TH
    d = df["difficulty"].to_numpy()[sl].reshape(n_weeks, WEEK)
    b = df["blocks"].to_numpy()[sl].reshape(n_weeks, WEEK)
    ok = np.isfinite(h) & np.isfinite(d) & np.isfinite(b)
    days = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        hbar = np.where(ok, h, 0.0).sum(axis=1) / days
        db = np.where(ok, d * b, 0.0)
        noise = np.where(ok, d * d * b, 0.0).sum(axis=1) / db.sum(axis=1) ** 2
    hbar[days < MIN_WEEK_DAYS] = np.nan
    # is the hashrate the block-count estimate D * blocks * 2^32 / 86,400?
    est = d * b * TWO_POW_32 / SECONDS_PER_DAY
    rel = np.abs(h[ok] / est[ok] - 1.0)
    block_based = bool(len(rel) and np.median(rel) < 1e-4)
    if not block_based:
        noise = np.zeros(n_weeks)
    return off, n_weeks, np.log(hbar), noise, block_based


def _fit_feedback(y, x_ema, t, rows_ok):
    X = np.column_stack([np.ones(rows_ok.sum()), x_ema[rows_ok], t[rows_ok]])
    return _ols_hac(X, y[rows_ok], HAC_LAGS_WEEKLY)


def _calibrate_hashrate(df: pd.DataFrame, asof: dt.date, rows: list, diag: dict) -> dict:
    off, n_weeks, lh, noise_w, block_based = _weekly(df)
    hp = hashprice_history(df.assign(fees_btc=df["fees_btc"].fillna(0.0)))
    hp = hp["hashprice_usd_per_ph_day"].ffill().bfill().to_numpy()
    y = np.diff(lh)  # y[k]: week k -> k+1
    noise = noise_w[:-1] + noise_w[1:]
    end_day = off + WEEK * np.arange(n_weeks) + WEEK - 1
    dates = df.index[end_day]
    t = np.array([(d.date() - asof).days for d in dates], float)[:-1] / DAYS_PER_YEAR
    k = np.arange(len(y))
    lag_day = np.where(k >= 1, end_day[np.maximum(k - 1, 0)], -1)
    usable = (k >= 1) & (lag_day >= max(TAU_GRID_DAYS)) & np.isfinite(y) & np.isfinite(noise)
    if usable.sum() < MIN_WEEKS:
        raise CalibrationError(f"only {usable.sum()} usable weeks of hashrate history")
    emas = {tau: np.log(_ema(hp, tau))[np.maximum(lag_day, 0)] for tau in TAU_GRID_DAYS}

    def select(rows_ok):
        ssr = {}
        for tau in TAU_GRID_DAYS:
            _, _, u = _fit_feedback(y, emas[tau], t, rows_ok)
            ssr[tau] = float(u @ u)
        best = min(ssr, key=ssr.get)
        return best, ssr

    tau, _ = select(usable)
    b, cov, u = _fit_feedback(y, emas[tau], t, usable)
    resid = np.full(len(y), np.nan)
    resid[usable] = u
    # jumps: two-week sums of residuals, most negative first, non-overlapping
    s2 = resid[:-1] + resid[1:]
    ok2 = np.isfinite(s2)
    z2 = np.full(len(s2), np.nan)
    z2[ok2] = _robust_z(s2[ok2])
    events = []
    taken = np.zeros(len(s2), bool)
    for i in np.argsort(np.where(ok2, z2, np.inf)):
        if not ok2[i] or z2[i] >= -JUMP_THRESHOLD_SIGMAS:
            break
        if taken[max(i - 1, 0):i + 2].any():
            continue
        events.append(i)
        taken[i] = True
    events = sorted(events)
    jump_rows = np.zeros(len(y), bool)
    for i in events:
        jump_rows[i:i + 2] = True
    final_ok = usable & ~jump_rows
    tau, ssr = select(final_ok)
    b, cov, u = _fit_feedback(y, emas[tau], t, final_ok)
    resid = np.full(len(y), np.nan)
    resid[final_ok] = u
    n_obs = int(final_ok.sum())
    ssr_min = min(ssr.values())
    within = [g for g in TAU_GRID_DAYS if n_obs * math.log(ssr[g] / ssr_min) <= 3.84]

    scale = DAYS_PER_YEAR / WEEK
    years_w = usable.sum() * WEEK / DAYS_PER_YEAR
    xe, tt, yy = emas[tau][final_ok], t[final_ok], y[final_ok]
    ssr_unc = float(u @ u)

    def fit_fixed_c(c):
        return _ols_hac(np.column_stack([np.ones(n_obs), xe + c * tt]), yy, HAC_LAGS_WEEKLY)

    def ssr_fixed_c(c):
        X = np.column_stack([np.ones(n_obs), xe + c * tt])
        coef = np.linalg.lstsq(X, yy, rcond=None)[0]
        r = yy - X @ coef
        return float(r @ r)

    # the cost decline c: the data's profile likelihood times a prior from ASIC efficiency
    c_grid = np.round(np.arange(C_GRID[0], C_GRID[1] + 1e-9, C_GRID[2]), 6)
    lr = np.array([n_obs * math.log(ssr_fixed_c(c) / ssr_unc) for c in c_grid])
    inside = c_grid[lr <= 3.84]
    c_lo_data, c_hi_data = (float(inside.min()), float(inside.max())) if len(inside) else (math.nan, math.nan)
    b1_unc = b[1]
    c_hat = b[2] / b1_unc if b1_unc > 0 else math.nan
    in_bounds = (c_grid >= C_BOUNDS[0]) & (c_grid <= C_BOUNDS[1])
    log_post = -0.5 * lr - 0.5 * ((c_grid - C_PRIOR_MEAN) / C_PRIOR_SD) ** 2
    log_post = np.where(in_bounds, log_post, -np.inf)
    k = int(np.argmax(log_post))
    c = float(c_grid[k])
    credible = c_grid[log_post >= log_post[k] - 1.92]  # the 95% highest-density set
    c_lo, c_hi = float(credible.min()), float(credible.max())
    se_c = (c_hi - c_lo) / (2 * Z95)
    bc, covc, u = fit_fixed_c(c)
    resid = np.full(len(y), np.nan)
    resid[final_ok] = u
    b0, b1 = bc
    notes = []
    ema_now = float(np.log(_ema(hp, tau))[-1])
    if b1 > 0:
        ln_cost = -b0 / b1
        g_cost = np.array([-1.0 / b1, b0 / b1**2])
        se_ln_cost = math.sqrt(g_cost @ covc @ g_cost)
        beta, se_beta = b1 * scale, math.sqrt(covc[1, 1]) * scale
    else:  # no positive feedback: driftless hashrate, cost = EMA hashprice at asof
        beta, se_beta = 0.0, math.sqrt(covc[1, 1]) * scale
        ln_cost, se_ln_cost = ema_now, math.nan
        notes.append("slope not positive: beta = 0, cost = EMA hashprice at asof")
    if beta > BETA_MAX_PER_YEAR:
        notes.append(f"beta {beta:.2f} capped at {BETA_MAX_PER_YEAR:g}")
        beta = BETA_MAX_PER_YEAR
    lo_cost, hi_cost = ema_now - math.log(COST_RATIO_MAX), ema_now + math.log(COST_RATIO_MAX)
    if not lo_cost <= ln_cost <= hi_cost:
        notes.append(f"cost {math.exp(ln_cost):.3g} clipped to within {COST_RATIO_MAX:g}x of the EMA hashprice")
        ln_cost = min(max(ln_cost, lo_cost), hi_cost)
    cost = math.exp(ln_cost)
    reg = (f"weekly OLS of dln(mean H) on [1, ln EMA_{tau}d hashprice (lag 1w) + c t] at the MAP c, "
           f"{n_obs} weeks, HAC({HAC_LAGS_WEEKLY})")
    note = ("; " + "; ".join(notes)) if notes else ""
    rows.append(("hashrate_growth_per_year", 0.0, math.nan, math.nan, math.nan,
                 "fixed at 0: the marginal cost is the hashprice at which growth stops", "1/year"))
    rows.append(("hashrate_feedback_per_year", beta, se_beta, *_ci(beta, se_beta),
                 reg + f"; beta = slope x 365/7, bounds [0, {BETA_MAX_PER_YEAR:g}]" + note, "1/year"))
    cost_lo, cost_hi, unbounded = _ci_exp(ln_cost, se_ln_cost)
    if b1 <= 0:  # no feedback: the cost is not identified, the flagged wide interval
        cost_lo, cost_hi, unbounded = 0.0, CI_UNBOUNDED, True
    rows.append(("marginal_cost_usd_per_ph_day", cost, cost * se_ln_cost, cost_lo, cost_hi,
                 f"exp(-intercept/slope) at {asof.isoformat()}, delta method, log-scale CI; bounds: "
                 f"within {COST_RATIO_MAX:g}x of the EMA hashprice"
                 + (f"; CI unbounded (stderr of ln cost {se_ln_cost:.3g}: not identified)" if unbounded else ""),
                 "USD/PH/day"))
    rows.append(("marginal_cost_decline_per_year", c, se_c, c_lo, c_hi,
                 f"posterior mode: profile likelihood of the trend (data alone: {c_hat:.3f}, LR 95% set "
                 f"[{c_lo_data:.3f}, {c_hi_data:.3f}]) x prior N({C_PRIOR_MEAN:g}, {C_PRIOR_SD:g}^2) from ASIC "
                 f"J/TH 2016-2025, bounds [{C_BOUNDS[0]:g}, {C_BOUNDS[1]:g}]; CI: 95% highest posterior set",
                 "1/year"))
    rows.append(("hashprice_ema_days", float(tau), math.nan, float(min(within)), float(max(within)),
                 f"least SSR over grid {TAU_GRID_DAYS}; CI: grid points with LR <= 3.84",
                 "days"))
    # jumps
    nj = len(events)
    near = {j for i in events for j in (i - 1, i, i + 1)}
    s_non = s2[ok2 & ~np.isin(np.arange(len(s2)), sorted(near))]
    sizes = s2[events] if nj else np.array([])
    jp = _jump_sizes(sizes, float(s_non.mean()), float(s_non.var(ddof=1)))
    rows.append(("hashrate_jump_intensity_per_year", nj / years_w, math.sqrt(nj) / years_w,
                 *_poisson_ci(nj, years_w),
                 f"two-week residual sums below -{JUMP_THRESHOLD_SIGMAS:g} robust sigmas: {nj} in "
                 f"{years_w:.2f} y", "1/year"))
    rows.append(("hashrate_jump_mean_log", jp["mean"], jp["se_mean"], *jp["ci_mean"],
                 "mean two-week residual sum at jumps", "log"))
    rows.append(("hashrate_jump_std_log", jp["std"], jp["se_std"], *jp["ci_std"],
                 "sqrt(var jump sums - var non-jump sums); chi-square CI", "log"))
    rows.append(("hashrate_jump_recovery_per_year", JUMP_RECOVERY_PER_YEAR, math.nan, math.nan, math.nan,
                 "stated prior, not fitted (too few events): a 45-day half-life; every jump in the "
                 "2016-2026 history came back, most within 1-3 months (2017 fork, 2020 crash and "
                 "halving, 2020 rainy season), the 2021 China ban within about 6 months", "1/year"))
    diag["marginal_cost_decline_data_only"] = c_hat
    # vol: remove the count noise, scale the triangular filter to days
    z = u * u * n_obs / max(n_obs - 3, 1) - noise[final_ok]
    mz, se_mz = mean_and_stderr(z, 2)
    var_day = mz / TRIANGLE_VAR_DAYS
    vol = math.sqrt(max(var_day, 0.0) * DAYS_PER_YEAR)
    se_vol = (se_mz / TRIANGLE_VAR_DAYS * DAYS_PER_YEAR) / (2.0 * vol) if vol > 0 else math.nan
    rows.append(("hashrate_vol_annual", vol, se_vol, *_ci_log(vol, se_vol),
                 "(mean u^2 - Poisson count noise) / (33/7 days) x 365, HAC SE"
                 + ("" if block_based else "; hashrate not block-based: no noise removed"),
                 "1/sqrt(year)"))
    # noise-free check from the MA(1) structure
    g0 = float(np.nanmean(resid[final_ok] ** 2))
    pair = final_ok[1:] & final_ok[:-1]
    g1 = float(np.mean(resid[1:][pair] * resid[:-1][pair])) if pair.any() else 0.0
    diag["hashrate_vol_annual_ma1_check"] = math.sqrt(max(g0 + 2 * g1, 0.0) / WEEK * DAYS_PER_YEAR)
    diag["hashrate_count_noise_var_weekly_mean"] = float(np.nanmean(noise_w))
    diag["hashrate_block_based"] = block_based
    diag["hashrate_regression_r2"] = 1.0 - float(u @ u) / float(
        ((y[final_ok] - y[final_ok].mean()) ** 2).sum())
    diag["hashrate_regression_coef_unconstrained"] = [float(x) for x in b]
    diag["hashrate_regression_t_stats_unconstrained"] = [
        float(bi / math.sqrt(cov[i, i])) for i, bi in enumerate(b)]
    diag["hashrate_tau_ssr"] = {str(g): ssr[g] for g in TAU_GRID_DAYS}
    diag["hashrate_jump_weeks"] = [dates[i + 1].date().isoformat() for i in events]
    diag["hashrate_jump_sizes_log"] = [float(x) for x in sizes]
    diag["hashrate_weeks_used"] = n_obs
    return {"off": off, "n_weeks": n_weeks, "resid": resid, "noise": noise, "jump_rows": jump_rows}


# ---- fees --------------------------------------------------------------------------------
def _ar1(x0, x1):
    X = np.column_stack([np.ones(len(x0)), x0])
    return _ols_hac(X, x1, HAC_LAGS_DAILY)


def _calibrate_fees(df: pd.DataFrame, window_days: int | None, rows: list, diag: dict) -> dict:
    fee = df["fees_btc"].to_numpy() / df["blocks"].to_numpy()
    x = np.log(np.maximum(fee, FEE_FLOOR_BTC))
    n = len(x)
    first = 0 if window_days is None else max(0, n - int(window_days))
    pair_ok = np.zeros(n, bool)  # pair_ok[i]: the transition day i-1 -> day i is usable
    pair_ok[1:] = np.isfinite(x[1:]) & np.isfinite(x[:-1])
    pair_ok[:first + 1] = False
    if pair_ok.sum() < MIN_FEE_DAYS:
        raise CalibrationError(f"only {pair_ok.sum()} usable days of fee history")
    idx = np.flatnonzero(pair_ok)
    x0, x1 = x[idx - 1], x[idx]
    b, cov, e = _ar1(x0, x1)
    spike = _robust_z(e) > JUMP_THRESHOLD_SIGMAS
    keep = ~spike
    for _ in range(2):  # refit without spikes, re-flag from the refit
        b, cov, _ = _ar1(x0[keep], x1[keep])
        e = x1 - b[0] - b[1] * x0
        spike = _robust_z(e) > JUMP_THRESHOLD_SIGMAS
        keep = ~spike
    a, phi = float(b[0]), float(b[1])
    se_phi = math.sqrt(cov[1, 1])
    phi_c = min(max(phi, 1e-6), PHI_MAX)
    kappa = -math.log(phi_c) * DAYS_PER_YEAR
    se_kappa = se_phi / phi_c * DAYS_PER_YEAR
    ln_level = a / (1.0 - phi_c)
    g = np.array([1.0 / (1.0 - phi_c), a / (1.0 - phi_c) ** 2])
    se_ln_level = math.sqrt(g @ cov @ g)
    level = math.exp(ln_level)
    en = e[keep]
    s = float(en.std(ddof=2))
    vol = s * math.sqrt(DAYS_PER_YEAR)
    kurt = stats.kurtosis(en, fisher=False)
    se_vol = vol * math.sqrt(max(kurt - 1.0, 0.5) / len(en)) / 2.0
    years = len(idx) / DAYS_PER_YEAR
    span = f"{df.index[idx[0]].date()}..{df.index[idx[-1]].date()}"
    win = "whole history" if window_days is None else f"trailing {window_days} days"
    rows.append(("fee_mean_reversion_per_year", kappa, se_kappa, *_ci_log(kappa, se_kappa),
                 f"daily AR(1) of ln(fee/block) on {win} ({span}): -365 ln phi"
                 + ("; phi clipped" if phi != phi_c else ""), "1/year"))
    rows.append(("fee_long_run_btc_per_block", level, level * se_ln_level,
                 level * math.exp(-Z95 * se_ln_level), level * math.exp(Z95 * se_ln_level),
                 "exp(a / (1 - phi)), delta method", "BTC/block"))
    rows.append(("fee_vol_annual", vol, se_vol, *_ci_log(vol, se_vol),
                 "std of non-spike AR(1) residuals x sqrt(365)", "1/sqrt(year)"))
    ns = int(spike.sum())
    sp = _jump_sizes(e[spike], float(en.mean()), s * s)
    rows.append(("fee_spike_intensity_per_year", ns / years, math.sqrt(ns) / years,
                 *_poisson_ci(ns, years),
                 f"AR(1) residuals above {JUMP_THRESHOLD_SIGMAS:g} robust sigmas: {ns} in {years:.2f} y",
                 "1/year"))
    rows.append(("fee_spike_mean_log", sp["mean"], sp["se_mean"], *sp["ci_mean"],
                 "mean spike residual", "log"))
    rows.append(("fee_spike_std_log", sp["std"], sp["se_std"], *sp["ci_std"],
                 "sqrt(var spike residuals - diffusive var); chi-square CI; 0 with < 2 spikes",
                 "log"))
    resid_daily = np.full(n, np.nan)
    resid_daily[idx] = e
    spike_daily = np.zeros(n, bool)
    spike_daily[idx[spike]] = True
    diag["fee_ar1_phi"] = phi
    diag["fee_window"] = span
    diag["fee_spike_dates"] = [df.index[i].date().isoformat() for i in idx[spike]]
    diag["fee_stationary_log_std"] = vol / math.sqrt(2.0 * kappa) if kappa > 0 else math.inf
    return {"resid_daily": resid_daily, "spike_daily": spike_daily}


# ---- correlations ------------------------------------------------------------------------
def _calibrate_correlations(btc, hr, fees, rows: list, diag: dict) -> np.ndarray:
    off, n_weeks = hr["off"], hr["n_weeks"]
    x_btc = _triangle_filter(btc["r_daily"], off, n_weeks)
    x_fee = _triangle_filter(fees["resid_daily"], off, n_weeks)
    u = hr["resid"]
    bad = (_week_any(btc["jump"], off, n_weeks) | _week_any(fees["spike_daily"], off, n_weeks)
           | hr["jump_rows"])
    x_btc = np.where(bad, np.nan, x_btc)
    x_fee = np.where(bad, np.nan, x_fee)
    u = np.where(bad, np.nan, u)

    def atten(x):
        ok = np.isfinite(x) & np.isfinite(u)
        var_u = float(np.var(u[ok]))
        return math.sqrt(max(var_u - float(np.mean(hr["noise"][ok])), 0.05 * var_u) / var_u)

    est = {
        "corr_btc_hashrate": _corr_fisher(x_btc, u, atten(x_btc)),
        "corr_btc_fee": _corr_fisher(x_btc, x_fee),
        "corr_hashrate_fee": _corr_fisher(u, x_fee, atten(x_fee)),
    }
    a, b, c = (est[k][0] for k in ("corr_btc_hashrate", "corr_btc_fee", "corr_hashrate_fee"))
    mat = np.array([[1.0, a, b], [a, 1.0, c], [b, c, 1.0]])
    mat, repaired = _nearest_pd(mat)
    final = {"corr_btc_hashrate": mat[0, 1], "corr_btc_fee": mat[0, 2],
             "corr_hashrate_fee": mat[1, 2]}
    for name, (rho, se, lo, hi, n) in est.items():
        note = "; hashrate count noise disattenuated" if "hashrate" in name else ""
        if repaired:
            note += f"; PD repair moved {rho:.4f} -> {final[name]:.4f}"
        rows.append((name, float(final[name]), se, lo, hi,
                     f"weekly triangular-filtered shocks, {n} weeks, Fisher-z CI (Bartlett n_eff)"
                     + note, "-"))
    diag["correlation_pd_repaired"] = repaired
    return mat


def _within_plausible(row: tuple) -> tuple:
    """Guardrail: an estimate outside the model schema's plausible range (an unusual or short
    history, e.g. fee reversion faster than the daily step) is clipped to it, and the method says so."""
    name, est = row[0], row[1]
    spec = MODEL_SCHEMA.specs.get(name)
    if spec is None or not math.isfinite(est):
        return row
    lo, hi = spec.plausible
    clipped = min(max(est, lo if lo is not None else est), hi if hi is not None else est)
    if clipped == est:
        return row
    return (name, clipped, *row[2:5], f"{row[5]}; estimate {est:.4g} clipped to the plausible bound "
            f"{clipped:g} ({spec.why})", row[6])


# ---- entry point -------------------------------------------------------------------------
def calibrate(history: pd.DataFrame, asof: dt.date | None = None, *,
              fee_window_days: int | None = 365, source: str | None = None) -> CalibrationResult:
    """Calibrate every ModelParams field on ``history`` rows dated on or before ``asof``.

    ``history``: daily frame in the :mod:`engine.data.load` schema (indexed by date, or with a
    ``date`` column). ``asof`` defaults to the last date. ``fee_window_days``: trailing
    window for the fee model (None = all). ``source`` names the data in the provenance.
    """
    df, asof = _prepare(history, asof)
    source = source or str(history.attrs.get("source", "daily network history"))
    rows: list = []
    diag: dict = {}
    btc = _calibrate_btc(df, rows, diag)
    hr = _calibrate_hashrate(df, asof, rows, diag)
    fees = _calibrate_fees(df, fee_window_days, rows, diag)
    _calibrate_correlations(btc, hr, fees, rows, diag)
    rows = [_within_plausible(row) for row in rows]
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    est = dict(zip(table["parameter"], table["estimate"], strict=True))
    start, end = df.index[0].date(), df.index[-1].date()
    fee_span = ("the whole history" if fee_window_days is None
                else f"the trailing {fee_window_days} days")
    provenance = (
        f"engine.calibration.physical.calibrate on {source}, daily {start}..{end} (asof {asof}): BTC jumps "
        f"by Lee-Mykland threshold; hashrate feedback by weekly OLS on the lagged "
        f"{int(est['hashprice_ema_days'])}-day hashprice EMA and a cost decline (g = 0; the decline's "
        f"profile likelihood times an ASIC-efficiency prior); hashrate jumps recover (stated prior); fees by "
        f"daily AR(1) on {fee_span}; "
        f"correlations of weekly-filtered shocks. Standard errors in [calibration]."
    )
    names = [f for f in ModelParams.__dataclass_fields__ if f not in ("provenance",
                                                                      "marginal_cost_reference_date")]
    kwargs = {n: float(est[n]) for n in names}
    params = ModelParams(**kwargs, marginal_cost_reference_date=asof, provenance=provenance)
    params.validate()
    return CalibrationResult(params=params, table=table, asof=asof, data_start=start,
                             data_end=end, source=source, diagnostics=diag)


def default_header(result: CalibrationResult, command: str) -> str:
    return (
        "Default model parameters, calibrated on real Bitcoin network history.\n"
        f"Data: {result.source}, daily rows {result.data_start}..{result.data_end}, "
        f"as-of {result.asof}.\n"
        f"Generated by: {command}\n"
        "Method: engine.calibration.physical (module docstring); estimates, standard errors and 95% CIs\n"
        "are in the [calibration] table, which ModelParams.load ignores."
    )
