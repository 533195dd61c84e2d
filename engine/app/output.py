"""Result files: tables as CSV, JSON or Parquet, and PNG plots, always written atomically.

:func:`check_output_path` runs before any work: the file can be created (its folder exists or
can be made, is writable, the name is not too long) and is not a directory. The CLI writes all
of a run's files together at the end (``curves.toml_io.staged_writes``).
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from curves.toml_io import InputError, check_input_file, os_reason, write_atomic

TABLE_SUFFIXES = (".csv", ".json", ".parquet")
_TEMP_AFFIXES = 24  # ".NAME.XXXXXXXX.tmp" and ".NAME.XXXXXXXXXXXX.bak" around the name
_PATH_MAX = 4096


def _exists(p: Path) -> bool:
    try:
        return os.path.lexists(p)
    except (OSError, ValueError):
        return False


def check_output_path(path, field: str, suffixes: tuple[str, ...] | None = None,
                      kind: str = "") -> Path:
    """Fail before any work if ``path`` cannot be written as a ``suffixes`` file."""
    text = str(path)
    if "\0" in text:
        raise InputError(field, "not a valid file name (NUL byte)")
    p = Path(path)
    if suffixes is not None and p.suffix.lower() not in suffixes:
        raise InputError(field, f"{kind or 'unsupported file type'} {p.suffix or '(none)'!r}; use "
                         + ", ".join(suffixes[:-1]) + (" or " if len(suffixes) > 1 else "") + suffixes[-1])
    if p.name in ("", ".", ".."):
        raise InputError(field, f"{text}: not a file name")
    # the nearest existing ancestor: where folders are created and the file goes
    anc = p.absolute().parent
    missing = []
    while not _exists(anc):
        missing.append(anc.name)
        anc = anc.parent
    try:
        name_max = os.pathconf(anc, "PC_NAME_MAX") if anc.is_dir() else 255
    except (OSError, ValueError):
        name_max = 255
    if len(os.fsencode(p.name)) + _TEMP_AFFIXES > name_max:
        raise InputError(field, f"{text}: file name too long (at most {name_max - _TEMP_AFFIXES} bytes)")
    for part in missing:
        if len(os.fsencode(part)) > name_max:
            raise InputError(field, f"{text}: folder name too long ({part[:20]}...)")
    if len(os.fsencode(str(p.absolute()))) + _TEMP_AFFIXES >= _PATH_MAX:
        raise InputError(field, f"{text}: path too long")
    if _exists(p):
        if p.is_dir():
            raise InputError(field, f"{text} is a directory")
        if p.exists() and not p.is_file():
            raise InputError(field, f"{text} is not a regular file")
    if not anc.is_dir():
        raise InputError(field, f"{text}: {anc} is a file, not a folder")
    try:  # can we create files (or folders) there? A probe says more than permission bits.
        fd, probe = tempfile.mkstemp(dir=anc, prefix=".hashprice-probe-", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = "does not accept new files" if exc.errno == 2 else os_reason(exc)
        raise InputError(field, f"{text}: cannot write in {anc} ({reason})") from None
    return p


def check_table_path(path, field: str = "out") -> Path:
    """Fail before any work if the suffix is not one we can write, or the file cannot be made."""
    return check_output_path(path, field, TABLE_SUFFIXES, "unsupported file type")


def check_png_path(path, field: str = "plot") -> Path:
    return check_output_path(path, field, (".png",), "plots are PNG files, got")


def check_input_path(path, field: str) -> Path:
    """An existing, readable regular file, or an InputError naming ``field`` and the file."""
    try:
        return check_input_file(path)
    except InputError as exc:
        raise InputError(field, f"{exc.field}: {exc.reason}") from None


def first_non_finite(doc, where: str = "") -> str | None:
    """The location (``months[2].hashprice_stderr``) of the first NaN or infinity in ``doc``."""
    if isinstance(doc, float):
        return None if math.isfinite(doc) else where or "value"
    if isinstance(doc, dict):
        for k, v in doc.items():
            hit = first_non_finite(v, f"{where}.{k}" if where else str(k))
            if hit:
                return hit
    if isinstance(doc, (list, tuple)):
        for i, v in enumerate(doc):
            hit = first_non_finite(v, f"{where}[{i}]")
            if hit:
                return hit
    return None


def json_text(doc: dict) -> str:
    """The JSON text of a result document; a non-finite number is an error naming its place."""
    bad = first_non_finite(doc)
    if bad is not None:
        raise InputError(bad, "the result is not a finite number; the inputs are outside what the "
                              "engine can compute")
    return json.dumps(doc, indent=2, default=str, allow_nan=False) + "\n"


def write_table(df: pd.DataFrame, path, document: dict | None = None) -> None:
    """CSV or Parquet from ``df``; JSON from ``document`` when given, else the records of ``df``."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError("out", f"unsupported file type {p.suffix or '(none)'!r}; use .csv, .json or .parquet")
    numeric = df.select_dtypes(include="number")
    if numeric.size and np.isinf(numeric.to_numpy(dtype=float)).any():
        col = next(c for c in numeric.columns if np.isinf(numeric[c].to_numpy(dtype=float)).any())
        raise InputError(str(col), "the result is infinite; the inputs are outside what the engine can compute")
    if suffix == ".csv":
        data = df.to_csv(index=False).encode()
    elif suffix == ".parquet":
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        data = buf.getvalue()
    else:
        if document is None:
            document = json.loads(df.to_json(orient="records", date_format="iso"))
        data = json_text(document).encode()
    write_atomic(p, data)


def save_figure(fig, path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    write_atomic(Path(path), buf.getvalue())
