"""Quoted hashprice forwards: the :class:`Quote` record and its validation from records, CSV or
TOML files (:func:`parse_quotes`, :func:`load_quotes`).

A quote is the average daily hashprice index (USD/PH/day) over a delivery window, optionally
with bid and ask; a quotes file lists windows after the as-of date, sorted and disjoint.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from curves.periods import Period
from curves.schema import Schema, Spec, reading
from curves.toml_io import InputError, read_toml

HASHPRICE = "hashprice_usd_per_ph_day"
QUOTE_COLUMNS = ("start", "end", HASHPRICE)
OPTIONAL_QUOTE_COLUMNS = ("bid", "ask", "id")


@dataclass(frozen=True)
class Quote:
    """A quoted forward: the average daily hashprice index over [start, end], USD/PH/day.

    ``bid``/``ask`` are optional; when given, the quote must lie between them and the fit table
    says whether the model forward does too.
    """

    start: dt.date
    end: dt.date
    hashprice_usd_per_ph_day: float
    bid: float | None = None
    ask: float | None = None
    quote_id: str | None = None

    @property
    def period(self) -> Period:
        return Period(self.start, self.end)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


PRICE = Spec("number", "USD/PH/day", low=0, low_open=True, plausible=(0.1, 1e5), text_ok=True,
             why="the index has ranged 35..3,900 USD/PH/day since 2016")
# the quotes file's schema (CSV cells are text: numbers and ISO dates are read from text)
QUOTE_SCHEMA = Schema("quote", {
    "start": Spec("date", text_ok=True, doc="first day of the delivery window; after the as-of date"),
    "end": Spec("date", text_ok=True, doc="last day (inclusive)"),
    HASHPRICE: replace(PRICE, doc="quoted average daily index over the window"),
    "bid": replace(PRICE, required=False, doc="optional; at or below the quote"),
    "ask": replace(PRICE, required=False, doc="optional; at or above the quote"),
    "id": Spec("text", required=False, doc="optional label"),
})


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def parse_quotes(records: Sequence[dict], asof: dt.date | None = None) -> list[Quote]:
    """Validate quote records (dicts with start, end, hashprice_usd_per_ph_day[, bid, ask, id]).

    Errors name the quote and field, e.g. ``quote[2].end``: dates must be ISO dates after
    ``asof`` (when given), end >= start, prices finite and > 0 (see ``QUOTE_SCHEMA``), quotes
    sorted and disjoint.
    """
    if not records:
        raise InputError("quote", "no quotes given")
    quotes: list[Quote] = []
    for i, rec in enumerate(records):
        name = f"quote[{i}]"
        if not isinstance(rec, dict):
            raise InputError(name, "each quote must be a table")
        for key in rec:
            if key not in QUOTE_SCHEMA.specs:
                raise InputError(f"{name}.{key}", "unknown field; expected "
                                 + ", ".join(QUOTE_COLUMNS) + " and optionally bid, ask, id")
        given = {k: v.strip() if isinstance(v, str) else v for k, v in rec.items() if not _missing(v)}
        for key in QUOTE_COLUMNS:
            if key not in given:
                raise InputError(f"{name}.{key}", "missing")
        q = QUOTE_SCHEMA.parse(given, prefix=f"{name}.")
        start, end = q["start"], q["end"]
        if end < start:
            raise InputError(f"{name}.end", f"{end} is before start {start}")
        if asof is not None and start <= asof:
            raise InputError(f"{name}.start", f"{start} is not after the as-of date {asof}")
        price, bid, ask = q[HASHPRICE], q["bid"], q["ask"]
        if bid is not None and ask is not None and bid > ask:
            raise InputError(f"{name}.bid", f"bid {bid} is above ask {ask}")
        if (bid is not None and price < bid) or (ask is not None and price > ask):
            raise InputError(f"{name}.{HASHPRICE}", f"{price} lies outside bid/ask [{bid}, {ask}]")
        qid = q["id"]
        if quotes:
            prev = quotes[-1]
            if start < prev.start:
                raise InputError(f"{name}.start", f"quotes must be sorted by date; {start} is before "
                                 f"quote[{i - 1}] ({prev.start}..{prev.end})")
            if start <= prev.end:
                raise InputError(f"{name}.start", f"{start}..{end} overlaps quote[{i - 1}] "
                                 f"({prev.start}..{prev.end})")
        quotes.append(Quote(start, end, price, bid, ask, qid))
    return quotes


def load_quotes(path, asof: dt.date | None = None) -> list[Quote]:
    """Quotes from a CSV (columns start,end,hashprice_usd_per_ph_day[,bid,ask,id]; ``#`` lines are
    comments) or a TOML file of ``[[quote]]`` tables with the same keys."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".toml":
        doc = read_toml(p)
        with reading(p):
            return _quotes_from_toml(doc, asof)
    if suffix != ".csv":
        raise InputError(str(p), f"unsupported quotes file type {p.suffix or '(none)'!r}; use .csv or .toml")
    try:
        df = pd.read_csv(p, dtype=str, comment="#", skipinitialspace=True, keep_default_na=False)
    except FileNotFoundError:
        raise InputError(str(p), "file not found") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(str(p), f"unreadable CSV ({str(exc).splitlines()[0]})") from None
    df.columns = [str(c).strip() for c in df.columns]
    with reading(p):
        for c in QUOTE_COLUMNS:
            if c not in df.columns:
                raise InputError(c, f"missing column; the quotes CSV needs {', '.join(QUOTE_COLUMNS)}")
        return parse_quotes(df.to_dict(orient="records"), asof)


def _quotes_from_toml(doc: dict, asof: dt.date | None) -> list[Quote]:
    extra = set(doc) - {"quote"}
    if extra:
        raise InputError(sorted(extra)[0], "unknown key; the quotes file holds [[quote]] tables")
    raw = doc.get("quote", [])
    if not isinstance(raw, list):
        raise InputError("quote", "expected [[quote]] tables")
    return parse_quotes(raw, asof)
