"""Run the ``hashprice`` entry point in-process, as a user's shell would see it."""

from __future__ import annotations

import traceback
import warnings
from dataclasses import dataclass

from typer.testing import CliRunner

from engine.app import cli


@dataclass
class Outcome:
    code: int | None
    stdout: str
    stderr: str
    exception: BaseException | None
    trace: str


def run_main(argv) -> Outcome:
    """``engine.app.cli.main(argv)`` with captured stdout/stderr. An exception other than SystemExit
    is a crash (the user would see a traceback): it is kept in ``exception``/``trace``. Warnings a
    user would see on stderr (the kinds Python shows by default) are appended to ``stderr``."""
    runner = CliRunner()
    code, exc, trace = None, None, ""
    with runner.isolation() as (out, err, _), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cli.main([str(a) for a in argv])
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException as e:  # noqa: BLE001 - anything else is a crash
            exc, trace = e, traceback.format_exc()
        stdout = out.getvalue().decode("utf-8", "replace")
        stderr = err.getvalue().decode("utf-8", "replace")
    shown = [w for w in caught if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning,
                                                              ImportWarning, ResourceWarning))]
    stderr += "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in shown)
    return Outcome(code, stdout, stderr, exc, trace)
