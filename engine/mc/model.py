"""Model parameters: BTC jumps, hashrate growth with economic feedback, fees, correlations.

BTC is risk-neutral: its drift makes E[S_t] equal the market's BTC forward, its diffusion
variance is the market's implied variance less the jump variance. Hashrate and fees are not
traded, so they evolve under physically calibrated dynamics (see ``engine.calibration.physical``):

* log hashrate: ln H = ln H_on + X, where the hashrate online follows
  d ln H_on = [g + beta * (ln EMA_tau(hashprice) - ln cost_t)] dt + sigma_H dW_H,
  with the marginal fleet's cost ln cost_t = ln cost_ref - c * (t - t_ref) falling as hardware
  improves, and X <= 0, the log share offline after a jump (an outage, a ban, a fork), comes
  back at rate kappa_J: dX = -kappa_J X dt + J_H (kappa_J = 0: jumps are permanent);
* log fee per block (BTC): d ln F = kappa (ln F_bar - ln F) dt + sigma_F dW_F + J_F (spikes);
* jumps are Bernoulli per day (probability lambda * dt) with normal log sizes.

>>> p = ModelParams.default()
>>> p.validate() is None
True
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from importlib import resources

import numpy as np

from curves.schema import GENESIS_DATE, Schema, Spec, describe, reading, relaxed, strict_mode
from curves.toml_io import InputError, read_toml, tomllib, write_toml

DEFAULT_MODEL_RESOURCE = "default_model.toml"


INTENSITY_WHY = "at most one a day (the kernel draws a daily Bernoulli); over 100 a year is diffusion, not jumps"


def _intensity(doc: str) -> Spec:
    return Spec("number", "1/year", low=0, high=365, plausible=(0.0, 100.0), why=INTENSITY_WHY, doc=doc)


def _log_size(doc: str, plausible: tuple, why: str, sd: bool = False) -> Spec:
    # hard |x| <= 10 keeps exp() of a jump and its compensator finite
    return Spec("number", "log", low=0 if sd else -10, high=10, plausible=plausible, why=why, doc=doc)


# ---- the model file's schema: every parameter, its units and bounds (the README renders it) ------
MODEL_SCHEMA = Schema("model", {
    "btc_jump_intensity_per_year": _intensity("BTC jumps a year (calibrated 4.6)"),
    "btc_jump_mean_log": _log_size("mean BTC jump, log", (-1.0, 1.0),
                                   "e^-1 = -63% in a day; BTC's worst day was about -40%"),
    "btc_jump_std_log": _log_size("sd of BTC jumps, log", (0.0, 1.0), "a 1-sigma jump of 2.7x", sd=True),
    "hashrate_vol_annual": Spec("number", "1/sqrt(year)", low=0, plausible=(0.0, 3.0), doc="hashrate diffusion vol",
                                why="calibrated 0.28; 3 is ten times that"),
    "hashrate_growth_per_year": Spec("number", "1/year", plausible=(-2.0, 2.0), doc="g, log hashrate drift",
                                     why="e^2 = 7.4x a year; hashrate has not tripled in a year since 2014"),
    "hashrate_feedback_per_year": Spec("number", "1/year", low=0, plausible=(0.0, 10.0),
                                       doc="beta, drift per unit log gap of hashprice EMA over cost",
                                       why="calibrated 0.67; at 10 miners would close a price gap in weeks, "
                                           "faster than machines ship"),
    "marginal_cost_usd_per_ph_day": Spec("number", "USD/PH/day", low=0, low_open=True, plausible=(0.1, 1e5),
                                         doc="the marginal fleet's cost at the reference date",
                                         why="the index has ranged 35..3,900 USD/PH/day since 2016"),
    "marginal_cost_reference_date": Spec("date", plausible=(GENESIS_DATE, None), doc="date of that cost",
                                         why="no network before the genesis block"),
    "marginal_cost_decline_per_year": Spec("number", "1/year", low=-10, high=10, plausible=(-1.0, 1.0),
                                           doc="c, log decline of the cost a year",
                                           why="the cost moves at most 2.7x (e^1) a year; efficiency has "
                                               "improved 20-40% a year"),
    "hashprice_ema_days": Spec("number", "days", low=1, plausible=(1.0, 730.0), doc="tau of the feedback EMA",
                               why="the EMA weight 1/tau must be <= 1; miners do not look back 2 years"),
    "hashrate_jump_intensity_per_year": _intensity("hashrate jumps a year (calibrated 0.63)"),
    "hashrate_jump_mean_log": _log_size("mean hashrate jump, log", (-2.0, 1.0),
                                        "e^-2 = -86%; the 2021 China ban was about -50%; machines come "
                                        "online gradually"),
    "hashrate_jump_std_log": _log_size("sd of hashrate jumps, log", (0.0, 1.0), "a 1-sigma jump of 2.7x",
                                       sd=True),
    "hashrate_jump_recovery_per_year": Spec("number", "1/year", low=0, high=365, plausible=(0.0, 52.0),
                                            doc="kappa_J, rate at which hashrate offline after a jump comes back",
                                            why="0: permanent; 52 is a one-week half-life, faster than the "
                                                "fastest recovery in the history"),
    "fee_mean_reversion_per_year": Spec("number", "1/year", low=0, plausible=(0.0, 3650.0),
                                        doc="kappa of log fees",
                                        why="calibrated 120; 3,650 is a 1.7-hour half-life, below the daily step"),
    "fee_long_run_btc_per_block": Spec("number", "BTC", low=0, low_open=True, plausible=(1e-6, 50.0),
                                       doc="long-run fee per block",
                                       why="100 sats to the first 50 BTC subsidy (the daily mean peaked at 9.6)"),
    "fee_vol_annual": Spec("number", "1/sqrt(year)", low=0, plausible=(0.0, 20.0), doc="log fee vol",
                           why="calibrated 5.2; 20 is a daily sd of 1.05 in logs"),
    "fee_spike_intensity_per_year": _intensity("fee spikes a year (calibrated 1.0)"),
    "fee_spike_mean_log": _log_size("mean fee spike, log", (-2.0, 4.0),
                                    "e^4 = 55x; inscription waves lifted fees about 10-20x"),
    "fee_spike_std_log": _log_size("sd of fee spikes, log", (0.0, 2.0), "a 1-sigma spike of 7.4x", sd=True),
    "corr_btc_hashrate": Spec("number", "-", low=-1, high=1, low_open=True, high_open=True,
                              doc="correlation of the BTC and hashrate shocks",
                              why="the three correlations must form a positive definite matrix"),
    "corr_btc_fee": Spec("number", "-", low=-1, high=1, low_open=True, high_open=True,
                         doc="correlation of the BTC and fee shocks"),
    "corr_hashrate_fee": Spec("number", "-", low=-1, high=1, low_open=True, high_open=True,
                              doc="correlation of the hashrate and fee shocks"),
    "provenance": Spec("text", required=False, default="", doc="where the numbers come from"),
})
PARAMETERS = tuple(k for k in MODEL_SCHEMA if k != "provenance")
# a partial model file names a base for the rest: a fallback is a choice, never silent
MODEL_BASES = ("default",)


@dataclass(frozen=True)
class ModelParams:
    """Annualised parameters (per year of 365 days); log sizes are natural-log jumps.

    Every field is checked against ``MODEL_SCHEMA`` when the object is made. The dataclass
    defaults are round illustrative numbers for Python use; the calibrated parameters are
    :meth:`default`, and a model *file* gives every parameter or names ``base = "default"`` to
    take the rest from them. Parameters made inside ``curves.schema.relaxed()`` or by
    ``with_(strict=False, ...)`` (Python only) skip the plausible bounds, for stress tests and
    limit cases; the hard limits (finite, signs, intensities <= 365 a year,
    |log sizes| <= 10, a positive definite correlation matrix) always hold.
    """

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
    hashrate_jump_recovery_per_year: float = 0.0

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

    def __post_init__(self):
        object.__setattr__(self, "_strict", strict_mode())
        self.validate()

    @property
    def strict(self) -> bool:
        """False for relaxed parameters (see the class docstring)."""
        return self._strict

    def validate(self) -> None:
        """Check every field (types, hard limits; plausible bounds when strict) and the correlations."""
        for name, spec in MODEL_SCHEMA.specs.items():
            object.__setattr__(self, name, spec.check(getattr(self, name), name, self.strict))
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
        return {name: getattr(self, name) for name in MODEL_SCHEMA}

    @classmethod
    def from_dict(cls, table: dict) -> ModelParams:
        """Parameters from a file's table: all of them, or ``base = "default"`` and any subset.

        With a base, the parameters the table does not give come from that model (the shipped
        calibrated defaults), and the provenance says which were overridden.
        """
        if not isinstance(table, dict):
            raise InputError("model", f"must be a table, got {describe(table)}")
        table = dict(table)
        base = table.pop("base", None)
        if base is not None and base not in MODEL_BASES:
            raise InputError("base", f"must be one of {', '.join(repr(b) for b in MODEL_BASES)}, "
                             f"got {describe(base)}")
        for key in table:
            if key not in MODEL_SCHEMA.specs:
                raise InputError(key, "unknown model parameter")
        given = {key: MODEL_SCHEMA.check(key, value) for key, value in table.items()}
        missing = [name for name in PARAMETERS if name not in given]
        if missing and base is None:
            raise InputError(missing[0], f"missing: the file gives {len(PARAMETERS) - len(missing)} of the "
                             f"{len(PARAMETERS)} model parameters; give them all, or name a base for the "
                             'rest (base = "default": the shipped calibrated parameters)')
        if base is not None:
            fallback = cls.default()
            overridden = [name for name in PARAMETERS if name in given]
            if "provenance" not in given:
                given["provenance"] = (f"base {base} with {', '.join(overridden) or 'nothing'} overridden; "
                                       f"base: {fallback.provenance}")
            given = {**fallback.to_dict(), **given}
        return cls(**given)

    def save(self, path) -> None:
        write_toml(path, self.to_dict())

    @classmethod
    def load(cls, path) -> ModelParams:
        """A model file; errors read ``FILE: field: reason``."""
        table = read_toml(path)
        table.pop("calibration", None)  # standard errors and fit diagnostics, informational
        with reading(path):
            return cls.from_dict(table)

    @classmethod
    def default(cls) -> ModelParams:
        """Parameters calibrated on 2016-01-01..2026-01-31 history (``engine/data``)."""
        text = resources.files("engine.data").joinpath(DEFAULT_MODEL_RESOURCE).read_text()
        table = tomllib.loads(text)
        table.pop("calibration", None)
        return cls.from_dict(table)

    def with_(self, *, strict: bool | None = None, **changes) -> ModelParams:
        """A copy with some parameters changed, checked again; ``strict=False`` relaxes the copy,
        and a relaxed object's copies stay relaxed."""
        with relaxed(not (self.strict if strict is None else strict)):
            return replace(self, **changes)
