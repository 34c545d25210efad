"""Setup: endpoint status, model, profile (with preview and reload warning), mode and workload."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import (
    Button,
    Checkbox,
    Header,
    Input,
    Label,
    RadioButton,
    RadioSet,
    Select,
    Static,
)

from chimera_tui.core.backends import BenchClient, open_client
from chimera_tui.core.backends.endpoint import endpoint_as_typed
from chimera_tui.core.backends.ollama import DEFAULT_URL, LoadedModel, ModelInfo, Timeouts
from chimera_tui.core.errors import ChimeraError
from chimera_tui.core.run.multi import DUAL_DEFAULT_ENDPOINTS
from chimera_tui.core.run.prompts import PRESETS
from chimera_tui.core.store.bundled import sample_data_dir
from chimera_tui.core.store.preferences import SetupChoices
from chimera_tui.core.store.profiles import (
    BASELINE_PROFILE,
    OPTION_REMOVED_IN,
    Profile,
    ProfileStore,
    reload_warning,
)
from chimera_tui.safe_text import ellipsize, sanitize_line
from chimera_tui.ui.choice import AgentChoice, BenchChoice
from chimera_tui.ui.widgets.footer import FittingFooter

if TYPE_CHECKING:
    from chimera_tui.ui.app import ChimeraApp

log = logging.getLogger(__name__)
PROBE_TIMEOUTS = Timeouts(connect_s=3.0, first_byte_s=10.0, idle_s=10.0)
WORKLOADS = [("single prompt", "prompt"), ("agent workflow", "workflow")]
WORKFLOW_NOTE = "ingest the data folder → analysis call → report call (one session, two calls a run)"
MODES = (
    ("single", "Single: one agent"),
    ("shared", "Shared: two agents, one server"),
    ("dual", "Dual: two endpoints at once"),
)
#: below this width or height the form uses compact (borderless) fields so that it fits 80x24
SMALL_WIDTH, SMALL_HEIGHT = 110, 36


def _size(n: int | None) -> str:
    """A model's size in GiB, as the reports give it."""
    return "—" if n is None else f"{n / 2**30:.1f} GiB"


#: a model name longer than this is cut with an ellipsis on screen (a 10,000-character name would
#: fill the screen); the full name is what is sent and saved
MAX_NAME_CHARS = 60


def model_label(m: ModelInfo) -> str:
    parts = [
        ellipsize(sanitize_line(m.name), MAX_NAME_CHARS),
        ellipsize(sanitize_line(m.parameter_size or "—"), 12),
        ellipsize(sanitize_line(m.quantization or "—"), 12),
        _size(m.size_bytes),
    ]
    return " ".join(parts)  # one space: it fits the 80-column layout on one line


def server_label(client: BenchClient) -> str:
    """The server kind for people: Ollama, or the OpenAI-compatible flavour (e.g. llama.cpp)."""
    return "Ollama" if client.backend == "ollama" else f"{client.server} (OpenAI API)"


def loaded_line(m: LoadedModel) -> str:
    share = m.gpu_share
    where = (
        "—"
        if share is None
        else ("100% GPU" if share >= 0.999 else "100% CPU" if share == 0 else f"{share * 100:.0f}% GPU")
    )
    ctx = f", ctx {m.context_length}" if m.context_length else ""
    return f"{ellipsize(sanitize_line(m.name), MAX_NAME_CHARS)} ({_size(m.size_bytes)}, {where}{ctx})"


