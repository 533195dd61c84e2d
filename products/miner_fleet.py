"""A miner's fleet and its daily economics at a given hashprice.

>>> f = MinerFleet(fleet_phs=100.0, efficiency_j_per_th=20.0, power_usd_per_kwh=0.05)
>>> e = f.economics(hashprice_usd_per_ph_day=50.0)
>>> e["power_kw"], e["power_cost_usd_per_day"], e["revenue_usd_per_day"]
(2000.0, 2400.0, 5000.0)
>>> round(e["breakeven_power_usd_per_kwh"], 4)
0.1042
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from curves.toml_io import InputError
from curves.units import TH_PER_PH
from products.validation import positive_number

HOURS_PER_DAY = 24.0
DAYS_PER_MONTH = 365.25 / 12.0


@dataclass(frozen=True)
class MinerFleet:
    """Fleet size (PH/s), efficiency (J/TH), power price (USD/kWh), uptime (0..1], other costs."""

    fleet_phs: float
    efficiency_j_per_th: float
    power_usd_per_kwh: float
    uptime: float = 1.0
    opex_usd_per_day: float = 0.0
    capex_usd: float | None = None

    def __post_init__(self):
        positive_number(self.fleet_phs, "fleet_phs")
        positive_number(self.efficiency_j_per_th, "efficiency_j_per_th")
        _non_negative(self.power_usd_per_kwh, "power_usd_per_kwh")
        _non_negative(self.opex_usd_per_day, "opex_usd_per_day")
        if not (isinstance(self.uptime, (int, float)) and 0 < self.uptime <= 1):
            raise InputError("uptime", f"must lie in (0, 1], got {self.uptime!r}")
        if self.capex_usd is not None:
            _non_negative(self.capex_usd, "capex_usd")

    @property
    def power_kw(self) -> float:
        """kW = J/TH x TH/s / 1000."""
        return self.efficiency_j_per_th * self.fleet_phs * TH_PER_PH / 1000.0

    @property
    def energy_kwh_per_day(self) -> float:
        return self.power_kw * HOURS_PER_DAY * self.uptime

    def economics(self, hashprice_usd_per_ph_day: float) -> dict:
        revenue = hashprice_usd_per_ph_day * self.fleet_phs * self.uptime
        power_cost = self.energy_kwh_per_day * self.power_usd_per_kwh
        net = revenue - power_cost - self.opex_usd_per_day
        payback = None
        if self.capex_usd is not None and net > 0:
            payback = self.capex_usd / (net * DAYS_PER_MONTH)
        return {
            "revenue_usd_per_day": revenue,
            "power_kw": self.power_kw,
            "power_cost_usd_per_day": power_cost,
            "net_usd_per_day": net,
            "breakeven_power_usd_per_kwh": revenue / self.energy_kwh_per_day,
            "payback_months": payback,
        }


def _non_negative(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InputError(name, f"must be a finite number >= 0, got {value!r}")
