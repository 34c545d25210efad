"""What the app is started with: endpoints, where sessions go, and injectable parts for tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from chimera_tui.core.backends.ollama import DEFAULT_URL, Timeouts
from chimera_tui.core.store.preferences import Preferences, load_preferences, preferences_path
from chimera_tui.core.store.preferences import save_preferences as write_preferences
from chimera_tui.places import exports_dir as default_exports_dir
from chimera_tui.places import sessions_dir as default_sessions_dir
from chimera_tui.places import user_data_dir

if TYPE_CHECKING:
    from chimera_tui.core.run.gpu import GpuOptions


@dataclass(slots=True)
class AppConfig:
    endpoints: list[str] = field(default_factory=lambda: [DEFAULT_URL])
    #: default places: chimera_tui.places (the launcher passes --sessions-dir when given)
    sessions_root: Path = field(default_factory=default_sessions_dir)
    exports_dir: Path = field(default_factory=default_exports_dir)
    #: where the palette's Screenshot saves (created on the first screenshot)
    screenshots_dir: Path = field(default_factory=lambda: user_data_dir() / "screenshots")
    #: the theme and last setup choices (None: nothing is remembered)
    preferences_path: Path | None = field(default_factory=preferences_path)
    preferences: Preferences = field(default_factory=Preferences)
    demo: bool = False
    timeouts: Timeouts = field(default_factory=Timeouts)
    #: for tests: an in-process transport per endpoint URL instead of a socket
    transport_factory: Callable[[str], httpx.AsyncBaseTransport] | None = None
    #: for tests: a fake NVML module; None means the real pynvml (or none)
    nvml_module: Any | None = None
    #: sample the GPU/host on this interval; 0 disables the monitor (tests)
    monitor_interval_s: float = 0.5
    #: seconds of GPU idle baseline before each session (None: the default; 0 disables, as tests do)
    idle_baseline_s: float | None = None
    #: thermal gate before each run after the first (`chimera-tui --cool-to C`); None: no gate
    cool_to_c: float | None = None
    #: live screens run the measuring engine in its own process (core/run/process.py); the real TUI
    #: sets it, tests (in-process transports cannot cross a process) keep the thread
    engine_process: bool = False
    profiles_builtin_dir: Path | None = None
    profiles_user_dir: Path | None = None

    def gpu_options(self) -> GpuOptions:
        """What the runners measure the GPU with (the app's NVML module, the idle baseline)."""
        from chimera_tui.core.run.gpu import GpuOptions

        return GpuOptions(
            nvml_module=self.nvml_module, idle_baseline_s=self.idle_baseline_s, cool_to_c=self.cool_to_c
        )

    def __post_init__(self) -> None:
        if self.preferences_path is not None:
            self.preferences = load_preferences(self.preferences_path)

    def save_preferences(self) -> None:
        if self.preferences_path is not None:
            write_preferences(self.preferences, self.preferences_path)

    def transport(self, url: str) -> httpx.AsyncBaseTransport | None:
        return self.transport_factory(url) if self.transport_factory else None
