"""What every runner shares: the emit callback and the one cancellation mechanism.

`cancel()` may be called from any thread (the TUI's UI thread, the CLI's SIGINT handler): it only sets a
`threading.Event`. Inside the runner's event loop, a watcher task polls that flag and, once it is set,
cancels every cancel scope the runner has open; a scope opened after that is cancelled as it opens. A
call cancelled mid-stream keeps its partial trace and is recorded as ``cancelled``.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Generic, TypeVar

import anyio

from chimera_tui.core.backends import BenchClient
from chimera_tui.core.backends.ollama import CallOutcome, TokenSink

E = TypeVar("E")

#: how often the watcher looks at the cancel flag (seconds)
CANCEL_POLL_S = 0.02


def _ignore(_event: Any) -> None:
    """The emit callback of a runner nobody listens to."""


class RunnerBase(Generic[E]):
    """The base of BenchRunner, MultiRunner, WorkflowRunner and SweepRunner.

    Subclasses run their work inside ``async with self._watching_cancel():``, wrap every cancellable
    step in ``self._cancel_scope()`` (or ``await self._guarded(step)``), make their calls through
    ``self._stream_call`` and report progress with ``self._emit(event)``.
    """

    def __init__(self, emit: Callable[[E], None] | None = None) -> None:
        self._emit: Callable[[E], None] = emit or _ignore
        self._cancel = threading.Event()
        self._scopes: set[anyio.CancelScope] = set()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for the engine process (core/run/process.py): everything but the emit callback,
        the cancel flag and the open scopes, which belong to the process that runs it."""
        state = dict(self.__dict__)
        for name in ("_emit", "_cancel", "_scopes"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._emit = _ignore
        self._cancel = threading.Event()
        self._scopes = set()

    def cancel(self) -> None:
        """Stop the run as soon as possible; safe from any thread, and before or after `run()` starts."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def follow_cancel(self, parent: RunnerBase[Any]) -> None:
        """Share ``parent``'s cancel flag: cancelling the parent cancels this runner (a sweep's sessions)."""
        self._cancel = parent._cancel

    @contextmanager
    def _cancel_scope(self) -> Iterator[anyio.CancelScope]:
        """A cancel scope that `cancel()` cancels; already cancelled when the runner is."""
        with anyio.CancelScope() as scope:
            self._scopes.add(scope)
            try:
                if self.cancelled:
                    scope.cancel()
                yield scope
            finally:
                self._scopes.discard(scope)

    async def _guarded(self, step: Awaitable[Any]) -> None:
        """Await a step (preload, unload, cooldown) so that `cancel()` interrupts it."""
        with self._cancel_scope():
            await step

    @asynccontextmanager
    async def _watching_cancel(self) -> AsyncIterator[None]:
        """Watch the cancel flag while the block runs (the block itself is not cancelled by it)."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch_cancel)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()

    async def _watch_cancel(self) -> None:
        while not self._cancel.is_set():
            await anyio.sleep(CANCEL_POLL_S)
        for scope in list(self._scopes):
            scope.cancel()

    async def _stream_call(
        self,
        client: BenchClient,
        api: str,
        body: dict[str, Any],
        on_tokens: TokenSink,
        outcome: CallOutcome,
    ) -> None:
        """One streaming call that `cancel()` interrupts. A call cancelled mid-stream keeps its partial
        trace; one not sent because the runner was already cancelled is marked cancelled too."""
        with self._cancel_scope() as scope:
            if not self.cancelled:
                await client.stream_call(api, body, on_tokens, outcome)
        if scope.cancelled_caught or (self.cancelled and outcome.trace.t_send_ns == 0):
            outcome.cancelled = True
