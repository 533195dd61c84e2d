"""Field checks shared by product constructors, built on :mod:`curves.schema`; errors name the
field and the reason. A product declares its file fields as a :class:`~curves.schema.Schema`
(see ``HashrateForward.schema``); these helpers serve constructors called from Python too.
"""

from __future__ import annotations

import datetime as dt

from curves.schema import Spec
from curves.toml_io import InputError

POSITIVE = Spec("number", low=0, low_open=True)
# trade dates: a TOML date, or an ISO "YYYY-MM-DD" string (documented for portfolio files)
TRADE_DATE = Spec("date", text_ok=True)


def positive_number(value, name: str) -> float:
    """A finite number > 0 (not a boolean, not text)."""
    return POSITIVE.check(value, name)


def choice(value, name: str, allowed: tuple[str, ...]) -> str:
    """One of ``allowed``, matched case-insensitively, returned as spelled in ``allowed``."""
    return Spec("choice", choices=tuple(allowed)).check(value, name)


def date_range(start, end) -> tuple[dt.date, dt.date]:
    s = TRADE_DATE.check(start, "start")
    e = TRADE_DATE.check(end, "end")
    if e < s:
        raise InputError("end", f"{e} is before start {s}")
    return s, e


def check_dates_in_market(start: dt.date, end: dt.date, market, start_field: str = "start",
                          end_field: str = "end", started_ok: bool = False) -> None:
    """A trade's dates against the market: ``start`` after the as-of date (unless ``started_ok``:
    a seasoned trade, whose realised days come from ``--fixings``), ``end`` within the
    simulation horizon (``MAX_HORIZON_DAYS``)."""
    from curves.market import MAX_HORIZON_DAYS  # QuantLib: not needed by a spot calculation

    if start <= market.asof and not started_ok:
        raise InputError(start_field, f"{start} is not after the as-of date {market.asof}")
    if (end - market.asof).days > MAX_HORIZON_DAYS:
        raise InputError(end_field, f"{end} is more than {MAX_HORIZON_DAYS:,} days after the as-of date")


# A difficulty this far from today's is a unit slip: a BitOoda-style quote in trillions ("8.7 T")
# written for an absolute difficulty is 1e-12x, FTX points written as a difficulty 1e12x. An
# epoch years ahead can honestly be tens of times today's, so the band is wide.
DIFFICULTY_RATIO_BOUNDS = (1e-3, 1e3)


def check_difficulty_level(difficulty: float, market, field: str, shown: str = "") -> None:
    """For a strict market: ``difficulty`` within ``DIFFICULTY_RATIO_BOUNDS`` of today's (relaxed
    markets skip it). ``shown`` is the field's own value as the error shows it (default: the
    difficulty)."""
    if not market.strict:
        return
    ratio = difficulty / market.difficulty
    lo, hi = DIFFICULTY_RATIO_BOUNDS
    if not lo <= ratio <= hi:
        raise InputError(field, f"{shown or f'{difficulty:.6g}'} is a difficulty {ratio:.3g}x today's "
                         f"{market.difficulty:.6g}; must lie within {lo:g}-{hi:g}x (units?)")
