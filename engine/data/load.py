"""Load and validate daily Bitcoin network history and the difficulty-epoch table.

The daily schema (one row per UTC day, MTP-assigned blocks, see the data README):

=============  ========  ==========================================
column         unit      Coin Metrics name
=============  ========  ==========================================
date           UTC day   ``time`` (or ``date``)
price_usd      USD/BTC   ``PriceUSD``
hashrate_ths   TH/s      ``HashRate``
difficulty     -         ``DiffMean``
fees_btc       BTC/day   ``FeeTotNtv``
subsidy_btc    BTC/day   ``IssTotNtv``
blocks         count     ``BlkCnt``
height_end     height    optional; last block height of the day
=============  ========  ==========================================

Every problem raises :class:`HistoryError` naming the line, date and column. Missing days
are not errors: they are listed in ``frame.attrs["gaps"]`` (see :func:`find_gaps`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = (
    "price_usd", "hashrate_ths", "difficulty", "fees_btc", "subsidy_btc", "blocks",
)
COINMETRICS_COLUMNS = {
    "time": "date",
    "PriceUSD": "price_usd",
    "HashRate": "hashrate_ths",
    "DiffMean": "difficulty",
    "FeeTotNtv": "fees_btc",
    "IssTotNtv": "subsidy_btc",
    "BlkCnt": "blocks",
}
EPOCH_COLUMNS = ("height", "date", "timestamp_utc", "difficulty", "change_pct", "bits")
RETARGET_BLOCKS = 2016
_POSITIVE = ("price_usd", "hashrate_ths", "difficulty", "subsidy_btc", "blocks")
_WHOLE = ("blocks", "height_end")
_HEADER_LINES = 1
MAX_VALUE = 1e30  # far above any real figure; products of a few stay far from overflow
_BITS_ABS_TOL = 5e-4  # the epoch file rounds difficulty to 3 decimals


class HistoryError(ValueError):
    """A history file failed validation; ``line``, ``date`` and ``column`` say where."""

    def __init__(self, reason: str, *, line=None, date=None, column=None):
        self.line, self.date, self.column, self.reason = line, date, column, reason
        where = []
        if line is not None:
            where.append(f"line {line}")
        if date is not None:
            where.append(f"date {date}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {reason}" if where else reason)


def _at(lines: np.ndarray, days, i: int) -> dict:
    """Where row ``i`` is: its file line and, once dates are parsed, its date."""
    date = None if days is None else days[i].date().isoformat()
    return {"line": int(lines[i]), "date": date}


def _file_lines(n: int) -> np.ndarray:
    return np.arange(n) + 1 + _HEADER_LINES  # data row i sits on line i + 2


def _parse_days(raw: pd.Series, column: str, lines: np.ndarray) -> pd.DatetimeIndex:
    """Parse ISO dates or midnight UTC timestamps to naive UTC days."""
    text = raw.astype("string").str.strip()
    parsed = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    for i in np.flatnonzero(parsed.isna().to_numpy()):
        raise HistoryError(f"unparsable date {raw.iloc[i]!r}", **_at(lines, None, i),
                           column=column)
    days = pd.DatetimeIndex(parsed).tz_localize(None).as_unit("ns")
    for i in np.flatnonzero(days != days.normalize()):
        raise HistoryError(f"{raw.iloc[i]!r} is not midnight UTC", **_at(lines, None, i),
                           column=column)
    return days


def _numeric(df: pd.DataFrame, column: str, lines: np.ndarray, days) -> np.ndarray:
    """Column as float64, raising on text that is not a number."""
    raw = df[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    for i in np.flatnonzero(np.isnan(values) & raw.notna().to_numpy()):
        raise HistoryError(f"not a number: {raw.iloc[i]!r}", **_at(lines, days, i),
                           column=column)
    return values


def _check_sorted_unique(days: pd.DatetimeIndex, lines: np.ndarray) -> None:
    step = np.diff(days.asi8)
    for i in np.flatnonzero(step == 0):
        raise HistoryError("duplicate date", **_at(lines, days, i + 1), column="date")
    for i in np.flatnonzero(step < 0):
        raise HistoryError(f"dates not sorted: comes after {days[i].date()}",
                           **_at(lines, days, i + 1), column="date")


def _check_values(values: np.ndarray, col: str, lines: np.ndarray, days) -> None:
    bad = ~np.isfinite(values) | (np.abs(values) >= MAX_VALUE)
    if col in _POSITIVE:
        bad |= values <= 0
        rule = f"must be finite and > 0 (and below {MAX_VALUE:g})"
    else:
        bad |= values < 0
        rule = f"must be finite and >= 0 (and below {MAX_VALUE:g})"
    if col in _WHOLE:
        bad |= np.isfinite(values) & ((values != np.round(values)) | (values >= 2.0**53))
        rule += " and a whole number below 2^53"
    for i in np.flatnonzero(bad):
        raise HistoryError(f"bad value {float(values[i])!r}: {rule}", **_at(lines, days, i),
                           column=col)


def _check_heights(out: pd.DataFrame, lines: np.ndarray) -> None:
    """On consecutive days, height_end must advance by exactly that day's block count."""
    if "height_end" not in out.columns:
        return
    next_day = (out.index[1:] - out.index[:-1]) == pd.Timedelta(days=1)
    step_height = np.diff(out["height_end"].to_numpy())
    blocks = out["blocks"].to_numpy()[1:]
    for i in np.flatnonzero(next_day & (step_height != blocks)):
        raise HistoryError(f"height_end advances by {step_height[i]} but blocks is {blocks[i]}",
                           **_at(lines, out.index, i + 1), column="height_end")


