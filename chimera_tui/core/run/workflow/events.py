"""The events a workflow run emits besides the runner's (core/run/events.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chimera_tui.core.run.events import RunEvent


@dataclass(frozen=True, slots=True)
class WorkflowRunStarted:
    """A workflow run (ingest → analysis → report) starts; ``run`` is 1-based over all runs."""

    run: int
    number: int
    total: int
    warmup: bool


@dataclass(frozen=True, slots=True)
class IngestDone:
    run: int
    files: int
    skipped: int
    total_bytes: int
    ingest_ms: float


@dataclass(frozen=True, slots=True)
class WorkflowRunFinished:
    """A workflow run's figures (the entry written to workflow.json)."""

    run: int
    metrics: dict[str, Any]


WorkflowEvent = RunEvent | WorkflowRunStarted | IngestDone | WorkflowRunFinished
"""Everything a WorkflowRunner emits."""
