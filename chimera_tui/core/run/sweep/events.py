"""The events a sweep emits besides its sessions' runner events (core/run/events.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chimera_tui.core.run.events import RunEvent
from chimera_tui.core.run.sweep.record import SweepRecord


@dataclass(frozen=True, slots=True)
class SweepStarted:
    sweep_id: str
    configs: list[str]
    runs_per_config: int
    path: Path | None = None
    order: str = "sequential"
    #: configurations still to run (fewer than len(configs) when resuming)
    pending: int = 0


@dataclass(frozen=True, slots=True)
class ConfigStarted:
    """A configuration's session is about to start (one per visit in interleaved order)."""

    index: int
    """0-based position among this run's sessions."""
    total: int
    key: str
    options: dict[str, Any]
    visit: int = 1
    visits: int = 1


@dataclass(frozen=True, slots=True)
class ConfigFinished:
    index: int
    key: str
    session_id: str | None
    status: str
    """The configuration's status after this session: pending, partial, done or failed."""
    reload_load_ms: float | None = None


@dataclass(frozen=True, slots=True)
class SweepFinished:
    record: SweepRecord


SweepEvent = RunEvent | SweepStarted | ConfigStarted | ConfigFinished | SweepFinished
"""Everything a SweepRunner emits (its sessions' runner events included)."""
