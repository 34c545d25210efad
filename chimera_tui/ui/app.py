"""The Chimera TUI application: setup → live run, with help, palette commands and themes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Input, Select

from chimera_tui.core.store.profiles import Profile
from chimera_tui.core.store.sessions import Session
from chimera_tui.core.system.monitor import SystemMonitor
from chimera_tui.safe_text import sanitize, sanitize_line
from chimera_tui.ui import bench_trace
from chimera_tui.ui.choice import BenchChoice
from chimera_tui.ui.config import AppConfig
from chimera_tui.ui.screens.help import HelpScreen
from chimera_tui.ui.screens.live import LiveScreen
from chimera_tui.ui.screens.setup import SetupScreen

STYLES = Path(__file__).parent / "styles"


class ChimeraApp(App[None]):
    TITLE = "Chimera TUI"
    CSS_PATH = [
        STYLES / "app.tcss",
        STYLES / "setup.tcss",
        STYLES / "live.tcss",
        STYLES / "system_panel.tcss",
        STYLES / "sessions.tcss",
        STYLES / "multi.tcss",
        STYLES / "profiles.tcss",
        STYLES / "sweep.tcss",
        STYLES / "capacity.tcss",
        STYLES / "load.tcss",
    ]
    BINDINGS = [
        Binding("f2", "sessions", "Sessions"),
        Binding("f3", "profiles", "Profiles"),
        Binding("f4", "sweeps", "Sweeps"),
        Binding("question_mark", "help", "Help"),
        Binding("ctrl+t", "toggle_theme", "Theme"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, config: AppConfig | None = None) -> None:
        super().__init__()
        self.config = config or AppConfig()
        self.monitor: SystemMonitor | None = None
        #: the profile of the last session run here, for the reload warning
        self.last_profile: Profile | None = None
        #: read-only sessions imported from Chimeraforge metrics.json files (kept in memory)
        self.imported_sessions: list[Session] = []
        #: the endpoint and model of the last benchmark started here (sweeps default to them)
        self.current_endpoint: str | None = None
        self.current_model: str | None = None

    def on_mount(self) -> None:
        self.theme = "textual-dark"
        if self.config.monitor_interval_s > 0:
            self.monitor = SystemMonitor(self.config.monitor_interval_s, nvml_module=self.config.nvml_module)
            self.monitor.start()
        self.push_screen(SetupScreen())
        bench_trace.install(self)  # benchmarks only: a no-op unless CHIMERA_TUI_BENCH_* is set

    def on_unmount(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()

    def start_benchmark(self, choice: BenchChoice) -> None:
        self.current_endpoint, self.current_model = choice.endpoint, choice.model
        if choice.second is not None:
            from chimera_tui.ui.screens.multi_live import MultiLiveScreen

            self.push_screen(MultiLiveScreen(choice))
        else:
            self.push_screen(LiveScreen(choice))

    def action_sessions(self) -> None:
        from chimera_tui.ui.screens.sessions import SessionsScreen

        if not isinstance(self.screen, SessionsScreen):
            self.push_screen(SessionsScreen())

    def action_profiles(self) -> None:
        from chimera_tui.ui.screens.profiles import ProfilesScreen

        if not isinstance(self.screen, ProfilesScreen):
            self.push_screen(ProfilesScreen())

    def action_sweeps(self) -> None:
        from chimera_tui.ui.screens.sweep_setup import SweepSetupScreen

        if not isinstance(self.screen, SweepSetupScreen):
            self.push_screen(SweepSetupScreen())

    def action_load_test(self) -> None:
        from chimera_tui.ui.screens.load_run import LoadScreen

        if not isinstance(self.screen, LoadScreen):
            self.push_screen(LoadScreen())

    def endpoint_and_model(self) -> tuple[str, str]:
        """The setup screen's endpoint and model as they are now (else the last run's, else defaults)."""
        endpoint = self.current_endpoint or self.config.endpoints[0]
        model = self.current_model or ""
        setup = next((s for s in self.screen_stack if isinstance(s, SetupScreen)), None)
        if setup is not None:
            with contextlib.suppress(NoMatches):
                endpoint = setup.query_one("#endpoint", Input).value.strip().rstrip("/") or endpoint
                value = setup.query_one("#model", Select).value
                model = str(value) if isinstance(value, str) and value else model
        return endpoint, model

    def open_session(self, session: Session) -> None:
        if session.manifest.kind == "capacity":
            self.open_capacity([session])
            return
        from chimera_tui.ui.screens.session_detail import SessionDetailScreen

        self.push_screen(SessionDetailScreen(session))

    def open_capacity(self, sessions: list[Session]) -> None:
        """Saved capacity sessions on one chart (one: its curve; more: compared)."""
        from chimera_tui.ui.screens.capacity import CapacityScreen

        self.push_screen(CapacityScreen(sessions=sessions))

    def action_capacity(self) -> None:
        """A capacity run with the setup screen's endpoint, model, profile and workload."""
        setup = next((s for s in self.screen_stack if isinstance(s, SetupScreen)), None)
        if setup is None:
            return
        try:
            choice = setup.build_choice()
        except ValueError as exc:
            self.notify(str(exc), severity="error", title="Cannot start")
            return
        from chimera_tui.ui.screens.capacity import CapacityScreen

        self.push_screen(CapacityScreen(choice))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every notification is plain text (`markup` is ignored: widgets pass True by default).
        Messages carry server and model text; an error with `[/]` in it would otherwise be a
        markup error that stops the app, and escape sequences are stripped as everywhere else."""
        super().notify(
            sanitize(message), title=sanitize_line(title), severity=severity, timeout=timeout, markup=False
        )

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help", "Keys and what each screen does", self.action_help)
        yield SystemCommand("Sessions", "Browse, compare and export saved sessions", self.action_sessions)
        yield SystemCommand(
            "Profiles", "Create, edit, duplicate, diff and delete profiles", self.action_profiles
        )
        yield SystemCommand("Sweeps", "Run, resume and rank parameter sweeps", self.action_sweeps)
        yield SystemCommand(
            "Capacity", "How many at once: a load curve with the setup's choices", self.action_capacity
        )
        yield SystemCommand(
            "Load test", "Many users on Locust (its own processes), saved as a session", self.action_load_test
        )
        yield SystemCommand(
            "Toggle light/dark", "Switch between the light and dark theme", self.action_toggle_theme
        )
        if isinstance(screen, SetupScreen):
            yield SystemCommand("Start benchmark", "Run with the current choices", screen.action_start)
            yield SystemCommand(
                "Re-check endpoint", "Probe the endpoint again", screen.action_refresh_endpoint
            )
        if isinstance(screen, LiveScreen):
            yield SystemCommand("Cancel run", "Stop the run in progress", screen.action_cancel)
            yield SystemCommand(
                "Show session folder", "Where this session is saved", screen.action_open_session
            )
