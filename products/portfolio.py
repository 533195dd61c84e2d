"""Portfolio files: TOML ``[[trade]]`` tables. A trade with bad fields is reported, not fatal.

Each trade type declares its fields as a schema (``HashrateForward.schema``): exact types,
units and bounds; unknown and missing fields are errors of that trade alone.

>>> trades, errors = parse_portfolio({"trade": [{"id": "a", "type": "nope"}]})
>>> trades, errors[0].error.split(";")[0]
([], "type: unknown trade type 'nope'")
>>> trades, errors = parse_portfolio({"trade": [{"id": "b", "type": ["hashprice_forward"]}]})
>>> errors[0].trade_id, errors[0].error
('b', 'type: must be text naming the trade type, got an array')
"""

from __future__ import annotations

from dataclasses import dataclass

from curves.schema import describe, reading
from curves.toml_io import InputError, read_toml
from products import (  # noqa: F401  (they register)
    btc_future,
    btc_option,
    deliverable_forward,
    difficulty_future,
    difficulty_swap,
    hashprice_options,
    hashrate_forward,
    hashrate_future,
    hashvalue_future,
)
from products.registry import TRADE_TYPES


@dataclass(frozen=True)
class TradeError:
    trade_id: str
    type_name: str
    error: str
    position: int = -1


def parse_trade(table: dict):
    """One trade from its table, checked against its type's schema."""
    if not isinstance(table, dict):
        raise InputError("trade", f"each [[trade]] must be a table, got {describe(table)}")
    type_name = table.get("type")
    if type_name is None:
        raise InputError("type", f"missing; known: {', '.join(TRADE_TYPES)}")
    if not isinstance(type_name, str):
        raise InputError("type", f"must be text naming the trade type, got {describe(type_name)}")
    if type_name not in TRADE_TYPES:
        raise InputError("type", f"unknown trade type {type_name!r}; known: {', '.join(TRADE_TYPES)}")
    cls = TRADE_TYPES[type_name]
    fields = cls.schema.parse(table)
    kwargs = {k: v for k, v in fields.items() if k not in ("id", "type")}
    return cls(trade_id=fields["id"], **kwargs)


def _trade_label(table, k: int) -> tuple[str, str]:
    """(id, type) to report a trade by, whatever its table holds."""
    if not isinstance(table, dict):
        return f"#{k + 1}", ""
    tid, tname = table.get("id", f"#{k + 1}"), table.get("type", "")
    return (tid if isinstance(tid, str) else f"#{k + 1}", tname if isinstance(tname, str) else "")


def parse_portfolio(doc: dict):
    """(valid trades, [TradeError]) from a parsed portfolio document.

    A trade that fails its checks becomes a ``TradeError`` (its id, or ``#n`` for the n-th
    table when the id is missing or not text) and the others are still returned.
    """
    raw = doc.get("trade")
    if not isinstance(raw, list) or not raw or not all(isinstance(t, dict) for t in raw):
        raise InputError("trade", "the portfolio needs at least one [[trade]] table")
    extra = sorted(set(doc) - {"trade"})
    if extra:
        raise InputError(extra[0], "unknown key; a portfolio file holds [[trade]] tables only")
    trades, errors, seen = [], [], set()
    for k, table in enumerate(raw):
        tid, tname = _trade_label(table, k)
        try:
            if tid in seen:
                raise InputError("id", f"duplicate trade id {tid!r}")
            seen.add(tid)
            trades.append(parse_trade(table))
        except InputError as exc:
            errors.append(TradeError(tid, tname, str(exc), k))
        except (TypeError, ValueError, ArithmeticError) as exc:  # a check this module lacks: still one trade
            errors.append(TradeError(tid, tname, f"trade: unreadable ({type(exc).__name__}: {exc})", k))
    return trades, errors


def load_portfolio(path):
    """(valid trades, [TradeError]) from a portfolio file; file-level errors name the file."""
    doc = read_toml(path)
    with reading(path):
        return parse_portfolio(doc)
