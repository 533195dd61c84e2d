"""Delivery periods from QuantLib schedules: calendar months, and month slices of any range.

BTC and the hashprice index fix every calendar day, so schedules use QuantLib's NullCalendar.

>>> import datetime as dt
>>> [(p.start.isoformat(), p.end.isoformat()) for p in monthly_periods(dt.date(2026, 1, 31), 2)]
[('2026-02-01', '2026-02-28'), ('2026-03-01', '2026-03-31')]
>>> len(month_slices(dt.date(2026, 2, 10), dt.date(2026, 4, 5)))
3
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import QuantLib as ql

from curves.market import QL_LAST_DATE, from_ql_date, to_ql_date
from curves.toml_io import InputError


@dataclass(frozen=True)
class Period:
    """An inclusive range of fixing days."""

    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def _month_schedule(first: dt.date, months: int, field_name: str = "months") -> list[dt.date]:
    years, month0 = divmod(first.month - 1 + months, 12)
    if first.year + years > QL_LAST_DATE.year:  # QuantLib dates end in 2199
        raise InputError(field_name, f"{months} months from {first} run past {QL_LAST_DATE} (QuantLib's last date)")
    end = to_ql_date(first, field_name) + ql.Period(months, ql.Months)
    sched = ql.Schedule(to_ql_date(first), end, ql.Period(1, ql.Months), ql.NullCalendar(),
                        ql.Unadjusted, ql.Unadjusted, ql.DateGeneration.Forward, False)
    return [from_ql_date(d) for d in sched]


def first_month_start_after(asof: dt.date) -> dt.date:
    nxt = asof + dt.timedelta(days=1)
    if nxt.day == 1:
        return nxt
    return (nxt.replace(day=1) + dt.timedelta(days=32)).replace(day=1)


def monthly_periods(asof: dt.date, months: int) -> list[Period]:
    """The ``months`` calendar months that start after ``asof``."""
    dates = _month_schedule(first_month_start_after(asof), months)
    return [Period(a, b - dt.timedelta(days=1)) for a, b in zip(dates[:-1], dates[1:])]


def month_slices(start: dt.date, end: dt.date) -> list[Period]:
    """Split [start, end] at calendar-month boundaries (monthly settlement periods)."""
    first = start.replace(day=1)
    n = (end.year - first.year) * 12 + end.month - first.month + 1
    dates = _month_schedule(first, n, "end")
    out = []
    for a, b in zip(dates[:-1], dates[1:]):
        s, e = max(a, start), min(b - dt.timedelta(days=1), end)
        if s <= e:
            out.append(Period(s, e))
    return out
