"""A read deadline that costs one attribute store per read instead of a cancel scope per read.

A streamed call waits for the first bytes up to a first-byte deadline, then at most an idle time
between reads. A cancel scope with a timer around every read (`anyio.move_on_after`) costs ~6 µs:
more than decoding the line it waits for. Here one watchdog task per call sleeps until the current
deadline, and the reader only moves `expires_ns` forward as bytes arrive.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio


class Deadline:
    """When the guarded block is cancelled (perf_counter_ns), and whether that happened."""

    __slots__ = ("_sleep", "expired", "expires_ns")

    def __init__(self, expires_ns: int) -> None:
        #: moving it later is a plain store (the watchdog looks again when it wakes); use `reset`
        #: to move it earlier
        self.expires_ns = expires_ns
        self.expired = False
        self._sleep: anyio.CancelScope | None = None

    def reset(self, expires_ns: int) -> None:
        """Move the deadline anywhere, earlier included: wakes the watchdog to look again."""
        self.expires_ns = expires_ns
        if self._sleep is not None:
            self._sleep.cancel()


@asynccontextmanager
async def watchdog(expires_ns: int) -> AsyncIterator[Deadline]:
    """Run the block until it ends or `perf_counter_ns()` passes `deadline.expires_ns`, which the
    block may move later at any time (`reset` to move it earlier). On expiry the block is cancelled
    (its `finally` clauses run), `deadline.expired` is set and the `async with` ends normally: the
    caller raises what it means."""
    deadline = Deadline(expires_ns)
    error: Exception | None = None
    with anyio.CancelScope() as guarded:
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                while (left := deadline.expires_ns - time.perf_counter_ns()) > 0:
                    with anyio.CancelScope() as deadline._sleep:
                        await anyio.sleep(left / 1e9)
                deadline.expired = True
                guarded.cancel()

            tg.start_soon(watch)
            try:
                yield deadline
            except Exception as exc:  # raised as it is below, not wrapped in an exception group
                error = exc
            finally:
                tg.cancel_scope.cancel()
    if error is not None:
        raise error
