"""The live run: the stream, big readouts, the system panel, and the runs table growing row by row.

The runner runs in a thread worker with its own event loop and pushes events into a LiveFeed. One
timer drains that feed at a bounded rate (30 Hz) and updates the widgets inside one batch update;
widgets never talk to the runner, and the runner never touches a widget (all of it in
`LiveScreenBase`; this module is what the single-agent screen shows).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Header, ProgressBar, Static

from chimera_tui.core.measure.eta import EtaTracker, format_eta
from chimera_tui.core.run.events import (
    PhaseChanged,
    RunFailed,
    RunFinished,
    RunStarted,
    SessionFinished,
    SessionStarted,
    TokenBatch,
)
from chimera_tui.core.run.single import BenchRunner, BenchSpec, run_bench_sync
from chimera_tui.core.run.workflow import (
    STAGES,
    IngestDone,
    WorkflowRunFinished,
    WorkflowRunner,
    WorkflowRunStarted,
    run_workflow_sync,
    sample_data_dir,
)
from chimera_tui.core.store.sessions import Session
from chimera_tui.safe_text import sanitize_line
from chimera_tui.ui import bench_trace
from chimera_tui.ui.choice import BenchChoice
from chimera_tui.ui.feed import BenchAborted
from chimera_tui.ui.live_state import LiveCall
from chimera_tui.ui.screens.live_base import LiveScreenBase
from chimera_tui.ui.widgets.footer import FittingFooter
from chimera_tui.ui.widgets.readouts import Readouts
from chimera_tui.ui.widgets.runs_table import RunsTable
from chimera_tui.ui.widgets.stream_pane import StreamPane
from chimera_tui.ui.widgets.system_panel import SystemPanel, energy_text

if TYPE_CHECKING:
    from chimera_tui.ui.app import ChimeraApp

#: the live readouts (TTFT, tok/s, sparkline, tokens, elapsed) are redrawn at most this often
READOUTS_HZ = 10


class LiveScreen(LiveScreenBase):
    """Runs one benchmark session and shows it as it happens: c and esc ask before they cancel."""

    BINDINGS = [
        Binding("c", "cancel", "Cancel"),
        Binding("escape", "back", "Back"),
        Binding("o", "open_session", "Folder"),
        Binding("v", "view_session", "View session"),
    ]
    HELP_NAME = "live run"

    app: ChimeraApp

    def __init__(self, choice: BenchChoice, autostart: bool = True) -> None:
        """`autostart=False` leaves the feed to the caller (tests feed scripted events)."""
        super().__init__(autostart=autostart)
        self.choice = choice
        self.runner: BenchRunner | WorkflowRunner | None = None
        #: workflow workload: the stage of the call in progress ("analysis" / "report")
        self.stage: str | None = None
        self._stage_index = 0
        self.session: Session | None = None
        self.session_path: str | None = None
        self._call: LiveCall | None = None
        self._started: RunStarted | None = None
        self._calls_done = 0
        self._next_readouts = 0.0
        #: the time left, from the finished runs (the same tracker as the CLI's)
        self._eta = EtaTracker(choice.runs)
        self._eta_text = ""

    @property
    def workflow(self) -> bool:
        return self.choice.workload == "workflow"

    @property
    def total_calls(self) -> int:
        calls = self.choice.warmup + self.choice.runs
        return calls * len(STAGES) if self.workflow else calls

    def compose(self) -> ComposeResult:
        c = self.choice
        yield Header()
        yield Static(
            f"{escape(sanitize_line(c.model))} · {escape(c.profile.name)} · {escape(c.endpoint)} · "
            f"{c.prompt_label} · {'cold' if c.cold else 'warm'}",
            id="live-title",
        )
        with Horizontal(id="progress-row"):
            yield Static("starting…", id="phase")
            yield ProgressBar(total=self.total_calls, show_eta=False, id="progress")
        with Horizontal(id="live-main"):
            yield StreamPane(id="stream")
            with VerticalScroll(id="side"):
                yield Readouts(id="readouts")
                yield SystemPanel(self.app.monitor)
        yield RunsTable(id="runs-table")
        yield FittingFooter()

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < 110 or event.size.height < 32, "-small")

    def mount_live(self) -> None:
        self.sub_title = "live run" + (" · agent workflow" if self.workflow else "")
        self._last_energy: str | None = None
        self.query_one(SystemPanel).energy_source = self._energy_text

    def _energy_text(self) -> str | None:
        """The panel's energy line: the streaming run's from power samples, then the last run's."""
        meter = self.energy_meter()
        if meter is not None and meter.available and self._call is not None:
            joules, per_token, per_joule = meter.live(self._call.tokens)
            return energy_text(joules, per_token, per_joule, "now")  # power samples; the counter at the end
        return self._last_energy

    def make_runner(self) -> BenchRunner | WorkflowRunner:
        return self._workflow_runner() if self.workflow else self._bench_runner()

    def _workflow_runner(self) -> WorkflowRunner:
        """The agent workflow (ingest → analysis → report) as one session of two calls per run."""
        config, c = self.app.config, self.choice
        return WorkflowRunner(
            c.endpoint,
            c.model,
            c.profile,
            Path(c.data_dir or sample_data_dir()).expanduser(),
            config.sessions_root,
            runs=c.runs,
            warmup=c.warmup,
            emit=self.feed.push,
            transport=config.transport(c.endpoint),
            timeouts=config.timeouts,
            num_predict=c.num_predict,
            nvml_module=config.nvml_module,
        )

    def _bench_runner(self) -> BenchRunner:
        config, c = self.app.config, self.choice
        spec = BenchSpec(
            model=c.model,
            profile=c.profile,
            prompt=c.prompt,
            prompt_label=c.prompt_label,
            endpoint=c.endpoint,
            runs=c.runs,
            warmup=c.warmup,
            cold=c.cold,
            num_predict=c.num_predict,
            timeouts=config.timeouts,
            cache_cohorts=c.cache_cohorts,
        )
        return BenchRunner(
            spec,
            config.sessions_root,
            emit=self.feed.push,
            transport=config.transport(c.endpoint),
            gpu=config.gpu_options(),
        )

    def run_runner(self) -> None:
        """Worker thread: the whole session, on its own event loop. Never touches widgets."""
        assert self.runner is not None
        if isinstance(self.runner, WorkflowRunner):
            run_workflow_sync(self.runner)
        else:
            run_bench_sync(self.runner)

    # -- the bounded-rate flush ---------------------------------------------------------------------
    def on_tokens(self, batch: TokenBatch) -> None:
        if self._call is not None and self._call.index == batch.index:
            self._call.add(batch)

    def write_text(self, agent: int, content: str, thinking: str, thinking_count: int) -> None:
        self._stream.append(content, thinking, thinking_count)

    def needs_flush(self) -> bool:
        return self._call is not None  # the elapsed time ticks while a call streams

    def after_apply(self, items: list[Any]) -> None:
        now = time.monotonic()
        if now >= self._next_readouts:  # big digits: 10 a second is plenty, and costs a third
            self._next_readouts = now + 1 / READOUTS_HZ
            self._update_readouts()

    def after_flush(self, items: list[Any]) -> None:
        if items and (trace := bench_trace.active()) is not None:  # benchmarks (CHIMERA_TUI_BENCH_TRACE)
            trace.flushed(items)

    @property
    def _stream(self) -> StreamPane:
        return self.query_one(StreamPane)

    def _update_readouts(self, final_elapsed_s: float | None = None) -> None:
        """Live figures; elapsed runs on the wall clock until the call ends, then shows its e2e time."""
        call = self._call
        if call is None:
            return
        if final_elapsed_s is not None:
            elapsed: float | None = final_elapsed_s
        else:
            elapsed = (time.perf_counter_ns() - call.t_send_ns) / 1e9 if call.t_send_ns else None
        self.query_one(Readouts).show_live(call.ttft_ms, call.rate, call.rate_history(), call.tokens, elapsed)

    def handle_event(self, item: Any) -> None:
        phase = self.query_one("#phase", Static)
        if isinstance(item, SessionStarted):
            self.session_path = str(item.path)
            version = item.server_version or "?"
            phase.update(f"session {escape(item.session_id)} · Ollama {escape(version)}")
        elif isinstance(item, PhaseChanged):
            phase.update(escape(sanitize_line(item.message)))
        elif isinstance(item, RunStarted):
            self._started = item
            self._call = LiveCall(item.index)
            kind = "warm-up" if item.warmup else "run"
            title = f"{kind} {item.number} of {item.total}"
            if self.workflow:
                self.stage = STAGES[min(self._stage_index, len(STAGES) - 1)]
                self._stage_index += 1
                title = f"workflow {title} · stage {self.stage} ({self._stage_index} of {len(STAGES)})"
            if not self.workflow:
                self._eta.started(item.warmup, item.number, item.total)
            phase.update(title + (f" · {self._eta_text}" if self._eta_text else ""))
            self._stream.reset(title)
        elif isinstance(item, WorkflowRunStarted):
            self._stage_index = 0
            kind = "warm-up workflow" if item.warmup else "workflow"
            phase.update(f"{kind} {item.number} of {item.total} · ingesting the data folder…")
        elif isinstance(item, IngestDone):
            phase.update(
                f"ingested {item.files} files ({item.total_bytes} bytes, {item.skipped} skipped) "
                f"in {item.ingest_ms:.1f} ms"
            )
        elif isinstance(item, WorkflowRunFinished):
            self.query_one(Readouts).show_workflow(item.metrics)
        elif isinstance(item, RunFinished | RunFailed):
            self._stream.stream_ended()
            record = item.record
            self.query_one(RunsTable).add(record)
            self.query_one(Readouts).show_last_call(record.metrics)
            if record.gpu is not None:  # corrected by the energy counter at the end of the call
                m, gpus = record.metrics, record.gpu.get("gpus") or [{}]
                method = gpus[0].get("method")
                note = None if method == "energy counter" else str(method or gpus[0].get("reason") or "?")
                self._last_energy = energy_text(
                    m.energy_j, m.energy_per_token_j, m.tokens_per_j, "last", note
                )
                self.query_one(SystemPanel).show_energy(self._last_energy)
            self._calls_done += 1
            self.query_one(ProgressBar).update(progress=self._calls_done)
            e2e = record.metrics.e2e_ms
            if not self.workflow:
                self._eta_text = format_eta(self._eta.finished())
            self._update_readouts(final_elapsed_s=e2e / 1000 if e2e is not None else None)
            self._call = None
            if isinstance(item, RunFailed) and record.status == "failed":
                self.notify(sanitize_line(record.error or "run failed"), severity="error", title="Run failed")
        elif isinstance(item, SessionFinished):
            self._finish(item.session)
        elif isinstance(item, BenchAborted):
            self.show_aborted(item)

    def _finish(self, session: Session) -> None:
        self.running = False
        self.session = session
        self.session_path = str(session.path)
        self.app.last_profile = self.choice.profile
        counts = session.counts
        self.query_one("#phase", Static).update(
            f"{session.status} · {counts['ok']} ok · {counts['failed']} failed · o: folder"
        )
        self.notify(f"Session saved: {session.path}", title=f"Session {session.status}", timeout=8)
        if self._leave_when_done:
            self.dismiss()
