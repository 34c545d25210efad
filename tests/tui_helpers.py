"""Helpers for Pilot tests: an app wired to an in-process simulator, and predicate waits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from chimera_tui.sim import OllamaSimulator
from chimera_tui.ui.app import ChimeraApp
from chimera_tui.ui.config import AppConfig
from tests.fake_nvml import FakeNvml
from tests.helpers import fast_sim


def make_app(
    tmp_path: Path, sim: OllamaSimulator | None = None, **config: Any
) -> tuple[ChimeraApp, OllamaSimulator]:
    sim = sim or fast_sim()
    cfg = AppConfig(
        endpoints=["http://sim"],
        sessions_root=tmp_path / "sessions",
        transport_factory=lambda url: sim.transport() if url == "http://sim" else None,  # type: ignore[arg-type,return-value]
        nvml_module=config.pop("nvml_module", FakeNvml(gpus=1)),
        monitor_interval_s=config.pop("monitor_interval_s", 0.05),
        idle_baseline_s=config.pop("idle_baseline_s", 0),
        **config,
    )
    return ChimeraApp(cfg), sim


async def wait_until(pilot: Pilot[Any], predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll a condition while letting the app run; fail with the timeout instead of sleeping blindly."""
    waited = 0.0
    while not predicate():
        if waited >= timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await pilot.pause(0.05)
        waited += 0.05
