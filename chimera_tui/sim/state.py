"""Loaded-model state: loads, reloads on option changes, parallel slots and keep_alive expiry.

Expiry is lazy: it is evaluated whenever the state is looked at, so no timers run.
Locks are rebuilt when the event loop changes, so one simulator may serve several loops in turn.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio

from chimera_tui.sim.config import SimConfig, SimModel
from chimera_tui.sim.protocol import DEFAULT_KEEP_ALIVE_NS, UNSET, KeepAlive, needs_reload, rfc3339

#: What Go prints for now + MaxInt64 nanoseconds is ~292 years ahead.
_FOREVER = timedelta(days=292 * 365)


@dataclass
class Runner:
    """A loaded model: its load-time options, parallel slots, users and idle deadline."""

    model: SimModel
    options: dict[str, Any]
    slots: anyio.Semaphore
    keep_alive_ns: KeepAlive = DEFAULT_KEEP_ALIVE_NS
    refs: int = 0
    #: requests waiting for a slot (SimConfig.max_queue)
    waiting: int = 0
    idle_since: float = field(default_factory=time.perf_counter)
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def context_length(self) -> int:
        return self.options.get("num_ctx") or self.model.context_length

    def expires_in(self, now: float) -> float | None:
        """Seconds until expiry (negative once expired); None = never. In use counts as fresh."""
        if self.keep_alive_ns is None:
            return None
        start = now if self.refs else self.idle_since
        return start + self.keep_alive_ns / 1e9 - now

    def expired(self, now: float) -> bool:
        left = self.expires_in(now)
        return self.refs == 0 and left is not None and left <= 0


@dataclass(frozen=True)
class LoadedModel:
    """A snapshot of one loaded model, as /api/ps reports it."""

    name: str
    model: SimModel
    options: dict[str, Any]
    context_length: int
    expires_at: datetime | None  # None = never
    in_flight: int
    size: int
    size_vram: int


class Scheduler:
    """Which models are loaded, and getting a runner for a request (loading when needed)."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.runners: dict[str, Runner] = {}
        self.loads = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = anyio.Lock()

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._lock = loop, anyio.Lock()
            for runner in self.runners.values():
                if runner.refs == 0:
                    runner.slots = anyio.Semaphore(max(1, self.config.num_parallel))

    def expire(self) -> None:
        """Drop every idle runner whose keep_alive has run out."""
        now = time.perf_counter()
        for name, runner in list(self.runners.items()):  # a copy: ps may be read from another thread
            if runner.expired(now) and self.runners.get(name) is runner:
                self.runners.pop(name, None)

    async def acquire(self, model: SimModel, options: dict[str, Any], keep_alive: object) -> Runner:
        """A runner for `model` with these load-time options, counted as in use; loads if needed.

        All time spent here is the request's load_duration (loads are serialised, like Ollama's
        pending queue); a warm runner is used directly without queueing.
        """
        self._bind_loop()
        self.expire()
        runner = self._usable(model, options)
        if runner is None:
            async with self._lock:
                self.expire()
                runner = self._usable(model, options)
                if runner is None:
                    old = self.runners.get(model.name)
                    if old is not None:
                        while old.refs:  # let in-flight requests finish before unloading
                            await anyio.sleep(0.001)
                        self.runners.pop(model.name, None)
                    await anyio.sleep(self.config.load_s)
                    runner = Runner(model, dict(options), anyio.Semaphore(max(1, self.config.num_parallel)))
                    self.runners[model.name] = runner
                    self.loads += 1
        runner.refs += 1
        if keep_alive is not UNSET:
            runner.keep_alive_ns = keep_alive  # type: ignore[assignment]  # sticky, like useLoadedRunner
        return runner

    def _usable(self, model: SimModel, options: dict[str, Any]) -> Runner | None:
        runner = self.runners.get(model.name)
        if runner is None or needs_reload(runner.options, options):
            return None
        return runner

    def release(self, runner: Runner) -> None:
        """The request is done with `runner`; a keep_alive of 0 unloads it once idle."""
        runner.refs -= 1
        if runner.refs == 0:
            runner.idle_since = time.perf_counter()
            if runner.keep_alive_ns == 0 and self.runners.get(runner.model.name) is runner:
                del self.runners[runner.model.name]

    def unload(self, model: SimModel) -> None:
        """`expireRunner`: unload now if idle, else as soon as the last request finishes."""
        runner = self.runners.get(model.name)
        if runner is None:
            return
        runner.keep_alive_ns = 0
        if runner.refs == 0:
            del self.runners[model.name]

    def snapshot(self) -> list[LoadedModel]:
        """The loaded models, after applying expiry."""
        self.expire()
        now, wall = time.perf_counter(), datetime.now(UTC)
        out = []
        for runner in list(self.runners.values()):
            left = runner.expires_in(now)
            vram = 0 if runner.options.get("num_gpu") == 0 else runner.model.vram_bytes
            out.append(
                LoadedModel(
                    name=runner.model.name,
                    model=runner.model,
                    options=dict(runner.options),
                    context_length=runner.context_length,
                    expires_at=None if left is None else wall + timedelta(seconds=max(left, 0.0)),
                    in_flight=runner.refs,
                    size=runner.model.vram_bytes,
                    size_vram=vram,
                )
            )
        return out


def expires_text(expires_at: datetime | None) -> str:
    """RFC3339 for /api/ps; forever is shown ~292 years ahead, as Go does."""
    return rfc3339(expires_at or datetime.now(UTC) + _FOREVER)
