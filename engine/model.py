"""Model parameters: BTC jumps, hashrate growth with economic feedback, fees, correlations.

BTC is risk-neutral: its drift makes E[S_t] equal the market's BTC forward, its diffusion
variance is the market's implied variance less the jump variance. Hashrate and fees are not
traded, so they evolve under physically calibrated dynamics (see ``engine.calibration``):

* log hashrate: d ln H = [g + beta * (ln EMA_tau(hashprice) - ln cost_t)] dt + sigma_H dW_H + J_H,
  with the marginal fleet's cost ln cost_t = ln cost_ref - c * (t - t_ref);
* log fee per block (BTC): d ln F = kappa (ln F_bar - ln F) dt + sigma_F dW_F + J_F (spikes);
* jumps are Bernoulli per day (probability lambda * dt) with normal log sizes.

>>> p = ModelParams.default()
>>> p.validate() is None
True
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, fields, replace
from importlib import resources

import numpy as np

from curves.toml_io import InputError, read_toml, tomllib, write_toml

DEFAULT_MODEL_RESOURCE = "default_model.toml"


@dataclass(frozen=True)
class ModelParams:
    """Annualised parameters (per year of 365 days); log sizes are natural-log jumps."""

    btc_jump_intensity_per_year: float = 0.0
    btc_jump_mean_log: float = 0.0
    btc_jump_std_log: float = 0.0

    hashrate_vol_annual: float = 0.15
    hashrate_growth_per_year: float = 0.0
    hashrate_feedback_per_year: float = 0.5
    marginal_cost_usd_per_ph_day: float = 30.0
    marginal_cost_reference_date: dt.date = dt.date(2026, 1, 31)
    marginal_cost_decline_per_year: float = 0.2
    hashprice_ema_days: float = 60.0
    hashrate_jump_intensity_per_year: float = 0.0
    hashrate_jump_mean_log: float = 0.0
    hashrate_jump_std_log: float = 0.0

    fee_mean_reversion_per_year: float = 12.0
    fee_long_run_btc_per_block: float = 0.03
    fee_vol_annual: float = 2.0
    fee_spike_intensity_per_year: float = 0.0
    fee_spike_mean_log: float = 0.0
    fee_spike_std_log: float = 0.0

    corr_btc_hashrate: float = 0.0
    corr_btc_fee: float = 0.0
    corr_hashrate_fee: float = 0.0

    provenance: str = ""

    def validate(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("provenance", "marginal_cost_reference_date"):
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise InputError(f.name, f"must be a finite number, got {v!r}")
            nonneg = ("intensity" in f.name or "std" in f.name or "vol" in f.name
                      or "reversion" in f.name or "feedback" in f.name)
            if nonneg and v < 0:
                raise InputError(f.name, f"must be >= 0, got {v!r}")
            if f.name.startswith("corr_") and not -1 < v < 1:
                raise InputError(f.name, f"must lie in (-1, 1), got {v!r}")
        for name in ("marginal_cost_usd_per_ph_day", "fee_long_run_btc_per_block", "hashprice_ema_days"):
            if getattr(self, name) <= 0:
                raise InputError(name, f"must be > 0, got {getattr(self, name)!r}")
        for name in ("btc_jump_intensity_per_year", "hashrate_jump_intensity_per_year",
                     "fee_spike_intensity_per_year"):
            if getattr(self, name) > 365.0:
                raise InputError(name, "must be at most 365 (at most one jump a day)")
        if np.linalg.eigvalsh(self.correlation_matrix()).min() <= 1e-10:
            raise InputError("corr_*", "the correlation matrix is not positive definite")

    def correlation_matrix(self) -> np.ndarray:
        """Correlations of the (BTC, hashrate, fee) diffusion shocks."""
        a, b, c = self.corr_btc_hashrate, self.corr_btc_fee, self.corr_hashrate_fee
        return np.array([[1.0, a, b], [a, 1.0, c], [b, c, 1.0]])

    def cholesky(self) -> np.ndarray:
        return np.linalg.cholesky(self.correlation_matrix())

    def marginal_cost_usd_per_ph_day_at(self, d: dt.date) -> float:
        years = (d - self.marginal_cost_reference_date).days / 365.0
        return self.marginal_cost_usd_per_ph_day * math.exp(-self.marginal_cost_decline_per_year * years)

    # ---- files ----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, table: dict) -> ModelParams:
        known = {f.name: f for f in fields(cls)}
        kwargs = {}
        for key, value in table.items():
            if key not in known:
                raise InputError(key, "unknown model parameter")
            if key == "marginal_cost_reference_date":
                if isinstance(value, str):
                    try:
                        value = dt.date.fromisoformat(value)
                    except ValueError:
                        raise InputError(key, f"not an ISO date: {value!r}") from None
                if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
                    raise InputError(key, f"not a date: {value!r}")
            elif key != "provenance":
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise InputError(key, f"must be a number, got {value!r}")
                value = float(value)
            kwargs[key] = value
        params = cls(**kwargs)
        params.validate()
        return params

    def save(self, path) -> None:
        write_toml(path, self.to_dict())

    @classmethod
    def load(cls, path) -> ModelParams:
        table = read_toml(path)
        table.pop("calibration", None)  # standard errors and fit diagnostics, informational
        return cls.from_dict(table)

    @classmethod
    def default(cls) -> ModelParams:
        """Parameters calibrated on 2016-01-01..2026-01-31 history (``engine/data``)."""
        text = resources.files("engine.data").joinpath(DEFAULT_MODEL_RESOURCE).read_text()
        table = tomllib.loads(text)
        table.pop("calibration", None)
        return cls.from_dict(table)

    def with_(self, **changes) -> ModelParams:
        out = replace(self, **changes)
        out.validate()
        return out
