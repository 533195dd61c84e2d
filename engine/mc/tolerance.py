"""A target accuracy: stop adding paths once every reported figure's standard error is at most
``rel`` of its value, or ``abs`` in the figure's own unit (for figures near zero, such as a
forward struck at fair), or once ``max_paths`` are done (QuantLib's ``requiredTolerance``).

>>> import numpy as np
>>> Tolerance(rel=1e-3).met(np.array([50.0, 40.0]), np.array([0.04, 0.05]))
False
>>> Tolerance(rel=1e-3, abs=0.05).met(np.array([50.0, 40.0]), np.array([0.04, 0.05]))
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curves.toml_io import InputError


@dataclass(frozen=True)
class Tolerance:
    rel: float
    abs: float = 0.0

    def __post_init__(self):
        if not (np.isfinite(self.rel) and 0 < self.rel < 1):
            raise InputError("tolerance", f"a relative stderr in (0, 1), got {self.rel!r}")
        if not (np.isfinite(self.abs) and self.abs >= 0):
            raise InputError("abs_tolerance", f"a stderr >= 0 in the figure's unit, got {self.abs!r}")

    def met(self, value: np.ndarray, stderr: np.ndarray) -> bool:
        value, stderr = np.asarray(value, float), np.asarray(stderr, float)
        ok = np.isfinite(value) & np.isfinite(stderr) & (stderr <= np.maximum(self.rel * np.abs(value), self.abs))
        return bool(ok.all())

    def worst(self, value: np.ndarray, stderr: np.ndarray) -> float:
        """The largest stderr as a multiple of what the tolerance allows (<= 1: met)."""
        allowed = np.maximum(self.rel * np.abs(np.asarray(value, float)), self.abs)
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.nanmax(np.where(allowed > 0, np.asarray(stderr, float) / allowed, np.inf)))
