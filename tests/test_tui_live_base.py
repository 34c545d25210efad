"""LiveScreenBase: the one feed → flush → widgets path under every live screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Static

from chimera_tui.core.backends.stream import TokenEvent
from chimera_tui.core.errors import ChimeraError
from chimera_tui.core.run.events import PhaseChanged, TokenBatch
from chimera_tui.ui import live_gc
from chimera_tui.ui.feed import BenchAborted
from chimera_tui.ui.screens.live import LiveScreen
from chimera_tui.ui.screens.live_base import LiveScreenBase
from chimera_tui.ui.screens.multi_live import MultiLiveScreen
from chimera_tui.ui.screens.sweep_live import SweepLiveScreen
from tests.tui_helpers import wait_until

pytestmark = pytest.mark.anyio


def test_every_live_screen_is_one_and_leaves_the_loop_to_the_base() -> None:
    for screen in (LiveScreen, MultiLiveScreen, SweepLiveScreen):
        assert issubclass(screen, LiveScreenBase)
        for name in ("on_mount", "on_unmount", "flush", "_run_in_thread", "action_cancel", "action_back"):
            assert name not in vars(screen), f"{screen.__name__} defines {name}"


class FakeRunner:
    def __init__(self, fail: Exception | None = None) -> None:
        self.cancelled = False
        self.fail = fail

    def cancel(self) -> None:
        self.cancelled = True


class Recorder(LiveScreenBase):
    def __init__(self, runner: FakeRunner, autostart: bool = False) -> None:
        super().__init__(autostart=autostart)
        self.fake = runner
        self.seen: list[Any] = []

    def compose(self) -> ComposeResult:
        yield Static("", id="phase")

    def make_runner(self) -> FakeRunner:
        return self.fake

    def run_runner(self) -> None:
        if self.fake.fail is not None:
            raise self.fake.fail

    def handle_event(self, item: Any) -> None:
        if isinstance(item, BenchAborted):
            self.show_aborted(item)
        self.seen.append(item)

    def write_text(self, agent: int, content: str, thinking: str, thinking_count: int) -> None:
        self.seen.append((agent, content, thinking, thinking_count))


def _batch(agent: int, *texts: str, kind: str = "content") -> TokenBatch:
    return TokenBatch(0, [TokenEvent(1, t, kind) for t in texts], 0, agent)  # type: ignore[arg-type]


async def test_the_flush_groups_text_per_agent_between_events_and_drives_gc(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(live_gc, "start", lambda: calls.append("start"))
    monkeypatch.setattr(live_gc, "tick", lambda: calls.append("tick"))
    monkeypatch.setattr(live_gc, "stop", lambda: calls.append("stop"))
    app: App[None] = App()
    async with app.run_test() as pilot:
        screen = Recorder(FakeRunner())
        await app.push_screen(screen)
        assert calls[:1] == ["start"] and screen.runner is screen.fake and not screen.running
        phase = PhaseChanged("loading")
        for item in (
            _batch(0, "a", "b"),
            _batch(1, "x"),
            _batch(0, "c"),
            _batch(0, "hm", kind="thinking"),
            phase,
            _batch(1, "y"),
        ):
            screen.feed.push(item)
        await wait_until(pilot, lambda: len(screen.seen) == 4)
        assert screen.seen == [(0, "abc", "hm", 1), (1, "x", "", 0), phase, (1, "y", "", 0)]
        assert "tick" in calls
        screen.dismiss()
        await wait_until(pilot, lambda: "stop" in calls)


async def test_a_runner_that_fails_is_one_line_and_back_cancels_first(tmp_path: Path) -> None:
    app: App[None] = App()
    async with app.run_test() as pilot:
        screen = Recorder(FakeRunner(ChimeraError("model not found")), autostart=True)
        await app.push_screen(screen)
        await wait_until(pilot, lambda: screen.error is not None)
        assert screen.error == "model not found" and not screen.running
        assert "model not found" in str(screen.query_one("#phase", Static).render())
        screen.running = True  # as if a run were in progress: back asks, then cancels and waits
        screen.action_back()
        assert not screen.fake.cancelled and app.screen is screen  # the first press only asks
        screen.action_back()
        assert screen.fake.cancelled and app.screen is screen
        screen.feed.push(BenchAborted("cancelled"))
        await wait_until(pilot, lambda: app.screen is not screen)
