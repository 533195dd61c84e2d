"""Input schemas: exact types, bounds stated once, one-line errors naming the field and the reason.

Every input file (market, model, portfolio trade, quotes, shift; a fleet file the same way)
declares its fields as a :class:`Schema` of :class:`Spec` entries. A spec has a kind, units,
**hard limits** (what the engine needs to compute at all: always checked) and **plausible
bounds** with a short reason (checked unless validation is relaxed). The same table renders
the README's input-file tables (:meth:`Schema.markdown`), so code and documentation state each
bound once.

Types are exact: a boolean is not a number, a float is not an integer, a date-time is not a
date, and text is a number or a date only where a spec says so (``text_ok``: CSV cells).

Relaxing, for stress tests and limit cases (Python only; files are always read strictly):
objects made inside ``with relaxed():``, or by ``with_(strict=False, ...)`` on a ``Market`` or
``ModelParams``, skip the plausible bounds and cross-field checks; types and hard limits still
hold. Such an object reports ``strict`` False, and its ``with_`` copies stay relaxed.

A fleet file would declare, e.g.:

>>> FLEET = Schema("fleet", {
...     "fleet_phs": Spec("number", "PH/s", low=0, low_open=True, plausible=(1e-3, 1e6),
...                       why="1 TH/s to 1 ZH/s"),
...     "uptime": Spec("number", "fraction", low=0, low_open=True, high=1, required=False, default=1.0),
... })
>>> FLEET.parse({"fleet_phs": 100})
{'fleet_phs': 100.0, 'uptime': 1.0}
>>> FLEET.parse({"fleet_phs": True})
Traceback (most recent call last):
...
curves.toml_io.InputError: fleet_phs: must be a number (PH/s), got a boolean (true)
>>> FLEET.parse({"fleet_phs": 1e9})
Traceback (most recent call last):
...
curves.toml_io.InputError: fleet_phs: 1e+09 is outside the plausible range [0.001, 1e+06] PH/s (1 TH/s to 1 ZH/s)
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import re
from collections.abc import Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from curves.toml_io import InputError

# QuantLib's Date range: a date outside it cannot be priced at all.
QL_MIN_DATE = dt.date(1901, 1, 1)
QL_MAX_DATE = dt.date(2199, 12, 31)
GENESIS_DATE = dt.date(2009, 1, 3)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INTEGER_TEXT = re.compile(r"[+-]?\d+")
KINDS = ("number", "integer", "date", "text", "choice", "points", "boolean")
_RELAXED = ContextVar("hashprice_relaxed_validation", default=False)


@contextmanager
def relaxed(on: bool = True):
    """Build objects inside with plausible bounds and cross-field checks skipped (``on``)."""
    token = _RELAXED.set(on)
    try:
        yield
    finally:
        _RELAXED.reset(token)


def strict_mode() -> bool:
    """False inside :func:`relaxed`."""
    return not _RELAXED.get()


def describe(value) -> str:
    """A value as an error message shows it, with its type where that is the problem."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"  # as TOML spells it
    if isinstance(value, dt.datetime):
        return f"a date-time ({value.isoformat()})"
    if isinstance(value, dt.time):
        return f"a time of day ({value.isoformat()})"
    if isinstance(value, str):
        return f"text ({value!r})"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return repr(value)


def _fmt(x) -> str:
    if isinstance(x, float) and x == int(x) and abs(x) < 1e6:
        return str(int(x))
    if isinstance(x, float):
        return f"{x:g}"
    return str(x)


