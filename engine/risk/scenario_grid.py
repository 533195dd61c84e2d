"""The scenario grid's axes: BTC moves by x% (spot and the forward curve together) and the
starting hashrate by y%, given as ``BTC_PCTS:HASHRATE_PCTS`` (``--scenarios``).

>>> ScenarioGrid.parse("-10,0,10:-5,5")
ScenarioGrid(btc_pcts=(-10.0, 0.0, 10.0), hashrate_pcts=(-5.0, 5.0))
>>> ScenarioGrid.parse("10")
Traceback (most recent call last):
...
curves.toml_io.InputError: scenarios: expected BTC_PCTS:HASHRATE_PCTS, e.g. -20,-10,0,10,20:-10,0,10; got '10'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from curves.toml_io import InputError

DEFAULT_SCENARIOS = "-20,-10,0,10,20:-10,0,10"
MAX_AXIS_POINTS = 11  # each cell is a full simulation: 11 x 11 is already 121 of them
MAX_PCT = 1_000.0  # +1,000%: beyond it a scenario is a typo, not a stress


@dataclass(frozen=True)
class ScenarioGrid:
    """Percent moves of BTC (spot and forwards) and of the starting hashrate, each sorted."""

    btc_pcts: tuple[float, ...]
    hashrate_pcts: tuple[float, ...]

    @classmethod
    def parse(cls, text: str) -> ScenarioGrid:
        """``"-20,-10,0,10,20:-10,0,10"``: comma-separated percentages, BTC then hashrate."""
        if not isinstance(text, str) or text.count(":") != 1:
            raise InputError("scenarios", f"expected BTC_PCTS:HASHRATE_PCTS, e.g. {DEFAULT_SCENARIOS}; got {text!r}")
        btc, hashrate = text.split(":")
        return cls(_axis(btc, "BTC"), _axis(hashrate, "hashrate"))

    @property
    def cells(self) -> list[tuple[float, float]]:
        return [(x, y) for x in self.btc_pcts for y in self.hashrate_pcts]

    def __str__(self) -> str:
        return ":".join(",".join(f"{v:g}" for v in axis) for axis in (self.btc_pcts, self.hashrate_pcts))


def _axis(text: str, name: str) -> tuple[float, ...]:
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise InputError("scenarios", f"{name} percentages: expected comma-separated numbers, got {text!r}")
    values = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise InputError("scenarios", f"{name} percentages: {p!r} is not a number") from None
        if not math.isfinite(v) or not -100.0 < v <= MAX_PCT:
            raise InputError("scenarios", f"{name} percentages: {p} must be a finite number in (-100, {MAX_PCT:g}]")
        values.append(v)
    if len(set(values)) != len(values):
        raise InputError("scenarios", f"{name} percentages: {text!r} repeats a value")
    if len(values) > MAX_AXIS_POINTS:
        raise InputError("scenarios", f"{name} percentages: at most {MAX_AXIS_POINTS} values (each cell is a "
                                      f"simulation), got {len(values)}")
    return tuple(sorted(values))
