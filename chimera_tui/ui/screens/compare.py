"""Two or more sessions side by side: every metric with its verdict, warnings, and charts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from chimera_tui.core.measure.catalogue import fmt_signed
from chimera_tui.core.measure.compare import Comparison, compare_sessions, values_for
from chimera_tui.core.store.sessions import Session
from chimera_tui.safe_text import ellipsize, sanitize_line
from chimera_tui.ui.screens.dialogs import ExportDialog
from chimera_tui.ui.widgets.chart import ChartWidget
from chimera_tui.ui.widgets.footer import FittingFooter

if TYPE_CHECKING:
    from chimera_tui.ui.app import ChimeraApp

VERDICT_STYLE = {
    "faster": "bold green",
    "slower": "bold red",
    "higher (better)": "bold green",
    "lower (better)": "bold green",
    "higher (worse)": "bold red",
    "lower (worse)": "bold red",
    "within noise": "dim",
    "too few runs": "yellow",
}


#: from this terminal width on, full metric titles and CV / n beside each mean
WIDE = 140
#: the metric column's width on narrower terminals
NARROW_METRIC = 22


def _cell(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


class CompareScreen(Screen[None]):
    """The marked sessions side by side: A is the baseline; Δ% and the verdict for each metric."""

    BINDINGS = [Binding("e", "export", "Export"), Binding("escape", "back", "Back")]
    HELP_NAME = "comparison"

    app: ChimeraApp

    def __init__(self, sessions: list[Session]) -> None:
        super().__init__()
        self.sessions = sessions
        self.comparison: Comparison = compare_sessions(sessions)
        self._labels: list[str] = []
        self._names: list[str] = []
        self._wide = False

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="compare-body"):
            yield Static("", id="compare-legend")
            yield Static("", id="compare-warnings")
            yield DataTable(id="compare-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="compare-method")
            pooled = " (all agents)" if any(session.rounds for session in self.sessions) else ""
            with Grid(id="compare-charts"):
                yield ChartWidget(f"decode rate per run (server){pooled}", "tok/s", id="c-rate")
                yield ChartWidget(f"TTFT per run{pooled}", "ms", id="c-ttft")
                yield ChartWidget(f"decode rate distribution{pooled}", "tok/s", id="c-rate-dist")
                yield ChartWidget(f"TTFT distribution{pooled}", "ms", id="c-ttft-dist")
        yield FittingFooter()

    def on_mount(self) -> None:
        c = self.comparison
        names = [sanitize_line(label) for label in c.labels]
        labels = [chr(ord("A") + i) if i < 26 else str(i + 1) for i in range(len(names))]
        self.sub_title = f"baseline: {names[0]}"
        self._names = names
        warnings = self.query_one("#compare-warnings", Static)
        if c.warnings:
            warnings.update("\n".join(f"⚠ {escape(sanitize_line(w))}" for w in c.warnings))
            warnings.add_class("-warn")
        else:
            warnings.update(
                "✓ comparable: same prompt, num_predict, Ollama version, GPU and warm/cold setting"
            )
        self._labels = labels
        self._wide = self.app.size.width >= WIDE
        self._fill_table()
        notes = "".join(f"\ncompared: {escape(note)}" for note in c.notes)
        self.query_one("#compare-method", Static).update(f"verdicts: {escape(c.method)}{notes}")
        rate = [
            (label, values_for(s, "server_decode_rate"))
            for label, s in zip(labels, self.sessions, strict=True)
        ]
        ttft = [(label, values_for(s, "ttft_ms")) for label, s in zip(labels, self.sessions, strict=True)]
        self.query_one("#c-rate", ChartWidget).per_run(rate)
        self.query_one("#c-ttft", ChartWidget).per_run(ttft)
        self.query_one("#c-rate-dist", ChartWidget).distribution(rate)
        self.query_one("#c-ttft-dist", ChartWidget).distribution(ttft)

    def on_resize(self, event: events.Resize) -> None:
        wide = event.size.width >= WIDE
        if wide != self._wide and self._labels:
            self._wide = wide
            self._fill_table()

    def _fill_table(self) -> None:
        """Metric, then each session's Δ% and verdict against A (visible at 80 columns), then the
        values: mean ± sd on narrow terminals, with CV and n from WIDE columns on."""
        labels, wide = self._labels, self._wide
        # the legend: each letter's label (and, where there is room, its session id)
        self.query_one("#compare-legend", Static).update(
            "\n".join(
                f"{label} = {escape(name)}"
                + ("  (baseline)" if i == 0 else "")
                + (f"  [dim]{escape(session.id)}[/dim]" if wide else "")
                for i, (label, name, session) in enumerate(
                    zip(labels, self._names, self.sessions, strict=True)
                )
            )
        )
        table = self.query_one("#compare-table", DataTable)
        table.clear(columns=True)
        columns = ["metric"]
        for label in labels[1:]:
            columns += [f"Δ% {label}", f"{label} vs A"]
        table.add_columns(*columns, *labels)
        for mc in self.comparison.metrics:
            spec = mc.spec
            title = f"{spec.label} ({spec.unit})" if spec.unit else spec.label
            name = title if wide else ellipsize(title, NARROW_METRIC)
            row: list[str | Text] = [name]
            for col in mc.columns[1:]:
                row.append(fmt_signed(col.delta_pct, 1, "%"))
                row.append(Text(col.verdict, style=VERDICT_STYLE.get(col.verdict, "")))
            for col in mc.columns:
                s = col.summary
                text = _cell(s.mean)
                if s.stddev is not None:
                    text += f" ± {_cell(s.stddev)}"
                if wide:
                    text += (f" ({_cell(s.cv_pct)}%)" if s.cv_pct is not None else "") + f" n={s.n}"
                row.append(text)
            table.add_row(*row)

    def action_export(self) -> None:
        self.app.push_screen(ExportDialog(self.sessions, self.app.config.exports_dir), self._exported)

    def _exported(self, path: Path | None) -> None:
        if path is not None:
            self.notify(str(path), title="Exported", timeout=8)

    def action_back(self) -> None:
        self.dismiss()
