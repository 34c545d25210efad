"""Typed events the runner emits. The CLI prints them; the TUI buffers and renders them.

The runner calls its `emit` callback from the thread it runs in. A consumer must not block in it:
the TUI appends to a buffer that a bounded-rate UI timer drains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chimera_tui.core.backends.stream import TokenEvent
from chimera_tui.core.store.sessions import RunRecord, Session


@dataclass(frozen=True, slots=True)
class SessionStarted:
    session_id: str
    path: Path
    model: str
    profile: str
    endpoint: str
    server_version: str | None
    runs: int
    warmup: int


@dataclass(frozen=True, slots=True)
class PhaseChanged:
    """Something the user should see that is not a run: preloading, unloading, waiting for /api/ps."""

    message: str


@dataclass(frozen=True, slots=True)
class RunStarted:
    index: int
    """0-based position among all calls (warm-up first)."""
    number: int
    """1-based number among calls of its kind (warm-up k of K, or run i of N)."""
    total: int
    warmup: bool
    t_send_ns: int | None = None
    agent: int = 0
    """Which agent makes the call (multi-agent modes)."""
    solo: bool = False
    """A solo-baseline call: the agent runs alone (before every measured round)."""


@dataclass(frozen=True, slots=True)
class TokenBatch:
    """The tokens of one read, stamped by the reader."""

    index: int
    tokens: list[TokenEvent]
    t_send_ns: int
    """When this call's request was sent (same clock as the token stamps)."""
    agent: int = 0


@dataclass(frozen=True, slots=True)
class RunFinished:
    record: RunRecord


@dataclass(frozen=True, slots=True)
class RunFailed:
    record: RunRecord


@dataclass(frozen=True, slots=True)
class RoundStarted:
    """A concurrent round (multi-agent modes): every agent's request starts at once."""

    round: int
    number: int
    total: int
    warmup: bool


@dataclass(frozen=True, slots=True)
class RoundFinished:
    """A concurrent round's figures (RoundMetrics.to_dict(): efficiency, speedup, makespan...)."""

    round: int
    metrics: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SessionFinished:
    session: Session


RunEvent = (
    SessionStarted
    | PhaseChanged
    | RunStarted
    | TokenBatch
    | RunFinished
    | RunFailed
    | RoundStarted
    | RoundFinished
    | SessionFinished
)
