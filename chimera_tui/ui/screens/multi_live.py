"""The live view of a shared / dual run: one stream pane per agent, the concurrency panel, the GPU
panel, and a table of rounds. Same one-way flow as the single-agent screen (`LiveScreenBase`): the
runner's thread fills a LiveFeed, one 30 Hz timer drains it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Header, ProgressBar, Static

from chimera_tui.core.measure.concurrency import headline, result_view
from chimera_tui.core.run.events import (
    PhaseChanged,
    RoundFinished,
    RoundStarted,
    RunFailed,
    RunFinished,
    RunStarted,
    SessionFinished,
    SessionStarted,
    TokenBatch,
)
from chimera_tui.core.run.multi import AgentSpec, MultiRunner, MultiSpec, run_multi_sync
from chimera_tui.core.store.sessions import Session
from chimera_tui.safe_text import sanitize_line
from chimera_tui.ui.choice import BenchChoice
from chimera_tui.ui.feed import BenchAborted
from chimera_tui.ui.live_state import LiveCall
from chimera_tui.ui.screens.live_base import LiveScreenBase
from chimera_tui.ui.widgets.agent_pane import AgentPane
from chimera_tui.ui.widgets.concurrency_panel import ConcurrencyPanel
from chimera_tui.ui.widgets.footer import FittingFooter
from chimera_tui.ui.widgets.system_panel import SystemPanel

if TYPE_CHECKING:
    from chimera_tui.ui.app import ChimeraApp

ROUND_COLUMNS = (
    "round",
    "status",
    "capacity eff. %",
    "research eff. %",
    "overlap eff. %",
    "makespan ms",
    "skew ms",
    "tok/s total",
    "cause",
)


def _n(value: Any, digits: int = 1) -> str:
    return "—" if not isinstance(value, int | float) else f"{value:.{digits}f}"


class MultiLiveScreen(LiveScreenBase):
    """Runs one multi-agent session and shows every agent side by side."""

    BINDINGS = [
        Binding("c", "cancel", "Cancel"),
        Binding("escape", "back", "Back to setup"),
        Binding("v", "view_session", "View session"),
    ]
    CRASH_LOG = "multi-agent benchmark crashed"

    app: ChimeraApp

    def __init__(self, choice: BenchChoice, autostart: bool = True) -> None:
        super().__init__(autostart=autostart)
        assert choice.second is not None
        self.choice = choice
        self.agents = [
            AgentSpec(choice.endpoint, choice.model, choice.profile),
            AgentSpec(choice.second.endpoint, choice.second.model, choice.second.profile),
        ]
        self.runner: MultiRunner | None = None
        self.session: Session | None = None
        self.rounds: list[dict[str, Any]] = []
        self._calls: dict[int, LiveCall] = {}
        self._done = 0
        self._round_label = ""

    @property
    def total_rounds(self) -> int:
        return self.choice.warmup + self.choice.runs

    def compose(self) -> ComposeResult:
        c = self.choice
        yield Header()
        yield Static(
            f"{c.mode} · {len(self.agents)} agents · {escape(c.prompt_label)} · "
            f"{'cold' if c.cold else 'warm'}"
            + (" · solo baseline before every round" if c.solo_baseline else " · no solo baseline"),
            id="live-title",
        )
        with Horizontal(id="progress-row"):
            yield Static("starting…", id="phase")
            yield ProgressBar(total=self.total_rounds, show_eta=False, id="progress")
        with Grid(id="agents-grid"):
            for i, agent in enumerate(self.agents):
                yield AgentPane(i, f"{agent.model} · {agent.profile.name} · {agent.endpoint}")
        with Horizontal(id="multi-bottom"):
            with Vertical(id="rounds-box"):
                yield DataTable(id="rounds", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="multi-side"):
                yield ConcurrencyPanel(id="concurrency")
                yield SystemPanel(self.app.monitor)
        yield FittingFooter()

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < 110 or event.size.height < 32, "-small")

    def mount_live(self) -> None:
        self.sub_title = f"live run · {self.choice.mode}"
        self.query_one("#rounds", DataTable).add_columns(*ROUND_COLUMNS)

    def make_runner(self) -> MultiRunner:
        config = self.app.config
        c = self.choice
        spec = MultiSpec(
            mode="shared" if c.mode == "shared" else "dual",
            agents=self.agents,
            prompt=c.prompt,
            prompt_label=c.prompt_label,
            runs=c.runs,
            warmup=c.warmup,
            cold=c.cold,
            num_predict=c.num_predict,
            timeouts=config.timeouts,
            solo_baseline=c.solo_baseline,
        )
        return MultiRunner(
            spec,
            config.sessions_root,
            emit=self.feed.push,
            transport_factory=config.transport,
            nvml_module=config.nvml_module,
        )

    def run_runner(self) -> None:
        assert self.runner is not None
        run_multi_sync(self.runner)

    # -- the bounded-rate flush (LiveScreenBase.flush calls these) ----------------------------------
    def on_tokens(self, batch: TokenBatch) -> None:
        call = self._calls.get(batch.agent)
        if call is not None and call.index == batch.index:
            call.add(batch)

    def write_text(self, agent: int, content: str, thinking: str, thinking_count: int) -> None:
        self._pane(agent).stream.append(content, thinking, thinking_count)

    def needs_flush(self) -> bool:
        return bool(self._calls)

    def after_apply(self, items: list[Any]) -> None:
        for agent, call in self._calls.items():
            self._pane(agent).show(call)

    def _pane(self, agent: int) -> AgentPane:
        return self.query_one(f"#agent-{agent}", AgentPane)

    def handle_event(self, item: Any) -> None:
        phase = self.query_one("#phase", Static)
        if isinstance(item, SessionStarted):
            phase.update(f"session {escape(item.session_id)} · Ollama {escape(item.server_version or '?')}")
        elif isinstance(item, PhaseChanged):
            phase.update(escape(sanitize_line(item.message)))
        elif isinstance(item, RoundStarted):
            self._round_label = f"{'w' if item.warmup else ''}{item.number}/{item.total}"
            kind = "warm-up round" if item.warmup else "round"
            phase.update(f"{kind} {item.number} of {item.total}")
        elif isinstance(item, RunStarted):
            self._calls[item.agent] = LiveCall(item.index)
            kind = "solo" if item.solo else ("warm-up" if item.warmup else "run")
            self._pane(item.agent).stream.reset(f"{kind} {item.number} of {item.total}")
        elif isinstance(item, RunFinished | RunFailed):
            record = item.record
            call = self._calls.pop(record.agent, None)
            status = "" if record.status == "ok" else f"{record.status}: {sanitize_line(record.error or '')}"
            self._pane(record.agent).show(call, status)
            if isinstance(item, RunFailed) and record.status == "failed":
                self.notify(
                    f"agent {record.agent + 1}: {sanitize_line(record.error or 'failed')}",
                    severity="error",
                    title="Run failed",
                )
        elif isinstance(item, RoundFinished):
            self._round_finished(item.metrics)
        elif isinstance(item, SessionFinished):
            self._finish(item.session)
        elif isinstance(item, BenchAborted):
            self.show_aborted(item)

    def _round_finished(self, metrics: dict[str, Any]) -> None:
        self.rounds.append(metrics)
        self._done += 1
        self.query_one(ProgressBar).update(progress=self._done)
        label = self._round_label
        status = metrics.get("status", "?")
        style = {"ok": "", "partial": "yellow", "failed": "bold red", "cancelled": "dim"}.get(status, "")
        self.query_one("#rounds", DataTable).add_row(
            label,
            Text(status, style=style),
            _n(metrics.get("capacity_efficiency_pct")),
            _n(metrics.get("research_efficiency_pct")),
            _n(metrics.get("overlap_efficiency_pct")),
            _n(metrics.get("makespan_ms"), 0),
            _n(metrics.get("start_skew_ms"), 2),
            _n(metrics.get("aggregate_tok_s")),
            sanitize_line(str(metrics.get("cause") or "—")),
        )
        self.query_one(ConcurrencyPanel).show_round(metrics, self.rounds)

    def _finish(self, session: Session) -> None:
        self.running = False
        self.session = session
        self.app.last_profile = self.choice.profile
        result = result_view(session.manifest.result_or_empty, session.rounds)
        self.query_one("#phase", Static).update(f"{session.status} · {headline(result)} · saved (v: view)")
        self.notify(f"Session saved: {session.path}", title=f"Session {session.status}", timeout=8)
        if self._leave_when_done:
            self.dismiss()
