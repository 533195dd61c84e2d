"""The fleet file (TOML): ``[fleet]`` (the miners), ``[hedge]`` (what to hedge and how) and an
optional ``[token]`` (a tokenised share of the fleet's output). Errors name the table and field.

>>> ff = parse_fleet_file({"fleet": {"hashrate_phs": 100, "efficiency_j_per_th": 18.0,
...                                  "power_usd_per_kwh": 0.05}, "hedge": {"horizon_months": 3}})
>>> ff.hedge.hedges, ff.hedge.contract_btc, ff.token is None
(('btc_future', 'hashprice_forward', 'collar'), 0.1, True)
>>> import datetime as dt
>>> [str(e) for e in ff.expiries(dt.date(2026, 1, 31))]
['2026-02-28', '2026-03-31', '2026-04-30']
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from curves.periods import Period, month_slices
from curves.schema import Schema, Spec, describe, reading
from curves.toml_io import InputError, read_toml
from products.btc_future import cme_last_trading_day
from products.fleet import SALES, SIGNALS, FleetPosition
from products.hashrate_token import HashrateToken

HEDGES = ("btc_future", "hashprice_forward", "collar")
EXPIRY_RULES = ("month_end", "cme_last_friday")
MAX_MONTHS = 120
HASHRATE = Spec("number", "PH/s", low=0, low_open=True, plausible=(1e-3, 1e6), why="1 TH/s to the whole 2026 network")
POWER = Spec("number", "USD/kWh", low=0, plausible=(0.0, 1.0), why="beyond 1 USD/kWh no miner runs")
FLEET_SCHEMA = Schema("fleet", {
    "hashrate_phs": replace(HASHRATE, doc="fleet hashrate: a number, or a list with one value per month"),
    "efficiency_j_per_th": Spec("number", "J/TH", low=0, low_open=True, plausible=(1.0, 500.0),
                                doc="energy per hash (W per TH/s)", why="2026 machines run 12-40 J/TH"),
    "power_usd_per_kwh": replace(POWER, doc="power price: a number, or a list with one value per month"),
    "uptime": Spec("number", "fraction", low=0, low_open=True, high=1, required=False, default=1.0,
                   doc="fraction of the day the fleet hashes"),
    "opex_usd_per_day": Spec("number", "USD/day", low=0, required=False, default=0.0,
                             doc="other running costs (staff, hosting, maintenance)"),
    "capex_usd": Spec("number", "USD", low=0, required=False, default=None, doc="fleet capex (payback)"),
    "curtailment": Spec("boolean", required=False, default=False,
                        doc="switch off on days when the index is below the power cost per PH/day"),
    "curtailment_signal": Spec("choice", choices=SIGNALS, required=False, default="previous_day",
                               doc="the index the miner decides on: yesterday's (what it knows) or the day's "
                                   "own (an upper bound)"),
    "btc_sold": Spec("choice", choices=SALES, required=False, default="daily",
                     doc="daily: each day's BTC at its close; at_expiry: held to the hedging future's expiry"),
})
HEDGE_SCHEMA = Schema("hedge", {
    "horizon_months": Spec("integer", "months", low=1, high=MAX_MONTHS, required=False, default=12,
                           doc="months hedged, from the day after the as-of date"),
    "hedges": Spec("text", doc=f"hedges to report: a list from {', '.join(HEDGES)} (default: all)",
                   required=False, default=HEDGES),
    "contract_btc": Spec("number", "BTC", low=0, low_open=True, plausible=(1e-8, 100.0), required=False,
                         default=0.1, doc="BTC per futures contract (0.1: CME Micro; 5: CME)"),
    "expiry_rule": Spec("choice", choices=EXPIRY_RULES, required=False, default="month_end",
                        doc="month_end: a future expiring on each month's last day; cme_last_friday: CME's "
                            "listed expiries, what is mined after one rolls into the next"),
    "collar_floor_usd_per_ph_day": Spec("number", "USD/PH/day", low=0, low_open=True, required=False,
                                        default=None, doc="the collar's floor (default: 10% below each month's "
                                                          "forward)"),
    "collar_cap_usd_per_ph_day": Spec("number", "USD/PH/day", low=0, low_open=True, required=False, default=None,
                                      doc="the collar's cap (default: 10% above each month's forward)"),
})
TOKEN_SCHEMA = Schema("token", {
    "ths_per_token": Spec("number", "TH/s", low=0, low_open=True, plausible=(1e-3, 1e6), required=False,
                          default=1.0, doc="hashrate one token claims"),
    "life_months": Spec("integer", "months", low=1, high=MAX_MONTHS, doc="the token's life, from the day after "
                                                                          "the as-of date"),
    "fee_usd_per_th_day": Spec("number", "USD/TH/day", low=0, plausible=(0.0, 1.0),
                               doc="maintenance fee per TH/s and day, on top of power"),
})
_LIST_OR_BOOL = ("hashrate_phs", "power_usd_per_kwh")  # a number or a list: checked by hand
_SCALAR_FLEET = Schema("fleet", {k: v for k, v in FLEET_SCHEMA.specs.items() if k not in _LIST_OR_BOOL})
COLLAR_BAND = 0.10  # default collar: floor and cap 10% either side of each month's forward


@dataclass(frozen=True)
class HedgeTerms:
    horizon_months: int = 12
    hedges: tuple[str, ...] = HEDGES
    contract_btc: float = 0.1
    expiry_rule: str = "month_end"
    collar_floor_usd_per_ph_day: float | None = None
    collar_cap_usd_per_ph_day: float | None = None


@dataclass(frozen=True)
class FleetFile:
    """The parsed file; :meth:`position` and :meth:`token_trade` build the products for a market."""

    fleet: dict
    hedge: HedgeTerms
    token: dict | None

    def periods(self, asof: dt.date) -> list[Period]:
        """The hedge months: from the day after ``asof`` to the end of the horizon's last month."""
        return _months(asof, self.hedge.horizon_months)

    def expiries(self, asof: dt.date) -> list[dt.date]:
        """The hedging futures' expiries, one per month; with ``cme_last_friday``, one more when the
        last month's days after its expiry roll into the next month's contract."""
        periods = self.periods(asof)
        if self.hedge.expiry_rule == "month_end":
            return [p.end for p in periods]
        out = [cme_last_trading_day(p.end.year, p.end.month) for p in periods]
        if out[-1] < periods[-1].end:
            nxt = periods[-1].end + dt.timedelta(days=1)
            out.append(cme_last_trading_day(nxt.year, nxt.month))
        return out

    def position(self, asof: dt.date) -> FleetPosition:
        periods = self.periods(asof)
        n = len(periods)
        f = self.fleet
        return FleetPosition(periods[0].start, periods[-1].end, _per_month(f["hashrate_phs"], n, "hashrate_phs"),
                             f["efficiency_j_per_th"], _per_month(f["power_usd_per_kwh"], n, "power_usd_per_kwh"),
                             f["uptime"], f["opex_usd_per_day"], f["curtailment"], f["curtailment_signal"],
                             f["btc_sold"], tuple(self.expiries(asof)))

    def token_trade(self, asof: dt.date) -> HashrateToken | None:
        """The token; past the hedge horizon it pays the last month's power price."""
        if self.token is None:
            return None
        periods = _months(asof, self.token["life_months"])
        power = list(_per_month(self.fleet["power_usd_per_kwh"], self.hedge.horizon_months, "power_usd_per_kwh"))
        power = (power + [power[-1]] * len(periods))[:len(periods)]
        return HashrateToken(periods[0].start, periods[-1].end, self.token["ths_per_token"],
                             self.token["fee_usd_per_th_day"], self.fleet["efficiency_j_per_th"], tuple(power),
                             self.fleet["uptime"])


