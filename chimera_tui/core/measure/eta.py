"""How long a session has left, from the durations of the runs that finished (CLI and TUI share it).

A *position* is one planned run: warm-up k of K or measured run i of N (a cache-cohort pair or a
workflow's stages belong to one position). The estimate is the median duration of the finished
measured positions (of the warm-ups while none has finished: they include the model load) times
the positions still to come. No estimate before a position has finished.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from statistics import median


def remaining_positions(number: int, total: int, warmup: bool, measured_total: int) -> int:
    """The positions after the current one: warm-up `number` of `total` still has the rest of the
    warm-ups and every measured run to come; measured run `number` of `total` the rest of them."""
    left = max(0, total - number)
    return left + max(0, measured_total) if warmup else left


def estimate_remaining(
    measured_s: Sequence[float], warmup_s: Sequence[float], remaining: int
) -> float | None:
    """Seconds left: median finished duration × `remaining`; None when nothing has finished yet."""
    if remaining <= 0:
        return 0.0
    basis = [d for d in measured_s if d >= 0] or [d for d in warmup_s if d >= 0]
    if not basis:
        return None
    return median(basis) * remaining


def format_eta(seconds: float | None) -> str:
    """`ETA 1m05s`, `ETA 12s`, `ETA 2h03m`; "" when unknown."""
    if seconds is None:
        return ""
    s = round(seconds)
    if s < 60:
        return f"ETA {s}s"
    if s < 3600:
        return f"ETA {s // 60}m{s % 60:02d}s"
    return f"ETA {s // 3600}h{s % 3600 // 60:02d}m"


class EtaTracker:
    """Follows a session's ordinary calls and answers "how long is left" after each one finishes.

    Feed it every call's start (`started`) and end (`finished`, which returns the seconds left or
    None); a position's duration runs from its first call's start to its last call's end. `clock` is
    injectable (tests); the CLI and the TUI use the same tracker.
    """

    def __init__(self, measured_total: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.measured_total = measured_total
        self._clock = clock
        self._started: dict[tuple[bool, int], float] = {}
        self._took: dict[tuple[bool, int], float] = {}
        self._place: tuple[bool, int, int] | None = None

    def started(self, warmup: bool, number: int, total: int) -> None:
        self._place = (warmup, number, total)
        self._started.setdefault((warmup, number), self._clock())

    def finished(self) -> float | None:
        """Seconds left after the call that just ended (None before any position has finished)."""
        if self._place is None:
            return None
        warmup, number, total = self._place
        start = self._started.get((warmup, number))
        if start is not None:
            self._took[(warmup, number)] = self._clock() - start
        measured = [t for (w, _), t in self._took.items() if not w]
        warm = [t for (w, _), t in self._took.items() if w]
        return estimate_remaining(
            measured, warm, remaining_positions(number, total, warmup, self.measured_total)
        )
