"""The runner against faults on a real socket: every failed run is on disk with its cause, never in
the statistics, and the session goes on (or stops with one clear message when it cannot)."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chimera_tui.core.backends.ollama import Timeouts
from chimera_tui.core.errors import ModelNotFound, SessionError
from chimera_tui.core.run.events import PhaseChanged, RunEvent, RunFailed
from chimera_tui.core.run.single import BenchRunner
from chimera_tui.core.store import atomic
from chimera_tui.core.store.sessions import Session, load_session
from tests.fake_nvml import FakeNvml
from tests.fault_server import (
    FINAL,
    HANG,
    FakeOllama,
    FaultServer,
    Reply,
    Request,
    json_reply,
    ndjson,
    normal_stream,
    stream_reply,
    text_reply,
    tokens,
)
from tests.helpers import spec

pytestmark = pytest.mark.anyio

Server = tuple[FakeOllama, FaultServer]


def on_call(n: int, reply: Reply) -> Callable[[Request], Reply]:
    """Healthy streams, except the n-th streamed call (1-based) gets `reply`."""
    count = 0

    def stream(_request: Request) -> Reply:
        nonlocal count
        count += 1
        return reply if count == n else normal_stream(5)

    return stream


async def run(
    server: FaultServer, tmp_path: Path, events: list[RunEvent] | None = None, **overrides: Any
) -> Session:
    options: dict[str, Any] = {"model": "m:latest", "endpoint": server.url, "runs": 3, "warmup": 0}
    options.update(overrides)
    emit = events.append if events is not None else None
    return await BenchRunner(spec(**options), tmp_path / "sessions", emit).run()


FAILURES = [
    pytest.param(json_reply(500, {"error": "llama runner process has terminated"}), "server_error",
                 "HTTP 500: llama runner process has terminated", id="500"),
    pytest.param(json_reply(400, {"error": "invalid options"}), "server_error", "HTTP 400", id="400"),
    pytest.param(json_reply(503, {"error": "server busy, please try again."}), "server_error", "HTTP 503",
                 id="503-queue-full"),
    pytest.param(stream_reply([ndjson(*tokens(2), {"error": "out of memory"})]), "stream_error",
                 "mid-stream: out of memory", id="midstream-error"),
    pytest.param(stream_reply([ndjson(*tokens(2))]), "stream_error", "without a final 'done'",
                 id="ended-without-done"),
    pytest.param(stream_reply([ndjson(*tokens(2))], end=False), "stream_error", "broke mid-stream",
                 id="server-killed"),
    pytest.param(stream_reply([ndjson(*tokens(1)), b"{oops\n"]), "stream_error", "not JSON", id="bad-json"),
    pytest.param(stream_reply([b'{"response": "\xc3\x28"}\n']), "stream_error", "UTF-8", id="not-utf8"),
    pytest.param(text_reply(200, "<html>proxy login</html>"), "stream_error", "not JSON", id="html-200"),
    pytest.param(stream_reply([ndjson(*tokens(2)), HANG]), "timeout", "(idle timeout)", id="stall"),
]  # fmt: skip


@pytest.mark.parametrize(("reply", "kind", "text"), FAILURES)
async def test_a_failed_run_is_recorded_with_its_cause_and_excluded(
    ollama: Server, tmp_path: Path, reply: Reply, kind: str, text: str
) -> None:
    fake, server = ollama
    fake.stream = on_call(2, reply)
    events: list[RunEvent] = []
    session = await run(server, tmp_path, events, timeouts=Timeouts(connect_s=2, first_byte_s=5, idle_s=0.3))
    assert session.status == "complete"  # one bad run does not stop the session
    assert [r.status for r in session.runs] == ["ok", "failed", "ok"]
    failed = session.runs[1]
    assert failed.error_kind == kind and text in (failed.error or "")
    assert [e.record.index for e in events if isinstance(e, RunFailed)] == [1]
    saved = load_session(session.path)  # on disk, with the cause
    assert saved.runs[1].status == "failed" and saved.runs[1].error == failed.error
    for key in ("server_decode_rate", "ttft_ms", "e2e_ms", "token_count"):
        assert saved.aggregates[key].n == 2  # only the two good runs
    assert saved.counts == {"ok": 2, "failed": 1, "cancelled": 0, "incomplete": 0, "warmup": 0}


async def test_unknown_model_mid_session_stops_and_lists_the_models(ollama: Server, tmp_path: Path) -> None:
    fake, server = ollama

    def vanish(request: Request) -> Reply:
        fake.models = ["other:7b"]  # deleted (ollama rm) after the first run started
        return normal_stream(5)

    fake.stream = vanish
    session = await run(server, tmp_path)
    assert session.status == "failed"
    assert [r.status for r in session.runs] == ["ok", "failed"]
    assert session.runs[1].error_kind == "model_not_found"
    assert "available: other:7b" in (session.runs[1].error or "")
    assert "model 'm:latest' not found" in load_session(session.path).manifest.result.error


async def test_unknown_model_before_the_session_starts(ollama: Server, tmp_path: Path) -> None:
    _, server = ollama
    with pytest.raises(ModelNotFound, match="available: m:latest, other:7b"):
        await run(server, tmp_path, model="nope:1b")
    assert not (tmp_path / "sessions").exists() or not any((tmp_path / "sessions").iterdir())


async def test_duplicate_done_and_absurd_durations_keep_the_run_but_not_the_bad_figure(
    ollama: Server, tmp_path: Path
) -> None:
    fake, server = ollama
    absurd = {**FINAL, "eval_duration": 10**18}
    replies = iter(
        [
            stream_reply([ndjson(*tokens(5), FINAL), ndjson(FINAL)]),  # a duplicate done line
            stream_reply([ndjson(*tokens(5)), ndjson(absurd)]),
            normal_stream(5),
        ]
    )
    fake.stream = lambda _r: next(replies)
    session = await run(server, tmp_path)
    saved = load_session(session.path)
    assert [r.status for r in saved.runs] == ["ok", "ok", "ok"]
    assert any("after the final 'done' line were ignored" in n for n in saved.runs[0].notes)
    odd = saved.runs[1]
    assert odd.metrics.eval_ms is None and odd.metrics.server_decode_rate is None
    assert odd.server_final is not None and odd.server_final["eval_duration"] == 10**18  # raw value kept
    assert any("eval_duration = 1e+18 is implausible" in n for n in odd.notes)
    assert saved.aggregates["eval_ms"].n == 2 and saved.aggregates["eval_ms"].missing == 1
    assert saved.aggregates["ttft_ms"].n == 3  # the client's figures of that run still count


async def test_model_unloaded_between_runs_is_reloaded_and_noted(ollama: Server, tmp_path: Path) -> None:
    fake, server = ollama
    count = 0

    def stream(_request: Request) -> Reply:
        nonlocal count
        count += 1
        if count == 1:
            fake.loaded.clear()  # keep_alive expired, or another client unloaded it
        return normal_stream(5)

    fake.stream = stream
    events: list[RunEvent] = []
    session = await run(server, tmp_path, events)
    assert [r.status for r in session.runs] == ["ok", "ok", "ok"]
    assert any("unloaded since the previous run" in n for n in session.runs[1].notes)
    assert not session.runs[2].notes
    loads = [r for r in server.requests if r.path == "/api/generate" and r.json().get("stream") is False]
    assert len(loads) == 2  # the preload, and the reload before run 2
    assert sum(isinstance(e, PhaseChanged) and "loading" in e.message for e in events) == 2


def _fail_writes_after(monkeypatch: pytest.MonkeyPatch, root: Path, allowed: int, times: int = 10**9) -> None:
    """os.replace into `root` fails with ENOSPC after `allowed` successful ones, `times` times."""
    real = os.replace
    state = {"ok": 0, "failed": 0}

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if str(dst).startswith(str(root)):
            if state["ok"] >= allowed and state["failed"] < times:
                state["failed"] += 1
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            state["ok"] += 1
        real(src, dst, *args, **kwargs)

    monkeypatch.setattr(atomic.os, "replace", replace)


async def test_disk_full_mid_session_stops_with_one_clear_message(
    ollama: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, server = ollama
    # writes: manifest, metrics, then per run start + finish; fail from run 2's finish on
    _fail_writes_after(monkeypatch, tmp_path / "sessions", allowed=5)
    with pytest.raises(SessionError) as info:
        await run(server, tmp_path)
    assert "cannot write" in str(info.value) and "No space left on device" in str(info.value)
    assert "\n" not in str(info.value)
    monkeypatch.undo()
    (folder,) = (tmp_path / "sessions").iterdir()
    saved = load_session(folder)  # what was written before the disk filled is intact
    # the writer (this process) is alive, so the session still reads as running; after a restart
    # the same files read as incomplete (tests/faults/test_crash_safety.py)
    assert saved.status == "running"
    assert [r.status for r in saved.runs] == ["ok", "in_flight"]
    assert not list(folder.glob(".*.tmp"))  # no temp files left behind


async def test_a_passing_write_error_fails_the_session_with_the_reason(
    ollama: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, server = ollama
    _fail_writes_after(monkeypatch, tmp_path / "sessions", allowed=5, times=1)
    events: list[RunEvent] = []
    session = await run(server, tmp_path, events)
    assert session.status == "failed" and "No space left on device" in (session.manifest.result.error)
    assert any(isinstance(e, PhaseChanged) and e.message.startswith("stopped: cannot write") for e in events)
    assert load_session(session.path).status == "failed"


async def test_read_only_sessions_directory(ollama: Server, tmp_path: Path) -> None:
    _, server = ollama
    root = tmp_path / "sessions"
    root.mkdir()
    root.chmod(0o500)
    try:
        try:
            (root / "probe").mkdir()
        except PermissionError:
            pass
        else:
            pytest.skip("running as root: a read-only mode does not stop writes (the ENOSPC test covers it)")
        with pytest.raises(SessionError, match="cannot create session folder"):
            await run(server, tmp_path)
    finally:
        root.chmod(0o700)


async def test_nvml_failing_at_start_is_recorded_not_fatal(ollama: Server, tmp_path: Path) -> None:
    _, server = ollama
    nvml = FakeNvml(fail_init="Driver Not Loaded")
    runner = BenchRunner(
        spec(model="m:latest", endpoint=server.url, runs=1, warmup=0), tmp_path, nvml_module=nvml
    )
    session = await runner.run()
    assert session.status == "complete"
    assert "Driver Not Loaded" in session.manifest.environment["gpu_status"]