def _months(asof: dt.date, n: int) -> list[Period]:
    start = asof + dt.timedelta(days=1)
    first = start.replace(day=1)
    years, month0 = divmod(first.month - 1 + n, 12)
    end = dt.date(first.year + years, month0 + 1, 1) - dt.timedelta(days=1)
    return month_slices(start, end)


def _per_month(value, n: int, name: str) -> tuple[float, ...]:
    spec = HASHRATE if name == "hashrate_phs" else POWER
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (spec.check(value, name),) * n
    if len(value) != n:
        raise InputError(name, f"a list needs one value per month of the horizon ({n}), got {len(value)}")
    return tuple(spec.check(v, f"{name}[{k}]") for k, v in enumerate(value))


def _number_or_list(table: dict, name: str, spec: Spec):
    value = table.get(name)
    if value is None:
        raise InputError(f"fleet.{name}", "missing fleet field")
    if isinstance(value, list):
        if not value:
            raise InputError(f"fleet.{name}", "an empty list; give a number or one value per month")
        return [spec.check(v, f"fleet.{name}[{k}]") for k, v in enumerate(value)]
    return spec.check(value, f"fleet.{name}")


def parse_fleet_file(doc: dict) -> FleetFile:
    extra = sorted(set(doc) - {"fleet", "hedge", "token"})
    if extra:
        raise InputError(extra[0], "unknown table; a fleet file holds [fleet], [hedge] and [token]")
    if "fleet" not in doc:
        raise InputError("fleet", "missing [fleet] table")
    raw = doc["fleet"]
    if not isinstance(raw, dict):
        raise InputError("fleet", f"must be a table, got {describe(raw)}")
    fleet = _SCALAR_FLEET.parse({k: v for k, v in raw.items() if k not in _LIST_OR_BOOL},
                                prefix="fleet.", ignore=_LIST_OR_BOOL)
    fleet["hashrate_phs"] = _number_or_list(raw, "hashrate_phs", HASHRATE)
    fleet["power_usd_per_kwh"] = _number_or_list(raw, "power_usd_per_kwh", POWER)
    hedge = _parse_hedge(doc.get("hedge", {}))
    for name in ("hashrate_phs", "power_usd_per_kwh"):
        if isinstance(fleet[name], list) and len(fleet[name]) != hedge.horizon_months:
            raise InputError(f"fleet.{name}", f"a list needs one value per month of the horizon "
                                              f"({hedge.horizon_months}), got {len(fleet[name])}")
    token = None
    if "token" in doc:
        token = TOKEN_SCHEMA.parse(doc["token"], prefix="token.")
    return FleetFile(fleet, hedge, token)


