"""A sweep as it runs: configuration i of M, run j of N, an ETA, the current call's tokens, and a
table of finished configurations.

As on the live screen (`LiveScreenBase`), the runner runs in a thread worker on its own event loop and
pushes events into a LiveFeed; one 30 Hz timer drains it. Cancelling keeps everything measured (the
sweep record says which configurations are done) and the sweep can be resumed from the sweeps screen.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Header, ProgressBar, Static

from chimera_tui.core.run.events import (
    PhaseChanged,
    RunFailed,
    RunFinished,
    RunStarted,
    SessionFinished,
)
from chimera_tui.core.run.sweep import (
    ConfigFinished,
    ConfigStarted,
    SweepFinished,
    SweepRecord,
    SweepRunner,
    SweepStarted,
    run_sweep_sync,
)
from chimera_tui.core.store.profiles import format_value
from chimera_tui.core.store.sessions import RunRecord, Session, compute_aggregates
from chimera_tui.safe_text import sanitize_line
from chimera_tui.ui.feed import BenchAborted, LiveFeed
from chimera_tui.ui.screens.live_base import LiveScreenBase
from chimera_tui.ui.widgets.footer import FittingFooter
from chimera_tui.ui.widgets.stream_pane import StreamPane

if TYPE_CHECKING:
    from chimera_tui.ui.app import ChimeraApp

DONE_COLUMNS = ("configuration", "status", "n", "tok/s", "TTFT ms", "reload ms")


def duration_text(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _n(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


class SweepLiveScreen(LiveScreenBase):
    """Runs (or resumes) one sweep and shows its progress."""

    BINDINGS = [
        Binding("c", "cancel", "Cancel"),
        Binding("v", "results", "Results"),
        Binding("escape", "back", "Back"),
    ]
    HELP_NAME = "sweep running"
    PHASE_ID = "#sweep-phase"
    CANCELLING_TEXT = "cancelling… (everything measured so far is kept)"
    LEAVING_NOTICE = "cancelling the sweep; what it measured is saved before leaving"
    CONFIRM_CANCEL = "press c again to cancel the sweep (what it measured is kept: resume later)"
    CONFIRM_BACK = "a sweep is running: press esc again to cancel it and go back"
    ABORT_MARK = "[b]✗[/b]"
    ABORT_TITLE = "Sweep stopped"
    WORKER_GROUP = "sweep"
    CRASH_LOG = "sweep crashed"

    app: ChimeraApp

    def __init__(self, runner: SweepRunner, feed: LiveFeed, autostart: bool = True) -> None:
        """``feed`` is the one ``runner`` emits into; ``autostart=False`` leaves the feed to the caller."""
        super().__init__(feed, autostart=autostart)
        self.runner: SweepRunner = runner
        self.record: SweepRecord | None = None
        self.key: str | None = None
        #: measured runs of the complete sessions, per configuration (interleaved visits pool)
        self.measured: dict[str, list[RunRecord]] = {}
        self.finished_steps = 0
        self.total_steps = 0
        self._durations: list[float] = []
        self._step_started: float | None = None
        self._last_session: Session | None = None

    def compose(self) -> ComposeResult:
        d = self.runner.defn
        yield Header()
        yield Static(
            escape(
                f"sweep {sanitize_line(d.name)} · {sanitize_line(self.runner.model)} · "
                f"{self.runner.endpoint} · {d.order} · {d.runs} run(s) + {d.warmup} warm-up per configuration"
            ),
            id="sweep-live-title",
        )
        yield Static("starting…", id="sweep-config")
        with Horizontal(id="sweep-progress-row"):
            yield Static("", id="sweep-run")
            yield ProgressBar(total=None, show_eta=False, id="sweep-progress")
            yield Static("ETA —", id="sweep-eta")
        yield Static("", id="sweep-phase")
        yield StreamPane(id="sweep-stream")
        table: DataTable[str | Text] = DataTable(id="sweep-done", cursor_type="row", zebra_stripes=True)
        yield table
        yield FittingFooter()

    def mount_live(self) -> None:
        self.sub_title = "sweep: running"
        self.query_one("#sweep-done", DataTable).add_columns(*DONE_COLUMNS)

    def make_runner(self) -> SweepRunner:
        return self.runner  # given by the sweeps screen, already emitting into `feed`

    def run_runner(self) -> None:
        """Worker thread: the whole sweep on its own event loop. Never touches widgets."""
        run_sweep_sync(self.runner)

    # -- the bounded-rate flush (LiveScreenBase.flush calls these) ----------------------------------
    def write_text(self, agent: int, content: str, thinking: str, thinking_count: int) -> None:
        self._stream.append(content, thinking, thinking_count)

    def after_flush(self, items: list[Any]) -> None:
        if self.running:
            self._update_eta()

    @property
    def _stream(self) -> StreamPane:
        return self.query_one(StreamPane)

    def eta_s(self) -> float | None:
        """Mean time per finished configuration × the ones left, less the current one's elapsed time."""
        if not self._durations or not self.total_steps:
            return None
        per = sum(self._durations) / len(self._durations)
        left = max(0, self.total_steps - self.finished_steps)
        elapsed = time.monotonic() - self._step_started if self._step_started is not None else 0.0
        return max(0.0, per * left - min(elapsed, per))

    def _update_eta(self) -> None:
        eta = self.eta_s()
        self.query_one("#sweep-eta", Static).update("ETA —" if eta is None else f"ETA {duration_text(eta)}")

    def handle_event(self, item: Any) -> None:
        phase = self.query_one("#sweep-phase", Static)
        if isinstance(item, SweepStarted):
            done = len(item.configs) - item.pending
            resumed = f" · resuming: {done} of {len(item.configs)} already done" if done else ""
            self.sub_title = f"sweep {item.sweep_id}"
            phase.update(escape(f"{len(item.configs)} configurations{resumed} · saved in {item.path}"))
        elif isinstance(item, ConfigStarted):
            self._config_started(item)
        elif isinstance(item, PhaseChanged):
            phase.update(escape(sanitize_line(item.message)))
        elif isinstance(item, RunStarted):
            kind = "warm-up" if item.warmup else "run"
            text = f"{kind} {item.number} of {item.total}"
            self.query_one("#sweep-run", Static).update(text)
            self._stream.reset(escape(f"{self.key or ''} · {text}"))
            phase.update(f"streaming {text}")
        elif isinstance(item, RunFailed) and item.record.status == "failed":
            phase.update(f"[b]✗[/b] {escape(sanitize_line(item.record.error or 'run failed'))}")
        elif isinstance(item, RunFinished):
            pass
        elif isinstance(item, SessionFinished):
            self._last_session = item.session
        elif isinstance(item, ConfigFinished):
            self._config_finished(item)
        elif isinstance(item, SweepFinished):
            self._sweep_finished(item.record)
        elif isinstance(item, BenchAborted):
            self.show_aborted(item)

    def _config_started(self, item: ConfigStarted) -> None:
        self.key = item.key
        self.total_steps = item.total
        self._step_started = time.monotonic()
        options = ", ".join(f"{k}={format_value(v)}" for k, v in item.options.items()) or "Ollama defaults"
        visit = f" (visit {item.visit} of {item.visits})" if item.visits > 1 else ""
        self.query_one("#sweep-config", Static).update(
            escape(
                sanitize_line(
                    f"configuration {item.index + 1} of {item.total}{visit}: {item.key} · {options}"
                )
            )
        )
        self.query_one(ProgressBar).update(total=item.total, progress=self.finished_steps)

    def _config_finished(self, item: ConfigFinished) -> None:
        if self._step_started is not None:
            self._durations.append(time.monotonic() - self._step_started)
        self._step_started = None
        self.finished_steps += 1
        self.query_one(ProgressBar).update(progress=self.finished_steps)
        session = self._last_session
        self._last_session = None
        if session is not None and session.status == "complete" and session.id == item.session_id:
            self.measured.setdefault(item.key, []).extend(session.runs)
        agg = compute_aggregates(self.measured.get(item.key, []))
        rate, ttft = agg.get("server_decode_rate"), agg.get("ttft_ms")
        cells = (
            Text(item.key),
            Text(item.status),
            str(rate.n if rate else 0),
            _n(rate.mean if rate else None, 2),
            _n(ttft.mean if ttft else None),
            _n(item.reload_load_ms),
        )
        table = self.query_one("#sweep-done", DataTable)
        if item.key in table.rows:
            for column, cell in enumerate(cells):
                table.update_cell_at(Coordinate(table.get_row_index(item.key), column), cell)
        else:
            table.add_row(*cells, key=item.key)
        table.move_cursor(row=table.get_row_index(item.key))

    def _sweep_finished(self, record: SweepRecord) -> None:
        self.running = False
        self.record = record
        counts = record.counts()
        self.sub_title = f"sweep {record.id}: {record.status}"
        self.query_one("#sweep-eta", Static).update("")
        text = f"sweep {record.status} · {counts['done']} of {len(record.configs)} configurations done"
        if record.status != "complete":
            text += " · resume it from the sweeps screen (F4, r)"
        self.query_one("#sweep-phase", Static).update(escape(text))
        if self._leave_when_done:
            self.dismiss()
        elif record.status == "complete":
            self.notify(f"sweep saved: {record.path}", title="Sweep complete", timeout=8)
            self._open_results(switch=True)
        else:
            self.notify(text, title=f"Sweep {record.status}", timeout=8)

    # -- actions ------------------------------------------------------------------------------------
    def _open_results(self, switch: bool = False) -> None:
        from chimera_tui.ui.screens.sweep_results import SweepResultsScreen

        assert self.record is not None
        screen = SweepResultsScreen(self.record)
        if switch:
            self.app.switch_screen(screen)
        else:
            self.app.push_screen(screen)

    def action_results(self) -> None:
        if self.record is None:
            self.notify("the results open here once the sweep has stopped")
        elif self.record.counts()["done"] == 0:
            self.notify("no configuration finished: nothing to rank yet")
        else:
            self._open_results()
