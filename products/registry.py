"""The product protocol and the registry that maps a trade file's ``type`` to its class.

A product is a frozen dataclass with a ``type_name``, a file ``schema`` whose fields are the
dataclass's (``id`` is ``trade_id``; ``type`` is the registry key), ``fixings()`` and
``cash_flows(values, market)``; ``affine = True`` declares cash flows affine in the fixings (the
engine then batches the trade in a matrix product). Registering checks that the schema and the dataclass agree, so
a new product cannot drift from its file format. Product modules register themselves when
imported; :mod:`products.portfolio` imports them all.

>>> from products.hashrate_forward import HashrateForward
>>> TRADE_TYPES["hashprice_forward"] is HashrateForward
True
>>> file_fields(HashrateForward)
('id', 'type', 'start', 'end', 'strike', 'currency', 'size_phs', 'side')
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Protocol, runtime_checkable

from products.fixings import CashFlow

TRADE_TYPES: dict[str, type] = {}
FILE_ONLY = {"trade_id": "id"}  # dataclass field -> file key, where they differ


@runtime_checkable
class Product(Protocol):
    """What pricing needs from a trade; see the module docstring."""

    type_name: str
    trade_id: str

    def fixings(self) -> tuple: ...

    def cash_flows(self, values, market) -> list[CashFlow]: ...

    def check_market(self, market) -> None: ...


def file_fields(cls) -> tuple[str, ...]:
    """The trade file's keys for ``cls``: ``id``, ``type`` and the dataclass's other init fields."""
    names = [f.name for f in fields(cls) if f.init]
    return ("id", "type", *(FILE_ONLY.get(n, n) for n in names if n != "trade_id"))


def register(cls):
    """Class decorator: add ``cls`` to :data:`TRADE_TYPES` once its schema matches its fields."""
    if not is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    for attr in ("type_name", "schema", "fixings", "cash_flows", "check_market"):
        if not hasattr(cls, attr):
            raise TypeError(f"{cls.__name__} lacks {attr}")
    if set(cls.schema.specs) != set(file_fields(cls)):
        raise TypeError(f"{cls.__name__}: schema fields {sorted(cls.schema.specs)} differ from the "
                        f"dataclass's {sorted(file_fields(cls))}")
    if cls.type_name in TRADE_TYPES:
        raise TypeError(f"trade type {cls.type_name!r} registered twice")
    TRADE_TYPES[cls.type_name] = cls
    return cls
