"""Garbage collection and thread switching while a live screen streams (the TUI process only).

The reader runs in a thread of the TUI's process and stamps each read when that thread holds the
GIL again. Two things held the GIL for long stretches while the UI rendered:

- CPython's automatic collection. Textual's rendering leaves thousands of small cyclic objects a
  second (strips that cache themselves), so the oldest generation, i.e. the whole heap, was scanned
  about once a second: 15-150 ms each time, in whichever thread allocated, GIL held throughout.
  Every token that arrived meanwhile was stamped that much late (p99 84 ms at 2,000 tok/s).
- The interpreter's 5 ms switch interval: a reader woken by the socket waited up to 5 ms (and
  again after each hand-back) for a UI thread busy in Python code.

While a live screen is up (`LiveScreenBase`, under the single, multi-agent and sweep screens:
`start` on mount, `stop` on unmount; nested screens are counted), the screen's 30 Hz flush drives
collection instead: what is alive at the start is collected once and frozen (never scanned again),
automatic collection is off, each flush collects the youngest generation, every 10th flush the
middle one (about 1-3 ms, on the UI thread, between frames), and every 10 s the oldest, which then
holds only what was kept since the start. The switch interval is 0.2 ms (`SWITCH_INTERVAL_S`).
`stop` restores both. Headless runs (`chimera-tui bench`) need none of this: the reader has the
process to itself.

Off unless `enable()` was called (`chimera_tui.cli.launch` does; tests keep CPython's defaults).
"""

from __future__ import annotations

import gc
import sys

#: flushes between collections of the middle and of the oldest generation (flush: 30 Hz)
MIDDLE_EVERY = 10
OLDEST_EVERY = 300
SWITCH_INTERVAL_S = 0.0002

_enabled = False
_depth = 0
_ticks = 0
_saved_switch: float | None = None


def enable() -> None:
    """Let live screens take over collection (the real TUI; not tests)."""
    global _enabled
    _enabled = True


def start() -> None:
    global _depth, _ticks, _saved_switch
    if not _enabled:
        return
    _depth += 1
    if _depth > 1:
        return
    _ticks = 0
    _saved_switch = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    gc.collect()
    gc.freeze()
    gc.disable()


def tick() -> None:
    """One flush: collect the youngest generation, and now and then an older one."""
    global _ticks
    if _depth <= 0:
        return
    _ticks += 1
    if _ticks % OLDEST_EVERY == 0:
        gc.collect(2)
    elif _ticks % MIDDLE_EVERY == 0:
        gc.collect(1)
    else:
        gc.collect(0)


def stop() -> None:
    global _depth
    if _depth <= 0:
        return
    _depth -= 1
    if _depth:
        return
    gc.unfreeze()
    gc.enable()
    if _saved_switch is not None:
        sys.setswitchinterval(_saved_switch)
