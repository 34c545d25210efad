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
from chimera_tui.ui.widgets.system_panel import SystemPanel, energy_text

if TYPE_CHECKING:
    from chimera_tui.ui.app import ChimeraApp

#: (key, header, width, priority): priority 0 always shown, higher numbers dropped first when narrow
ROUND_COLUMNS = (
    ("round", "round", 5, 0),
    ("status", "status", 7, 0),
    ("capacity_efficiency_pct", "cap %", 5, 0),
    ("research_efficiency_pct", "res %", 5, 0),
    ("overlap_efficiency_pct", "ovl %", 5, 0),
    ("aggregate_tok_s", "tok/s", 6, 1),
    ("makespan_ms", "span ms", 7, 2),
    ("start_skew_ms", "skew ms", 7, 3),
    ("cause", "cause", 24, 4),
)
#: digits per figure column
ROUND_DIGITS = {"makespan_ms": 0, "start_skew_ms": 2}


def round_columns(width: int) -> list[tuple[str, str, int, int]]:
    """The rounds table's columns for a table `width` (each column costs its width + 2)."""
    room = width - 2 - sum(w + 2 for _, _, w, p in ROUND_COLUMNS if p == 0)
    chosen = {key for key, _, _, p in ROUND_COLUMNS if p == 0}
    for key, _, w, p in sorted(ROUND_COLUMNS, key=lambda c: c[3]):
        if p and w + 2 <= room:
            chosen.add(key)
            room -= w + 2
    # the cause (free text) takes whatever width is left
    return [
        (k, h, w + max(room - 1, 0) if k == "cause" else w, p) for k, h, w, p in ROUND_COLUMNS if k in chosen
    ]


def _n(value: Any, digits: int = 1) -> str:
    return "—" if not isinstance(value, int | float) else f"{value:.{digits}f}"


class MultiLiveScreen(LiveScreenBase):
    """Runs one multi-agent session and shows every agent side by side: c and esc ask before they
    cancel. Rounds: cap % capacity, res % research (TR110/113/114), ovl % overlap efficiency."""

    BINDINGS = [
        Binding("c", "cancel", "Cancel"),
        Binding("escape", "back", "Back"),
        Binding("o", "open_session", "Folder"),
        Binding("v", "view_session", "View session"),
    ]
    HELP_NAME = "live run (several agents)"
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
        self.session_path: str | None = None
        self.rounds: list[dict[str, Any]] = []
        self._calls: dict[int, LiveCall] = {}
        self._done = 0
        self._round_label = ""
        self._round_labels: list[str] = []
        self._round_columns: list[tuple[str, str, int, int]] = []

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
                yield AgentPane(i, agent.model, f"{agent.profile.name} · {agent.endpoint}")
        with Horizontal(id="multi-bottom"):
            with Vertical(id="rounds-box"):
                yield DataTable(id="rounds", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="multi-side"):
                yield ConcurrencyPanel(id="concurrency")
                yield SystemPanel(self.app.monitor)
        yield FittingFooter()

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < 110 or event.size.height < 32, "-small")
        self.call_after_refresh(self._fit_rounds)

    def _fit_rounds(self) -> None:
        """The rounds table's columns by priority for its width; rows are redrawn from `self.rounds`."""
        table = self.query_one("#rounds", DataTable)
        columns = round_columns(table.size.width or self.size.width // 2)
        if columns == self._round_columns:
            return
        self._round_columns = columns
        table.clear(columns=True)
        for key, header, width, _ in columns:
            table.add_column(header, width=width, key=key)
        for metrics, label in zip(self.rounds, self._round_labels, strict=True):
            table.add_row(*self._round_cells(metrics, label))

    def mount_live(self) -> None:
        self.sub_title = f"live run · {self.choice.mode}"
        self._fit_rounds()
        self.query_one(SystemPanel).energy_source = self._energy_text

    def _energy_text(self) -> str | None:
        """The round in flight: J so far over the measured GPUs, per token of every agent's stream."""
        meter = self.energy_meter()
        if meter is None or not meter.available or not self._calls:
            return None
        joules, per_token, per_joule = meter.live(sum(call.tokens for call in self._calls.values()))
        return energy_text(joules, per_token, per_joule, "now") if joules is not None else None

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
            gpu=config.gpu_options(),
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
            self.session_path = str(item.path)
            phase.update(f"session {escape(item.session_id)} · Ollama {escape(item.server_version or '?')}")
        elif isinstance(item, PhaseChanged):
            phase.update(escape(sanitize_line(item.message)))
        elif isinstance(item, RoundStarted):
            self._round_label = f"{'w' if item.warmup else ''}{item.number}"
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
        self._round_labels.append(self._round_label)
        table = self.query_one("#rounds", DataTable)
        table.add_row(*self._round_cells(metrics, self._round_label))
        table.move_cursor(row=table.row_count - 1)
        self.query_one(ConcurrencyPanel).show_round(metrics, self.rounds)

    def _round_cells(self, metrics: dict[str, Any], label: str) -> list[str | Text]:
        status = str(metrics.get("status", "?"))
        style = {"ok": "", "partial": "yellow", "failed": "bold red", "cancelled": "dim"}.get(status, "")
        cells: list[str | Text] = []
        for key, _, _, _ in self._round_columns:
            if key == "round":
                cells.append(label)
            elif key == "status":
                cells.append(Text(status, style=style))
            elif key == "cause":
                cells.append(Text(sanitize_line(str(metrics.get("cause") or "—"))))
            else:
                cells.append(_n(metrics.get(key), ROUND_DIGITS.get(key, 1)))
        return cells

    def _finish(self, session: Session) -> None:
        self.running = False
        self.session = session
        self.session_path = str(session.path)
        self.app.last_profile = self.choice.profile
        result = result_view(session.manifest.result_or_empty, session.rounds)
        self.query_one("#phase", Static).update(
            f"{session.status} · {headline(result)} · saved (v: view, o: folder)"
        )
        self.notify(f"Session saved: {session.path}", title=f"Session {session.status}", timeout=8)
        if self._leave_when_done:
            self.dismiss()
