"""A sweep's results: the ranking against the baseline, the success rate worded honestly, heat maps of
tok/s and TTFT over two chosen options, saving the best configuration as a profile, and exports."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.color import Color
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Header, Label, Select, Static

from chimera_tui.core.errors import ChimeraError
from chimera_tui.core.measure.catalogue import MAP_KEYS, select
from chimera_tui.core.reports.sweep_report import (
    heatmap_title,
    sweep_csv,
    sweep_html,
    sweep_json,
    sweep_markdown,
)
from chimera_tui.core.run.sweep import (
    HeatMap,
    RankRow,
    SweepRecord,
    best_profile,
    heatmaps_by,
    load_sweep_sessions,
    rank,
    success_rate,
)
from chimera_tui.core.store.profiles import ProfileStore, format_value
from chimera_tui.core.store.sessions import safe_slug
from chimera_tui.safe_text import sanitize_line
from chimera_tui.ui.screens.compare import VERDICT_STYLE
from chimera_tui.ui.screens.dialogs import ReportDialog, TextPrompt
from chimera_tui.ui.screens.sweep_setup import significance_note
from chimera_tui.ui.widgets.footer import FittingFooter

if TYPE_CHECKING:
    from chimera_tui.ui.app import ChimeraApp

#: the verdict comes early so it stays in view on an 80-column terminal
RANK_COLUMNS = (
    "#",
    "configuration",
    "tok/s mean ± sd",
    "Δ% tok/s",
    "verdict",
    "CV%",
    "TTFT ms",
    "n",
    "reload ms",
)
STYLES = {**VERDICT_STYLE, "baseline": "italic", "no baseline": "dim"}
#: the maps shown: (metric, higher is better), from the catalogue's map selection
MAP_METRICS = tuple((m.key, m.higher_is_better is not False) for m in select(MAP_KEYS))


def _n(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def rank_cells(row: RankRow) -> tuple[str | Text, ...]:
    """One ranking row: options come from files, so the key is a plain Text, never markup."""
    mean_sd = _n(row.mean, 2) + (f" ± {row.sd:.2f}" if row.sd is not None else "")
    delta = "—" if row.delta_pct is None else f"{row.delta_pct:+.1f}%"
    return (
        str(row.rank),
        Text(sanitize_line(row.key)),
        mean_sd,
        delta,
        Text(row.verdict, style=STYLES.get(row.verdict, "")),
        _n(row.cv_pct),
        _n(row.mean_ttft_ms),
        str(row.n),
        _n(row.reload_load_ms),
    )


def success_line(rows: list[RankRow], runs: int) -> str:
    """``configurations significantly faster than the baseline: k of n``, and why none can be."""
    if not any(r.is_baseline for r in rows):
        return "no baseline configuration in this sweep: nothing is compared against one"
    beat, total, pct = success_rate(rows)
    text = f"configurations significantly faster than the baseline: {beat} of {total}"
    if pct is not None:
        text += f" ({pct:.0f}%)"
    note = significance_note(runs)
    return f"{text} — {note}" if note else text


class SweepResultsScreen(Screen[None]):
    """Ranking, success rate, heat maps; save the best as a profile (s), export (e)."""

    BINDINGS = [
        Binding("s", "save_best", "Save best"),
        Binding("e", "export", "Export"),
        Binding("escape", "back", "Back"),
    ]
    HELP_NAME = "sweep results"

    app: ChimeraApp

    def __init__(self, record: SweepRecord) -> None:
        super().__init__()
        self.record = record
        sessions, self.problems = load_sweep_sessions(record)
        self.rows: list[RankRow] = rank(sessions, record.baseline_key, record=record) if sessions else []
        self.options = list(record.definition.grid)
        self.heatmaps: list[HeatMap] = []
        #: one redraw at a time (axis changes, the theme and the first draw can overlap)
        self._drawing = asyncio.Lock()

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="results-body"):
            yield Static("", id="results-head")
            table: DataTable[str | Text] = DataTable(id="ranking", cursor_type="row", zebra_stripes=True)
            yield table
            yield Static("", id="success-line")
            yield Label("Heat maps", classes="section-title")
            with Horizontal(id="heat-axes"):
                yield Label("x", classes="axis-label")
                yield Select[str]([(o, o) for o in self.options], id="heat-x", allow_blank=False)
                yield Label("y", classes="axis-label")
                yield Select[str]([(o, o) for o in self.options], id="heat-y", allow_blank=False)
            yield Static("", id="heat-note", classes="note")
            yield Vertical(id="heatmaps")
        yield FittingFooter()

    def on_mount(self) -> None:
        r = self.record
        self.sub_title = f"sweep {r.id}"
        counts = r.counts()
        d = r.definition
        head = (
            f"[b]{escape(sanitize_line(d.name))}[/b] · {escape(sanitize_line(r.model))} · "
            f"{escape(sanitize_line(r.endpoint))} · "
            f"{r.status} · {counts['done']} of {len(r.configs)} configurations done · "
            f"{d.runs} run(s) + {d.warmup} warm-up · {d.order}"
        )
        if self.problems:
            head += "\n" + "\n".join(f"⚠ {escape(sanitize_line(p))}" for p in self.problems[:3])
        self.query_one("#results-head", Static).update(head)
        table = self.query_one("#ranking", DataTable)
        table.add_columns(*RANK_COLUMNS)
        for row in self.rows:
            table.add_row(*rank_cells(row), key=row.key)
        self.query_one("#success-line", Static).update(escape(success_line(self.rows, d.runs)))
        x_default = "num_gpu" if "num_gpu" in self.options else (self.options[0] if self.options else None)
        rest = [o for o in self.options if o != x_default]
        y_default = "num_ctx" if "num_ctx" in rest else (rest[0] if rest else None)
        if x_default is not None:
            self.query_one("#heat-x", Select).value = x_default
        if y_default is not None:
            self.query_one("#heat-y", Select).value = y_default
        self.watch(self.app, "theme", self._theme_changed, init=False)
        self.call_later(self.draw_heatmaps)
        table.focus(scroll_visible=False)

    # -- heat maps ----------------------------------------------------------------------------------
    async def _theme_changed(self) -> None:
        """The cell colours come from the theme: redraw them in the new one."""
        await self.draw_heatmaps()

    @on(Select.Changed, "#heat-x")
    @on(Select.Changed, "#heat-y")
    async def _axes_changed(self) -> None:
        await self.draw_heatmaps()

    async def draw_heatmaps(self) -> None:
        """One map per metric and per value of the option left over (e.g. per temperature)."""
        async with self._drawing:
            await self._draw_heatmaps()

    async def _draw_heatmaps(self) -> None:
        box = self.query_one("#heatmaps", Vertical)
        await box.remove_children()
        note = self.query_one("#heat-note", Static)
        x, y = self.query_one("#heat-x", Select).value, self.query_one("#heat-y", Select).value
        if len(self.options) < 2:
            note.update("heat maps need a grid of two or more options; this sweep varies one")
            self.heatmaps = []
            return
        if x == y or not isinstance(x, str) or not isinstance(y, str):
            note.update("pick two different options for x and y")
            self.heatmaps = []
            return
        note.update("greener is better (higher tok/s, lower TTFT); the baseline is left out")
        maps = [(hm, higher) for metric, higher in MAP_METRICS for hm in heatmaps_by(self.rows, x, y, metric)]
        self.heatmaps = [hm for hm, _ in maps]
        widgets: list[Widget] = []
        for hm, higher in maps:
            widgets.append(Label(escape(heatmap_title(hm)), classes="heatmap-title"))
            widgets.append(self._heatmap_table(hm, higher))
        await box.mount_all(widgets)

    def _heatmap_table(self, hm: HeatMap, higher_better: bool) -> DataTable[str | Text]:
        table: DataTable[str | Text] = DataTable(
            classes="heatmap", cursor_type="none", show_cursor=False, cell_padding=0
        )
        digits = 1 if hm.metric == "ttft_ms" else 2
        values = [v for row in hm.cells for v in row if v is not None]
        heads = [sanitize_line(format_value(x)) for x in hm.x_values]
        # every cell padded to its column's width, so the shading fills the whole cell
        width = max([len(f"{v:.{digits}f}") for v in values] + [len(h) for h in heads] + [1]) + 2
        table.add_column(Text(f" {hm.y_option} \\ {hm.x_option} "))
        for head in heads:
            table.add_column(Text(head.rjust(width - 1) + " "))
        lo, hi = (min(values), max(values)) if values else (0.0, 0.0)
        theme = self.app.theme_variables
        base = Color.parse(theme.get("surface", "#000000"))
        good = Color.parse(theme.get("success", "#2ea043"))
        for yi, y in enumerate(hm.y_values):
            cells: list[str | Text] = [Text(f" {sanitize_line(format_value(y))}", style="bold")]
            for value in hm.cells[yi]:
                if value is None:
                    cells.append(Text("—".rjust(width - 1) + " ", style="dim"))
                    continue
                t = 0.5 if hi == lo else (value - lo) / (hi - lo)
                t = t if higher_better else 1 - t
                bg = base.blend(good, 0.1 + 0.8 * t)
                fg = bg.get_contrast_text(1.0)
                text = f"{value:.{digits}f}".rjust(width - 1) + " "
                cells.append(Text(text, style=f"{fg.hex} on {bg.hex}"))
            table.add_row(*cells)
        return table

    # -- actions ------------------------------------------------------------------------------------
    def action_save_best(self) -> None:
        if not any(r.mean is not None for r in self.rows):
            self.notify("no configuration has measured runs: nothing to save", severity="warning")
            return
        config = self.app.config
        store = ProfileStore(config.profiles_builtin_dir, config.profiles_user_dir)

        def done(name: str | None) -> None:
            if not name:
                return
            name = name.strip()
            if (store.user_dir / f"{name}.toml").is_file():
                self.notify(f"a user profile named {name} exists: pick another name", severity="warning")
                return
            try:
                path = store.save_user(best_profile(self.rows, name))
            except ChimeraError as exc:
                self.notify(sanitize_line(str(exc)), severity="error", title="Not saved")
                return
            self.notify(f"{path}", title=f"Best configuration saved as profile {name}", timeout=8)

        top = next(r for r in self.rows if r.mean is not None)
        title = f"Save the best configuration ({top.key}, {top.verdict}) as a profile named"
        default = safe_slug(f"{self.record.definition.name}_best", 60)
        self.app.push_screen(TextPrompt(title, default), done)

    def render_report(self, fmt: str) -> str:
        """The sweep report in ``fmt`` (md, csv, json, html) with the heat maps shown here."""
        if fmt == "md":
            return sweep_markdown(self.record, self.rows, self.heatmaps)
        if fmt == "csv":
            return sweep_csv(self.rows)
        if fmt == "json":
            return (
                json.dumps(sweep_json(self.record, self.rows, self.heatmaps), indent=2, allow_nan=False)
                + "\n"
            )
        if fmt == "html":
            return sweep_html(self.record, self.rows, self.heatmaps)
        raise ValueError(f"unknown export format '{fmt}'")

    def action_export(self) -> None:
        stem = f"sweep-{safe_slug(self.record.id, 100)}"
        dialog = ReportDialog(
            f"Export sweep {self.record.id}",
            self.app.config.exports_dir,
            lambda fmt: f"{stem}.{fmt}",
            self.render_report,
        )
        self.app.push_screen(dialog, self._exported)

    def _exported(self, path: Path | None) -> None:
        if path is not None:
            self.notify(str(path), title="Exported", timeout=8)

    def action_back(self) -> None:
        self.dismiss()
