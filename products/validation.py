"""Field checks shared by product constructors; errors name the field and the reason."""

from __future__ import annotations

import datetime as dt
import math

from curves.market import parse_date
from curves.toml_io import InputError


def positive_number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(name, f"must be a number, got {value!r}")
    x = float(value)
    if not math.isfinite(x) or x <= 0:
        raise InputError(name, f"must be a finite number > 0, got {value!r}")
    return x


def choice(value, name: str, allowed: tuple[str, ...]) -> str:
    v = str(value).strip()
    for a in allowed:
        if v.lower() == a.lower():
            return a
    raise InputError(name, f"must be one of {', '.join(allowed)}, got {value!r}")


def date_range(start, end) -> tuple[dt.date, dt.date]:
    s = parse_date(start, "start")
    e = parse_date(end, "end")
    if e < s:
        raise InputError("end", f"{e} is before start {s}")
    return s, e
