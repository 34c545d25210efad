"""NVML clock-event (throttle) reasons in words, and the thermal gate between configurations.

The bits are NVML's `nvmlClocksEventReason*` values. Only the reasons that lower the clocks below
what the load asks for count as throttling: idle, application clocks, sync boost and display clocks
are not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

#: bit → (word, throttling?)
REASONS: dict[int, tuple[str, bool]] = {
    0x1: ("idle", False),
    0x2: ("application clocks", False),
    0x4: ("power cap", True),
    0x8: ("hardware slowdown", True),
    0x10: ("sync boost", False),
    0x20: ("thermal (software)", True),
    0x40: ("thermal (hardware)", True),
    0x80: ("power brake", True),
    0x100: ("display clocks", False),
}
THROTTLE_MASK = sum(bit for bit, (_, throttling) in REASONS.items() if throttling)


def reason_words(bits: int | None, throttling_only: bool = False) -> list[str]:
    """The reasons set in `bits`, in bit order ([] for None)."""
    if bits is None:
        return []
    return [word for bit, (word, thr) in REASONS.items() if bits & bit and (thr or not throttling_only)]


def throttled(bits: int | None) -> bool:
    return bits is not None and bool(bits & THROTTLE_MASK)


def throttle_text(bits: int | None) -> str | None:
    """`throttled (thermal (software), power cap)`, or None when the clocks were not held down."""
    words = reason_words(bits, throttling_only=True)
    return f"throttled ({', '.join(words)})" if words else None


def coolest_wait(
    read_temps: Callable[[], Iterable[float | None]], below_c: float
) -> tuple[bool, float | None]:
    """One look for the thermal gate: (every GPU below `below_c`, the hottest reading)."""
    temps = [t for t in read_temps() if t is not None]
    if not temps:
        return True, None  # nothing to wait for: no reading (the gate says so once)
    hottest = max(temps)
    return hottest < below_c, hottest