def _standardise_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Map Coin Metrics names to the project schema when the project name is absent."""
    mapping = {cm: ours for cm, ours in COINMETRICS_COLUMNS.items()
               if cm in df.columns and ours not in df.columns}
    return df.rename(columns=mapping)


def find_gaps(df: pd.DataFrame) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Missing-day ranges ``(first_missing, last_missing)``, inclusive, of a daily frame.

    Uses the ``date`` column when there is one, else the DatetimeIndex.
    """
    days = pd.DatetimeIndex(df["date"] if "date" in df.columns else df.index).normalize()
    one_day = pd.Timedelta(days=1)
    return [(prev + one_day, nxt - one_day)
            for prev, nxt in zip(days[:-1], days[1:], strict=True) if nxt - prev > one_day]


def load_network_history(path_or_buffer, *, start=None, end=None) -> pd.DataFrame:
    """Load a daily network history CSV (project or Coin Metrics columns) and validate it.

    Returns a frame indexed by ``date`` (naive UTC days) with the project columns, float64
    except ``blocks``/``height_end`` (int64); extra columns such as ``source`` are kept.
    ``start``/``end`` (inclusive) trim the rows before the value checks, e.g. to skip the
    early rows of a raw Coin Metrics file that have no price. ``attrs["gaps"]`` lists the
    missing days as :func:`find_gaps` does.
    """
    return network_history_frame(pd.read_csv(path_or_buffer), start=start, end=end)


def network_history_frame(df: pd.DataFrame, *, start=None, end=None, lines=None) -> pd.DataFrame:
    """:func:`load_network_history` on a frame already read; ``lines`` gives each row's line
    in its file (default: row ``i`` on line ``i + 2``), for the errors."""
    df = _standardise_columns(df)
    missing = [c for c in ("date", *REQUIRED_COLUMNS) if c not in df.columns]
    if missing:
        raise HistoryError(f"missing required column(s) {missing}; found {list(df.columns)}")
    lines = _file_lines(len(df)) if lines is None else np.asarray(lines)
    days = _parse_days(df["date"], "date", lines)
    keep = np.ones(len(df), dtype=bool)
    if start is not None:
        keep &= days >= pd.Timestamp(start)
    if end is not None:
        keep &= days <= pd.Timestamp(end)
    if not keep.any():
        raise HistoryError("no rows in the file (or in the requested date range)")
    df, days, lines = df.loc[keep].reset_index(drop=True), days[keep], lines[keep]
    _check_sorted_unique(days, lines)
    out = pd.DataFrame(index=pd.DatetimeIndex(days, name="date"))
    for col in (*REQUIRED_COLUMNS, "height_end"):
        if col in df.columns:
            values = _numeric(df, col, lines, days)
            _check_values(values, col, lines, days)
            out[col] = values.astype(np.int64) if col in _WHOLE else values
    _check_heights(out, lines)
    for col in df.columns.difference([*out.columns, "date"], sort=False):
        out[col] = df[col].to_numpy()
    out.attrs["gaps"] = find_gaps(out)
    return out


