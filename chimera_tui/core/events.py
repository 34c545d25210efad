"""Typed events the runner emits. The CLI prints them; the TUI buffers and renders them.

The runner calls its `emit` callback from the thread it runs in. A consumer must not block in it:
the TUI appends to a buffer that a bounded-rate UI timer drains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chimera_tui.core.sessions import RunRecord, Session
from chimera_tui.core.stream import TokenEvent


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


@dataclass(frozen=True, slots=True)
class TokenBatch:
    """The tokens of one read, stamped by the reader."""

    index: int
    tokens: list[TokenEvent]
    t_send_ns: int
    """When this call's request was sent (same clock as the token stamps)."""


@dataclass(frozen=True, slots=True)
class RunFinished:
    record: RunRecord


@dataclass(frozen=True, slots=True)
class RunFailed:
    record: RunRecord


@dataclass(frozen=True, slots=True)
class SessionFinished:
    session: Session


RunEvent = SessionStarted | PhaseChanged | RunStarted | TokenBatch | RunFinished | RunFailed | SessionFinished
