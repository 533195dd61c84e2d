"""Result files: tables as CSV, JSON or Parquet, and PNG plots, always written atomically."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

from curves.toml_io import InputError, write_atomic

TABLE_SUFFIXES = (".csv", ".json", ".parquet")


def check_table_path(path, field: str = "out") -> Path:
    """Fail before any work if the suffix is not one we can write."""
    p = Path(path)
    if p.suffix.lower() not in TABLE_SUFFIXES:
        raise InputError(field, f"unsupported file type {p.suffix or '(none)'!r}; use .csv, .json or .parquet")
    if p.exists() and p.is_dir():
        raise InputError(field, f"{p} is a directory")
    return p


def check_png_path(path, field: str = "plot") -> Path:
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise InputError(field, f"plots are PNG files, got {p.suffix or '(none)'!r}")
    return p


def write_table(df: pd.DataFrame, path, document: dict | None = None) -> None:
    """CSV or Parquet from ``df``; JSON from ``document`` when given, else the records of ``df``."""
    p = check_table_path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        data = df.to_csv(index=False).encode()
    elif suffix == ".parquet":
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        data = buf.getvalue()
    else:
        doc = document if document is not None else json.loads(df.to_json(orient="records", date_format="iso"))
        data = (json.dumps(doc, indent=2, default=str, allow_nan=False) + "\n").encode()
    write_atomic(p, data)


def save_figure(fig, path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    write_atomic(check_png_path(path), buf.getvalue())
