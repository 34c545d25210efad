"""How long a session has left, from the durations of the runs that finished (CLI and TUI share it).

A *position* is one planned run: warm-up k of K or measured run i of N (a cache-cohort pair or a
workflow's stages belong to one position). The estimate is the median duration of the finished
measured positions (of the warm-ups while none has finished: they include the model load) times
the positions still to come. No estimate before a position has finished.
"""

from __future__ import annotations

from collections.abc import Sequence
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
