"""An in-process httpx transport that streams: the app runs as a task; body chunks arrive as sent.

httpx.ASGITransport collects the whole body before returning, which hides all pacing. Here the
app's messages go through a memory stream into an `httpx.AsyncByteStream`, so a client sees each
NDJSON line when the app writes it. Closing the response cancels the app (a client disconnect).
asyncio only (the app task is an asyncio task).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
from anyio.streams.memory import MemoryObjectReceiveStream

from chimera_tui.sim.asgi_io import Message

_INCOMPLETE = "peer closed connection without sending complete message body"


class _AppStream(httpx.AsyncByteStream):
    """The response body, read chunk by chunk from the running app."""

    def __init__(
        self, messages: MemoryObjectReceiveStream[Message], task: asyncio.Task[None], gone: anyio.Event
    ):
        self._messages, self._task, self._gone = messages, task, gone

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for message in self._messages:
            if message["type"] != "http.response.body":
                continue
            if chunk := message.get("body", b""):
                yield chunk
            if not message.get("more_body", False):
                return
        await asyncio.wait({self._task})
        error = None if self._task.cancelled() else self._task.exception()
        raise httpx.RemoteProtocolError(_INCOMPLETE) from error

    async def aclose(self) -> None:
        await _stop(self._task, self._gone)
        self._messages.close()


async def _stop(task: asyncio.Task[None], gone: anyio.Event) -> None:
    """Tell the app the client left, cancel it if still running, and wait for it to end."""
    gone.set()
    if not task.done():
        task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not warn about it


class SimTransport(httpx.AsyncBaseTransport):
    """Run an ASGI app per request, in process, with a streaming response body."""

    def __init__(self, app: Any, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self.app = app
        self.client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        url = request.url
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "client": self.client,
            "server": (url.host, url.port or (443 if url.scheme == "https" else 80)),
        }
        send_stream, messages = anyio.create_memory_object_stream[Message](math.inf)
        gone = anyio.Event()
        body_sent = False

        async def receive() -> Message:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if not gone.is_set():
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    send_stream.send_nowait(message)

        async def run() -> None:
            with send_stream:
                await self.app(scope, receive, send)

        task = asyncio.get_running_loop().create_task(run())
        try:
            start = await _first_start(messages)
        except BaseException:
            await _stop(task, gone)
            messages.close()
            raise
        if start is None:
            await asyncio.wait({task})
            messages.close()
            if not task.cancelled() and (error := task.exception()) is not None:
                raise error
            raise RuntimeError("the ASGI app returned without starting a response")
        return httpx.Response(
            status_code=start["status"],
            headers=list(start.get("headers", [])),
            stream=_AppStream(messages, task, gone),
            extensions={"http_version": b"HTTP/1.1"},
        )


async def _first_start(messages: MemoryObjectReceiveStream[Message]) -> Message | None:
    async for message in messages:
        if message["type"] == "http.response.start":
            return message
    return None
