"""The hand-off between the runner's thread and the UI: an ordered, lock-free buffer of events."""

from __future__ import annotations

from collections import deque
from typing import Any

from chimera_tui.core.run.events import RunEvent


class BenchAborted:
    """The session could not start or broke outside a run (one line for the user)."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


#: RunEvent and BenchAborted, plus the sweep and workflow runners' own events (typed in core)
FeedItem = RunEvent | BenchAborted | Any


class LiveFeed:
    """The runner thread appends (deque.append is atomic); the UI timer drains at a bounded rate.

    Nothing here touches widgets or takes timestamps: the events carry the reader's stamps.
    """

    __slots__ = ("_queue",)

    def __init__(self) -> None:
        self._queue: deque[FeedItem] = deque()

    def push(self, item: FeedItem) -> None:
        self._queue.append(item)

    def drain(self) -> list[FeedItem]:
        out: list[FeedItem] = []
        pop = self._queue.popleft
        try:
            while True:
                out.append(pop())
        except IndexError:
            return out
