"""The capacity screen: run a load curve against the setup's endpoint, or show saved capacity sessions.

Live: set the levels (closed loop) or rates (open loop, `r` before the list: "r 1,2,4"), requests per
level and the SLO, then F5; each finished level adds a row to the table and a point to the charts
(aggregate throughput and TTFT p95 vs load, with their 95% CIs), and the answer in words comes at the
end. Saved: one or more capacity sessions (from the sessions browser) on the same charts, one line each.
Same one-way flow as every live screen (`LiveScreenBase`): the runner's thread fills a LiveFeed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Header, Input, Label, Static

from chimera_tui.core.measure.capacity import LevelStats, Slo
from chimera_tui.core.reports.capacity import (
    LEVEL_HEADERS,
    capacity_levels,
    level_rows,
    loop_of,
    series_label,
    verdict_of,
)
from chimera_tui.core.run.capacity import (
    CapacityFinished,
    CapacityRunner,
    CapacitySpec,
    LevelFinished,
    LevelProgress,
    LevelStarted,
    run_capacity_sync,
)
from chimera_tui.core.run.events import PhaseChanged, SessionFinished, SessionStarted
from chimera_tui.core.store.sessions import Session
from chimera_tui.safe_text import sanitize_line
from chimera_tui.ui.choice import BenchChoice
from chimera_tui.ui.feed import BenchAborted
from chimera_tui.ui.screens.live_base import LiveScreenBase
from chimera_tui.ui.widgets.chart import ChartWidget
from chimera_tui.ui.widgets.footer import FittingFooter

if TYPE_CHECKING:
    from chimera_tui.ui.app import ChimeraApp


def _number(text: str, label: str, integer: bool = False) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise ValueError(f"{label} must be a {'whole ' if integer else ''}number") from None
    if value <= 0:
        raise ValueError(f"{label} must be positive")
    return value


def parse_levels(text: str) -> tuple[str, list[float]]:
    """ "1,2,4" → closed loop; "r 0.5,1,2" → open loop (requests/s). ValueError with one line."""
    text = text.strip()
    loop = "closed"
    if text[:1].lower() == "r":
        loop, text = "open", text[1:]
    try:
        values = [float(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise ValueError("levels: a comma-separated list of numbers (open loop: 'r 1,2,4')") from None
    if not values or any(v <= 0 for v in values) or values != sorted(set(values)):
        raise ValueError("levels must be positive, distinct and ascending")
    if loop == "closed" and any(v != int(v) for v in values):
        raise ValueError("closed-loop levels are whole numbers of streams (open loop: 'r 1,2,4')")
    return loop, values


class CapacityScreen(LiveScreenBase):
    """A capacity run (from setup's choice), or saved capacity sessions side by side."""

    BINDINGS = [
        Binding("f5", "run", "Run", priority=True),
        Binding("c", "cancel", "Cancel"),
        Binding("escape", "back", "Back"),
        Binding("v", "view_session", "View session"),
    ]
    HELP_NAME = "capacity"
    CRASH_LOG = "capacity run crashed"
    ABORT_TITLE = "Capacity run did not start"

    app: ChimeraApp

    def __init__(
        self,
        choice: BenchChoice | None = None,
        sessions: list[Session] | None = None,
        autostart: bool = False,
    ) -> None:
        super().__init__(autostart=autostart)
        self.choice = choice
        self.saved = list(sessions or [])
        self.levels: list[LevelStats] = []
        self.loop = "closed"
        self.verdict_text = ""

    # -- layout -------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        if self.choice is not None:
            c = self.choice
            yield Static(
                f"capacity · {escape(sanitize_line(c.model))} · {escape(c.profile.name)} · "
                f"{escape(c.endpoint)}",
                id="cap-title",
            )
            with Horizontal(id="cap-form"):
                for wid, label, value, hint in (
                    ("cap-levels", "levels", "1,2,4,8,16", "r 1,2,4 = req/s"),
                    ("cap-requests", "requests/level", "", "4 per stream"),
                    ("cap-slo", "TTFT p95 ≤ ms", "", "no SLO"),
                    ("cap-min-tps", "tok/s each ≥", "", "no floor"),
                ):
                    with Vertical(classes="cap-field"):
                        yield Label(label, classes="field-label")
                        yield Input(value, id=wid, placeholder=hint)
                yield Button("Run (F5)", id="cap-run", variant="primary")
            yield Static("set the levels and press F5", id="phase")
        else:
            names = ", ".join(series_label(s) for s in self.saved)
            yield Static(f"capacity · {escape(sanitize_line(names))}", id="cap-title")
            yield Static("", id="phase")
        with Horizontal(id="cap-charts"):
            yield ChartWidget("aggregate tok/s", "tok/s", id="cap-throughput")
            yield ChartWidget("TTFT p95", "ms", id="cap-ttft")
        yield DataTable(id="cap-levels-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="cap-verdict")
        yield FittingFooter()

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < 110 or event.size.height < 32, "-small")

    def mount_live(self) -> None:
        self.sub_title = "capacity"
        self.query_one("#cap-levels-table", DataTable).add_columns(*LEVEL_HEADERS)
        if self.saved:
            self._show_saved()
        else:
            self._draw([("this run", [])])
            if self.choice is not None:
                self.query_one("#cap-levels", Input).focus()

    # -- the run ------------------------------------------------------------------------------------
    def make_runner(self) -> CapacityRunner | None:
        if self.choice is None:
            return None
        config, c = self.app.config, self.choice
        loop, levels = parse_levels(self.query_one("#cap-levels", Input).value)
        requests = _number(self.query_one("#cap-requests", Input).value, "requests per level", integer=True)
        spec = CapacitySpec(
            model=c.model,
            profile=c.profile,
            prompt=c.prompt,
            prompt_label=c.prompt_label,
            endpoint=c.endpoint,
            loop=loop,  # type: ignore[arg-type]
            levels=levels,
            requests=int(requests) if requests is not None else None,
            warmup=min(c.warmup, 1),
            num_predict=c.num_predict,
            timeouts=config.timeouts,
            slo=Slo(
                _number(self.query_one("#cap-slo", Input).value, "TTFT p95"),
                _number(self.query_one("#cap-min-tps", Input).value, "tok/s floor"),
            ),
        )
        return CapacityRunner(
            spec,
            config.sessions_root,
            emit=self.feed.push,
            transport_factory=config.transport_factory,
            nvml_module=config.nvml_module,
        )

    def run_runner(self) -> None:
        assert self.runner is not None
        run_capacity_sync(self.runner)

    def write_text(self, agent: int, content: str, thinking: str, thinking_count: int) -> None:
        """A capacity run streams no text to the screen (it would only slow the reader)."""

    @on(Button.Pressed, "#cap-run")
    def _run_pressed(self) -> None:
        self.action_run()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_run()

    def action_run(self) -> None:
        if self.choice is None:
            self.notify("saved sessions: start a capacity run from setup (F6)")
            return
        if self.running:
            self.notify("a capacity run is in progress (c cancels it)")
            return
        try:
            self.runner = self.make_runner()
        except ValueError as exc:
            self.notify(str(exc), severity="error", title="Cannot start")
            return
        self.levels, self.verdict_text, self.session = [], "", None
        self.loop = self.runner.spec.loop if self.runner is not None else "closed"
        self.query_one("#cap-levels-table", DataTable).clear()
        self.query_one("#cap-verdict", Static).update("")
        self._draw([("this run", self.levels)])
        self.query_one("#cap-levels-table", DataTable).focus()  # so c / v reach the screen, not a field
        self.start_runner()

    def handle_event(self, item: Any) -> None:
        phase = self.query_one("#phase", Static)
        if isinstance(item, SessionStarted):
            phase.update(f"session {escape(item.session_id)}")
        elif isinstance(item, PhaseChanged):
            phase.update(escape(sanitize_line(item.message)))
        elif isinstance(item, LevelStarted):
            what = f"{item.load:g} req/s" if item.loop == "open" else f"{int(item.load)} concurrent"
            phase.update(f"level {item.index + 1} of {item.total_levels}: {what}")
        elif isinstance(item, LevelProgress):
            phase.update(f"level {item.index + 1}: {item.done} done, {item.failed} failed")
        elif isinstance(item, LevelFinished):
            self.levels.append(item.stats)
            self._add_rows([item.stats], self.loop)
            self._draw([("this run", self.levels)])
            if item.rule:
                phase.update(f"stopping: {item.rule}")
        elif isinstance(item, CapacityFinished):
            self.verdict_text = item.verdict.text
            self.query_one("#cap-verdict", Static).update(
                f"[b]{escape(item.verdict.stop_text)}[/b]\n{escape(sanitize_line(item.verdict.text))}"
            )
        elif isinstance(item, SessionFinished):
            self.running = False
            self.session = item.session
            phase.update(f"{item.session.status} · saved {escape(str(item.session.path))}")
            if self._leave_when_done:
                self.dismiss()
        elif isinstance(item, BenchAborted):
            self.show_aborted(item)

    # -- showing --------------------------------------------------------------------------------------
    def _add_rows(self, levels: list[LevelStats], loop: str, prefix: str = "") -> None:
        table = self.query_one("#cap-levels-table", DataTable)
        for row in level_rows(levels, loop):
            table.add_row(*(prefix + row[0], *row[1:]))

    def _draw(self, series: list[tuple[str, list[LevelStats]]]) -> None:
        def half(lo: float | None, hi: float | None) -> float | None:
            return (hi - lo) / 2 if lo is not None and hi is not None else None

        self.query_one("#cap-throughput", ChartWidget).curves(
            [
                (name, [(lv.load, lv.throughput_tps, half(lv.throughput.ci95_low, lv.throughput.ci95_high))
                        for lv in levels])
                for name, levels in series
            ]
        )  # fmt: skip
        self.query_one("#cap-ttft", ChartWidget).curves(
            [(name, [(lv.load, lv.ttft_ms.p95, None) for lv in levels]) for name, levels in series]
        )

    def _show_saved(self) -> None:
        series, lines = [], []
        many = len(self.saved) > 1
        for i, session in enumerate(self.saved):
            levels = capacity_levels(session)
            name = series_label(session)
            series.append((name, levels))
            self._add_rows(levels, loop_of(session), f"{i + 1}: " if many else "")
            v = verdict_of(session)
            answer = escape(sanitize_line(v.get("text") or "no verdict"))
            lines.append((f"{i + 1}. " if many else "") + f"[b]{escape(sanitize_line(name))}[/b]: {answer}")
        self._draw(series)
        self.query_one("#cap-verdict", Static).update("\n".join(lines))
        self.query_one("#phase", Static).update(
            "closed loop: N concurrent streams"
            if loop_of(self.saved[0]) == "closed"
            else "open loop: Poisson arrivals (requests/s)"
        )

    def action_view_session(self) -> None:
        if self.session is None:
            self.notify("the session is saved once the run has finished")
            return
        self.app.push_screen(CapacityScreen(sessions=[self.session]))
