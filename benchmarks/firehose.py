"""A tiny Ollama-compatible server that streams pre-rendered NDJSON as fast as the socket takes it.

    python -m benchmarks.firehose --port 11500 [--tokens 100000]

Raw asyncio streams, HTTP/1.1 keep-alive. `/api/generate` and `/api/chat` answer with one chunk of
chunked transfer encoding per line, as Ollama (Go's `http.Flusher` after every line) does; the whole
response is rendered once per token count and written in one go, so the client is the only
bottleneck. `options.num_predict` picks the token count (default `--tokens`). An empty prompt is a
load: one JSON reply. Enough of `/`, `/api/version`, `/api/tags`, `/api/show` and `/api/ps` for
OllamaClient's probe and the official `ollama` client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from typing import Any

MODEL = "firehose:latest"
CREATED = "2026-01-01T00:00:00.000000000Z"
_WORDS = ("the", "model", "token", "stream", "answer", "signal", "river", "stone", "light", "quiet")


def _chunk(line: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(line), line)


def render(kind: str, tokens: int) -> bytes:
    """The whole chunked body of a streamed answer of `tokens` tokens (the last rides in `done`)."""
    parts: list[bytes] = []
    for i in range(tokens):
        word = f" {_WORDS[i % len(_WORDS)]}"
        obj: dict[str, Any] = {"model": MODEL, "created_at": CREATED}
        if kind == "chat":
            obj["message"] = {"role": "assistant", "content": word}
        else:
            obj["response"] = word
        obj["done"] = i == tokens - 1
        if obj["done"]:
            obj.update(
                done_reason="length",
                total_duration=tokens * 1000 + 2_000_000,
                load_duration=1_000_000,
                prompt_eval_count=10,
                prompt_eval_duration=1_000_000,
                eval_count=tokens,
                eval_duration=tokens * 1000,
            )
        parts.append(_chunk(json.dumps(obj, separators=(",", ":")).encode() + b"\n"))
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


def _reply(status: str, body: bytes, content_type: bytes = b"application/json; charset=utf-8") -> bytes:
    head = b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n" % (
        status.encode(),
        content_type,
        len(body),
    )
    return head + body


def _json(obj: Any) -> bytes:
    return _reply("200 OK", json.dumps(obj).encode())


_DETAILS = {"format": "gguf", "family": "llama", "parameter_size": "1B", "quantization_level": "Q4_K_M"}
_STATIC = {
    "/": _reply("200 OK", b"Ollama is running", b"text/plain; charset=utf-8"),
    "/api/version": _json({"version": "0.0.0-firehose"}),
    "/api/tags": _json({"models": [{"name": MODEL, "model": MODEL, "size": 1, "details": _DETAILS}]}),
    "/api/ps": _json({"models": [{"name": MODEL, "model": MODEL, "size": 1, "size_vram": 1}]}),
    "/api/show": _json({"capabilities": ["completion"], "details": _DETAILS, "model_info": {}}),
}
_STREAM_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"


class Firehose:
    def __init__(self, tokens: int) -> None:
        self.tokens = tokens
        self._bodies: dict[tuple[str, int], bytes] = {}

    def body(self, kind: str, tokens: int) -> bytes:
        key = (kind, tokens)
        if key not in self._bodies:
            self._bodies[key] = render(kind, tokens)
        return self._bodies[key]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                _method, path, _version = request_line.split(" ", 2)
                length = 0
                for line in header_lines:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                body = await reader.readexactly(length) if length else b""
                writer.write(self._answer(path.split("?")[0], body))
                await writer.drain()
        writer.close()

    def _answer(self, path: str, body: bytes) -> bytes:
        if path in _STATIC:
            return _STATIC[path]
        if path not in ("/api/generate", "/api/chat"):
            return _reply("404 Not Found", b"404 page not found", b"text/plain")
        data = json.loads(body or b"{}")
        kind = "chat" if path == "/api/chat" else "generate"
        empty = not data.get("messages") if kind == "chat" else not data.get("prompt")
        if empty or data.get("stream") is False:
            return _json({"model": MODEL, "created_at": CREATED, "response": "", "done": True})
        tokens = (data.get("options") or {}).get("num_predict") or self.tokens
        return _STREAM_HEAD + self.body(kind, max(1, int(tokens)))


async def main_async(port: int, tokens: int) -> None:
    hose = Firehose(tokens)
    hose.body("generate", tokens)  # rendered before the first request
    server = await asyncio.start_server(hose.handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="pre-rendered Ollama NDJSON, as fast as possible")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=100_000)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main_async(args.port, args.tokens))


if __name__ == "__main__":
    main()
