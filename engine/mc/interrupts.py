"""Ctrl-C and SIGTERM: a clean stop at a safe point.

A signal that arrives while compiled (Numba) code runs cannot raise there: Python's handler
would run inside the call and leave ``SystemError: ... returned a result with an exception
set``. :class:`DeferredSignals` swaps in handlers that only record the signal; the caller checks
between pieces of work (the simulation between chunks) and the signal is then delivered as the
previous handler would have: KeyboardInterrupt for Ctrl-C, :class:`Terminated` for SIGTERM
under the CLI.
"""

from __future__ import annotations

import os
import signal
import threading

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(SystemExit):
    """SIGTERM under the CLI: unwinds like Ctrl-C (cleanup runs), exit status 128 + 15."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(128 + signum)


def raise_terminated(signum, _frame=None):
    """A SIGTERM handler that raises :class:`Terminated` in the main thread."""
    raise Terminated(signum)


def _deliver(signum: int, previous) -> None:
    if callable(previous):
        previous(signum, None)
        return
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    if previous == signal.SIG_DFL:  # the default action: end the process by the signal
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    raise Terminated(signum)


class DeferredSignals:
    """From creation until :meth:`restore`, SIGINT/SIGTERM are recorded, not raised (main thread
    only); :meth:`check` delivers a recorded signal as the previous handler would have."""

    def __init__(self):
        self.pending: list[int] = []
        self.previous = {}
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in _SIGNALS:
            prev = signal.getsignal(sig)
            if prev in (signal.SIG_IGN, None):
                continue
            self.previous[sig] = prev
            signal.signal(sig, self._record)

    def _record(self, signum, _frame) -> None:
        self.pending.append(signum)

    def check(self) -> None:
        if self.pending:
            sig = self.pending[0]
            self.pending.clear()
            _deliver(sig, self.previous.get(sig, signal.SIG_DFL))

    def restore(self) -> None:
        for sig, prev in self.previous.items():
            if signal.getsignal(sig) == self._record:
                signal.signal(sig, prev)
