"""Hooks for the benchmark suite (benchmarks/ui_load.py, memory.py): off unless an env var is set.

`CHIMERA_TUI_BENCH_TRACE=PATH`: the app runs a 20 ms heartbeat on its event loop and records how
late each beat ran; the live screen records every token's reader stamp as it drains the feed, and
when each run's row was shown. Written to PATH as JSON when the app exits.

`CHIMERA_TUI_BENCH_AUTOSTART='{"model": "gemma3:latest", "runs": 1, "warmup": 0, "num_predict": 2000}'`:
skip the setup screen, start that single-agent session on the first endpoint (baseline profile,
short prompt), and quit once it has ended.

Unset (always, for users), `install` returns after one environment lookup and the live screen's
only cost is one `is not None` test per flush (30 a second).
"""

from __future__ import annotations

import atexit
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chimera_tui.core.run.events import RunFailed, RunFinished, TokenBatch

if TYPE_CHECKING:
    from chimera_tui.ui.app import ChimeraApp

ENV_TRACE = "CHIMERA_TUI_BENCH_TRACE"
ENV_AUTOSTART = "CHIMERA_TUI_BENCH_AUTOSTART"
HEARTBEAT_NS = 20_000_000

_active: BenchTrace | None = None


def active() -> BenchTrace | None:
    """The trace of this process, or None (the normal case)."""
    return _active


class BenchTrace:
    """What the benchmark reads back: heartbeat lateness, token stamps, when each run was shown."""

    def __init__(self, path: Path) -> None:
        self.path = path
        #: when each heartbeat was due, and how late it ran
        self.beat_ns: list[int] = []
        self.lateness_ns: list[int] = []
        #: the reader's stamp of every token, in order, and when the flush that showed it ended
        self.token_ns: list[int] = []
        self.shown_ns: list[int] = []
        #: per finished call: index, its t_send, when its row was shown, its metrics
        self.runs: list[dict[str, Any]] = []
        self._t_send: dict[int, int] = {}
        self._written = False

    def flushed(self, items: list[Any]) -> None:
        """The live screen has just handed these feed items to its widgets."""
        now = time.perf_counter_ns()
        for item in items:
            if isinstance(item, TokenBatch):
                self._t_send.setdefault(item.index, item.t_send_ns)
                self.token_ns += [token.t_ns for token in item.tokens]
                self.shown_ns += [now] * len(item.tokens)
            elif isinstance(item, RunFinished | RunFailed):
                record = item.record
                self.runs.append(
                    {
                        "index": record.index,
                        "warmup": record.warmup,
                        "status": record.status,
                        "t_send_ns": self._t_send.get(record.index),
                        "shown_ns": now,
                        "metrics": record.metrics.to_dict(),
                    }
                )

    async def heartbeat(self) -> None:
        """Wake every 20 ms on the UI's event loop; how late each wake-up is, is the UI's stall."""
        import asyncio

        due = time.perf_counter_ns() + HEARTBEAT_NS
        while True:
            await asyncio.sleep(max(0, due - time.perf_counter_ns()) / 1e9)
            now = time.perf_counter_ns()
            self.beat_ns.append(due)
            self.lateness_ns.append(now - due)
            due += HEARTBEAT_NS
            if due < now:  # a stall longer than a beat: count it once, then start again from now
                due = now + HEARTBEAT_NS

    def write(self) -> None:
        if self._written:
            return
        self._written = True
        doc = {
            "beat_ns": self.beat_ns,
            "lateness_ns": self.lateness_ns,
            "token_ns": self.token_ns,
            "shown_ns": self.shown_ns,
            "runs": self.runs,
        }
        self.path.write_text(json.dumps(doc), encoding="utf-8")


def install(app: ChimeraApp) -> None:
    """Called once the app is mounted: does nothing unless one of the env vars is set."""
    global _active
    trace_path, autostart = os.environ.get(ENV_TRACE), os.environ.get(ENV_AUTOSTART)
    if not trace_path and not autostart:
        return
    if trace_path:
        _active = trace = BenchTrace(Path(trace_path))
        atexit.register(trace.write)
        app.run_worker(trace.heartbeat(), name="bench-heartbeat", group="bench-trace")
    if autostart:
        _autostart(app, json.loads(autostart))


def _autostart(app: ChimeraApp, spec: dict[str, Any]) -> None:
    from chimera_tui.core.run.prompts import PRESETS
    from chimera_tui.core.store.profiles import BASELINE_PROFILE, ProfileStore
    from chimera_tui.ui.choice import BenchChoice
    from chimera_tui.ui.screens.live import LiveScreen

    choice = BenchChoice(
        endpoint=app.config.endpoints[0],
        model=str(spec["model"]),
        profile=ProfileStore().get(BASELINE_PROFILE),
        mode="single",
        prompt_label="short",
        prompt=PRESETS["short"],
        runs=int(spec.get("runs", 1)),
        warmup=int(spec.get("warmup", 0)),
        cold=False,
        num_predict=spec.get("num_predict"),
    )
    app.start_benchmark(choice)

    def quit_when_done() -> None:
        screen = next((s for s in app.screen_stack if isinstance(s, LiveScreen)), None)
        if screen is not None and not screen.running and (screen.session or screen.error):
            if _active is not None:
                _active.write()
            app.exit()

    app.set_interval(0.1, quit_when_done)
