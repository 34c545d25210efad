"""The Chimera TUI application: setup → live run, with help, palette commands and themes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path

from textual._files import generate_datetime_filename
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.system_commands import SystemCommandsProvider
from textual.widgets import Input, Select

from chimera_tui.core.store.atomic import atomic_write_text
from chimera_tui.core.store.profiles import Profile
from chimera_tui.core.store.sessions import Session
from chimera_tui.core.system.monitor import SystemMonitor
from chimera_tui.safe_text import sanitize, sanitize_line
from chimera_tui.ui import bench_trace
from chimera_tui.ui.choice import BenchChoice
from chimera_tui.ui.config import AppConfig
from chimera_tui.ui.keys import ScreenActions
from chimera_tui.ui.screens.help import HelpScreen
from chimera_tui.ui.screens.live import LiveScreen
from chimera_tui.ui.screens.live_base import LiveScreenBase
from chimera_tui.ui.screens.setup import SetupScreen
from chimera_tui.ui.second_press import SecondPress

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
    #: the palette: app-wide commands, then every action of the screen it is opened on
    COMMANDS = {SystemCommandsProvider, ScreenActions}
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
        #: the endpoint and model of the last benchmark started here (sweeps default to them)
        self.current_endpoint: str | None = None
        self.current_model: str | None = None
        self._quit_press = SecondPress()
        #: benchmarks started in this app (setup probes the endpoint again after one)
        self.benchmarks_started = 0
        self._theme_ready = False

    def on_mount(self) -> None:
        theme = self.config.preferences.theme
        self.theme = theme if theme in self.available_themes else "textual-dark"
        self._theme_ready = True
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
        self.benchmarks_started += 1
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
            self.push_screen(HelpScreen(self.screen))

    def running_screen(self) -> LiveScreenBase | None:
        """A live screen whose run is still going, if any."""
        return next((s for s in self.screen_stack if isinstance(s, LiveScreenBase) and s.running), None)

    async def action_quit(self) -> None:
        """Quit; while a run is going, the first ctrl+q asks and a second one within seconds quits."""
        if self.running_screen() is not None and not self._quit_press.confirm("quit"):
            self.notify(
                "a run is in progress: press ctrl+q again to cancel it and quit",
                severity="warning",
                timeout=5,
            )
            return
        await super().action_quit()

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        """Screenshots go to the screenshots folder (created when needed); the notification names the file."""
        folder = Path(path) if path else self.config.screenshots_dir
        name = filename or generate_datetime_filename(self.title, ".svg", time_format)
        try:
            atomic_write_text(folder / name, self.export_screenshot())
        except OSError as exc:
            self.notify(
                f"could not save the screenshot in {folder}: {exc}", severity="error", title="Screenshot"
            )
            return None
        self.notify(str(folder / name), title="Screenshot saved", timeout=8)
        return None

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

    def watch_theme(self, theme: str) -> None:
        """The theme is remembered in the config folder (whichever way it was changed)."""
        if self._theme_ready and theme != self.config.preferences.theme:
            self.config.preferences.theme = theme
            self.config.save_preferences()

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
