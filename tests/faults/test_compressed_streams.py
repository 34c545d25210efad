"""Issue 15, item 5: compressed streams work. The clients ask for identity; a proxy that compresses
anyway (gzip, flushed per token line as a streaming proxy does) is decoded chunk by chunk, noted, and
bounded; an encoding that cannot be decoded is one line. Real sockets."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator

import pytest

from chimera_tui.core.backends.ollama import OllamaClient, Timeouts
from chimera_tui.core.backends.openai import OpenAIClient
from chimera_tui.core.errors import ChimeraError
from tests.fault_server import FINAL, FakeOllama, FaultServer, Reply, Request, head, ndjson, tokens

pytestmark = pytest.mark.anyio
T = Timeouts(2.0, 2.0, 2.0)


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def compressed(
    lines: list[bytes], encoding: str = "gzip", content_type: str = "application/x-ndjson"
) -> Reply:
    """A chunked body compressed as one stream, flushed after each line (so each arrives at once)."""
    z = zlib.compressobj(wbits=16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
    reply: Reply = [
        head(
            200, {"Content-Type": content_type, "Transfer-Encoding": "chunked", "Content-Encoding": encoding}
        )
    ]
    for line in lines:
        reply += [_chunk(z.compress(line) + z.flush(zlib.Z_SYNC_FLUSH)), 0.01]
    reply += [_chunk(z.flush()), b"0\r\n\r\n"]
    return reply


@pytest.fixture
def gzip_ollama() -> Iterator[tuple[FakeOllama, FaultServer]]:
    fake = FakeOllama()
    fake.stream = lambda _r: compressed([ndjson(t) for t in tokens(5)] + [ndjson({**FINAL, "eval_count": 5})])
    with FaultServer(fake) as server:
        yield fake, server


async def test_a_gzip_compressing_server_is_decoded(gzip_ollama: tuple[FakeOllama, FaultServer]) -> None:
    _, server = gzip_ollama
    async with OllamaClient(server.url, T) as client:
        await client.probe()
        out = await client.stream_call("generate", {"model": "m", "prompt": "hi"})
    assert out.error is None, out.error
    assert out.text == "tok " * 5 and out.trace.content_tokens == 5
    assert len(set(out.trace.token_times_ns)) == 5  # each line stamped at its own read
    assert any("compressed the stream (gzip)" in note for note in out.notes)
    assert all(r.headers.get("accept-encoding") == "identity" for r in server.requests)


async def test_deflate_too_and_a_decompression_bomb_is_capped() -> None:
    lines = [ndjson(t) for t in tokens(3)] + [ndjson({**FINAL, "eval_count": 3})]
    with FaultServer(lambda _r: compressed(lines, "deflate")) as server:
        async with OllamaClient(server.url, T) as client:
            out = await client.stream_call("generate", {"model": "m", "prompt": "hi"})
    assert out.error is None and out.text == "tok " * 3
    bomb = [ndjson(*tokens(1, " " * (4 * 1024 * 1024)))]  # 4 MiB of spaces: a few KiB compressed
    with FaultServer(lambda _r: compressed(bomb)) as server:
        async with OllamaClient(server.url, Timeouts(2.0, 2.0, 2.0, max_call_bytes=1024 * 1024)) as client:
            out = await client.stream_call("generate", {"model": "m", "prompt": "hi"})
    assert isinstance(out.error, ChimeraError) and out.error.kind == "limit_exceeded", out.error


async def test_an_encoding_that_cannot_be_decoded_is_one_line() -> None:
    reply: Reply = [
        head(200, {"Content-Type": "application/x-ndjson", "Content-Encoding": "br", "Content-Length": "4"}),
        b"\x0b\x02\x80x",
    ]
    with FaultServer(lambda _r: reply) as server:
        async with OllamaClient(server.url, T) as client:
            out = await client.stream_call("generate", {"model": "m", "prompt": "hi"})
    assert isinstance(out.error, ChimeraError)
    assert "compressed the stream with 'br'" in str(out.error) and "\n" not in str(out.error)


async def test_openai_client_decodes_gzip_sse() -> None:
    def chunk(text: str | None, finish: str | None = None) -> bytes:
        delta = {"content": text} if text is not None else {}
        obj = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(obj)}\n\n".encode()

    lines = [chunk("a"), chunk("b"), chunk(None, "stop"), b"data: [DONE]\n\n"]

    def handler(_r: Request) -> Reply:
        return compressed(lines, content_type="text/event-stream")

    with FaultServer(handler) as server:
        async with OpenAIClient(server.url, T) as client:
            out = await client.stream_call("chat", {"model": "m", "messages": []})
    assert out.error is None, out.error
    assert out.text == "ab" and any("gzip" in n for n in out.notes)
