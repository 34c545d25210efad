"""The measuring engine in its own process: a runner runs in a child interpreter (its own GIL), so
nothing the parent does — rendering, garbage collection, a slow terminal — can delay a reader's stamp.

`run_in_process(runner, emit)` pickles the runner (RunnerBase drops its emit callback and cancel flag
on the way), starts a `spawn` child that runs `runner.run()` on its own event loop, and calls `emit` in
the calling thread with every event the child sends back, in order. In the child the runner's emit
only appends to a list; a sender thread ships the list every few milliseconds in one pickled message,
so the event loop never waits on the pipe. `runner.cancel()` in the parent (any thread) reaches the
child within CANCEL_POLL_S; a parent that dies closes the pipe, and the child cancels its run (the
session is closed as cancelled). Errors come back as one line: a ChimeraError stays a ChimeraError.
Timestamps cross processes unchanged: perf_counter_ns is CLOCK_MONOTONIC, one clock for the machine.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from chimera_tui.core.errors import ChimeraError
from chimera_tui.core.run.base import CANCEL_POLL_S, RunnerBase

#: how often the child ships its events (seconds): the UI flushes at 30 Hz, so 5 ms adds nothing seen
SEND_INTERVAL_S = 0.005
#: how long the parent waits for a child that has sent its result to exit before killing it
JOIN_S = 5.0


class EngineCrashed(ChimeraError):
    kind = "engine_crashed"


def _child_main(conn: Any, runner: Any) -> None:
    """The child: run the runner, ship its events, answer cancel; always end with one result message."""
    import anyio

    # the parent owns the terminal and its signals (Ctrl-C, a closed terminal): it cancels the run, or
    # its death closes the pipe, and the child closes the session as cancelled
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    pending: list[Any] = []
    lock = threading.Lock()
    done = threading.Event()

    def emit(event: Any) -> None:
        with lock:
            pending.append(event)

    def take() -> list[Any]:
        with lock:
            batch = pending[:]
            pending.clear()
        return batch

    def sender() -> None:
        while not done.wait(SEND_INTERVAL_S):
            batch = take()
            if batch:
                conn.send(("events", batch))

    def commands() -> None:
        try:
            while conn.recv() != "cancel":
                pass
        except (EOFError, OSError):  # the parent is gone: stop measuring, close the session
            pass
        runner.cancel()

    runner._emit = emit
    ship = threading.Thread(target=sender, name="engine-sender", daemon=True)
    ship.start()
    threading.Thread(target=commands, name="engine-commands", daemon=True).start()
    result: tuple[str, ...]
    try:
        anyio.run(runner.run)
        result = ("done",)
    except ChimeraError as exc:
        result = ("error", type(exc).__name__, str(exc), exc.kind)
    except BaseException as exc:
        result = ("crash", f"{type(exc).__name__}: {exc}")
    done.set()
    ship.join()
    try:
        rest = take()
        if rest:
            conn.send(("events", rest))
        conn.send(result)
    except OSError:
        pass


class _ChildError(ChimeraError):
    """A ChimeraError raised in the child, with its kind."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def prepare() -> None:
    """Call before a full-screen UI takes over stdout / stderr: a spawn child needs multiprocessing's
    resource tracker, which passes stderr's file descriptor on when it starts (a UI's capture of
    stderr has none)."""
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()


def can_run_in_process(runner: Any) -> bool:
    """The runners checked to run in a child (their state pickles, their events come back whole):
    bench, multi-agent, workflow and capacity. A sweep still runs in a thread of the UI process."""
    from chimera_tui.core.run.capacity import CapacityRunner
    from chimera_tui.core.run.multi import MultiRunner
    from chimera_tui.core.run.single import BenchRunner
    from chimera_tui.core.run.workflow import WorkflowRunner

    return isinstance(runner, BenchRunner | MultiRunner | WorkflowRunner | CapacityRunner)


def run_in_process(runner: RunnerBase[Any], emit: Callable[[Any], None]) -> None:
    """Run `runner` in a child process; `emit` each of its events here, in order. Blocks until the
    run ends; raises the child's ChimeraError (as one line), or EngineCrashed if the child died."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=_child_main, args=(child, runner), name="chimera-engine", daemon=True)
    proc.start()
    child.close()
    stop = threading.Event()

    def watch_cancel() -> None:
        while not stop.wait(CANCEL_POLL_S):
            if runner.cancelled:
                with contextlib.suppress(OSError):
                    parent.send("cancel")
                return

    threading.Thread(target=watch_cancel, name="engine-cancel", daemon=True).start()
    try:
        while True:
            try:
                message = parent.recv()
            except (EOFError, OSError):
                raise EngineCrashed(
                    f"the measuring process ended unexpectedly (exit code {_exit_code(proc)})"
                ) from None
            kind = message[0]
            if kind == "events":
                for event in message[1]:
                    emit(event)
            elif kind == "done":
                return
            elif kind == "error":
                raise _ChildError(message[2], message[3])
            else:
                raise EngineCrashed(f"the measuring process failed: {message[1]}")
    finally:
        stop.set()
        proc.join(JOIN_S)
        if proc.is_alive():
            proc.kill()
            proc.join(JOIN_S)
        parent.close()


def _exit_code(proc: Any) -> Any:
    proc.join(0.5)
    deadline = time.monotonic() + 0.5
    while proc.exitcode is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return proc.exitcode
