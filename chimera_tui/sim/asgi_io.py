"""Bare ASGI3 plumbing: read a body, send plain/JSON replies, stream NDJSON, notice disconnects."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

from chimera_tui.sim.protocol import dumps

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_TYPE = b"application/json; charset=utf-8"
NDJSON_TYPE = b"application/x-ndjson"
TEXT_TYPE = b"text/plain; charset=utf-8"


async def read_body(receive: Receive) -> bytes:
    """The whole request body (empty if the client went away)."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


async def send_bytes(send: Send, status: int, content_type: bytes, body: bytes, head: bool = False) -> None:
    """A complete response with Content-Length; a HEAD reply keeps the headers and drops the body."""
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body, "more_body": False})


async def send_json(send: Send, status: int, obj: Any, head: bool = False) -> None:
    await send_bytes(send, status, JSON_TYPE, dumps(obj), head)


async def send_error(send: Send, status: int, message: str) -> None:
    """Ollama's error shape: `{"error": message}`."""
    await send_json(send, status, {"error": message})


async def send_text(send: Send, status: int, text: str, head: bool = False) -> None:
    await send_bytes(send, status, TEXT_TYPE, text.encode(), head)


class NDJSONStream:
    """A 200 NDJSON response whose headers go out with the first line, as gin's c.Stream does.

    An error before the first line therefore still becomes a proper HTTP 500 JSON reply.
    """

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def _start(self) -> None:
        if not self.started:
            self.started = True
            headers = [(b"content-type", NDJSON_TYPE)]
            await self._send({"type": "http.response.start", "status": 200, "headers": headers})

    async def line(self, obj: Any) -> None:
        await self._start()
        await self._send({"type": "http.response.body", "body": dumps(obj) + b"\n", "more_body": True})

    async def error(self, message: str) -> None:
        """`streamResponse`'s error: an HTTP 500 before any line, else one `{"error"}` line; then close."""
        if not self.started:
            await send_error(self._send, 500, message)
            return
        await self._send(
            {"type": "http.response.body", "body": dumps({"error": message}) + b"\n", "more_body": False}
        )

    async def close(self) -> None:
        await self._start()
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})


async def cancel_on_disconnect(receive: Receive, work: Callable[[], Awaitable[None]]) -> bool:
    """Run `work` until it ends or the client disconnects (then cancel it, as Ollama does).

    Returns False when the client went away first. The request body must already be read.
    """
    finished = False
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

        group.start_soon(watch)
        await work()
        finished = True
        group.cancel_scope.cancel()
    return finished
