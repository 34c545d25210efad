"""The Ollama client against scripted HTTP responses and real sockets: decoding, errors, timeouts."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable

import anyio
import httpx
import pytest

from chimera_tui.core.backends.ollama import OllamaClient, Timeouts
from chimera_tui.core.errors import BenchTimeout, EndpointUnreachable, NotOllama, ServerError, StreamError

pytestmark = pytest.mark.anyio


def ndjson(*objs: object) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


def streaming(
    chunks: list[bytes], delays: list[float] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    async def body() -> AsyncIterator[bytes]:
        for i, chunk in enumerate(chunks):
            if delays:
                await anyio.sleep(delays[i])
            yield chunk

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body(), headers={"content-type": "application/x-ndjson"})

    return handler


def respond(status: int, body: bytes) -> httpx.Response:
    """A response whose body is a stream, as it is from a real socket."""

    async def gen() -> AsyncIterator[bytes]:
        yield body

    return httpx.Response(status, content=gen())


def client_for(handler: Callable[[httpx.Request], object], **timeouts: float) -> OllamaClient:
    return OllamaClient("http://test", Timeouts(**timeouts), transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


DONE = {
    "done": True,
    "done_reason": "stop",
    "eval_count": 3,
    "eval_duration": 3_000_000,
    "total_duration": 9_000_000,
}


async def test_split_lines_thinking_and_final_text() -> None:
    raw = ndjson(
        {"response": "", "thinking": "hm", "done": False},
        {"response": "a", "done": False},
        {"response": "b", "done": False},
        {**DONE, "response": "c"},
    )
    # cut the bytes at awkward places: inside a line and inside a UTF-8 sequence-free JSON token
    chunks = [raw[:7], raw[7:40], raw[40:41], raw[41:]]
    batches: list[int] = []
    async with client_for(streaming(chunks)) as c:
        out = await c.stream_call("generate", {"model": "m", "prompt": "p"}, lambda b: batches.append(len(b)))
    assert out.error is None
    assert out.text == "abc" and out.thinking == "hm"
    assert out.trace.content_tokens == 3 and out.trace.thinking_tokens == 1
    assert out.trace.final is not None and out.trace.final["eval_count"] == 3
    assert sum(batches) == 4


async def test_request_sends_stream_true_and_the_body_as_given() -> None:
    seen: dict = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(json.loads(request.content))
        return respond(200, ndjson(DONE))

    async with client_for(handler) as c:
        await c.stream_call("chat", {"model": "m", "options": {"num_ctx": 512}, "keep_alive": -1})
    assert seen == {"model": "m", "options": {"num_ctx": 512}, "keep_alive": -1, "stream": True}


async def test_stream_cut_without_done_is_a_failure_with_partial_timings() -> None:
    async with client_for(streaming([ndjson({"response": "a"}, {"response": "b"})])) as c:
        out = await c.stream_call("generate", {"model": "m"})
    assert isinstance(out.error, StreamError) and "without a final 'done'" in str(out.error)
    assert out.trace.content_tokens == 2 and out.trace.final is None


async def test_midstream_error_line() -> None:
    async with client_for(streaming([ndjson({"response": "a"}, {"error": "model crashed"})])) as c:
        out = await c.stream_call("generate", {"model": "m"})
    assert isinstance(out.error, StreamError) and "model crashed" in str(out.error)
    assert out.text == "a"


async def test_invalid_json_and_non_utf8_lines_fail_the_run() -> None:
    async with client_for(streaming([b"{oops\n"])) as c:
        out = await c.stream_call("generate", {"model": "m"})
    assert isinstance(out.error, StreamError) and "not JSON" in str(out.error)
    async with client_for(streaming([b"\xff\xfe\n"])) as c:
        out = await c.stream_call("generate", {"model": "m"})
    assert isinstance(out.error, StreamError) and "UTF-8" in str(out.error)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, {"error": "model 'x' not found"}, "HTTP 404: model 'x' not found"),
        (500, {"error": 'option "num_ctx" must be of type integer'}, "HTTP 500"),
        (503, {"error": "server busy, please try again.  maximum pending requests exceeded"}, "server busy"),
        (400, {"error": "missing request body"}, "HTTP 400"),
    ],
)
async def test_http_errors_carry_the_server_message(status: int, body: dict, expected: str) -> None:
    async with client_for(lambda r: respond(status, json.dumps(body).encode())) as c:
        out = await c.stream_call("generate", {"model": "x"})
    assert isinstance(out.error, ServerError) and out.error.status == status
    assert expected in str(out.error)


async def test_first_byte_timeout_is_named() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(5)
        return httpx.Response(200)

    async with client_for(handler, first_byte_s=0.1) as c:
        out = await c.stream_call("generate", {"model": "m"})
    assert isinstance(out.error, BenchTimeout) and out.error.which == "first_byte"
    assert "first byte" in str(out.error)


async def test_idle_timeout_between_lines_is_named() -> None:
    handler = streaming([ndjson({"response": "a"}), ndjson(DONE)], delays=[0, 5])
    async with client_for(handler, idle_s=0.1) as c:
        out = await c.stream_call("generate", {"model": "m"})
    assert isinstance(out.error, BenchTimeout) and out.error.which == "idle"
    assert out.text == "a"


async def test_probe_rejects_a_server_that_is_not_ollama() -> None:
    async with client_for(lambda r: respond(200, b"<html>hello</html>")) as c:
        with pytest.raises(NotOllama, match="not an Ollama server"):
            await c.probe()


async def test_connection_refused_is_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    async with OllamaClient(f"http://127.0.0.1:{port}", Timeouts(connect_s=2)) as c:
        with pytest.raises(EndpointUnreachable, match="cannot reach"):
            await c.probe()
        out = await c.stream_call("generate", {"model": "m"})
    assert isinstance(out.error, EndpointUnreachable)


async def test_tags_and_ps_parse_missing_fields_as_none() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/tags":
            return respond(200, json.dumps({"models": [{"name": "a:1"}, "junk"]}).encode())
        return respond(200, json.dumps({"models": [{"name": "a:1", "size": 100, "size_vram": 25}]}).encode())

    async with client_for(handler) as c:
        (tag,) = await c.tags()
        (ps,) = await c.ps()
    assert tag.name == "a:1" and tag.parameter_size is None and tag.size_bytes is None
    assert ps.gpu_share == 0.25 and ps.context_length is None
