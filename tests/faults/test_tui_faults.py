"""The TUI against faults on a real socket: a notification and a failed row, and the app keeps going."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input, Log, Static

from chimera_tui.core.backends.ollama import Timeouts
from chimera_tui.core.store import atomic
from chimera_tui.ui.app import ChimeraApp
from chimera_tui.ui.screens.live import LiveScreen
from chimera_tui.ui.screens.setup import SetupScreen
from chimera_tui.ui.widgets.stream_pane import MAX_LINES, StreamPane
from tests.fake_nvml import FakeNvml
from tests.fault_server import (
    FINAL,
    FakeOllama,
    FaultServer,
    Reply,
    Request,
    json_reply,
    ndjson,
    normal_stream,
    stream_reply,
    text_reply,
)
from tests.tui_helpers import make_app, wait_until

pytestmark = pytest.mark.anyio

HOSTILE_ERROR = "bad [/] markup [b]bold[/b] [link=http://evil]x[/link] \x1b]52;c;ZXZpbA==\x07 end"


def app_for(tmp_path: Path, server: FaultServer, **config: Any) -> ChimeraApp:
    app, _ = make_app(tmp_path, **config)
    app.config.endpoints = [server.url]  # a real socket: transport_factory gives None for it
    app.config.timeouts = Timeouts(connect_s=2.0, first_byte_s=5.0, idle_s=2.0)
    return app


def status(app: ChimeraApp) -> str:
    return str(app.screen.query_one("#endpoint-status", Static).render())


def messages(app: ChimeraApp) -> list[str]:
    return [n.message for n in app._notifications]


async def start_run(pilot: Any, app: ChimeraApp, runs: int = 2) -> LiveScreen:
    await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen) and "reachable" in status(app))
    app.screen.query_one("#runs", Input).value = str(runs)
    app.screen.query_one("#warmup", Input).value = "0"
    await pilot.press("f5")
    await wait_until(pilot, lambda: isinstance(app.screen, LiveScreen))
    live = app.screen
    assert isinstance(live, LiveScreen)
    return live


async def test_a_failed_run_gives_a_notification_and_a_failed_row_and_the_app_goes_on(
    ollama: tuple[FakeOllama, FaultServer], tmp_path: Path
) -> None:
    fake, server = ollama
    replies = iter([json_reply(500, {"error": HOSTILE_ERROR}), normal_stream(5)])
    fake.stream = lambda _r: next(replies, normal_stream(5))
    app = app_for(tmp_path, server)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        live = await start_run(pilot, app)
        await wait_until(pilot, lambda: live.session is not None)
        assert live.session is not None and [r.status for r in live.session.runs] == ["failed", "ok"]
        table = live.query_one("#run-rows", DataTable)
        assert table.row_count == 2
        row = [str(c) for c in table.get_row_at(0)]
        assert row[1].startswith("failed: server returned HTTP 500: bad [/] markup")
        failed = [m for m in messages(app) if "HTTP 500" in m]
        assert len(failed) == 1 and "\x1b" not in failed[0] and "\x07" not in failed[0]
        assert "n=1" in str(live.query_one("#aggregate", Static).render())  # the failed run is not counted
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen))
        live = await start_run(pilot, app, runs=1)  # the app keeps working
        await wait_until(pilot, lambda: live.session is not None)
        assert live.session is not None and live.session.status == "complete"


async def test_an_endpoint_that_is_not_ollama_is_said_plainly(tmp_path: Path) -> None:
    with FaultServer(lambda _r: text_reply(200, "<html>router login [/]</html>")) as server:
        app = app_for(tmp_path, server)
        async with app.run_test(size=(120, 40), notifications=True) as pilot:
            await wait_until(pilot, lambda: "not an Ollama server" in status(app))
            await pilot.press("f5")
            await pilot.pause()
            assert isinstance(app.screen, SetupScreen)
            assert any("no model selected" in m for m in messages(app))


async def test_disk_full_mid_session_is_shown_and_the_app_survives(
    ollama: tuple[FakeOllama, FaultServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, server = ollama
    real = os.replace
    writes = {"n": 0}

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if str(dst).startswith(str(tmp_path / "sessions")):
            writes["n"] += 1
            if writes["n"] > 4:  # manifest, metrics, run 1 start + finish; then the disk is full
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(src, dst, *args, **kwargs)

    monkeypatch.setattr(atomic.os, "replace", replace)
    app = app_for(tmp_path, server)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        live = await start_run(pilot, app, runs=3)
        await wait_until(pilot, lambda: live.error is not None)
        assert "No space left on device" in (live.error or "")
        assert any("No space left on device" in m for m in messages(app))
        assert not live.running
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen))


async def test_nvml_failing_mid_run_does_not_stop_the_benchmark(
    ollama: tuple[FakeOllama, FaultServer], tmp_path: Path
) -> None:
    fake, server = ollama
    fake.stream = lambda _r: stream_reply(
        [ndjson(*[{"response": "t", "done": False}] * 5), 0.15, ndjson(FINAL)]
    )
    nvml = FakeNvml(gpus=1, fail_after_n_samples=2)
    app = app_for(tmp_path, server, nvml_module=nvml, monitor_interval_s=0.02)
    async with app.run_test(size=(120, 40)) as pilot:
        live = await start_run(pilot, app, runs=2)
        await wait_until(pilot, lambda: live.session is not None)
        assert live.session is not None and live.session.status == "complete"
        await wait_until(pilot, lambda: app.monitor is not None and "NVML failed" in app.monitor.gpu_status)
        texts = " ".join(str(w.render()) for w in live.query(Static))
        assert "NVML failed" in texts


async def test_hostile_model_output_is_shown_inert(
    ollama: tuple[FakeOllama, FaultServer], tmp_path: Path
) -> None:
    fake, server = ollama
    evil = [
        "\x1b[31mred\x1b[0m ",
        "\x1b]52;c;ZXZpbA==\x07",
        "\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\ ",
        "bell\x07 back\x08\x08ck ",
        "\r\x1b[2Kover ",
        "[b]markup[/b] [/] ",
        "\x9b31mc1 ",
    ]

    def stream(_request: Request) -> Reply:
        lines = [{"model": "m", "response": text, "done": False} for text in evil]
        return stream_reply([ndjson(line) for line in lines] + [ndjson({**FINAL, "eval_count": len(evil)})])

    fake.stream = stream
    app = app_for(tmp_path, server)
    async with app.run_test(size=(120, 40)) as pilot:
        live = await start_run(pilot, app, runs=1)
        await wait_until(pilot, lambda: live.session is not None)
        text = live.query_one(StreamPane).content_text
        assert all(c not in text for c in "\x1b\x07\x08\r\x9b")
        assert "red" in text and "link" in text and "[b]markup[/b] [/]" in text
        assert live.session is not None and live.session.runs[0].response == "".join(evil)  # stored as sent


async def test_the_stream_pane_keeps_a_bounded_number_of_lines(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen))
        pane = StreamPane()
        await app.screen.mount(pane)
        for _ in range(10):  # 100 runs x 4,000 tokens would be this many lines and more
            pane.append("word\n" * 1000, "thought\n" * 1000, 1000)
        await pilot.pause()
        assert len(pane.query_one("#content-log", Log).lines) <= MAX_LINES
        assert len(pane.query_one("#thinking-log", Log).lines) <= MAX_LINES