def load_difficulty_epochs(path_or_buffer) -> pd.DataFrame:
    """Load ``btc_difficulty_epochs.csv`` and validate it.

    Checks: heights strictly increasing multiples of 2016, difficulty finite and > 0, dates
    parse and never decrease, ``timestamp_utc`` (empty where the date is estimated) falls on
    ``date``, and ``bits`` decodes to ``difficulty`` (0xffff * 2^208 / target) to 1e-12
    relative plus 5e-4 absolute (the file rounds difficulty to 3 decimals). Adds
    ``date_estimated`` (True where ``timestamp_utc`` is empty).
    """
    text_cols = {"bits": str, "timestamp_utc": str, "date": str, "date_source": str}
    df = pd.read_csv(path_or_buffer, dtype=text_cols)
    missing = [c for c in EPOCH_COLUMNS if c not in df.columns]
    if missing:
        raise HistoryError(f"missing required column(s) {missing}; found {list(df.columns)}")
    lines = _file_lines(len(df))
    days = _parse_days(df["date"], "date", lines)
    heights = _numeric(df, "height", lines, days)
    for i in np.flatnonzero(~np.isfinite(heights) | (heights % RETARGET_BLOCKS != 0)):
        raise HistoryError(f"height {float(heights[i])!r} is not a multiple of {RETARGET_BLOCKS}",
                           **_at(lines, days, i), column="height")
    for i in np.flatnonzero(np.diff(heights) <= 0):
        raise HistoryError("heights not strictly increasing", **_at(lines, days, i + 1),
                           column="height")
    for i in np.flatnonzero(np.diff(days.asi8) < 0):
        raise HistoryError("dates decrease", **_at(lines, days, i + 1), column="date")
    difficulty = _numeric(df, "difficulty", lines, days)
    _check_values(difficulty, "difficulty", lines, days)
    _check_bits(df["bits"], difficulty, lines, days)
    out = pd.DataFrame({
        "height": heights.astype(np.int64),
        "date": days,
        "timestamp_utc": _epoch_timestamps(df["timestamp_utc"], lines, days),
        "difficulty": difficulty,
        "change_pct": _numeric(df, "change_pct", lines, days),
        "bits": df["bits"].to_numpy(),
    })
    if "date_source" in df.columns:
        out["date_source"] = df["date_source"].to_numpy()
    out["date_estimated"] = out["timestamp_utc"].isna().to_numpy()
    return out


def _epoch_timestamps(raw: pd.Series, lines: np.ndarray, days) -> pd.Series:
    text = raw.astype("string").str.strip().replace("", pd.NA)
    stamps = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601").dt.as_unit("ns")
    given = text.notna().to_numpy()
    for i in np.flatnonzero(given & stamps.isna().to_numpy()):
        raise HistoryError(f"unparsable timestamp {raw.iloc[i]!r}", **_at(lines, days, i),
                           column="timestamp_utc")
    stamp_days = pd.DatetimeIndex(stamps).tz_localize(None).normalize()
    for i in np.flatnonzero(given & (stamp_days != days)):
        raise HistoryError(f"timestamp {raw.iloc[i]!r} is not on the row's date",
                           **_at(lines, days, i), column="timestamp_utc")
    return stamps


def difficulty_from_bits(bits: str) -> float:
    """Difficulty of a compact nBits hex string: 0xffff * 2^208 / target."""
    compact = int(bits, 16)
    exponent, mantissa = compact >> 24, compact & 0x007FFFFF
    shift = 8 * (exponent - 3)
    target = mantissa << shift if shift >= 0 else mantissa >> -shift
    return (0xFFFF << 208) / target


def _check_bits(bits: pd.Series, difficulty: np.ndarray, lines: np.ndarray, days) -> None:
    for i, text in enumerate(bits):
        try:
            implied = difficulty_from_bits(str(text))
        except (ValueError, ZeroDivisionError):
            raise HistoryError(f"bad nBits {text!r}", **_at(lines, days, i),
                               column="bits") from None
        if abs(implied - difficulty[i]) > _BITS_ABS_TOL + 1e-12 * implied:
            raise HistoryError(
                f"nBits {text} implies difficulty {implied!r}, file says {float(difficulty[i])!r}",
                **_at(lines, days, i), column="bits",
            )