@dataclass(frozen=True)
class Spec:
    """One field: its kind, units, hard limits, plausible bounds and their reason.

    ``low``/``high`` are hard limits (``low_open``/``high_open``: strict inequality);
    ``plausible`` is an inclusive ``(low, high)`` range, either end ``None``; ``why`` says why.
    Date fields always lie in QuantLib's 1901-01-01..2199-12-31. ``text_ok`` lets a number or
    a date be given as text (ISO ``YYYY-MM-DD`` for dates), for CSV cells and documented
    string dates.
    """

    kind: str
    units: str = ""
    low: object = None
    high: object = None
    low_open: bool = False
    high_open: bool = False
    plausible: tuple = (None, None)
    why: str = ""
    required: bool = True
    default: object = None
    choices: tuple = ()
    text_ok: bool = False
    item: Spec | None = None
    doc: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}")
        if (self.kind == "points") != (self.item is not None):
            raise ValueError("a points field, and only it, has an item spec")

    # ---- checking ---------------------------------------------------------------------------
    def check(self, value, name: str, strict: bool = True):
        """The typed value, or an :class:`InputError` naming ``name`` and the reason."""
        if self.kind == "points":
            return self._as_points(value, name, strict)
        x = getattr(self, f"_as_{self.kind}")(value, name)
        if self.kind in ("number", "integer", "date"):
            self._check_hard(x, name)
            if strict:
                self._check_plausible(x, name)
        return x

    def _units(self) -> str:
        return f" ({self.units})" if self.units else ""

    def _as_number(self, value, name):
        if isinstance(value, str) and self.text_ok:
            try:
                value = float(value.strip())
            except ValueError:
                raise InputError(name, f"must be a number{self._units()}, got {describe(value)}") from None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InputError(name, f"must be a number{self._units()}, got {describe(value)}")
        x = float(value)
        if not math.isfinite(x):
            raise InputError(name, f"must be finite, got {value!r}")
        return x

    def _as_integer(self, value, name):
        if isinstance(value, str) and self.text_ok and _INTEGER_TEXT.fullmatch(value.strip()):
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise InputError(name, f"must be an integer{self._units()}, got {describe(value)}")
        return int(value)

    def _as_date(self, value, name):
        if isinstance(value, dt.datetime):
            raise InputError(name, f"must be a date (YYYY-MM-DD), got {describe(value)}")
        if isinstance(value, str) and self.text_ok:
            text = value.strip()
            try:
                if not _ISO_DATE.fullmatch(text):
                    raise ValueError
                return dt.date.fromisoformat(text)
            except ValueError:
                raise InputError(name, f"not an ISO date (YYYY-MM-DD): {value!r}") from None
        if not isinstance(value, dt.date):
            hint = " (a TOML date is written without quotes: 2026-01-31)" if isinstance(value, str) else ""
            raise InputError(name, f"must be a date{hint}, got {describe(value)}")
        return value

    def _as_text(self, value, name):
        if not isinstance(value, str):
            raise InputError(name, f"must be text, got {describe(value)}")
        return value

    def _as_points(self, value, name, strict):
        """An array of ``{date, value}`` tables (or objects with ``date`` and ``value``), dates
        strictly increasing: a tuple of (date, value) pairs."""
        if isinstance(value, (str, Mapping)) or not isinstance(value, (list, tuple)):
            raise InputError(name, f"must be an array of tables with keys date and value, got {describe(value)}")
        out = []
        for i, item in enumerate(value):
            at = f"{name}[{i}]"
            if not isinstance(item, Mapping) and hasattr(item, "date") and hasattr(item, "value"):
                item = {"date": item.date, "value": item.value}  # e.g. a CurvePoint copied by with_
            if not isinstance(item, Mapping) or set(item) != {"date", "value"}:
                raise InputError(at, "expected a table with keys 'date' and 'value'")
            d = _POINT_DATE.check(item["date"], f"{at}.date")
            v = self.item.check(item["value"], f"{at}.value", strict)
            out.append((d, v))
        dates = [d for d, _ in out]
        if dates != sorted(set(dates)):
            raise InputError(name, "dates must be strictly increasing")
        return tuple(out)

    def _as_boolean(self, value, name):
        if not isinstance(value, bool):
            raise InputError(name, f"must be true or false, got {describe(value)}")
        return value

    def _as_choice(self, value, name):
        if isinstance(value, str):
            for c in self.choices:
                if value.strip().lower() == c.lower():
                    return c
        raise InputError(name, f"must be one of {', '.join(self.choices)}, got {describe(value)}")

    def _hard_limits(self):
        low, high = self.low, self.high
        if self.kind == "date":
            low = max(low, QL_MIN_DATE) if low is not None else QL_MIN_DATE
            high = min(high, QL_MAX_DATE) if high is not None else QL_MAX_DATE
        return low, high

    def _check_hard(self, x, name):
        low, high = self._hard_limits()
        if low is not None and (x < low or (self.low_open and x == low)):
            raise InputError(name, f"must be {'>' if self.low_open else '>='} {_fmt(low)}{self._units()}, "
                             f"got {_fmt(x)}")
        if high is not None and (x > high or (self.high_open and x == high)):
            raise InputError(name, f"must be {'<' if self.high_open else '<='} {_fmt(high)}{self._units()}, "
                             f"got {_fmt(x)}")

    def _check_plausible(self, x, name):
        lo, hi = self.plausible
        if (lo is not None and x < lo) or (hi is not None and x > hi):
            units = f" {self.units}" if self.units else ""
            why = f" ({self.why})" if self.why else ""
            raise InputError(name, f"{_fmt(x)} is outside the plausible range "
                             f"[{_fmt(lo) if lo is not None else '-inf'}, {_fmt(hi) if hi is not None else 'inf'}]"
                             f"{units}{why}")

    # ---- documentation ----------------------------------------------------------------------
    def type_text(self) -> str:
        if self.kind == "choice":
            return " / ".join(f'"{c}"' for c in self.choices)
        if self.kind == "date" and self.text_ok:
            return "date or \"YYYY-MM-DD\""
        if self.kind == "points":
            return f"array of {{date, value}} tables, value a {self.item.type_text()}"
        return {"number": "number", "integer": "integer", "date": "date", "text": "text",
                "boolean": "true / false"}[self.kind]

    def hard_text(self) -> str:
        if self.kind not in ("number", "integer", "date"):
            return "-"
        low, high = self._hard_limits()
        parts = []
        if low is not None:
            parts.append(f"{'>' if self.low_open else '≥'} {_fmt(low)}")
        if high is not None:
            parts.append(f"{'<' if self.high_open else '≤'} {_fmt(high)}")
        return ", ".join(parts) or "-"

    def plausible_text(self) -> str:
        lo, hi = self.plausible
        if lo is None and hi is None:
            return "-"
        if lo is None:
            return f"≤ {_fmt(hi)}"
        if hi is None:
            return f"≥ {_fmt(lo)}"
        return f"{_fmt(lo)} .. {_fmt(hi)}"


