"""TOML reading and atomic writing shared by the market, model and portfolio files.

Input files are checked before they are read (exists, a regular file, readable, UTF-8); every
problem is an :class:`InputError` whose field is the file's path. Output files are written
through :func:`write_atomic`: to a temporary file beside the target, then renamed. Inside
:func:`staged_writes` the writes are only collected, and :meth:`StagedWrites.commit` writes
them all at once: either every file appears or none does.
"""

import contextvars
import errno
import os
import secrets
import shutil
import stat
import sys
import tempfile
from contextlib import contextmanager
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


def os_reason(exc: OSError) -> str:
    """A short reason for an OSError, without the path (the caller names the file)."""
    reasons = {errno.ENOENT: "file not found", errno.EISDIR: "is a directory",
               errno.ENOTDIR: "a parent of the path is not a directory",
               errno.EACCES: "permission denied", errno.EPERM: "permission denied",
               errno.ENAMETOOLONG: "file name too long", errno.ELOOP: "too many symbolic links",
               errno.EROFS: "read-only file system", errno.ENOSPC: "no space left on device",
               errno.EFBIG: "file too large", errno.EDQUOT: "disk quota exceeded"}
    return reasons.get(exc.errno, exc.strerror or type(exc).__name__)


def check_input_file(path) -> Path:
    """``path`` if it is an existing, readable regular file, else an InputError naming it."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise InputError(str(path), os_reason(exc)) from None
    except ValueError:  # e.g. an embedded NUL byte
        raise InputError(str(path).replace("\0", "\\0"), "not a valid file name") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(str(path), "is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(str(path), "not a regular file")
    try:
        with p.open("rb"):
            pass
    except OSError as exc:
        raise InputError(str(path), f"not readable ({os_reason(exc)})") from None
    return p


def read_text(path) -> str:
    """The UTF-8 text of an input file; errors name the file."""
    p = check_input_file(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(str(path), f"not readable ({os_reason(exc)})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})") from None


def read_toml(path) -> dict:
    text = read_text(path)
    if not text.strip():
        raise InputError(str(path), "empty file")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(str(path), f"invalid TOML ({' '.join(str(exc).split())})") from None
    except RecursionError:
        raise InputError(str(path), "invalid TOML (nested too deeply)") from None


# ---- writing ------------------------------------------------------------------------------
_STAGE = contextvars.ContextVar("hashprice_staged_writes", default=None)


def write_atomic(path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename: never a half-written file.

    Inside :func:`staged_writes` the write is only recorded, for the stage's commit.
    """
    stage = _STAGE.get()
    if stage is not None:
        stage.add(path, data)
        return
    commit_files([(Path(path), bytes(data))])


def write_toml(path, table: dict) -> None:
    write_atomic(path, tomli_w.dumps(table).encode())


def commit_files(items, finish=None) -> None:
    """Write every ``(path, bytes)`` item, then call ``finish()``; all or nothing.

    Missing parent folders are created. Each file is first written to a temporary file in its
    folder; only when all are complete are they renamed into place, an existing file being kept
    (hard link) until the end. If anything fails, or is interrupted, before ``finish`` returns,
    the previous files are restored, new files, temporaries and created folders are removed,
    and the exception propagates.
    """
    items = [(Path(p), bytes(d)) for p, d in items]
    created: list[Path] = []
    temps: list[Path] = []
    done: list[tuple[Path, Path | None]] = []
    umask = os.umask(0)
    os.umask(umask)
    try:
        for path, data in items:
            created.extend(_make_parents(path.parent))
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:200]}.", suffix=".tmp")
            temps.append(Path(tmp))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o666 & ~umask)
        for (path, _), tmp in zip(items, temps):
            backup = _backup(path)
            if backup is not None:
                temps.append(backup)
            os.replace(tmp, path)
            done.append((path, backup))
        if finish is not None:
            finish()
    except BaseException:
        for path, backup in reversed(done):
            try:
                if backup is not None:
                    os.replace(backup, path)
                else:
                    path.unlink(missing_ok=True)
            except OSError:
                pass
        _cleanup(temps, created)
        raise
    _cleanup(temps, [])


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and missing ancestors; the folders made, deepest last."""
    missing = []
    p = folder
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    made = []
    for d in reversed(missing):
        d.mkdir()
        made.append(d)
    return made


def _backup(path: Path) -> Path | None:
    """A hard link (or copy) of an existing target, so a failed commit can put it back."""
    if not path.is_file():
        return None
    for _ in range(100):
        backup = path.parent / f".{path.name[:200]}.{secrets.token_hex(6)}.bak"
        try:
            os.link(path, backup)
            return backup
        except FileExistsError:
            continue
        except OSError:  # no hard links here: a copy
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:200]}.", suffix=".bak")
            os.close(fd)
            shutil.copy2(path, tmp)
            return Path(tmp)
    raise FileExistsError(errno.EEXIST, "no free backup name", str(path))


def _cleanup(temps, created) -> None:
    for t in temps:
        try:
            Path(t).unlink(missing_ok=True)
        except OSError:
            pass
    for d in reversed(created):
        try:
            d.rmdir()
        except OSError:
            pass


class StagedWrites:
    """Files written (by :func:`write_atomic`) inside :func:`staged_writes`, and what to print."""

    def __init__(self):
        self.files: dict[Path, bytes] = {}
        self.after: list = []

    def add(self, path, data: bytes) -> None:
        self.files[Path(path)] = bytes(data)

    def defer(self, fn, *args, **kwargs) -> None:
        """Run ``fn`` (e.g. print to stdout) as part of the commit, after the files."""
        self.after.append((fn, args, kwargs))

    def commit(self) -> None:
        files, after = list(self.files.items()), list(self.after)
        self.files.clear()
        self.after.clear()

        def finish():
            for fn, args, kwargs in after:
                fn(*args, **kwargs)

        commit_files(files, finish)


@contextmanager
def staged_writes():
    """Collect the writes of a block; nothing reaches the disk until ``commit()``."""
    stage = StagedWrites()
    token = _STAGE.set(stage)
    try:
        yield stage
    finally:
        _STAGE.reset(token)


def current_stage() -> "StagedWrites | None":
    return _STAGE.get()
