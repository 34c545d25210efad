"""One session: its manifest, the aggregates, every run, and per-run charts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from chimera_tui.cli_output import SUMMARY_ROWS, fmt
from chimera_tui.core.reports import _common as c
from chimera_tui.core.sessions import Session
from chimera_tui.safe_text import sanitize_line
from chimera_tui.ui.screens.dialogs import ExportDialog
from chimera_tui.ui.widgets.chart import ChartWidget
from chimera_tui.ui.widgets.runs_table import COLUMNS as RUN_COLUMNS
from chimera_tui.ui.widgets.runs_table import run_cells

if TYPE_CHECKING:
    from chimera_tui.ui.app import ChimeraApp


def manifest_text(session: Session) -> str:
    """The configuration in a few lines (escaped: names come from servers and files)."""
    m: dict[str, Any] = session.manifest
    model, profile, workload = m.get("model", {}), m.get("profile", {}), m.get("workload", {})
    endpoints = m.get("endpoints", [])
    env = m.get("environment", {})
    options = ", ".join(f"{k}={v}" for k, v in profile.get("options", {}).items()) or "Ollama defaults"
    where = ", ".join(f"{e.get('url', '?')} (Ollama {e.get('version', '?')})" for e in endpoints) or "—"
    gpus = ", ".join(g.get("name", "?") for g in env.get("gpus", [])) or env.get("gpu_status", "—")
    lines = [
        f"[b]{escape(sanitize_line(str(m.get('label') or session.id)))}[/b] · {session.status} · "
        f"{m.get('created_at', '')}",
        f"model {sanitize_line(str(model.get('name', '?')))} · {model.get('parameter_size', '—')} · "
        f"{model.get('quantization', '—')}",
        f"profile {sanitize_line(str(profile.get('name', '?')))}: {sanitize_line(options)}",
        f"mode {m.get('mode', '?')} · {sanitize_line(where)}",
        f"workload {sanitize_line(str(workload.get('prompt_label', '?')))} · "
        f"runs {workload.get('runs', '?')} "
        f"+ warm-up {workload.get('warmup', '?')} · {'cold' if workload.get('cold') else 'warm'} · "
        f"num_predict {workload.get('num_predict', '—')}",
        f"machine {sanitize_line(str(env.get('cpu', '—')))} · GPU {sanitize_line(str(gpus))}",
    ]
    return "\n".join(escape(line) if i else line for i, line in enumerate(lines))


class SessionDetailScreen(Screen[None]):
    BINDINGS = [Binding("e", "export", "Export"), Binding("escape", "back", "Back")]

    app: ChimeraApp

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="detail-body"):
            yield Static(manifest_text(self.session), id="manifest")
            yield DataTable(id="aggregates", cursor_type="row", zebra_stripes=True)
            if self.session.rounds:
                yield DataTable(id="detail-agents", cursor_type="row", zebra_stripes=True)
                yield DataTable(id="detail-round-stats", cursor_type="row", zebra_stripes=True)
                yield DataTable(id="detail-rounds", cursor_type="row", zebra_stripes=True)
            yield DataTable(id="detail-runs", cursor_type="row", zebra_stripes=True)
            with Horizontal(classes="charts"):
                yield ChartWidget("decode rate per run (server)", "tok/s", id="chart-rate")
                yield ChartWidget("TTFT per run", "ms", id="chart-ttft")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"session {self.session.id}"
        agg = self.query_one("#aggregates", DataTable)
        agg.add_columns("metric", "mean ± sd", "CV%", "min", "max", "95% CI", "n")
        for key, label, unit, digits in SUMMARY_ROWS:
            s = self.session.aggregates.get(key)
            if s is None or s.n == 0:
                continue
            mean_sd = fmt(s.mean, digits) + (f" ± {fmt(s.stddev, digits)}" if s.stddev is not None else "")
            ci = f"{fmt(s.ci95_low, digits)}–{fmt(s.ci95_high, digits)}" if s.ci95_low is not None else "—"
            agg.add_row(
                f"{label} ({unit})" if unit else label,
                mean_sd,
                fmt(s.cv_pct),
                fmt(s.min, digits),
                fmt(s.max, digits),
                ci,
                str(s.n),
            )
        if self.session.rounds:
            agents, stats, rounds = c.concurrency_tables(self.session)
            for widget_id, headers, rows in (
                ("#detail-agents", c.AGENT_HEADERS, agents),
                ("#detail-round-stats", c.ROUND_STAT_HEADERS, stats),
                ("#detail-rounds", c.ROUND_HEADERS, rounds),
            ):
                table = self.query_one(widget_id, DataTable)
                table.add_columns(*headers)
                table.add_rows(rows)
        runs = self.query_one("#detail-runs", DataTable)
        runs.add_columns(*RUN_COLUMNS)
        for record in self.session.runs:
            runs.add_row(*run_cells(record, record.index + 1, len(self.session.runs)))
        measured = [r for r in self.session.runs if r.status == "ok" and not r.warmup]
        label = str(self.session.manifest.get("label") or "runs")
        self.query_one("#chart-rate", ChartWidget).per_run(
            [
                (
                    label,
                    [
                        r.metrics.server_decode_rate
                        for r in measured
                        if r.metrics.server_decode_rate is not None
                    ],
                )
            ]
        )
        self.query_one("#chart-ttft", ChartWidget).per_run(
            [(label, [r.metrics.ttft_ms for r in measured if r.metrics.ttft_ms is not None])]
        )

    def action_export(self) -> None:
        self.app.push_screen(ExportDialog([self.session], self.app.config.exports_dir), self._exported)

    def _exported(self, path: Path | None) -> None:
        if path is not None:
            self.notify(str(path), title="Exported", timeout=8)

    def action_back(self) -> None:
        self.dismiss()
