"""Issue 15, item 3: every streamed call is bounded as a whole, not only by its silences.

A real socket server that streams forever, trickles one byte at a time, or sends more than the caps
allow; both clients (native Ollama and OpenAI-compatible); the CLI for the flags and the failed run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chimera_tui.cli import main
from chimera_tui.core.backends.budget import call_deadline_s, max_tokens
from chimera_tui.core.backends.ollama import CallOutcome, OllamaClient, Timeouts
from chimera_tui.core.backends.openai import OpenAIClient
from chimera_tui.core.errors import BenchTimeout, ChimeraError
from tests.fault_server import FakeOllama, FaultServer, Reply, head, ndjson, stream_reply, tokens

pytestmark = pytest.mark.anyio
BODY = {"model": "m", "prompt": "hi", "options": {"num_predict": 8}}


def forever(gap: float = 0.01) -> Reply:
    """Tokens forever, each line in its own chunk: never silent, never done."""
    return stream_reply([item for _ in range(100_000) for item in (ndjson(*tokens(1)), gap)])


def trickle(data: bytes, gap: float) -> Reply:
    """A stream whose bytes come one at a time, `gap` s apart (a slowloris body)."""
    return stream_reply([item for byte in data for item in (bytes([byte]), gap)])


@pytest.fixture
def serve() -> Iterator[list[FaultServer]]:
    servers: list[FaultServer] = []
    yield servers
    for server in servers:
        server.stop()


def start(servers: list[FaultServer], reply: Reply) -> FaultServer:
    server = FaultServer(lambda _r: reply).start()
    servers.append(server)
    return server


async def call(url: str, timeouts: Timeouts, body: dict[str, Any] = BODY) -> CallOutcome:
    async with OllamaClient(url, timeouts) as client:
        return await client.stream_call("generate", body)


def test_the_default_deadline_and_token_cap_are_derived_from_num_predict() -> None:
    assert call_deadline_s(300, 60, None, {"options": {"num_predict": 256}}) == 300 + 60 + 128
    assert call_deadline_s(300, 60, 5.0, {"options": {"num_predict": 256}}) == 5.0
    assert call_deadline_s(1, 1, None, {"options": {"num_ctx": 100}}) == 52
    assert call_deadline_s(1, 1, None, {}) == 2 + 32_768 * 0.5
    assert max_tokens({"options": {"num_predict": 8}}) == 80


async def test_a_server_that_streams_forever_ends_at_the_token_cap(serve: list[FaultServer]) -> None:
    server = start(serve, forever(0.0))
    out = await call(server.url, Timeouts(1.0, 2.0, 2.0, call_s=30.0))
    assert isinstance(out.error, ChimeraError) and out.error.kind == "limit_exceeded"
    assert "more than the cap of 80" in str(out.error) and "token cap" in str(out.error)
    assert out.trace.content_tokens == 81  # the partial record is kept


async def test_a_server_that_streams_forever_ends_at_the_call_deadline(serve: list[FaultServer]) -> None:
    server = start(serve, forever(0.05))
    body = {"model": "m", "prompt": "hi"}  # no num_predict: the token cap is far away
    t0 = time.monotonic()
    out = await call(server.url, Timeouts(1.0, 2.0, 2.0, call_s=1.0), body)
    elapsed = time.monotonic() - t0
    assert isinstance(out.error, BenchTimeout) and out.error.which == "call", out.error
    assert "(call deadline, --call-timeout)" in str(out.error)
    assert 0.9 < elapsed < 3.0 and out.trace.content_tokens > 5


async def test_a_byte_cap_ends_a_call_that_sends_too_much(serve: list[FaultServer]) -> None:
    server = start(serve, stream_reply([ndjson(*tokens(1, "x" * 60_000)) for _ in range(40)]))
    out = await call(server.url, Timeouts(1.0, 2.0, 2.0, max_call_bytes=1024 * 1024))
    assert isinstance(out.error, ChimeraError) and out.error.kind == "limit_exceeded"
    assert "more than 1 MiB in one call" in str(out.error) and "--max-call-mib" in str(out.error)


async def test_slowloris_body_ends_at_the_idle_timeout_with_the_real_elapsed_time(
    serve: list[FaultServer],
) -> None:
    # one byte every 0.1 s: every read is within the 0.5 s idle timeout, no line ever completes
    server = start(serve, trickle(ndjson(*tokens(1, "y" * 400)), 0.1))
    t0 = time.monotonic()
    out = await call(server.url, Timeouts(1.0, 0.5, 0.5))
    elapsed = time.monotonic() - t0
    assert isinstance(out.error, BenchTimeout) and out.error.which == "idle", out.error
    assert elapsed < 2.0
    assert out.error.elapsed_s is not None and abs(out.error.elapsed_s - elapsed) < 0.3
    assert f"{out.error.elapsed_s:.1f} s after the request" in str(out.error)


async def test_slow_headers_end_at_the_first_byte_timeout(serve: list[FaultServer]) -> None:
    raw = head(200, {"Content-Type": "application/x-ndjson", "Transfer-Encoding": "chunked"})
    server = start(serve, [item for byte in raw for item in (bytes([byte]), 0.05)])
    t0 = time.monotonic()
    out = await call(server.url, Timeouts(1.0, 0.5, 0.5))
    assert isinstance(out.error, BenchTimeout) and out.error.which == "first_byte"
    assert time.monotonic() - t0 < 1.5


def sse_forever() -> Reply:
    chunk = {"choices": [{"index": 0, "delta": {"content": "t"}, "finish_reason": None}]}
    line = f"data: {json.dumps(chunk)}\n\n".encode()
    reply: Reply = [head(200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"})]
    for _ in range(100_000):
        reply += [f"{len(line):x}\r\n".encode() + line + b"\r\n", 0.02]
    return reply


async def test_openai_client_bounded_too(serve: list[FaultServer]) -> None:
    server = start(serve, sse_forever())
    async with OpenAIClient(server.url, Timeouts(1.0, 2.0, 2.0, call_s=0.8)) as client:
        out = await client.stream_call("chat", {"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert isinstance(out.error, BenchTimeout) and out.error.which == "call", out.error
    async with OpenAIClient(server.url, Timeouts(1.0, 2.0, 2.0, call_s=30)) as client:
        out = await client.stream_call("chat", {"model": "m", "messages": [], "options": {"num_predict": 4}})
    assert isinstance(out.error, ChimeraError) and out.error.kind == "limit_exceeded"


def test_cli_run_fails_naming_the_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeOllama()
    fake.stream = lambda _r: forever(0.05)
    with FaultServer(fake) as server:
        args = ["bench", "--endpoint", server.url, "--model", "m", "--runs", "1", "--warmup", "0"]
        code = main([*args, "--call-timeout", "0.5", "--json", "--sessions-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("chimera-tui: error: timed out after 0.5 s waiting for")
    (run,) = json.loads(out)["runs"]
    assert run["status"] == "failed" and run["error_kind"] == "timeout" and "call deadline" in run["error"]


@pytest.mark.parametrize("value", ["nan", "inf", "1e300", "-1", "0", "abc"])
def test_cli_timeouts_must_be_finite_and_positive(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    for flag in ("--idle-timeout", "--call-timeout", "--max-call-mib"):
        with pytest.raises(SystemExit) as exc:
            main(["bench", flag, value])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert f"argument {flag}:" in err and "Traceback" not in err


def test_the_bounds_used_are_recorded_in_bench_and_sweep_records(tmp_path: Path) -> None:
    from chimera_tui.core.run.sweep.record import list_sweeps
    from chimera_tui.core.store.sessions import load_session

    root = tmp_path / "sessions"
    args = ["--demo", "--runs", "1", "--warmup", "0", "--num-predict", "8", "--sessions-dir", str(root)]
    assert main(["bench", *args, "--call-timeout", "42", "--max-call-mib", "8"]) == 0
    (only,) = [p for p in root.iterdir() if p.is_dir()]
    t = load_session(only).manifest.timeouts
    assert t is not None and t.call_s == 42 and t.max_call_mib == 8
    assert t.call_rule is not None and "2 x N + 64" in t.call_rule

    sweep = tmp_path / "mini.toml"
    sweep.write_text('name = "mini"\nruns = 1\nwarmup = 0\n[grid]\nnum_ctx = [256]\n')
    assert (
        main(["sweep", "run", str(sweep), *args[:1], "--call-timeout", "40", "--sessions-dir", str(root)])
        == 0
    )
    (record,), _ = list_sweeps(root)
    assert record.timeouts["call_s"] == 40 and record.timeouts["max_call_bytes"] == 256 * 2**20
