"""Sweeps (F4): pick a definition, override how it runs, start it; resume or open past sweeps.

The endpoint and model default to the setup screen's. Nothing here measures: the sweep runs on the
live sweep screen, and its results open on the results screen.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, DataTable, Header, Input, Label, Select, Static

from chimera_tui.core.backends.endpoint import endpoint_as_typed
from chimera_tui.core.errors import ChimeraError
from chimera_tui.core.run.sweep import (
    ORDERS,
    SweepDefinition,
    SweepError,
    SweepRecord,
    SweepRunner,
    builtin_sweeps_dir,
    find_sweep,
    list_sweeps,
    load_sweep,
    smallest_p_value,
)
from chimera_tui.core.store.profiles import ProfileStore, format_value
from chimera_tui.safe_text import sanitize_line
from chimera_tui.ui.feed import LiveFeed
from chimera_tui.ui.widgets.footer import FittingFooter

if TYPE_CHECKING:
    from chimera_tui.ui.app import ChimeraApp

#: the definition Select's value for "a .toml file"
FILE = "__file__"
LIST_COLUMNS = ("created", "sweep", "model", "status", "configs done", "id")


def builtin_sweeps() -> list[str]:
    """The names of the built-in sweep files (``tr111``, …)."""
    try:
        return sorted(p.stem for p in builtin_sweeps_dir().glob("*.toml") if p.is_file())
    except OSError:
        return []


def describe(defn: SweepDefinition) -> str:
    """A few lines: the grid, how many configurations, the base profile and the prompt."""
    grid = " × ".join(f"{k} {'/'.join(format_value(v) for v in vals)}" for k, vals in defn.grid.items())
    baseline = " + baseline" if defn.include_baseline else ""
    prompt = defn.prompt_preset or ("custom prompt" if defn.prompt else "default prompt")
    lines = [
        f"{defn.name}: {grid}{baseline} = {defn.config_count} configurations",
        f"base profile {defn.base_profile} · prompt {prompt}" + (" · cold" if defn.cold else ""),
    ]
    if defn.description:
        lines.insert(0, defn.description)
    return "\n".join(sanitize_line(line) for line in lines)


def significance_note(runs: int) -> str:
    """Why no configuration can be significantly faster with fewer than 4 runs; empty otherwise."""
    if runs >= 4:
        return ""
    p = smallest_p_value(runs)
    return (
        f"with {runs} run(s) per configuration no difference can be significant: the permutation "
        f"test's smallest p is {p:.2g} (it must be under 0.05); use 4 runs or more"
    )


def _done(record: SweepRecord) -> int:
    return record.counts()["done"]


class SweepSetupScreen(Screen[None]):
    """Start a sweep, or resume / open one of the sweeps recorded in the sessions folder."""

    BINDINGS = [
        Binding("f5", "start", "Start sweep", priority=True),
        Binding("r", "resume", "Resume"),
        Binding("o", "open_results", "Open results"),
        Binding("escape", "back", "Back"),
    ]
    HELP_NAME = "sweeps"

    app: ChimeraApp

    def __init__(self) -> None:
        super().__init__()
        self.definition: SweepDefinition | None = None
        self.records: list[SweepRecord] = []
        #: another screen was opened on top (coming back focuses the list of sweeps)
        self._left = False

    def compose(self) -> ComposeResult:
        endpoint, model = self.app.endpoint_and_model()
        names = builtin_sweeps()
        choices = [(f"{n} (built-in)", n) for n in names] + [("a .toml file…", FILE)]
        yield Header()
        with VerticalScroll(id="sweep-form"):
            yield Label("Definition", classes="section-title")
            with Horizontal(classes="row"):
                yield Select[str](choices, id="sweep-def", value=choices[0][1], allow_blank=False)
                yield Input("", id="sweep-path", placeholder="path/to/sweep.toml")
            yield Static("", id="sweep-summary")
            yield Label("How it runs (overrides the definition)", classes="section-title")
            with Horizontal(classes="row", id="sweep-counts"):
                for widget_id, label in (
                    ("sweep-runs", "runs"),
                    ("sweep-warmup", "warm-up"),
                    ("sweep-cooldown", "cooldown s"),
                    ("sweep-cool-to", "cool °C"),
                    ("sweep-num-predict", "num_predict"),
                ):
                    with Vertical(classes="field"):
                        yield Label(label, classes="field-label")
                        yield Input("", id=widget_id)
                with Vertical(classes="field", id="order-field"):
                    yield Label("order", classes="field-label")
                    yield Select[str]([(o, o) for o in ORDERS], id="sweep-order", allow_blank=False)
            yield Static("", id="sweep-note", classes="note")
            yield Label("Target", classes="section-title")
            with Horizontal(classes="row"):
                yield Input(endpoint, id="sweep-endpoint", placeholder="http://127.0.0.1:11434")
                yield Input(model, id="sweep-model", placeholder="model (as the server lists it)")
            yield Label("Past sweeps", classes="section-title")
            table: DataTable[str | Text] = DataTable(id="sweep-list", cursor_type="row", zebra_stripes=True)
            yield table
            yield Static("", id="sweep-list-status")
        with Horizontal(id="sweep-buttons"):
            yield Button("Start sweep (F5)", id="sweep-start", variant="primary", compact=True)
            yield Button("Resume (r)", id="sweep-resume", compact=True)
            yield Button("Open results (o)", id="sweep-open", compact=True)
        yield FittingFooter()

    def on_mount(self) -> None:
        self.sub_title = "parameter sweeps"
        self.query_one("#sweep-list", DataTable).add_columns(*LIST_COLUMNS)
        self._definition_changed()
        self.query_one("#sweep-start", Button).focus()

    def on_screen_resume(self) -> None:
        """Back from a sweep: list it (with its new status) and bring the list into view."""
        if not self.is_mounted:
            return
        self.reload_list()
        if self.records and self._left:
            self.query_one("#sweep-list", DataTable).focus()

    def on_screen_suspend(self) -> None:
        self._left = True

    # -- the definition -----------------------------------------------------------------------------
    @on(Select.Changed, "#sweep-def")
    @on(Input.Submitted, "#sweep-path")
    def _definition_changed(self) -> None:
        choice = self.query_one("#sweep-def", Select).value
        path_input = self.query_one("#sweep-path", Input)
        path_input.display = choice == FILE
        summary = self.query_one("#sweep-summary", Static)
        self.definition = None
        try:
            if choice == FILE:
                text = path_input.value.strip()
                if not text:
                    summary.update("type the path of a sweep file (.toml) and press enter")
                    return
                defn = load_sweep(Path(text).expanduser())
            else:
                defn = find_sweep(str(choice))
        except ChimeraError as exc:
            summary.update(f"[b]✗[/b] {escape(sanitize_line(str(exc)))}")
            return
        self.definition = defn
        summary.update(escape(describe(defn)))
        self._fill(defn)

    def _fill(self, defn: SweepDefinition) -> None:
        values = {
            "sweep-runs": str(defn.runs),
            "sweep-warmup": str(defn.warmup),
            "sweep-cooldown": f"{defn.cooldown_s:g}",
            "sweep-num-predict": "" if defn.num_predict is None else str(defn.num_predict),
        }
        for widget_id, value in values.items():
            self.query_one(f"#{widget_id}", Input).value = value
        self.query_one("#sweep-order", Select).value = defn.order

    @on(Input.Changed, "#sweep-runs")
    def _runs_changed(self, event: Input.Changed) -> None:
        try:
            note = significance_note(int(event.value))
        except ValueError:
            note = ""
        self.query_one("#sweep-note", Static).update(escape(note))

    def _number(self, widget_id: str, label: str, kind: type) -> Any:
        text = self.query_one(f"#{widget_id}", Input).value.strip()
        if not text:
            return None
        try:
            return kind(text)
        except ValueError:
            noun = "a whole number" if kind is int else "a number"
            raise SweepError(f"{label} must be {noun}, got '{sanitize_line(text)[:20]}'") from None

    def _gpu_options(self) -> Any:
        """The app's GPU options with this form's thermal gate (wait below C °C between configurations)."""
        cool_to = self._number("sweep-cool-to", "cool to", float)
        if cool_to is not None and not 0 < cool_to <= 150:
            raise SweepError(f"cool to must be a temperature between 0 and 150 °C, got {cool_to:g}")
        options = self.app.config.gpu_options()  # `chimera-tui --cool-to` when the form leaves it empty
        return dataclasses.replace(options, cool_to_c=cool_to if cool_to is not None else options.cool_to_c)

    def build_definition(self) -> SweepDefinition:
        """The chosen definition with the overrides applied (validated), or SweepError."""
        if self.definition is None:
            raise SweepError("pick a sweep definition first (a built-in or a .toml file)")
        changes: dict[str, Any] = {
            "runs": self._number("sweep-runs", "runs", int),
            "warmup": self._number("sweep-warmup", "warm-up", int),
            "cooldown_s": self._number("sweep-cooldown", "cooldown", float),
            "order": str(self.query_one("#sweep-order", Select).value),
        }
        changes = {k: v for k, v in changes.items() if v is not None}
        changes["num_predict"] = self._number("sweep-num-predict", "num_predict", int)
        return dataclasses.replace(self.definition, **changes)

    # -- past sweeps --------------------------------------------------------------------------------
    def reload_list(self) -> None:
        records, broken = list_sweeps(self.app.config.sessions_root)
        self.records = records
        table = self.query_one("#sweep-list", DataTable)
        keep = self._current_id()
        table.clear()
        for r in records:
            table.add_row(
                Text(sanitize_line(r.created_at[:19].replace("T", " "))),
                Text(sanitize_line(r.definition.name)),
                Text(sanitize_line(r.model)),
                r.status,
                f"{_done(r)} of {len(r.configs)}",
                Text(sanitize_line(r.id)),
                key=str(r.path),
            )
        if keep is not None and keep in table.rows:
            table.move_cursor(row=table.get_row_index(keep))
        text = f"{len(records)} sweep(s) in {self.app.config.sessions_root}"
        if broken:
            text += f" · {len(broken)} unreadable: " + "; ".join(
                sanitize_line(f"{p.name}: {reason}")[:100] for p, reason in broken[:2]
            )
        self.query_one("#sweep-list-status", Static).update(Text(text))

    def _current_id(self) -> str | None:
        table = self.query_one("#sweep-list", DataTable)
        if table.row_count == 0:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:
            return None

    def selected(self) -> SweepRecord | None:
        key = self._current_id()
        return next((r for r in self.records if str(r.path) == key), None)

    # -- actions ------------------------------------------------------------------------------------
    @on(Button.Pressed, "#sweep-start")
    def action_start(self) -> None:
        config = self.app.config
        typed = self.query_one("#sweep-endpoint", Input).value
        model = self.query_one("#sweep-model", Input).value.strip()
        feed = LiveFeed()
        try:
            endpoint = endpoint_as_typed(typed)  # user-info kept in memory only; host-only as Ollama
            defn = self.build_definition()
            if not model:
                raise SweepError("no model: type one, or pick it on the setup screen first")
            runner = SweepRunner(
                defn,
                config.sessions_root,
                endpoint,
                model,
                feed.push,
                config.transport(endpoint),
                config.nvml_module,
                timeouts=config.timeouts,
                store=ProfileStore(config.profiles_builtin_dir, config.profiles_user_dir),
                gpu=self._gpu_options(),
            )
        except ChimeraError as exc:
            self.notify(sanitize_line(str(exc)), severity="error", title="Cannot start the sweep")
            return
        self._go(runner, feed)

    @on(Button.Pressed, "#sweep-resume")
    def action_resume(self) -> None:
        record = self.selected()
        if record is None:
            self.notify("no sweep selected: pick one in the list of past sweeps")
            return
        if record.status == "complete":
            self.notify("this sweep is complete: o opens its results")
            return
        if record.status == "running":
            self.notify("this sweep is running in another process", severity="warning")
            return
        config = self.app.config
        feed = LiveFeed()
        try:
            runner = SweepRunner.from_record(
                record.path, feed.push, config.transport(record.endpoint), config.nvml_module, config.timeouts
            )
            runner.gpu_options = self._gpu_options()  # the app's idle baseline, this form's gate
        except ChimeraError as exc:
            self.notify(sanitize_line(str(exc)), severity="error", title="Cannot resume")
            return
        self._go(runner, feed)

    def _go(self, runner: SweepRunner, feed: LiveFeed) -> None:
        from chimera_tui.ui.screens.sweep_live import SweepLiveScreen

        self.app.push_screen(SweepLiveScreen(runner, feed))

    @on(DataTable.RowSelected, "#sweep-list")
    @on(Button.Pressed, "#sweep-open")
    def action_open_results(self) -> None:
        record = self.selected()
        if record is None:
            self.notify("no sweep selected: pick one in the list of past sweeps")
            return
        if _done(record) == 0:
            self.notify("nothing measured yet in this sweep: r resumes it")
            return
        from chimera_tui.ui.screens.sweep_results import SweepResultsScreen

        self.app.push_screen(SweepResultsScreen(record))

    def action_back(self) -> None:
        self.dismiss()
