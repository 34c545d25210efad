"""A few snapshots (one per screen state) at fixed sizes. Everything on screen is deterministic:
the live screen is fed scripted events with fixed stamps instead of a real run. Every screen at
80x24 and 160x48 on fixed data: tests/snapshots/test_screens.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from tests.snapshots.scripted import scripted_live, system_reading
from tests.tui_helpers import make_app, wait_until

SIZES = [(100, 32), (80, 24)]


def _app(tmp_path: Path) -> Any:
    app, _ = make_app(tmp_path, monitor_interval_s=0)
    return app


def test_setup_screen(snap_compare: Any, tmp_path: Path) -> None:
    async def ready(pilot: Pilot[Any]) -> None:
        await wait_until(
            pilot, lambda: "reachable" in str(pilot.app.screen.query_one("#endpoint-status").render())
        )

    assert snap_compare(_app(tmp_path), terminal_size=(100, 32), run_before=ready)


def _live_test(size: tuple[int, int]) -> Any:
    def test(snap_compare: Any, tmp_path: Path) -> None:
        async def script(pilot: Pilot[Any]) -> None:
            screen = scripted_live(tmp_path)
            await pilot.app.push_screen(screen)
            system_reading(screen)
            await wait_until(pilot, lambda: screen.query_one("#run-rows").row_count == 2)
            await pilot.pause()

        assert snap_compare(_app(tmp_path), terminal_size=size, run_before=script)

    return test


test_live_screen_100x32 = _live_test((100, 32))
test_live_screen_80x24 = _live_test((80, 24))
