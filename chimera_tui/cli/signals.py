"""SIGINT, SIGTERM and SIGHUP during a benchmark: each cancels it the same way.

The runner records the run in flight as cancelled (with its partial tokens) and closes the session;
the command then prints one line and exits 128 + the signal number (130, 143, 129), as a shell does
for a process killed by it. A closed terminal (SIGHUP) may take stderr with it: printing then fails,
quietly.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class StopSignals:
    """While entered, each stop signal calls `cancel` (again on a repeat); `received` is the first."""

    def __init__(self, cancel: Callable[[], Any]) -> None:
        self._cancel = cancel
        self._previous: dict[int, Any] = {}
        self.received: signal.Signals | None = None

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signal.Signals(signum)
        self._cancel()

    def __enter__(self) -> StopSignals:
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)

    @property
    def exit_code(self) -> int | None:
        return None if self.received is None else 128 + int(self.received)

    def report(self, session_path: object) -> None:
        """The one line: which signal, and where the (cancelled) session is."""
        if self.received is None:
            return
        with contextlib.suppress(OSError, ValueError):  # the terminal went away with SIGHUP
            print(
                f"chimera-tui: cancelled by {self.received.name}; the run in flight is recorded as "
                f"cancelled in {session_path}",
                file=sys.stderr,
                flush=True,
            )


class AppStopSignals:
    """While entered, SIGTERM and SIGHUP (the terminal went away) ask a Textual app to exit, as ctrl+q
    does: a live screen then cancels its runner, which records the run in flight as cancelled and
    closes the session. (SIGINT is a key in the TUI: ctrl+c.) `received` is the first signal."""

    SIGNALS = tuple(s for s in STOP_SIGNALS if s != signal.SIGINT)

    def __init__(self, app: Any) -> None:
        self._app = app
        self._previous: dict[int, Any] = {}
        self.received: signal.Signals | None = None

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signal.Signals(signum)
        # a signal handler runs between two bytecodes of the app's loop: hand the exit to the loop
        threading.Thread(target=self._exit, name="stop-signal", daemon=True).start()

    def _exit(self) -> None:
        with contextlib.suppress(Exception):  # the app may be gone already
            self._app.call_from_thread(self._app.exit)

    def __enter__(self) -> AppStopSignals:
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)

    @property
    def exit_code(self) -> int:
        return 0 if self.received is None else 128 + int(self.received)
