"""One session: its manifest, the aggregates, every run, and per-run charts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Collapsible, DataTable, Header, Label, Static

from chimera_tui.core.errors import SessionError
from chimera_tui.core.measure.catalogue import STAGE_KEYS, SUMMARY_KEYS, fmt, select
from chimera_tui.core.measure.server_state import state_summary
from chimera_tui.core.measure.stats import Summary, summarize
from chimera_tui.core.reports import _common as c
from chimera_tui.core.run.workflow import load_workflow_runs, stage_of, stage_summaries
from chimera_tui.core.store.labels import display_label
from chimera_tui.core.store.manifest import ModelRecord, ProfileRecord
from chimera_tui.core.store.numbering import run_label
from chimera_tui.core.store.sessions import Session
from chimera_tui.safe_text import ellipsize, sanitize, sanitize_line
from chimera_tui.ui.screens.dialogs import ExportDialog
from chimera_tui.ui.widgets.chart import ChartWidget
from chimera_tui.ui.widgets.footer import FittingFooter
from chimera_tui.ui.widgets.runs_table import COLUMNS as RUN_COLUMNS
from chimera_tui.ui.widgets.runs_table import run_cells

if TYPE_CHECKING:
    from chimera_tui.ui.app import ChimeraApp


#: from this terminal width on, full metric names in the aggregates
WIDE = 140
#: the metric column's width on narrower terminals
NARROW_METRIC = 26


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def manifest_text(session: Session) -> str:
    """The configuration in a few lines (escaped: names come from servers and files)."""
    m = session.manifest
    model, profile, workload = m.model or ModelRecord(), m.profile or ProfileRecord(), m.workload_or_empty
    env = m.environment or {}
    options = ", ".join(f"{k}={v}" for k, v in m.profile_options.items()) or "Ollama defaults"
    where = ", ".join(f"{_or(e.url, '?')} (Ollama {_or(e.version, '?')})" for e in m.endpoint_list) or "—"
    gpus = ", ".join(g.get("name", "?") for g in env.get("gpus", [])) or env.get("gpu_status", "—")
    lines = [
        f"[b]{escape(sanitize_line(display_label(m)))}[/b] · {session.status} · {_or(m.created_at, '')}",
        f"model {sanitize_line(_or(model.name, '?'))} · {_or(model.parameter_size, '—')} · "
        f"{_or(model.quantization, '—')}",
        f"profile {sanitize_line(_or(profile.name, '?'))}: {sanitize_line(options)}",
        f"mode {_or(m.mode, '?')} · {sanitize_line(where)}",
        f"workload {sanitize_line(_or(workload.prompt_label, '?'))} · "
        f"runs {_or(workload.runs, '?')} "
        f"+ warm-up {_or(workload.warmup, '?')} · {'cold' if workload.cold else 'warm'} · "
        f"num_predict {_or(workload.num_predict, 'default')}",
        f"machine {sanitize_line(str(env.get('cpu', '—')))} · GPU {sanitize_line(str(gpus))}",
    ]
    endpoints = m.endpoint_list
    for i, e in enumerate(endpoints):
        summary = state_summary(e.state)
        if summary:
            version = f"{e.version} · " if e.version else ""
            lines.append(
                f"server{f' {i + 1}' if len(endpoints) > 1 else ''}: {sanitize_line(version + summary)}"
            )
    if workload.kind == "agent_workflow":
        lines.append(
            f"agent workflow: {' → '.join(['ingest', *(workload.stages or [])])} · data "
            f"{sanitize_line(_or(workload.directory, '?'))} ({_or(workload.file_count, '?')} files)"
        )
    sweep = m.sweep
    if sweep is not None:
        visits = _or(sweep.visits, 1)
        visit = f" (visit {_or(sweep.visit, '?')} of {visits})" if visits > 1 else ""
        lines.append(
            f"part of sweep {sanitize_line(_or(sweep.id, '?'))} · configuration "
            f"{sanitize_line(_or(sweep.key, '?'))}{visit}"
        )
    lines.append(f"id {session.id}")
    return "\n".join(escape(line) if i else line for i, line in enumerate(lines))


#: per-stage columns (the catalogue's stage selection)
STAGE_METRICS = select(STAGE_KEYS)
#: per-workflow-run figures (workflow.json keys)
WORKFLOW_FIGURES = (
    ("ingest_ms", "ingest ms"),
    ("analysis_e2e_ms", "analysis e2e ms"),
    ("report_e2e_ms", "report e2e ms"),
    ("workflow_ms", "whole workflow ms"),
    ("total_tokens", "tokens (both stages)"),
)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _mean_sd(s: Summary | None, digits: int) -> str:
    if s is None or s.n == 0:
        return "—"
    return fmt(s.mean, digits) + (f" ± {fmt(s.stddev, digits)}" if s.stddev is not None else "")


class SessionDetailScreen(Screen[None]):
    """One saved session: its configuration, the aggregates, every run, and charts."""

    BINDINGS = [Binding("e", "export", "Export"), Binding("escape", "back", "Back")]
    HELP_NAME = "session"

    app: ChimeraApp

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="detail-body"):
            yield Static(manifest_text(self.session), id="manifest")
            yield DataTable(id="aggregates", cursor_type="row", zebra_stripes=True)
            notes = c.session_notes(self.session)
            if notes:
                yield Static(escape("\n".join(notes)), id="detail-notes", classes="note")
            if self.session.rounds:
                yield Static(
                    escape("\n".join(c.concurrency_notes(self.session))),
                    id="detail-concurrency",
                    classes="note",
                )
                yield DataTable(id="detail-agents", cursor_type="row", zebra_stripes=True)
                yield DataTable(id="detail-round-stats", cursor_type="row", zebra_stripes=True)
                yield DataTable(id="detail-rounds", cursor_type="row", zebra_stripes=True)
            if self.session.manifest.mode == "workflow":
                yield Label("Agent workflow: per stage", classes="section-title")
                yield DataTable(id="detail-stages", cursor_type="row", zebra_stripes=True)
                yield Label(
                    "Agent workflow: per workflow run (measured, successful)", classes="section-title"
                )
                yield DataTable(id="detail-workflow", cursor_type="row", zebra_stripes=True)
                yield Static("", id="detail-workflow-note", classes="note")
                yield Label("Agent workflow: what each stage answered", classes="section-title")
                with Vertical(id="detail-stage-texts"):
                    for record in self.session.runs:
                        if stage_of(record) is not None:
                            with Collapsible(title=f"{run_label(record)} · {record.status}", collapsed=True):
                                yield Static(
                                    Text(sanitize(record.response) or "(no text)"), classes="stage-text"
                                )
            yield DataTable(id="detail-runs", cursor_type="row", zebra_stripes=True)
            with Horizontal(classes="charts"):
                yield ChartWidget("decode rate per run (server)", "tok/s", id="chart-rate")
                yield ChartWidget("TTFT per run", "ms", id="chart-ttft")
        yield FittingFooter()

    def on_mount(self) -> None:
        self.sub_title = f"session · {sanitize_line(display_label(self.session.manifest))}"
        self._wide = self.app.size.width >= WIDE
        self._fill_aggregates()
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
        if self.session.manifest.mode == "workflow":
            self._fill_workflow()
        runs = self.query_one("#detail-runs", DataTable)
        runs.add_columns(*RUN_COLUMNS)
        for record in self.session.runs:
            runs.add_row(*run_cells(record))
        measured = [r for r in self.session.runs if r.status == "ok" and not r.warmup]
        label = display_label(self.session.manifest)
        for chart_id, key in (("#chart-rate", "server_decode_rate"), ("#chart-ttft", "ttft_ms")):
            points = [(run_label(r), getattr(r.metrics, key)) for r in measured]
            points = [(name, value) for name, value in points if value is not None]
            self.query_one(chart_id, ChartWidget).per_run(
                [(label, [value for _, value in points])], [name for name, _ in points]
            )

    def on_resize(self, event: events.Resize) -> None:
        wide = event.size.width >= WIDE
        if wide != getattr(self, "_wide", wide):
            self._wide = wide
            self._fill_aggregates()

    def _fill_aggregates(self) -> None:
        """Mean ± sd, CV%, min, max, CI and n per metric; short metric names and no min / max on
        narrow terminals."""
        agg = self.query_one("#aggregates", DataTable)
        agg.clear(columns=True)
        first = "metric (all agents)" if self.session.rounds else "metric"
        # narrow terminals keep the spread that matters (sd, CV, CI) and leave min / max out
        wide = self._wide
        agg.add_columns(first, "mean ± sd", "CV%", *(("min", "max") if wide else ()), "95% CI", "n")
        for m in select(SUMMARY_KEYS):
            s = self.session.aggregates.get(m.key)
            if s is None or s.n == 0:
                continue
            digits = m.digits
            mean_sd = fmt(s.mean, digits) + (f" ± {fmt(s.stddev, digits)}" if s.stddev is not None else "")
            ci = f"{fmt(s.ci95_low, digits)}–{fmt(s.ci95_high, digits)}" if s.ci95_low is not None else "—"
            name = m.title if self._wide else ellipsize(m.short_title, NARROW_METRIC)
            extremes = (fmt(s.min, digits), fmt(s.max, digits)) if wide else ()
            agg.add_row(name, mean_sd, fmt(s.cv_pct), *extremes, ci, str(s.n))

    def _fill_workflow(self) -> None:
        """Each stage's figures over its calls, and each workflow run's totals (workflow.json)."""
        stages = self.query_one("#detail-stages", DataTable)
        stages.add_columns("stage", "n", "e2e ms", "TTFT ms", "tok/s (server)", "tokens")
        for stage, agg in stage_summaries(self.session).items():
            e2e = agg.get("e2e_ms")
            stages.add_row(
                stage,
                str(e2e.n if e2e else 0),
                *(_mean_sd(agg.get(m.key), m.digits) for m in STAGE_METRICS),
            )
        table = self.query_one("#detail-workflow", DataTable)
        table.add_columns("figure", "mean ± sd", "min", "max", "n")
        note = self.query_one("#detail-workflow-note", Static)
        try:
            entries = load_workflow_runs(self.session.path)
        except SessionError as exc:
            note.update(escape(sanitize_line(str(exc))))
            return
        ok = [e for e in entries if e.get("status") == "ok" and not e.get("warmup")]
        for key, label in WORKFLOW_FIGURES:
            s = summarize(_number(e.get(key)) for e in ok)
            table.add_row(label, _mean_sd(s, 1), fmt(s.min, 1), fmt(s.max, 1), str(s.n))
        others = len(entries) - len(ok)
        note.update(
            f"over {len(ok)} measured, successful workflow run(s)"
            + (f"; {others} other(s) (warm-up, failed, cancelled) left out" if others else "")
        )

    def action_export(self) -> None:
        self.app.push_screen(ExportDialog([self.session], self.app.config.exports_dir), self._exported)

    def _exported(self, path: Path | None) -> None:
        if path is not None:
            self.notify(str(path), title="Exported", timeout=8)

    def action_back(self) -> None:
        self.dismiss()