class SetupScreen(Screen[None]):
    """Pick endpoint, model, profile, mode and workload; Enter (or F5) starts."""

    BINDINGS = [
        Binding("f5", "start", "Start", priority=True),
        Binding("ctrl+r", "refresh_endpoint", "Re-check endpoint"),
        Binding("f6", "capacity", "Capacity"),
    ]
    HELP_NAME = "setup"
    HELP_KEYS = (("enter", "start (on Start or in a number field); re-check (in an endpoint field)"),)

    app: ChimeraApp

    def __init__(self) -> None:
        super().__init__()
        self.models: list[ModelInfo] = []
        self._last_profile: Profile | None = None
        #: the profile options each profile Select shows (re-read when the screen resumes)
        self._shown_profiles: dict[str, list[tuple[str, str]]] = {}
        #: the app's benchmark count when the endpoint was last probed ("loaded now" after a run)
        self._probed_at_run = 0

    def compose(self) -> ComposeResult:
        config = self.app.config
        yield Header()
        with VerticalScroll(id="setup-form"):
            with Vertical(classes="section", id="endpoint-section"):
                yield Label("Endpoint", classes="section-title")
                with Horizontal(classes="row"):
                    yield Input(config.endpoints[0], id="endpoint", placeholder="http://127.0.0.1:11434")
                    yield Button("Check", id="check")
                yield Static("checking…", id="endpoint-status")
                yield Static("", id="loaded-models")
            with Horizontal(id="columns"):
                with Vertical(classes="section", id="model-section"):
                    yield Label("Model", classes="section-title")
                    yield Select[str]([], id="model", prompt="(no models yet)")
                    yield Static("", id="model-state", classes="note")
                    yield Label("Profile", classes="section-title")
                    yield self._profile_select()
                    yield Static("", id="profile-preview")
                    yield Static("", id="reload-warning")
                with Vertical(classes="section", id="workload-section"):
                    yield Label("Mode", classes="section-title")
                    with RadioSet(id="mode"):
                        for key, label in MODES:
                            yield RadioButton(label, value=key == "single", name=key)
                    yield Static("", id="mode-note", classes="note")
                    yield Label("Workload", classes="section-title")
                    presets = [(name, name) for name in PRESETS] + [("custom prompt", "custom")]
                    with Horizontal(classes="row", id="workload-row"):
                        yield Select[str](WORKLOADS, id="workload", value="prompt", allow_blank=False)
                        yield Select[str](presets, id="preset", value="short", allow_blank=False)
                    yield Input(str(sample_data_dir()), id="data-dir", placeholder="data folder")
                    yield Static(WORKFLOW_NOTE, id="workload-note", classes="note")
                    yield Input("", id="custom-prompt", placeholder="your prompt")
                    with Horizontal(classes="row", id="counts"):
                        with Vertical(classes="field"):
                            yield Label("runs", classes="field-label")
                            yield Input("3", id="runs", type="integer")
                        with Vertical(classes="field"):
                            yield Label("warm-up", classes="field-label")
                            yield Input("1", id="warmup", type="integer")
                        with Vertical(classes="field"):
                            yield Label("num_predict", classes="field-label")
                            yield Input("", id="num-predict", type="integer", placeholder="profile's")
                    yield Checkbox("Cold (unload before each run)", id="cold")
                    yield Checkbox("Cache cohorts (cold/warm)", id="cache-cohorts")
            with Vertical(classes="section", id="agent2-section"):
                yield Label("Agent 2", classes="section-title")
                with Horizontal(classes="row"):
                    yield Input(
                        self._second_endpoint(), id="endpoint-b", placeholder="http://127.0.0.1:11435"
                    )
                    yield Button("Check", id="check-b")
                yield Static("", id="endpoint-b-status")
                with Horizontal(classes="row"):
                    with Vertical(classes="field"):
                        yield Label("agent 2 model", classes="field-label")
                        yield Select[str]([], id="model-b", prompt="(no models yet)")
                    with Vertical(classes="field"):
                        yield Label("agent 2 profile", classes="field-label")
                        yield self._profile_select("profile-b")
                yield Checkbox(
                    "Solo baseline (each agent alone before every round)",
                    value=True,
                    id="solo",
                )
        yield Button("Start benchmark  (Enter / F5)", id="start", variant="primary")
        yield FittingFooter()

    def on_resize(self, event: events.Resize) -> None:
        """Small terminals: borderless fields, so the whole form (runs, warm-up…) fits 80x24."""
        small = event.size.width < SMALL_WIDTH or event.size.height < SMALL_HEIGHT
        self.set_class(small, "-small")
        for widget in self.query("Input, Select, Button, RadioSet, Checkbox"):
            widget.set_class(small, "-textual-compact")

    def on_mount(self) -> None:
        self.title = "Chimera TUI"
        self.sub_title = "setup" + ("  (demo: embedded simulator)" if self.app.config.demo else "")
        self.query_one("#custom-prompt").display = False
        self._restore_choices()
        self._workload_changed()
        self._mode_changed()
        for path, reason in self._profile_errors:
            self.notify(f"skipped invalid profile {path.name}: {reason}", severity="warning", timeout=8)
        self.query_one("#start", Button).focus()
        self._probed_at_run = self.app.benchmarks_started
        self.check_endpoint(self.query_one("#endpoint", Input).value)

    # -- remembered choices (the config folder's preferences.json) ---------------------------------
    def _restore_choices(self) -> None:
        """The last choices started from here; the endpoints only when none was given at launch (and
        not in the demo, whose simulators listen on new ports each time)."""
        config = self.app.config
        last = config.preferences.setup
        if not config.demo and config.endpoints == [DEFAULT_URL]:  # none given at launch
            if last.endpoint:
                self.query_one("#endpoint", Input).value = last.endpoint
            if last.endpoint_b:
                self.query_one("#endpoint-b", Input).value = last.endpoint_b
        for widget_id, value in (
            ("runs", last.runs),
            ("warmup", last.warmup),
            ("num-predict", last.num_predict),
        ):
            if value is not None:
                self.query_one(f"#{widget_id}", Input).value = value
        for widget_id, value in (("workload", last.workload), ("preset", last.preset)):
            select = self.query_one(f"#{widget_id}", Select)
            if value is not None and any(v == value for _, v in select._options):
                select.value = value
        if last.profile in self.profiles:
            self.query_one("#profile", Select).value = last.profile
        if last.cold is not None:
            self.query_one("#cold", Checkbox).value = last.cold
        for button in self.query(RadioButton):
            if last.mode is not None and button.name == last.mode:
                button.value = True

    def _remember_choices(self) -> None:
        prefs = self.app.config.preferences
        prefs.setup = SetupChoices(
            endpoint=self.query_one("#endpoint", Input).value.strip(),
            endpoint_b=self.query_one("#endpoint-b", Input).value.strip(),
            model=str(self.query_one("#model", Select).value),
            profile=str(self.query_one("#profile", Select).value),
            mode=self.mode,
            workload=str(self.query_one("#workload", Select).value),
            preset=str(self.query_one("#preset", Select).value),
            runs=self.query_one("#runs", Input).value.strip(),
            warmup=self.query_one("#warmup", Input).value.strip(),
            num_predict=self.query_one("#num-predict", Input).value.strip(),
            cold=self.query_one("#cold", Checkbox).value,
        )
        self.app.config.save_preferences()

    # -- profiles -----------------------------------------------------------------------------------
    def _second_endpoint(self) -> str:
        endpoints = self.app.config.endpoints
        return endpoints[1] if len(endpoints) > 1 else DUAL_DEFAULT_ENDPOINTS[1]

    def _load_profiles(self) -> None:
        """Read the profile store once per screen; invalid files are reported on mount."""
        config = self.app.config
        store = ProfileStore(config.profiles_builtin_dir, config.profiles_user_dir)
        self.profiles = {p.name: p for p in store.list()}
        self._profile_errors = store.errors

    def _profile_options(self) -> list[tuple[str, str]]:
        return [(p.name + ("" if p.builtin else "  (user)"), p.name) for p in self.profiles.values()]

    def _profile_select(self, widget_id: str = "profile") -> Select[str]:
        if not hasattr(self, "profiles"):
            self._load_profiles()
        options = self._profile_options()
        self._shown_profiles[widget_id] = options
        default = (
            BASELINE_PROFILE if BASELINE_PROFILE in self.profiles else (options[0][1] if options else None)
        )
        if default is None:
            return Select[str]([], id=widget_id, prompt="(no profiles found)")
        return Select[str](options, id=widget_id, allow_blank=False, value=default)

    @on(Select.Changed, "#profile")
    def _profile_changed(self, event: Select.Changed) -> None:
        profile = self.profiles.get(str(event.value))
        if profile is None:
            return
        lines = [f"[b]{escape(profile.description)}[/b]"] if profile.description else []
        for name, value, load_time in profile.option_lines():
            marker = " [i](load-time)[/i]" if load_time else ""
            if (
                name in OPTION_REMOVED_IN
            ):  # Ollama ignores it from that version on (core/backends/option_support)
                marker = f" [i](ignored by Ollama ≥ {OPTION_REMOVED_IN[name]})[/i]"
            lines.append(f"  {name} = {escape(value)}{marker}")
        if not profile.options:
            lines.append("  (no options: Ollama's defaults)")
        self.query_one("#profile-preview", Static).update("\n".join(lines))
        previous = self.app.last_profile
        warning = reload_warning(previous, profile)
        self.query_one("#reload-warning", Static).update(f"⚠ {escape(warning)}" if warning else "")

    # -- endpoint -----------------------------------------------------------------------------------
    @on(Button.Pressed, "#check")
    def _check_pressed(self) -> None:
        self.action_refresh_endpoint()

    @on(Button.Pressed, "#check-b")
    def _check_b_pressed(self) -> None:
        self._refresh_second()

    def action_refresh_endpoint(self) -> None:
        self.check_endpoint(self.query_one("#endpoint", Input).value, "a")
        self._refresh_second()

    def _refresh_second(self) -> None:
        if self.mode == "dual":
            self.check_endpoint(self.query_one("#endpoint-b", Input).value, "b")

    @property
    def mode(self) -> str:
        pressed = self.query_one("#mode", RadioSet).pressed_button
        return pressed.name if pressed is not None and pressed.name else "single"

    @on(RadioSet.Changed, "#mode")
    def _mode_changed(self) -> None:
        mode = self.mode
        self.query_one("#agent2-section").display = mode != "single"
        self.query_one("#endpoint-b", Input).disabled = mode == "shared"
        self.query_one("#check-b", Button).disabled = mode == "shared"
        notes = {
            "single": "One agent, one endpoint.",
            "shared": "Two agents on endpoint A at once (its parallel slots decide how they share it).",
            "dual": "Agent 2 runs on endpoint B (e.g. a second `ollama serve` on :11435), concurrently.",
        }
        self.query_one("#mode-note", Static).update(notes[mode])
        self._show_cohorts()
        if mode == "shared":
            self.query_one("#endpoint-b-status", Static).update("shared mode: agent 2 uses endpoint A")
            self._set_models(self.models, "model-b")
        elif mode == "dual":
            self._refresh_second()

    def _show_cohorts(self) -> None:
        """Cache cohorts are for one agent's prompt runs (not multi-agent modes, not the workflow)."""
        workflow = str(self.query_one("#workload", Select).value) == "workflow"
        self.query_one("#cache-cohorts").display = self.mode == "single" and not workflow

    @work(exclusive=False, group="probe", exit_on_error=False)
    async def check_endpoint(self, url: str, which: str = "a") -> None:
        """Probe an endpoint and fill its model list (`which`: "a" the main one, "b" agent 2's)."""
        status = self.query_one("#endpoint-status" if which == "a" else "#endpoint-b-status", Static)
        status.update(f"checking {escape(url)} …")
        client: BenchClient | None = None
        try:
            url = endpoint_as_typed(url)  # `0.0.0.0`, `:11435`: as Ollama reads OLLAMA_HOST
            client = await open_client(url, "auto", PROBE_TIMEOUTS, self.app.config.transport(url))
            info = await client.probe()
            models = await client.tags()
            loaded = await client.ps()
        except ChimeraError as exc:
            status.update(f"[b red]✗[/] {escape(sanitize_line(str(exc)))}")
            if which == "a":
                self.query_one("#loaded-models", Static).update("")
            self._set_models([], "model" if which == "a" else "model-b")
            return
        finally:
            if client is not None:
                await client.aclose()
        loaded_text = ", ".join(loaded_line(m) for m in loaded) or "none"
        text = (
            f"[b green]✓[/] reachable · {server_label(client)} "
            f"{escape(sanitize_line(info.version or 'version unknown'))} · "
            f"{len(models)} models"
        )
        if which == "a":
            status.update(text)
            self.query_one("#loaded-models", Static).update(f"loaded now: {escape(loaded_text)}")
            self._set_models(models, "model")
            if self.mode == "shared":
                self._set_models(models, "model-b")
        else:
            status.update(f"{text} · loaded now: {escape(loaded_text)}")
            self._set_models(models, "model-b")

    @on(Select.Changed, "#model")
    def _model_changed(self, event: Select.Changed) -> None:
        self.query_one("#model-state", Static).update("")
        if event.value is not Select.NULL and event.value:
            self.show_model_state(self.query_one("#endpoint", Input).value, str(event.value))

    @work(exclusive=True, group="model-state", exit_on_error=False)
    async def show_model_state(self, url: str, model: str) -> None:
        """The selected model's state as the server tells it before the run: engine, quantization,
        effective context, GPU share, slots (docs/metrics.md "Server state")."""
        from chimera_tui.core.measure.server_state import state_summary
        from chimera_tui.core.run.single import effective_state

        client: BenchClient | None = None
        try:
            url = endpoint_as_typed(url)
            client = await open_client(url, "auto", PROBE_TIMEOUTS, self.app.config.transport(url))
            info = await client.probe()
            state = await effective_state(client, info, model, await client.show(model))
        except ChimeraError as exc:
            log.info("no server state for %s: %s", model, exc)
            return
        finally:
            if client is not None:
                await client.aclose()
        summary = state_summary(state)
        self.query_one("#model-state", Static).update(escape(sanitize_line(summary)) if summary else "")

    def _set_models(self, models: list[ModelInfo], widget_id: str = "model") -> None:
        if widget_id == "model":
            self.models = models
        select = self.query_one(f"#{widget_id}", Select)
        current = select.value
        # the "(no models yet)" prompt is an option only while there are no models
        select._allow_blank = not models
        select.set_options([(model_label(m), m.name) for m in models])
        names = [m.name for m in models]
        remembered = self.app.config.preferences.setup.model if widget_id == "model" else None
        if current in names:
            select.value = current
        elif remembered in names:
            select.value = remembered
        elif names:
            select.value = names[0]

    # -- workload -----------------------------------------------------------------------------------
    @on(Select.Changed, "#workload")
    def _workload_changed(self) -> None:
        workflow = self.query_one("#workload", Select).value == "workflow"
        self.query_one("#preset").display = not workflow
        self.query_one("#custom-prompt").display = (
            not workflow and self.query_one("#preset", Select).value == "custom"
        )
        self.query_one("#data-dir").display = workflow
        self.query_one("#workload-note").display = workflow
        self.query_one("#cold").display = not workflow  # the workflow runs warm
        self._show_cohorts()

    def on_screen_resume(self) -> None:
        """Profiles may have been created, edited or deleted on the profiles screen: re-read them;
        after a benchmark, probe the endpoint again ("loaded now" has changed)."""
        if not self.is_mounted:
            return
        if self.app.benchmarks_started != self._probed_at_run:
            self._probed_at_run = self.app.benchmarks_started
            self.action_refresh_endpoint()
        self._load_profiles()
        options = self._profile_options()
        for widget_id in ("profile", "profile-b"):
            select = self.query_one(f"#{widget_id}", Select)
            if options and options != self._shown_profiles.get(widget_id):
                current = select.value
                select.set_options(options)
                select.value = current if current in self.profiles else options[0][1]
            self._shown_profiles[widget_id] = options

    @on(Select.Changed, "#preset")
    def _preset_changed(self, event: Select.Changed) -> None:
        shown = self.query_one("#preset").display
        self.query_one("#custom-prompt").display = shown and event.value == "custom"

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "endpoint":
            self.action_refresh_endpoint()
        elif event.input.id == "endpoint-b":
            self._refresh_second()
        else:
            self.action_start()

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    def _int(self, widget_id: str, minimum: int, label: str, allow_empty: bool = False) -> int | None:
        text = self.query_one(f"#{widget_id}", Input).value.strip()
        if not text and allow_empty:
            return None
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{label} must be a whole number") from None
        if value < minimum:
            raise ValueError(f"{label} must be at least {minimum}")
        return value

    @staticmethod
    def _endpoint(text: str) -> str:
        """The endpoint as typed, user-info kept in memory only; ValueError (one line) if invalid."""
        try:
            return endpoint_as_typed(text)
        except ChimeraError as exc:
            raise ValueError(str(exc)) from None

    def build_choice(self) -> BenchChoice:
        """The validated choice, or ValueError with one line for the user."""
        model = self.query_one("#model", Select).value
        if model is Select.NULL or not model:
            raise ValueError("no model selected: check the endpoint (it must list at least one model)")
        profile = self.profiles.get(str(self.query_one("#profile", Select).value))
        if profile is None:
            raise ValueError("no profile selected")
        preset = str(self.query_one("#preset", Select).value)
        if preset == "custom":
            prompt = self.query_one("#custom-prompt", Input).value
            if not prompt.strip():
                raise ValueError("the custom prompt is empty")
        else:
            prompt = PRESETS[preset]
        runs = self._int("runs", 1, "runs")
        warmup = self._int("warmup", 0, "warm-up runs")
        num_predict = self._int("num-predict", -2, "num_predict", allow_empty=True)
        mode = self.mode
        assert runs is not None and warmup is not None
        workload, data_dir = str(self.query_one("#workload", Select).value), None
        if workload == "workflow":
            if mode != "single":
                raise ValueError("the agent workflow runs one agent: choose single mode")
            data_dir = self.query_one("#data-dir", Input).value.strip()
            if not data_dir or not Path(data_dir).expanduser().is_dir():
                raise ValueError(f"data folder '{data_dir}' does not exist or is not a folder")
            preset, prompt = "agent workflow", ""
        cold = self.query_one("#cold", Checkbox).value and workload != "workflow"
        cohorts = self.query_one("#cache-cohorts", Checkbox).value and workload != "workflow"
        if cohorts and (cold or mode != "single"):
            raise ValueError("cache cohorts need a warm, single-agent run: untick Cold or choose single mode")
        # user-info stays in memory for the requests, never in the session (core/backends/endpoint.py)
        endpoint = self._endpoint(self.query_one("#endpoint", Input).value)
        second: AgentChoice | None = None
        if mode != "single":
            model_b = self.query_one("#model-b", Select).value
            if model_b is Select.NULL or not model_b:
                raise ValueError("no model selected for agent 2: check its endpoint")
            profile_b = self.profiles.get(str(self.query_one("#profile-b", Select).value))
            if profile_b is None:
                raise ValueError("no profile selected for agent 2")
            endpoint_b = endpoint if mode == "shared" else self.query_one("#endpoint-b", Input).value.strip()
            second = AgentChoice(self._endpoint(endpoint_b), str(model_b), profile_b)
        return BenchChoice(
            endpoint=endpoint,
            model=str(model),
            profile=profile,
            mode=mode,
            prompt_label=preset,
            prompt=prompt,
            runs=runs,
            warmup=warmup,
            cold=cold,
            cache_cohorts=cohorts,
            num_predict=num_predict,
            second=second,
            solo_baseline=self.query_one("#solo", Checkbox).value,
            workload=workload,
            data_dir=data_dir,
        )

    def action_capacity(self) -> None:
        """A capacity run (load curve) with these choices: chimera_tui/ui/screens/capacity.py."""
        self.app.action_capacity()

    def action_start(self) -> None:
        try:
            choice = self.build_choice()
        except ValueError as exc:
            self.notify(str(exc), severity="error", title="Cannot start")
            return
        self._remember_choices()
        self.app.start_benchmark(choice)
