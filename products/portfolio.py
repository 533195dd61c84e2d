"""Portfolio files: TOML ``[[trade]]`` tables. A trade with bad fields is reported, not fatal.

>>> trades, errors = parse_portfolio({"trade": [{"id": "a", "type": "nope"}]})
>>> trades, errors[0].error
([], "type: unknown trade type 'nope'; known: hashprice_forward")
"""

from __future__ import annotations

from dataclasses import dataclass

from curves.toml_io import InputError, read_toml
from products.hashrate_forward import HashrateForward

TRADE_TYPES = {HashrateForward.type_name: HashrateForward}
_FIELDS = {
    HashrateForward.type_name: ("id", "type", "start", "end", "strike", "currency", "size_phs", "side"),
}


@dataclass(frozen=True)
class TradeError:
    trade_id: str
    type_name: str
    error: str
    position: int = -1


def parse_trade(table: dict):
    if not isinstance(table, dict):
        raise InputError("trade", "each [[trade]] must be a table")
    type_name = table.get("type")
    if not isinstance(type_name, str) or type_name not in TRADE_TYPES:
        raise InputError("type", f"unknown trade type {type_name!r}; known: {', '.join(TRADE_TYPES)}")
    allowed = _FIELDS[type_name]
    for key in table:
        if key not in allowed:
            raise InputError(key, f"unknown field for {type_name}")
    for key in allowed:
        if key not in table and key != "side":
            raise InputError(key, "missing")
    kwargs = {k: v for k, v in table.items() if k not in ("id", "type")}
    return TRADE_TYPES[type_name](trade_id=str(table["id"]), **kwargs)


def parse_portfolio(doc: dict):
    """(valid trades, [TradeError]) from a parsed portfolio document."""
    raw = doc.get("trade")
    if not isinstance(raw, list) or not raw:
        raise InputError("trade", "the portfolio needs at least one [[trade]] table")
    trades, errors, seen = [], [], set()
    for k, table in enumerate(raw):
        tid = str(table.get("id", f"#{k + 1}")) if isinstance(table, dict) else f"#{k + 1}"
        tname = str(table.get("type", "")) if isinstance(table, dict) else ""
        try:
            if tid in seen:
                raise InputError("id", f"duplicate trade id {tid!r}")
            seen.add(tid)
            trades.append(parse_trade(table))
        except InputError as exc:
            errors.append(TradeError(tid, tname, str(exc), k))
    return trades, errors


def load_portfolio(path):
    return parse_portfolio(read_toml(path))