def _parse_hedge(raw) -> HedgeTerms:
    if not isinstance(raw, dict):
        raise InputError("hedge", f"must be a table, got {describe(raw)}")
    hedges = raw.get("hedges", list(HEDGES))
    if not isinstance(hedges, list) or not hedges or not all(isinstance(h, str) for h in hedges):
        raise InputError("hedge.hedges", f"a non-empty list from {', '.join(HEDGES)}, got {describe(hedges)}")
    for h in hedges:
        if h not in HEDGES:
            raise InputError("hedge.hedges", f"unknown hedge {h!r}; one of {', '.join(HEDGES)}")
    h = HEDGE_SCHEMA.parse({k: v for k, v in raw.items() if k != "hedges"}, prefix="hedge.", ignore=("hedges",))
    floor, cap = h["collar_floor_usd_per_ph_day"], h["collar_cap_usd_per_ph_day"]
    if floor is not None and cap is not None and cap < floor:
        raise InputError("hedge.collar_cap_usd_per_ph_day", f"{cap:g} is below the floor {floor:g}")
    return HedgeTerms(h["horizon_months"], tuple(dict.fromkeys(hedges)), h["contract_btc"], h["expiry_rule"],
                      floor, cap)


def load_fleet_file(path) -> FleetFile:
    """A fleet file; errors name the file, the table and the field."""
    doc = read_toml(path)
    with reading(path):
        return parse_fleet_file(doc)
