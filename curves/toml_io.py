"""TOML reading and atomic writing shared by the market, model and portfolio files."""

import os
import sys
import tempfile
from pathlib import Path

import tomli_w

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class InputError(ValueError):
    """Bad input: the message names the field and the reason."""

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


def read_toml(path) -> dict:
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise InputError(str(path), "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(str(path), f"invalid TOML ({exc})") from None


def write_atomic(path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_toml(path, table: dict) -> None:
    write_atomic(path, tomli_w.dumps(table).encode())
