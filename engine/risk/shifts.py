"""Hashrate drift shifts as bumps see them: a base shift plus a parallel add, plus the change a
re-bootstrapped calibration makes, seen from a market rolled some days on.

Units: additive drift of ln(hashrate) per day (see :mod:`engine.calibration.hashrate_shift`).

>>> import numpy as np
>>> v = ShiftView(np.array([1.0, 2.0, 3.0]), add_per_day=0.5, offset_days=1)
>>> v.per_day(3).tolist()  # from day 1 on, flat after the base's last day
[2.5, 3.5, 3.5]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curves.toml_io import InputError


def _per_day(shift, n_days: int) -> np.ndarray:
    """``n_days`` values of a shift (None, a per-day array, or an object with ``per_day``), flat
    after an array's last day as a ``HashrateShift`` is after its last segment."""
    if shift is None:
        return np.zeros(n_days)
    if hasattr(shift, "per_day"):
        return np.asarray(shift.per_day(n_days), dtype=float)
    arr = np.asarray(shift, dtype=float).reshape(-1)
    if arr.size == 0:
        raise InputError("hashrate_shift_per_day", "an empty shift array")
    if arr.size < n_days:
        arr = np.concatenate([arr, np.full(n_days - arr.size, arr[-1])])
    return arr[:n_days]


@dataclass(frozen=True)
class ShiftView:
    """``base`` (None, per-day array from the as-of date, or a ``HashrateShift``) plus
    ``add_per_day`` on every day, plus each ``(bumped, reference)`` pair's difference; day 0 is
    ``offset_days`` after the base's first day (a market rolled on holds the shift by date)."""

    base: object = None
    add_per_day: float = 0.0
    changes: tuple = ()
    offset_days: int = 0

    def per_day(self, n_days: int, asof=None) -> np.ndarray:
        """The shift for days 0..n_days-1 of the market this view serves (``asof`` unused: the
        base shift was matched to the base market when it was loaded)."""
        span = n_days + self.offset_days
        out = _per_day(self.base, span) + self.add_per_day
        for bumped, reference in self.changes:
            out = out + (_per_day(bumped, span) - _per_day(reference, span))
        return out[self.offset_days:]
