"""Destructive keys ask first: the first press arms and says so, a second press of the same key
within the window confirms (leaving an editor with unsaved changes, cancelling or quitting a run)."""

from __future__ import annotations

import time

#: how long the first press stays armed, in seconds
WINDOW_S = 5.0


class SecondPress:
    """Tracks the armed action; `confirm(action)` is True only for the second press within WINDOW_S."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self._armed: str | None = None
        self._at = 0.0

    def confirm(self, action: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if self._armed == action and now - self._at <= self.window_s:
            self._armed = None
            return True
        self._armed, self._at = action, now
        return False

    def reset(self) -> None:
        self._armed = None
