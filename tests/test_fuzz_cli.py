"""Fuzz the ``hashprice`` CLI: every command, every input file kind, mutated and random inputs.

Each case builds a command line with valid, mutated or broken inputs (market, model, portfolio
and shift TOML; quotes, history and epochs CSV; missing files, folders, binary garbage) and
outputs (new, nested, existing, unwritable), runs the real entry point in-process and checks:

* no traceback: the exit status is 0, 2 or 130 and any exception is a SystemExit;
* exit 0 only with finite results: every number in the JSON on stdout and in output files;
* exit 2: stderr is one line ``error: FIELD: reason`` naming a field, an option or a file, and
  the disk is as before the run (no output, temporary file or folder left, old files intact).

Budget: ``HASHPRICE_FUZZ_EXAMPLES`` cases (default 300; the simulations are tiny).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import random
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomli_w
from cli_run import Outcome, run_main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.main import get_command

from curves.market import Market
from engine.app import cli
from engine.calibration.hashrate_shift import HashrateShift, ShiftSegment
from engine.calibration.quotes import OPTIONAL_QUOTE_COLUMNS, QUOTE_COLUMNS
from engine.data.load import COINMETRICS_COLUMNS, EPOCH_COLUMNS, REQUIRED_COLUMNS
from engine.mc.model import ModelParams
from products import portfolio as portfolio_module
from products.fleet_file import FLEET_SCHEMA, HEDGE_SCHEMA, TOKEN_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
FUZZ_EXAMPLES = int(os.environ.get("HASHPRICE_FUZZ_EXAMPLES", "300"))
PATHS = str(cli.MIN_PATHS)  # the fewest paths the CLI accepts: tiny simulations
FUZZED_COMMANDS = ("curve", "spot", "price", "history", "calibrate", "calibrate-quotes", "backtest", "snapshot",
                   "epochs-check", "hedge")
TEMP_MARKERS = (".tmp", ".bak", ".hashprice-probe-")
STATS = {"cases": 0, "exit": {}, "commands": {}, "seconds": 0.0}


# ---- valid base inputs -------------------------------------------------------------------------
def trade_types() -> dict:
    """The product registry (type name -> class), with each type's fields: new types are fuzzed
    as soon as they are registered."""
    from products.registry import file_fields

    return {name: file_fields(cls) for name, cls in portfolio_module.TRADE_TYPES.items()}


def base_trades() -> list[dict]:
    doc = tomllib_load(ROOT / "examples" / "portfolio.toml")
    return doc["trade"]


def tomllib_load(path: Path) -> dict:
    import tomllib

    return tomllib.loads(path.read_text())


def base_shift_doc() -> dict:
    asof = Market.default().asof
    segs = (ShiftSegment(asof + dt.timedelta(days=1), dt.date(2026, 3, 15), 0.0003),
            ShiftSegment(dt.date(2026, 3, 16), dt.date(2026, 6, 30), 0.0002))
    return HashrateShift(asof, segs).to_dict()


def _bits_for(difficulty: float) -> tuple[str, float]:
    """Compact nBits for a difficulty, and the difficulty those bits decode to."""
    target = int((0xFFFF << 208) / difficulty)
    size = (target.bit_length() + 7) // 8
    mantissa = target << 8 * (3 - size) if size <= 3 else target >> 8 * (size - 3)
    if mantissa & 0x800000:
        mantissa >>= 8
        size += 1
    bits = (size << 24) | mantissa
    shift = 8 * (size - 3)
    decoded = (0xFFFF << 208) / (mantissa << shift if shift >= 0 else mantissa >> -shift)
    return f"0x{bits:08x}", round(decoded, 3)


def synthetic_history(days: int = 700, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A daily network history and its difficulty epochs, made with the protocol rules: enough
    for calibrate (600 days) and a one-origin backtest."""
    rng = np.random.default_rng(seed)
    start = dt.date(2023, 6, 1)
    price, hashrate = 27_000.0, 3.8e20
    bits, difficulty = _bits_for(5.2e13)
    height = 800_000
    epoch_start_height, epoch_seconds = (height // 2016) * 2016, 6 * 86_400.0
    rows, epochs = [], [(epoch_start_height, start - dt.timedelta(days=6), difficulty, bits)]
    for k in range(days):
        day = start + dt.timedelta(days=k)
        price *= math.exp(0.03 * rng.standard_normal())
        hashrate *= math.exp(0.0015 + 0.02 * rng.standard_normal())
        d_today = difficulty
        blocks = int(rng.poisson(hashrate * 86_400 / (difficulty * 2**32)))
        blocks = max(blocks, 1)
        subsidy = 6.25 if height < 840_000 else 3.125
        fee = float(np.exp(rng.normal(math.log(0.1), 0.5)))
        next_epoch = epoch_start_height + 2016
        if height + blocks >= next_epoch:
            frac = (next_epoch - height) / blocks
            span = epoch_seconds + frac * 86_400
            ratio = min(max(2016 * 600 / span, 0.25), 4.0)
            bits, difficulty = _bits_for(difficulty * ratio)
            epoch_start_height, epoch_seconds = next_epoch, (1 - frac) * 86_400
            epochs.append((next_epoch, day, difficulty, bits))
        else:
            epoch_seconds += 86_400
        height += blocks
        rows.append({"date": day.isoformat(), "price_usd": round(price, 6),
                     "hashrate_ths": d_today * blocks * 2**32 / 86_400 / 1e12, "difficulty": d_today,
                     "fees_btc": round(fee * blocks, 8), "subsidy_btc": subsidy * blocks, "blocks": blocks,
                     "height_end": height - 1})
    ep = pd.DataFrame(epochs, columns=["height", "date", "difficulty", "bits"])
    ep["timestamp_utc"] = [f"{d.isoformat()}T12:00:00Z" for d in ep["date"]]
    prev = ep["difficulty"].shift()
    ep["change_pct"] = (100 * (ep["difficulty"] / prev - 1)).round(4)
    ep["date"] = [d.isoformat() for d in ep["date"]]
    return pd.DataFrame(rows), ep[list(EPOCH_COLUMNS)]


HISTORY, EPOCHS = synthetic_history()


# ---- mutation pools ----------------------------------------------------------------------------
_UTC = dt.timezone.utc
TOML_VALUES = [
    True, False, [], [1, 2], ["hashprice_forward"], {"a": 1}, "", "abc", "2026-03-01", "USD",
    0, -1, 1, 2**63 - 1, -(2**63), 0.0, -1.0, 1e-300, 5e-324, 1e308, -1e308, math.nan, math.inf, -math.inf,
    dt.date(1, 1, 1), dt.date(1900, 1, 1), dt.date(2200, 1, 1), dt.date(9999, 12, 31), dt.date(2026, 1, 31),
    dt.datetime(2026, 3, 1, 12, 30), dt.datetime(2026, 3, 1, tzinfo=_UTC), dt.time(12, 0),
]
CELL_VALUES = ["", " ", "abc", "0", "-1", "1e308", "-1e308", "1e-300", "nan", "inf", "-inf", "NaN",
               "1,5", "2026-13-45", "1900-01-01", "2200-01-01", "9999-12-31", "0001-01-01",
               "2026-03-01T12:00:00", "2026-03-01T00:00:00Z", "\x00", "\u00e9", "99999999999999999999"]
OPTION_VALUES = ["0", "-1", "1", "3", "abc", "", "1e308", "nan", "inf", "-inf", "4294967296",
                 "99999999999999999999", "1e30", "2199-12-31", "2200-01-01", "9999-12-31", "1900-01-01",
                 "2026-02-30", "2026-01-31T12:00:00"]
GARBAGE = [b"", b"\x00\xff\xfe garbage \x80", b"\xef\xbb\xbf", b"a = 1\n", b"[[trade]]\n",
           ("a = " + "[" * 3000 + "]" * 3000 + "\n").encode(), b"x" * 5000, "\u00e9t\u00e9 = 1\n".encode("latin-1")]


@dataclass
class Case:
    """One generated command line and what the checks need to know about it."""

    command: str
    args: list = field(default_factory=list)
    outputs: list = field(default_factory=list)  # output paths requested
    json_out: bool = False


class Builder:
    """Draws inputs (from a hypothesis-seeded Random) and writes them under ``root``.

    A ``clean`` case keeps every input valid (it exercises the paths that succeed); the others
    mutate inputs, options and outputs at random.
    """

    def __init__(self, rnd, root: Path, clean: bool):
        self.rnd = rnd
        self.clean = clean
        self.root = root
        self.inputs = root / "in"
        self.outdir = root / "out"
        self.inputs.mkdir()
        self.outdir.mkdir()
        self.n = 0

    def choose(self, seq):
        return self.rnd.choice(list(seq))

    def chance(self, p: float) -> bool:
        return self.rnd.random() < p

    def integer(self, lo: int, hi: int) -> int:
        return self.rnd.randint(lo, hi)

    def name(self, suffix: str) -> Path:
        self.n += 1
        return self.inputs / f"f{self.n}{suffix}"

    # -- files --------------------------------------------------------------------------------
    def file_or_broken(self, suffix: str, make_bytes) -> Path:
        """A valid or mutated file; sometimes missing, a folder, empty or garbage instead."""
        kind = "ok" if self.clean else self.choose(["ok"] * 6 + ["missing", "folder", "garbage", "nested-missing"])
        p = self.name(suffix)
        if kind == "missing":
            return p
        if kind == "nested-missing":
            return self.inputs / "nope" / p.name
        if kind == "folder":
            p.mkdir()
            return p
        if kind == "garbage":
            p.write_bytes(self.choose(GARBAGE))
            return p
        p.write_bytes(self.mutate_bytes(make_bytes()))
        return p

    def mutate_bytes(self, data: bytes) -> bytes:
        if self.clean or not self.chance(0.2):
            return data
        op = self.choose(["truncate", "insert", "dup-line", "crlf"])
        if op == "truncate":
            return data[: self.integer(0, len(data))]
        if op == "insert":
            at = self.integer(0, len(data))
            return data[:at] + self.choose(GARBAGE[:3] + [b"\n", b'"', b"=", b","]) + data[at:]
        lines = data.split(b"\n")
        if op == "dup-line" and lines:
            k = self.integer(0, len(lines) - 1)
            return b"\n".join(lines[: k + 1] + [lines[k]] + lines[k + 1:])
        return data.replace(b"\n", b"\r\n")

    def mutate_doc(self, doc):
        """Drop, duplicate, retype or blow up keys of a TOML document (dicts and arrays)."""
        for _ in range(self.integer(0, 3)):
            doc = self._mutate_once(doc)
        return doc

    def _mutate_once(self, doc):
        if isinstance(doc, list):
            if not doc:
                return [self.choose(TOML_VALUES)]
            k = self.integer(0, len(doc) - 1)
            op = self.choose(["inner", "inner", "drop", "dup", "replace"])
            if op == "drop":
                return doc[:k] + doc[k + 1:]
            if op == "dup":
                return doc[: k + 1] + [doc[k]] + doc[k + 1:]
            if op == "replace":
                return doc[:k] + [self.choose(TOML_VALUES)] + doc[k + 1:]
            return doc[:k] + [self._mutate_once(doc[k])] + doc[k + 1:]
        if not isinstance(doc, dict):
            return self.choose(TOML_VALUES) if self.chance(0.7) else _scale(doc, self.choose([0, -1, 1e-9, 1e9, 1e300]))
        doc = dict(doc)
        if not doc:
            doc["unknown_key"] = self.choose(TOML_VALUES)
            return doc
        key = self.choose(sorted(doc))
        op = self.choose(["value", "value", "value", "scale", "drop", "unknown", "inner"])
        if op == "value":
            doc[key] = self.choose(TOML_VALUES)
        elif op == "scale":
            doc[key] = _scale(doc[key], self.choose([0, -1, 1e-9, 1e6, 1e300]))
        elif op == "drop":
            del doc[key]
        elif op == "unknown":
            doc[self.choose(["unknown_key", "Difficulty", "type ", "id"])] = self.choose(TOML_VALUES)
        elif isinstance(doc[key], (dict, list)):
            doc[key] = self._mutate_once(doc[key])
        else:
            doc[key] = self.choose(TOML_VALUES)
        return doc

    def toml_file(self, make_doc) -> Path:
        def make():
            doc = make_doc()
            if not self.clean and self.chance(0.7):
                doc = self.mutate_doc(doc)
            try:
                return tomli_w.dumps(doc).encode()
            except (TypeError, ValueError):  # not representable in TOML (e.g. a top-level list)
                return b"x = 1\n"
        return self.file_or_broken(".toml", make)

    def csv_file(self, frame: pd.DataFrame, suffix: str = ".csv") -> Path:
        def make():
            df = frame.astype(str)
            if not self.clean and self.chance(0.7):
                df = self.mutate_frame(df)
            return df.to_csv(index=False).encode()
        return self.file_or_broken(suffix, make)

    def mutate_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        for _ in range(self.integer(1, 3)):
            op = self.choose(["cell", "cell", "cell", "column", "rename", "rows", "dup-row", "reverse", "head"])
            if op == "cell" and len(df):
                i = self.integer(0, len(df) - 1)
                c = self.choose(list(df.columns))
                df.iloc[i, df.columns.get_loc(c)] = self.choose(CELL_VALUES)
            elif op == "column" and len(df.columns) > 1:
                df = df.drop(columns=[self.choose(list(df.columns))])
            elif op == "rename":
                c = self.choose(list(df.columns))
                df = df.rename(columns={c: self.choose(["", "x", c.upper(), c + " ", "date"])})
            elif op == "rows" and len(df) > 1:
                keep = self.integer(0, len(df))
                df = df.iloc[:keep] if self.chance(0.5) else df.iloc[keep:]
            elif op == "dup-row" and len(df):
                i = self.integer(0, len(df) - 1)
                df = pd.concat([df.iloc[: i + 1], df.iloc[i: i + 1], df.iloc[i + 1:]])
            elif op == "reverse":
                df = df.iloc[::-1]
            elif op == "head":
                df = df.iloc[:0]
        return df

    # -- outputs ------------------------------------------------------------------------------
    def output(self, suffixes: tuple[str, ...]) -> Path:
        """An output path: mostly fine, sometimes in new folders, over an old file, or unwritable."""
        kind = self.choose(["new", "nested", "existing"] if self.clean else
                           ["new", "nested", "existing", "folder", "proc", "parent-file", "long", "suffix", "dev"])
        suffix = self.choose(list(suffixes))
        self.n += 1
        p = self.outdir / f"o{self.n}{suffix}"
        if kind == "nested":
            return self.outdir / f"new{self.n}" / "deeper" / p.name
        if kind == "existing":
            p.write_bytes(b"OLD CONTENT\n")
        elif kind == "folder":
            p.mkdir()
        elif kind == "proc":
            return Path("/proc") / p.name
        elif kind == "parent-file":
            f = self.outdir / f"file{self.n}"
            f.write_bytes(b"x")
            return f / p.name
        elif kind == "long":
            return self.outdir / ("x" * 300 + suffix)
        elif kind == "suffix":
            return p.with_suffix(self.choose([".xlsx", "", ".txt", ".PNG", ".toml"]))
        elif kind == "dev":
            return Path("/dev/null")
        return p

    def option(self, valid: list[str]) -> str:
        return self.choose(valid) if self.clean or self.chance(0.85) else self.choose(OPTION_VALUES)


def _scale(v, k):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return v
    try:
        return v * k
    except OverflowError:
        return v


# ---- per-command case builders -----------------------------------------------------------------
def market_doc() -> dict:
    return Market.default().to_dict()


def model_doc() -> dict:
    return ModelParams.default().to_dict()


def portfolio_doc(b: Builder) -> dict:
    types = trade_types()
    trades = [dict(t) for t in base_trades()]
    for _ in range(b.integer(0, 2)):  # trades of any registered type, from generic values
        name = b.choose(sorted(types))
        t = {"id": f"gen{b.n}-{len(trades)}", "type": name}
        values = {"start": dt.date(2026, 3, 1), "end": dt.date(2026, 5, 31), "strike": 40.0,
                  "currency": b.choose(["USD", "BTC"]), "size_phs": 10.0, "side": b.choose(["buy", "sell"]),
                  "floor_strike": 30.0, "cap_strike": 40.0, "contracts": 3, "price_usd_per_ph_day": 35.0,
                  "expiry": dt.date(2026, 6, 26), "strike_usd": 80_000.0, "option": "call", "size_btc": 1.0,
                  "contract_btc": b.choose([5.0, 0.1]), "price_usd": 80_000.0,
                  "style": b.choose(["linear", "inverse"]), "payment_date": dt.date(2026, 2, 20),
                  "financing_spread": 0.05, "price_btc_per_ph_day": b.choose([None, 0.0005])}  # None: left out
        for f in types[name]:
            if f not in t:
                value = values.get(f, b.choose(TOML_VALUES))
                if value is not None:
                    t[f] = value
        trades.append(t)
    b.n += 1
    keep = b.integer(1, len(trades))
    return {"trade": trades[:keep]}


def common_sim_options(b: Builder, case: Case) -> None:
    if b.chance(0.9):
        case.args += ["--paths", b.option([PATHS, PATHS, "600"])]
    if b.chance(0.3):
        case.args += ["--seed", b.option(["1", "42", str(2**62)])]
    if b.chance(0.5):
        case.args += ["--market", b.toml_file(market_doc)]
    if b.chance(0.5):
        case.args += ["--model", b.toml_file(model_doc)]
    if b.chance(0.15):
        case.args += ["--threads", b.option(["1", "2"])]


def build_curve(b: Builder) -> Case:
    case = Case("curve", ["--months", b.option(["1", "2"])])
    common_sim_options(b, case)
    if b.chance(0.2):
        case.args += ["--shift", b.toml_file(base_shift_doc)]
    _outputs(b, case, plot=True)
    return case


def build_price(b: Builder) -> Case:
    case = Case("price", [b.toml_file(lambda: portfolio_doc(b))])
    common_sim_options(b, case)
    if b.chance(0.15):
        case.args += ["--shift", b.toml_file(base_shift_doc)]
    _outputs(b, case, plot=False)
    return case


def fleet_doc(b: Builder) -> dict:
    """The example fleet file, on a short horizon, with some of its options drawn."""
    import tomllib

    doc = tomllib.loads((ROOT / "examples" / "fleet.toml").read_text())
    doc["hedge"]["horizon_months"] = b.choose([1, 2, 3])
    doc["token"]["life_months"] = b.choose([1, 4])
    doc["fleet"]["btc_sold"] = b.choose(["daily", "at_expiry"])
    doc["hedge"]["expiry_rule"] = b.choose(["month_end", "cme_last_friday"])
    if b.chance(0.3):
        del doc["token"]
    return doc


def build_hedge(b: Builder) -> Case:
    case = Case("hedge", [b.toml_file(lambda: fleet_doc(b))])
    common_sim_options(b, case)
    if b.chance(0.15):
        case.args += ["--shift", b.toml_file(base_shift_doc)]
    if b.chance(0.3):
        case.outputs.append(b.output((".json", ".csv")))
        case.args += ["--out", case.outputs[-1]]
    if b.chance(0.2):
        case.outputs.append(b.output((".png",)))
        case.args += ["--plot", case.outputs[-1]]
    if b.chance(0.6):
        case.args.append("--json")
        case.json_out = True
    return case


def build_spot(b: Builder) -> Case:
    case = Case("spot", ["--price-usd", b.option(["78621", "100000", "1e-6"])])
    which = b.choose(["difficulty", "hashrate"] if b.clean else ["difficulty", "hashrate", "both", "none"])
    if which in ("difficulty", "both"):
        case.args += ["--difficulty", b.option(["1.4e14", "1e14", "1"])]
    if which in ("hashrate", "both"):
        case.args += ["--hashrate-ehs", b.option(["1000", "1e-3"])]
    if b.chance(0.5):
        case.args += ["--subsidy-btc", b.option(["3.125", "0", "50"])]
    else:
        case.args += ["--height", b.option(["934546", "0", "6930000"])]
    if b.chance(0.4):
        case.args += ["--fee-btc-per-block", b.option(["0.02", "0"])]
    if b.chance(0.4):
        for opt, vals in (("--fleet-phs", ["100", "1e-3"]), ("--efficiency-j-per-th", ["17", "30"]),
                          ("--power-usd-per-kwh", ["0.05", "0"])):
            if b.chance(0.9):
                case.args += [opt, b.option(vals)]
        for opt, vals in (("--uptime", ["1", "0.9"]), ("--opex-usd-per-day", ["0", "100"]),
                          ("--capex-usd", ["2000000", "0"])):
            if b.chance(0.3):
                case.args += [opt, b.option(vals)]
    if b.chance(0.6):
        case.args.append("--json")
        case.json_out = True
    return case


def build_history(b: Builder) -> Case:
    case = Case("history", [b.csv_file(HISTORY)])
    if b.chance(0.4):
        case.args += ["--epochs", b.csv_file(EPOCHS)]
    _outputs(b, case, plot=True)
    return case


def build_calibrate(b: Builder) -> Case:
    case = Case("calibrate", [b.csv_file(HISTORY)])
    case.outputs.append(b.output((".toml",)))
    case.args += ["--out", case.outputs[-1]]
    if b.chance(0.4):
        case.args += ["--asof", b.option(["2025-03-01", "2025-04-30", "2023-01-01"])]
    if b.chance(0.3):
        case.args += ["--fee-window-days", b.option(["365", "0", "60"])]
    if b.chance(0.6):
        case.args.append("--json")
        case.json_out = True
    return case


def quotes_frame() -> pd.DataFrame:
    return pd.DataFrame({"id": ["feb26", "mar26"], "start": ["2026-02-01", "2026-03-01"],
                         "end": ["2026-02-28", "2026-03-31"], "hashprice_usd_per_ph_day": ["39.61", "41.44"],
                         "bid": ["39.36", "41.19"], "ask": ["39.86", "41.69"]})


def build_calibrate_quotes(b: Builder) -> Case:
    if b.chance(0.8):
        quotes = b.csv_file(quotes_frame())
    else:
        recs = quotes_frame().to_dict(orient="records")
        quotes = b.toml_file(lambda: {"quote": [dict(r) for r in recs]})
    case = Case("calibrate-quotes", [quotes])
    common_sim_options(b, case)
    if b.chance(0.2):
        case.args += ["--tol-stderr", b.option(["0.1", "1"])]
    if b.chance(0.6):
        case.outputs.append(b.output((".toml",)))
        case.args += ["--out", case.outputs[-1]]
    if b.chance(0.6):
        case.args.append("--json")
        case.json_out = True
    return case


def build_backtest(b: Builder) -> Case:
    origin = b.option(["2025-03-01"] * 5 + ["2025-02-15", "2025-04-01"])
    case = Case("backtest", [b.csv_file(HISTORY), "--horizons", b.option(["1"] * 5 + ["1,2"]),
                             "--start", origin, "--end", b.option([origin] * 5 + ["2025-02-01"])])
    if b.chance(0.9):
        case.args += ["--paths", b.option(["200", PATHS])]
    if b.chance(0.3):
        case.args += ["--epochs", b.csv_file(EPOCHS)]
    for opt, vals in (("--vol-window-days", ["90", "30"]), ("--vol-model", ["mean_reverting", "flat"]),
                      ("--hashrate-state", ["filtered", "7d"]), ("--seed", ["1", "7"]), ("--threads", ["1"])):
        if b.chance(0.15):
            case.args += [opt, b.option(vals)]
    _outputs(b, case, plot=True)
    return case


def build_snapshot(b: Builder) -> Case:
    case = Case("snapshot", [b.csv_file(HISTORY)])
    case.outputs.append(b.output((".toml",)))
    case.args += ["--out", case.outputs[-1]]
    if b.chance(0.5):
        case.args += ["--asof", b.option(["2025-03-01", "2025-04-30", "2023-07-15"])]
    if b.chance(0.4):
        case.args += ["--epochs", b.csv_file(EPOCHS)]
    if b.chance(0.3):
        case.args += ["--model", b.toml_file(model_doc)]
    if b.chance(0.2):
        case.args += ["--btc-drift", b.option(["0", "0.3", "-0.5"])]
    if b.chance(0.5):
        case.args.append("--json")
        case.json_out = True
    return case


def epochs_after_default() -> pd.DataFrame:
    """Two epochs after the default market's as-of date, with bits that decode to them."""
    rows = []
    for height, day, d in ((935_424, "2026-02-07", 1.2586e14), (937_440, "2026-02-19", 1.4440e14)):
        bits, dec = _bits_for(d)
        rows.append({"height": height, "date": day, "timestamp_utc": f"{day}T12:00:00Z", "difficulty": dec,
                     "change_pct": "", "bits": bits})
    return pd.DataFrame(rows)[list(EPOCH_COLUMNS)]


def build_epochs_check(b: Builder) -> Case:
    case = Case("epochs-check", [b.csv_file(epochs_after_default())])
    common_sim_options(b, case)
    _outputs(b, case, plot=False)
    return case


def _outputs(b: Builder, case: Case, plot: bool) -> None:
    if b.chance(0.4):
        case.outputs.append(b.output((".csv", ".json", ".parquet")))
        case.args += ["--out", case.outputs[-1]]
    if plot and b.chance(0.2):
        case.outputs.append(b.output((".png",)))
        case.args += ["--plot", case.outputs[-1]]
    if b.chance(0.6):
        case.args.append("--json")
        case.json_out = True


BUILDERS = {"curve": build_curve, "spot": build_spot, "price": build_price, "history": build_history,
            "calibrate": build_calibrate, "calibrate-quotes": build_calibrate_quotes, "backtest": build_backtest,
            "snapshot": build_snapshot, "epochs-check": build_epochs_check, "hedge": build_hedge}
# cheap commands more often than the ones that calibrate
WEIGHTS = {"curve": 4, "spot": 3, "price": 4, "history": 3, "calibrate": 2, "calibrate-quotes": 2, "backtest": 2,
           "snapshot": 2, "epochs-check": 2, "hedge": 2}


def build_risk(b: Builder) -> Case:
    """``hashprice risk``: a small grid mostly (each cell is a simulation), quotes now and then."""
    case = Case("risk", [b.toml_file(lambda: portfolio_doc(b))])
    common_sim_options(b, case)
    if b.chance(0.9):
        case.args += ["--scenarios", b.option(["0:0", "-10,0,10:0", "0:-5,5"])]
    if b.chance(0.15):
        case.args += ["--shift", b.toml_file(base_shift_doc)]
    if b.chance(0.05):
        case.args += ["--quotes", b.csv_file(quotes_frame().head(2))]
    _outputs(b, case, plot=False)
    return case


FUZZED_COMMANDS += ("risk",)
BUILDERS["risk"] = build_risk
WEIGHTS["risk"] = 2


# ---- running and checking ----------------------------------------------------------------------
def snapshot(root: Path) -> dict:
    """Every file and folder under ``root`` with a hash of its content."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.join(dirpath, d)] = "dir"
        for f in filenames:
            p = os.path.join(dirpath, f)
            out[p] = hashlib.sha1(Path(p).read_bytes()).hexdigest()
    return out


def known_names() -> set[str]:
    """Field, option, column and result names an error line may start with."""
    names = set(Market.__dataclass_fields__) | set(ModelParams.__dataclass_fields__)
    for fields_ in trade_types().values():
        names |= set(fields_)
    names |= {"trade", "type", "id", "quote", "segment", "shift", "asof", "units", "calibration",
              "shift_per_day", "shift_per_year", "start", "end", "date", "value", "corr_*", "months", "paths",
              "output", "stdout", "usage", "result", "hashrate_shift_per_day", "n_days", "window", "quantity"}
    names |= {"unknown_key", "Difficulty", "a", "x", "file"}  # keys and columns the mutations add; any file
    names |= set(QUOTE_COLUMNS) | set(OPTIONAL_QUOTE_COLUMNS) | set(REQUIRED_COLUMNS) | set(EPOCH_COLUMNS)
    names |= set(COINMETRICS_COLUMNS.values()) | {"height_end"}
    for cmd in get_command(cli.app).commands.values():
        names |= {p.name for p in cmd.params}
    names |= {"hashprice_usd_per_ph_day", "hashprice_stderr", "hashvalue_btc_per_ph_day", "hashvalue_stderr",
              "difficulty_mean", "hashprice_usd_per_th_day", "pv_usd", "pv_stderr", "fair_rate", "notional",
              "initial_margin", "revenue_usd_per_day", "power_kw", "power_cost_usd_per_day", "net_usd_per_day",
              "breakeven_power_usd_per_kwh", "payback_months", "trades", "parameters", "summary", "records",
              "settings", "quotes", "days", "epochs", "ci_low", "ci_high", "stderr", "estimate"}
    names |= {"fleet", "hedge", "token"} | set(FLEET_SCHEMA.specs) | set(HEDGE_SCHEMA.specs) | set(TOKEN_SCHEMA.specs)
    return names


NAMES = known_names()
ERROR_LINE = re.compile(r"^error: (?P<field>[^:]+?): \S")


def names_a_field(token: str, case: Case) -> bool:
    """``token`` is a known field (``quote[2].start``, ``months[0].hashprice_stderr`` included) or
    one of the case's files."""
    if token in {str(a) for a in case.args}:
        return True
    parts = [re.sub(r"\[[^\]]*\]$", "", p) for p in token.split(".")]
    return all(p in NAMES or p.strip() in NAMES for p in parts if p)


def assert_finite_json(text: str, where: str) -> None:
    def bad_constant(name):
        raise AssertionError(f"{where}: non-finite number {name} in JSON")

    doc = json.loads(text, parse_constant=bad_constant)

    def walk(x, path):
        if isinstance(x, float):
            assert math.isfinite(x), f"{where}: {path} = {x}"
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{path}.{k}")
        elif isinstance(x, list):
            for i, v in enumerate(x):
                walk(v, f"{path}[{i}]")

    walk(doc, "$")


def assert_finite_file(p: Path) -> None:
    suffix = p.suffix.lower()
    if suffix == ".json":
        assert_finite_json(p.read_text(), str(p))
    elif suffix == ".csv":
        df = pd.read_csv(p, keep_default_na=False, dtype=str)
        bad = df.isin(["inf", "-inf", "nan", "NaN", "Infinity", "-Infinity"]).to_numpy()
        assert not bad.any(), f"{p}: non-finite cell"
    elif suffix == ".parquet":
        num = pd.read_parquet(p).select_dtypes(include="number")
        assert not np.isinf(num.to_numpy(dtype=float)).any(), f"{p}: infinite value"
    elif suffix == ".toml":
        import tomllib

        text = p.read_text()
        tomllib.loads(text)
        assert not re.search(r"=\s*[+-]?inf\b", text), f"{p}: infinite value"
    elif suffix == ".png":
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def check(case: Case, res: Outcome, before: dict, after: dict) -> None:
    label = f"{case.command} {' '.join(map(str, case.args))}"
    assert res.exception is None, f"traceback for {label}:\n{res.trace}"
    assert "Traceback" not in res.stderr, f"{label}:\n{res.stderr}"
    assert res.code in (0, 2, 130), f"exit {res.code} for {label}:\n{res.stderr}"
    temps = [p for p in after if any(m in Path(p).name for m in TEMP_MARKERS)]
    assert not temps, f"temporary files left by {label}: {temps}"
    if res.code == 0:
        assert res.stderr.strip() == "", f"{label}: exit 0 with stderr {res.stderr!r}"
        if case.json_out:
            assert_finite_json(res.stdout, f"stdout of {label}")
        for p in case.outputs:
            assert Path(p).is_file(), f"{label}: exit 0 but {p} missing"
            assert_finite_file(Path(p))
        return
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, f"{label}: not one line:\n{res.stderr}"
    m = ERROR_LINE.match(lines[0])
    assert m, f"{label}: not 'error: FIELD: reason': {lines[0]!r}"
    assert names_a_field(m["field"], case), f"{label}: {m['field']!r} names no field or file: {lines[0]!r}"
    assert res.stdout == "", f"{label}: output on stdout after an error: {res.stdout[:200]!r}"
    assert after == before, f"{label}: the disk changed after an error: " + repr(
        sorted(set(after.items()) ^ set(before.items()))[:5])


# ---- the tests ---------------------------------------------------------------------------------
def test_every_command_is_fuzzed():
    """A new command must join the harness."""
    assert set(get_command(cli.app).commands) == set(FUZZED_COMMANDS) == set(BUILDERS)


def test_every_trade_type_is_drawn():
    """Every registered type is drawn, with its file fields, and has a valid example to mutate."""
    types = trade_types()
    assert set(types) >= {"hashprice_forward", "hashprice_cap", "hashprice_floor", "hashprice_collar",
                          "hashrate_future", "btc_option", "btc_future", "deliverable_forward"}
    assert all({"id", "type"} < set(fields) for fields in types.values())
    assert {t["type"] for t in base_trades()} == set(types)


def test_synthetic_history_is_valid(tmp_path):
    """The fuzz base inputs are valid: the mutations start from working files."""
    data, epochs = tmp_path / "h.csv", tmp_path / "e.csv"
    HISTORY.to_csv(data, index=False)
    EPOCHS.to_csv(epochs, index=False)
    res = run_main(["history", str(data), "--epochs", str(epochs), "--json"])
    assert res.code == 0, res.stderr + res.trace
    res = run_main(["calibrate", str(data), "--out", str(tmp_path / "m.toml"), "--json"])
    assert res.code == 0, res.stderr + res.trace


@pytest.fixture(scope="module", autouse=True)
def report_stats():
    yield
    if STATS["cases"]:
        print(f"\nfuzz: {STATS['cases']} cases in {STATS['seconds']:.1f} s; exit codes {STATS['exit']}; "
              f"commands {STATS['commands']}")


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, print_blob=True,
          suppress_health_check=list(HealthCheck))
@given(command=st.sampled_from([c for c, w in WEIGHTS.items() for _ in range(w)]),
       seed=st.integers(0, 2**64 - 1), clean=st.booleans())
def test_cli_fuzz(command, seed, clean):
    root = Path(tempfile.mkdtemp(prefix="hashprice-fuzz-"))
    try:
        b = Builder(random.Random(seed), root, clean)
        case = BUILDERS[command](b)
        before = snapshot(root)
        t0 = time.perf_counter()
        res = run_main([case.command, *case.args])
        STATS["seconds"] += time.perf_counter() - t0
        STATS["cases"] += 1
        STATS["exit"][res.code] = STATS["exit"].get(res.code, 0) + 1
        STATS["commands"][command] = STATS["commands"].get(command, 0) + 1
        if os.environ.get("HASHPRICE_FUZZ_VERBOSE"):
            print(res.code, case.command, res.stderr.strip()[:300])
        check(case, res, before, snapshot(root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