_POINT_DATE = Spec("date")


class Schema:
    """The fields of one input table, in file order; :meth:`parse` checks a whole table."""

    def __init__(self, name: str, specs: Mapping[str, Spec]):
        self.name = name
        self.specs = dict(specs)

    def __getitem__(self, key: str) -> Spec:
        return self.specs[key]

    def __iter__(self):
        return iter(self.specs)

    def check(self, key: str, value, strict: bool = True, prefix: str = ""):
        return self.specs[key].check(value, prefix + key, strict)

    def parse(self, table, *, strict: bool = True, prefix: str = "", ignore: tuple = ()) -> dict:
        """Typed values of a table: unknown keys, missing required fields and bad values are errors.

        ``prefix`` goes before each field name in errors (``quote[2].``); keys in ``ignore``
        are skipped; absent optional fields take their default.
        """
        if not isinstance(table, Mapping):
            raise InputError(prefix.rstrip(".") or self.name, f"must be a table, got {describe(table)}")
        for key in table:
            if key not in self.specs and key not in ignore:
                raise InputError(f"{prefix}{key}", f"unknown {self.name} field; known: {', '.join(self.specs)}")
        out = {}
        for key, spec in self.specs.items():
            if key in table:
                out[key] = spec.check(table[key], prefix + key, strict)
            elif spec.required:
                raise InputError(f"{prefix}{key}", f"missing {self.name} field")
            else:
                out[key] = spec.default
        return out

    def markdown(self, fields=None) -> str:
        """The README table of the fields: type, units, hard limits, plausible bounds and why."""
        rows = ["| field | type | units | limits | plausible | meaning; why the bounds |",
                "|---|---|---|---|---|---|"]
        for key in fields or self.specs:
            s = self.specs[key]
            v = s.item if s.kind == "points" else s  # a curve's bounds are its values'
            name = f"`{key}`" + ("" if s.required else " (optional)")
            text = "; ".join(t for t in (s.doc, v.why) if t) or "-"
            rows.append(f"| {name} | {s.type_text()} | {v.units or '-'} | {v.hard_text()} | "
                        f"{v.plausible_text()} | {text} |")
        return "\n".join(rows)


def with_file(exc: InputError, path) -> InputError:
    """The same error with the file named first: ``FILE: field: reason``."""
    out = InputError(exc.field, exc.reason)
    out.file = str(path)
    out.args = (f"{path}: {exc.field}: {exc.reason}",)
    return out


@contextmanager
def reading(path):
    """Name ``path`` in field errors raised inside; file-level errors already name it."""
    try:
        yield
    except InputError as exc:
        if exc.field == str(path) or getattr(exc, "file", None) is not None:
            raise
        raise with_file(exc, path) from None
