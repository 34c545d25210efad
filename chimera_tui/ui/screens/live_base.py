"""What every live screen shares: the feed, the runner's thread worker, the 30 Hz flush, cancel / back.

The runner runs in a thread worker on its own event loop (the subclass's `run_runner`) and pushes
events into a LiveFeed; it never touches a widget. One timer drains the feed at a bounded rate and
applies it inside one `batch_update()`: token batches are grouped per agent into one append per
flush (`write_text`), every other event goes to `handle_event`. While the screen is up the flush also
drives garbage collection (ui/live_gc.py: a no-op unless the real TUI enabled it), so a full-heap
collection never delays a reader's stamp.

A subclass composes its widgets and implements:

- `make_runner()` — the runner to start (called on mount when `runner` is still None);
- `run_runner()` — the blocking call that runs it in the worker thread (e.g. `run_bench_sync`);
- `handle_event(item)` — one non-token event (SessionStarted, RunFinished, BenchAborted, …);
- `write_text(agent, content, thinking, thinking_count)` — the text one agent streamed this flush;

and may override `mount_live()` (extra set-up on mount, before the timer starts), `on_tokens(batch)`
(fold a batch's stamps), `needs_flush()` (flush even with an empty feed), `after_apply(items)`
(inside the batch update) and `after_flush(items)` (after it). Textual calls `on_mount` / `on_unmount`
of every class in the MRO, so subclasses use the hooks instead of defining those two handlers.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

from rich.markup import escape
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Static

from chimera_tui.core.errors import ChimeraError
from chimera_tui.core.run.events import TokenBatch
from chimera_tui.safe_text import sanitize_line
from chimera_tui.ui import live_gc
from chimera_tui.ui.feed import BenchAborted, LiveFeed
from chimera_tui.ui.second_press import WINDOW_S, SecondPress

if TYPE_CHECKING:
    from chimera_tui.ui.app import ChimeraApp

FLUSH_HZ = 30

#: one agent's text of one flush: content pieces, thinking pieces, thinking token count
_Text = tuple[list[str], list[str], int]


class LiveScreenBase(Screen[None]):
    """A screen that runs one runner in a thread and shows its events as they come."""

    #: the Static that shows the current phase (cancelling…, errors)
    PHASE_ID: ClassVar[str] = "#phase"
    CANCELLING_TEXT: ClassVar[str] = "cancelling…"
    LEAVING_NOTICE: ClassVar[str] = "cancelling the run in progress; the session is saved before leaving"
    #: how an aborted run is shown: the mark before the message and the notification's title
    ABORT_MARK: ClassVar[str] = "[b red]✗[/]"
    ABORT_TITLE: ClassVar[str] = "Benchmark did not start"
    WORKER_GROUP: ClassVar[str] = "bench"
    CRASH_LOG: ClassVar[str] = "benchmark crashed"
    #: what the first press of cancel / back says while a run goes on (a second press confirms)
    CONFIRM_CANCEL: ClassVar[str] = "press c again to cancel the run (finished runs are kept)"
    CONFIRM_BACK: ClassVar[str] = "a run is in progress: press esc again to cancel it and go back"

    app: ChimeraApp

    def __init__(self, feed: LiveFeed | None = None, autostart: bool = True) -> None:
        """`autostart=False` leaves the feed to the caller (tests feed scripted events)."""
        super().__init__()
        self.feed = feed if feed is not None else LiveFeed()
        self.autostart = autostart
        self.runner: Any = None
        self.running = False
        self.error: str | None = None
        self.session: Any = None
        self._leave_when_done = False
        self._timer: Timer | None = None
        self._press = SecondPress()
        #: the live energy line's meter while the engine runs in its own process (see below)
        self.live_meter: Any = None

    # -- hooks --------------------------------------------------------------------------------------
    def make_runner(self) -> Any:
        """The runner this screen starts; it must emit into `self.feed.push`."""
        raise NotImplementedError

    def run_runner(self) -> None:
        """Worker thread: run `self.runner` to the end on its own event loop."""
        raise NotImplementedError

    def handle_event(self, item: Any) -> None:
        """One event that is not a token batch, in feed order."""
        raise NotImplementedError

    def write_text(self, agent: int, content: str, thinking: str, thinking_count: int) -> None:
        """The text `agent` streamed since the last event (at most one call per agent and event run)."""
        raise NotImplementedError

    def mount_live(self) -> None:
        """Extra set-up on mount (table columns, sub-title), before the flush timer starts."""

    def on_tokens(self, batch: TokenBatch) -> None:
        """A token batch, before its text is grouped (live readouts fold its stamps here)."""

    def needs_flush(self) -> bool:
        """Apply a flush even when the feed is empty (e.g. a call in progress whose readouts tick)."""
        return False

    def after_apply(self, items: list[Any]) -> None:
        """End of an applied flush, still inside the batch update."""

    def after_flush(self, items: list[Any]) -> None:
        """End of every flush, outside the batch update (runs 30 times a second)."""

    # -- life cycle ---------------------------------------------------------------------------------
    def on_mount(self) -> None:
        live_gc.start()  # the real TUI: collection driven by the flush (see ui/live_gc.py)
        self.mount_live()
        self._timer = self.set_interval(1 / FLUSH_HZ, self.flush)
        if self.runner is None:
            self.runner = self.make_runner()
        if self.autostart:
            self.start_runner()

    def on_unmount(self) -> None:
        live_gc.stop()
        if self.runner is not None and self.running:
            self.runner.cancel()

    def start_runner(self) -> None:
        self.running = True
        self.run_worker(
            self._run_in_thread, thread=True, exclusive=True, group=self.WORKER_GROUP, exit_on_error=False
        )

    def _run_in_thread(self) -> None:
        """Worker thread: the whole run, on its own event loop. Never touches widgets."""
        try:
            from chimera_tui.core.run.process import can_run_in_process, run_in_process

            config = getattr(self.app, "config", None)  # tests mount live screens in a bare App
            if (
                config is not None
                and config.engine_process
                and config.transport_factory is None
                and can_run_in_process(self.runner)
            ):
                self._run_in_engine_process(run_in_process)
            else:
                self.run_runner()
        except ChimeraError as exc:
            self.feed.push(BenchAborted(str(exc)))
        except Exception as exc:
            logging.getLogger(type(self).__module__).exception(self.CRASH_LOG)
            self.feed.push(
                BenchAborted(f"unexpected error: {type(exc).__name__}: {exc} (details in the log)")
            )

    def _run_in_engine_process(self, run_in_process: Any) -> None:
        """The runner in its own process (its own interpreter: its own GIL). Its GPU meter measures
        there; for the live energy line this process opens a meter of its own, whose one window is
        open while any call is in flight (the events as they arrive; the run's own figure, from the
        energy counter in the engine, replaces the estimate when the call ends)."""
        gpu = getattr(self.runner, "gpu", None)
        if gpu is None:
            run_in_process(self.runner, self.feed.push)
            return
        from chimera_tui.core.run.events import RunFailed, RunFinished, RunStarted
        from chimera_tui.core.run.gpu import GpuMeter

        meter = GpuMeter(gpu.options).open()
        in_flight: set[tuple[int, int]] = set()
        window: list[Any] = [None]

        def push(event: Any) -> None:
            if isinstance(event, RunStarted):
                if not in_flight:
                    window[0] = meter.start("live", meter.all_gpus, busy=False)
                in_flight.add((event.agent, event.index))
            elif isinstance(event, RunFinished | RunFailed):
                in_flight.discard((event.record.agent, event.record.index))
                if not in_flight and window[0] is not None:
                    meter.stop(window[0], busy=False)
                    window[0] = None
            self.feed.push(event)

        self.live_meter = meter
        try:
            run_in_process(self.runner, push)
        finally:
            self.live_meter = None
            meter.close()

    def energy_meter(self) -> Any:
        """The meter whose open windows give the live energy line: this process's own while the
        engine runs in a process of its own, else the runner's."""
        return self.live_meter if self.live_meter is not None else getattr(self.runner, "gpu", None)

    # -- the bounded-rate flush ---------------------------------------------------------------------
    def flush(self) -> None:
        live_gc.tick()
        items = self.feed.drain()
        if items or self.needs_flush():
            with self.app.batch_update():
                self._apply(items)
                self.after_apply(items)
        self.after_flush(items)

    def _apply(self, items: list[Any]) -> None:
        text: dict[int, _Text] = {}
        for item in items:
            if isinstance(item, TokenBatch):
                self.on_tokens(item)
                content, thinking, count = text.setdefault(item.agent, ([], [], 0))
                for tok in item.tokens:
                    if tok.kind == "content":
                        content.append(tok.text)
                    else:
                        thinking.append(tok.text)
                        count += 1
                text[item.agent] = (content, thinking, count)
                continue
            if text:
                self._write(text)
                text = {}
            self.handle_event(item)
        if text:
            self._write(text)

    def _write(self, text: dict[int, _Text]) -> None:
        for agent, (content, thinking, count) in text.items():
            if content or thinking:
                self.write_text(agent, "".join(content), "".join(thinking), count)

    def show_aborted(self, item: BenchAborted) -> None:
        """The run could not start or broke outside a call: one line in the phase and a notification."""
        self.running = False
        self.error = item.message
        message = escape(sanitize_line(item.message))
        self.query_one(self.PHASE_ID, Static).update(f"{self.ABORT_MARK} {message}")
        self.notify(sanitize_line(item.message), severity="error", title=self.ABORT_TITLE, timeout=10)
        if self._leave_when_done:
            self.dismiss()

    # -- actions ------------------------------------------------------------------------------------
    def _confirmed(self, action: str, message: str) -> bool:
        """The second press of `action` within the window: True; the first one says what to do."""
        if self._press.confirm(action):
            return True
        self.notify(message, severity="warning", title="Confirm", timeout=WINDOW_S)
        return False

    def action_cancel(self) -> None:
        if self.running and self.runner is not None:
            if not self._confirmed("cancel", self.CONFIRM_CANCEL):
                return
            self.runner.cancel()
            self.query_one(self.PHASE_ID, Static).update(self.CANCELLING_TEXT)
        else:
            self.notify("nothing is running")

    def action_back(self) -> None:
        if self.running and self.runner is not None:
            if not self._confirmed("back", self.CONFIRM_BACK):
                return
            self._leave_when_done = True
            self.runner.cancel()
            self.notify(self.LEAVING_NOTICE)
            return
        self.dismiss()

    def action_open_session(self) -> None:
        """Where the session is saved (known once it has started)."""
        path = getattr(self, "session_path", None)
        if path:
            self.notify(str(path), title="Session folder", timeout=10)
        else:
            self.notify("no session saved yet")

    def action_view_session(self) -> None:
        if self.session is None:
            self.notify("the session opens here once it has finished")
            return
        self.app.open_session(self.session)
