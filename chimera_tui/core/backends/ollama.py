"""Async Ollama client: probe, model listing and the stamped streaming call.

One `httpx.AsyncClient` per endpoint, kept alive across calls, so a benchmark's connection is open
(the probe opened it) before the clock starts. The clock starts right before the request is sent;
each read is stamped with `perf_counter_ns()` as soon as it returns, before any parsing.
"""

from __future__ import annotations

import functools
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from chimera_tui.core.backends.budget import (
    DEFAULT_MAX_CALL_BYTES,
    call_deadline_s,
    max_tokens,
    too_many_bytes,
    too_many_tokens,
)
from chimera_tui.core.backends.deadline import watchdog
from chimera_tui.core.backends.encoding import (
    ACCEPT_ENCODING,
    COMPRESSED_NOTE,
    DecodedChunks,
    content_encoding,
)
from chimera_tui.core.backends.endpoint import auth_for, strip_userinfo
from chimera_tui.core.backends.failures import (
    ServerNames,
    http_failure,
    reason,
    request_failure,
    stream_failure,
)
from chimera_tui.core.backends.stream import (
    DoneEvent,
    ErrorEvent,
    LineSplitter,
    TokenEvent,
    ollama_line_events,
    parse_json,
)
from chimera_tui.core.errors import (
    MAX_SERVER_TEXT,
    BenchTimeout,
    ChimeraError,
    ModelNotFound,
    NotOllama,
    ServerError,
    StreamError,
)
from chimera_tui.core.measure.metrics import CallTrace, server_final_notes
from chimera_tui.safe_text import sanitize_line

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:11434"
#: the most of an error body we read; a server that sends more is not telling us anything useful
MAX_ERROR_BODY = 64 * 1024
#: the largest answer to a management request (/api/tags, /api/show, ...) we accept
MAX_JSON_BODY = 32 * 1024 * 1024
#: how messages name the server this client expects (the shared error mapping, failures.py)
SERVER = ServerNames(running="Ollama", kind="an Ollama server")
#: after the final `done` line, how long and how much more we read to end the response cleanly
DRAIN_S = 1.0
DRAIN_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds to wait, each reported by name when it fires."""

    connect_s: float = 5.0
    """Opening the TCP connection."""
    first_byte_s: float = 300.0
    """From sending the request to the first body bytes (covers a cold model load)."""
    idle_s: float = 60.0
    """Between two lines of a stream that has started (bytes that complete no line do not count, so a
    server trickling a byte at a time still times out)."""
    call_s: float | None = None
    """The whole streamed call, sent to done; None: derived from num_predict (core/backends/budget.py)."""
    max_call_bytes: int = DEFAULT_MAX_CALL_BYTES
    """The most body bytes one streamed call may send."""


@dataclass(frozen=True, slots=True)
class ServerInfo:
    url: str
    version: str | None


def _str(value: Any) -> str | None:
    """A server string field: None when absent, empty or not a string."""
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model as `/api/tags` lists it."""

    name: str
    digest: str | None = None
    size_bytes: int | None = None
    parameter_size: str | None = None
    quantization: str | None = None
    family: str | None = None

    @classmethod
    def from_tags(cls, entry: dict[str, Any]) -> ModelInfo:
        details = entry.get("details")
        if not isinstance(details, dict):
            details = {}
        return cls(
            name=str(entry.get("name") or entry.get("model") or "?"),
            digest=_str(entry.get("digest")),
            size_bytes=_int(entry.get("size")),
            parameter_size=_str(details.get("parameter_size")),
            quantization=_str(details.get("quantization_level")),
            family=_str(details.get("family")),
        )


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A model as `/api/ps` lists it: resident now."""

    name: str
    size_bytes: int | None
    size_vram_bytes: int | None
    context_length: int | None
    expires_at: str | None

    @property
    def gpu_share(self) -> float | None:
        """Fraction of the resident bytes on the GPU (size_vram / size), None when unknown."""
        if not self.size_bytes or self.size_vram_bytes is None:
            return None
        return self.size_vram_bytes / self.size_bytes

    @classmethod
    def from_ps(cls, entry: dict[str, Any]) -> LoadedModel:
        return cls(
            name=str(entry.get("name") or entry.get("model") or "?"),
            size_bytes=_int(entry.get("size")),
            size_vram_bytes=_int(entry.get("size_vram")),
            context_length=_int(entry.get("context_length")),
            expires_at=_str(entry.get("expires_at")),
        )


@dataclass(slots=True)
class CallOutcome:
    """One streamed call: the stamped trace, the text, and the error that ended it, if any."""

    trace: CallTrace
    text: str = ""
    thinking: str = ""
    error: ChimeraError | None = None
    cancelled: bool = False
    http_status: int | None = None
    #: lines the server sent after the final `done` line (ignored, and noted in `notes`)
    extra_done_lines: int = 0
    #: what was odd about the call without failing it (extra lines, unusable server figures)
    notes: list[str] = field(default_factory=list)


TokenSink = Callable[[list[TokenEvent]], None]


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default certificate verification, set up once per process. Every `AsyncClient` made
    without it loads the CA bundle again (~30 ms each), and a session opens several clients (kind
    detection, the model lookup, the runner's own)."""
    return httpx.create_ssl_context()


def same_model(a: str, b: str) -> bool:
    """Ollama names default their tag to `latest`."""

    def norm(name: str) -> str:
        return name if ":" in name else f"{name}:latest"

    return norm(a) == norm(b)


class OllamaClient:
    """The native Ollama API over one kept-alive connection pool."""

    backend = "ollama"
    server = "ollama"
    #: Ollama can unload a model (keep_alive 0): cold mode works
    supports_unload = True

    def __init__(
        self,
        url: str = DEFAULT_URL,
        timeouts: Timeouts | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        #: never holds user-info: that stays in memory for the requests only (backends/endpoint.py)
        self.url = strip_userinfo(url.rstrip("/"))
        self.timeouts = timeouts or Timeouts()
        t = self.timeouts
        self._http = httpx.AsyncClient(
            base_url=self.url,
            auth=auth_for(self.url),
            transport=transport,
            # read=None: reads are bounded by our own first-byte / idle deadlines, which name themselves
            timeout=httpx.Timeout(connect=t.connect_s, read=None, write=t.connect_s, pool=t.connect_s),
            limits=httpx.Limits(max_keepalive_connections=8, keepalive_expiry=300),
            # identity: a compressing hop would buffer tokens into blocks (backends/encoding.py)
            headers={"User-Agent": "chimera-tui", "Accept-Encoding": ACCEPT_ENCODING},
            verify=tls_context(),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> OllamaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- plain requests ----------------------------------------------------------------------
    async def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, which: str = "idle"
    ) -> _Reply:
        """One plain request, its body read in full (up to MAX_JSON_BODY), bounded by the named
        timeout (first_byte for loads, idle for the management calls)."""
        t = self.timeouts
        wait_s = t.first_byte_s if which == "first_byte" else t.idle_s
        doing = None if which == "first_byte" else "waiting for a response from"
        # each read waits at most wait_s; the deadline around it bounds a server that trickles bytes
        timeout = httpx.Timeout(connect=t.connect_s, read=wait_s, write=t.connect_s, pool=t.connect_s)
        try:
            with anyio.fail_after(t.connect_s + wait_s):
                request = self._http.build_request(method, path, json=body, timeout=timeout)
                response = await self._http.send(request, stream=True)
                try:
                    data = await _read_bounded(response, MAX_JSON_BODY + 1)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.ReadTimeout):
            raise BenchTimeout(which, wait_s, self.url, doing) from None
        except httpx.HTTPError as exc:
            raise request_failure(exc, self.url, path, t.connect_s, SERVER, NotOllama) from None
        if len(data) > MAX_JSON_BODY:
            raise NotOllama(
                f"{self.url}{path} sent more than {MAX_JSON_BODY // (1024 * 1024)} MiB; "
                "is this an Ollama server?"
            )
        return _Reply(response.status_code, data)

    async def _json(
        self, method: str, path: str, body: dict[str, Any] | None = None, which: str = "idle"
    ) -> dict[str, Any]:
        reply = await self._request(method, path, body, which)
        if reply.status != 200:
            raise _http_error(reply.status, reply.body[:MAX_ERROR_BODY], self.url, path)
        try:
            data = json.loads(reply.body.decode("utf-8"))
        except (ValueError, RecursionError):  # not UTF-8, not JSON, absurd numbers or nesting
            raise NotOllama(f"{self.url}{path} did not return JSON; is this an Ollama server?") from None
        if not isinstance(data, dict):
            raise NotOllama(f"{self.url}{path} returned unexpected JSON; is this an Ollama server?")
        return data

    async def probe(self) -> ServerInfo:
        """`GET /` then `/api/version`. Opens the connection that the benchmark will reuse."""
        reply = await self._request("GET", "/")
        if reply.status != 200 or b"Ollama" not in reply.body[:200]:
            raise NotOllama(
                f"{self.url} answers but is not an Ollama server (GET / gave HTTP {reply.status})"
            )
        version: str | None = None
        try:
            data = await self._json("GET", "/api/version")
            version = _str(data.get("version"))
        except ChimeraError as exc:
            log.warning("no /api/version at %s: %s", self.url, exc)
        return ServerInfo(self.url, version)

    async def tags(self) -> list[ModelInfo]:
        data = await self._json("GET", "/api/tags")
        models = data.get("models")
        return (
            [ModelInfo.from_tags(m) for m in models if isinstance(m, dict)]
            if isinstance(models, list)
            else []
        )

    async def ps(self) -> list[LoadedModel]:
        data = await self._json("GET", "/api/ps")
        models = data.get("models")
        return (
            [LoadedModel.from_ps(m) for m in models if isinstance(m, dict)]
            if isinstance(models, list)
            else []
        )

    async def show(self, model: str) -> dict[str, Any]:
        """`/api/show`; `capabilities` is always a list of strings (empty when the server gave none)."""
        try:
            data = await self._json("POST", "/api/show", {"model": model})
            caps = data.get("capabilities")
            data["capabilities"] = [c for c in caps if isinstance(c, str)] if isinstance(caps, list) else []
            return data
        except ServerError as exc:
            if exc.status == 404:
                available = [m.name for m in await self.tags()]
                raise ModelNotFound(model, available, self.url) from None
            raise

    async def load(self, api: str, model: str, options: dict[str, Any], keep_alive: str | int) -> None:
        """Load (or, with keep_alive 0, unload) a model: an empty generate/chat, not streamed."""
        if api == "chat":
            body: dict[str, Any] = {"model": model, "messages": []}
        else:
            body = {"model": model, "prompt": ""}
        body.update({"options": options, "keep_alive": keep_alive, "stream": False})
        path = "/api/chat" if api == "chat" else "/api/generate"
        await self._json("POST", path, body, which="first_byte")

    async def is_loaded(self, model: str) -> bool:
        return any(same_model(m.name, model) for m in await self.ps())

    # -- streaming -----------------------------------------------------------------------------
    async def stream_call(
        self,
        api: str,
        body: dict[str, Any],
        on_tokens: TokenSink | None = None,
        outcome: CallOutcome | None = None,
    ) -> CallOutcome:
        """POST a streaming generate/chat request and record it. Never raises for run failures:
        the error is returned in the outcome, so partial client-side timings are kept.

        Pass `outcome` to keep the partial record when the caller cancels the call (an anyio cancel
        scope around it): the stream is then closed, which makes the server stop generating.
        """
        path = "/api/chat" if api == "chat" else "/api/generate"
        request = self._http.build_request("POST", path, json={**body, "stream": True})
        timeouts = self.timeouts
        idle_ns = int(timeouts.idle_s * 1e9)
        splitter = LineSplitter()
        text: list[str] = []
        thinking: list[str] = []
        first_byte_ns = int(timeouts.first_byte_s * 1e9)
        call_s = call_deadline_s(timeouts.first_byte_s, timeouts.idle_s, timeouts.call_s, body)
        call_ns = int(call_s * 1e9)
        byte_cap, token_cap, received = timeouts.max_call_bytes, max_tokens(body), 0
        outcome = outcome if outcome is not None else CallOutcome(CallTrace(0))
        trace = outcome.trace = CallTrace(t_send_ns=0)
        response: httpx.Response | None = None
        data: bytes | None = None
        first = done = False
        try:
            try:
                # one watchdog for the whole call: the first-byte deadline, then idle_s after each
                # read. Set up before the clock starts (it does not yield), so it is not in TTFT.
                async with watchdog(time.perf_counter_ns() + first_byte_ns) as deadline:
                    trace.t_send_ns = time.perf_counter_ns()
                    end_ns = trace.t_send_ns + call_ns  # the whole call's deadline
                    deadline.expires_ns = min(trace.t_send_ns + first_byte_ns, end_ns)
                    response = await self._http.send(request, stream=True)
                    outcome.http_status = response.status_code
                    first = True  # the first-byte deadline holds until body bytes arrive
                    if response.status_code != 200:
                        body_bytes = await _read_bounded(response)
                        raise _http_error(response.status_code, body_bytes, self.url, path)
                    # the body as the transport yields it: `aiter_raw()` is this plus a generator
                    # layer and byte counting, ~8% of the reader's time at 100k tok/s; the response
                    # is closed below either way
                    chunks = _body_chunks(response)
                    if (encoding := content_encoding(response.headers)) is not None:
                        chunks = DecodedChunks(chunks, encoding, byte_cap)  # a proxy compressed anyway
                        outcome.notes.append(COMPRESSED_NOTE.format(encoding=encoding))
                    next_chunk, split, consume = chunks.__anext__, splitter.lines, self._consume
                    while not done:
                        try:
                            data = await next_chunk()
                            t_ns = time.perf_counter_ns()  # the stamp: before anything else
                        except StopAsyncIteration:
                            data = None
                            t_ns = time.perf_counter_ns()
                        if data is None:
                            lines = splitter.flush_lines()
                        else:
                            received += len(data)
                            if received > byte_cap:
                                raise too_many_bytes(received, byte_cap)
                            lines = split(data)
                            if first:  # from the first-byte deadline to the (earlier) idle one
                                first = False
                                deadline.reset(min(t_ns + idle_ns, end_ns))
                            elif lines:  # idle: between lines, so a trickle of bytes still ends
                                deadline.expires_ns = min(t_ns + idle_ns, end_ns)
                        done, after = consume(t_ns, lines, trace, text, thinking, on_tokens)
                        if len(text) + len(thinking) > token_cap:
                            raise too_many_tokens(len(text) + len(thinking), token_cap)
                        if data is None and not done:
                            raise StreamError(
                                "the stream ended without a final 'done' line (server stopped or crashed)"
                            )
                if not done:  # the watchdog ended the block
                    now = time.perf_counter_ns()
                    elapsed_s = (now - trace.t_send_ns) / 1e9
                    if now >= end_ns:
                        raise BenchTimeout("call", call_s, self.url, elapsed_s=elapsed_s)
                    which = "first_byte" if response is None or first else "idle"
                    raise BenchTimeout(which, getattr(timeouts, f"{which}_s"), self.url, elapsed_s=elapsed_s)
                outcome.notes.extend(server_final_notes(trace.final))
                if data is not None:
                    after += await self._drain(chunks, splitter, outcome)
                if after:
                    outcome.extra_done_lines = len(after)
                    dones = sum(1 for line in after if _is_done_line(line))
                    outcome.notes.append(
                        f"{len(after)} line(s) after the final 'done' line were ignored"
                        + (f" ({dones} of them another 'done' line)" if dones else "")
                    )
            finally:
                if response is not None:
                    with anyio.CancelScope(shield=True):
                        await response.aclose()
        except (ChimeraError, httpx.HTTPError) as exc:
            outcome.error = stream_failure(exc, self.url, timeouts.connect_s, outcome.http_status, SERVER)
        finally:
            outcome.text = "".join(text)
            outcome.thinking = "".join(thinking)
        return outcome

    async def _drain(self, chunks: Any, splitter: LineSplitter, outcome: CallOutcome) -> list[bytes]:
        """After the final line: read what is left of the response (normally nothing but its end),
        so that the connection is reused, and return any lines that came after `done`."""
        lines: list[bytes] = []
        received = 0
        with anyio.move_on_after(min(DRAIN_S, self.timeouts.idle_s)) as scope:
            try:
                async for data in chunks:
                    received += len(data)
                    try:
                        lines += splitter.lines(data)
                    except StreamError:
                        lines.append(b"")  # a runaway line after done: counted, not kept
                    if received > DRAIN_MAX_BYTES:
                        outcome.notes.append(
                            f"the server sent more than {DRAIN_MAX_BYTES // 1024} KiB after the final "
                            "'done' line; stopped reading"
                        )
                        return lines
            except httpx.HTTPError as exc:  # the response is complete for us: only noted
                outcome.notes.append(
                    f"the connection broke after the final 'done' line: {reason(exc, SERVER.running)}"
                )
                return lines
            return lines + splitter.flush_lines()
        if scope.cancelled_caught:
            outcome.notes.append(
                f"the server kept the stream open {min(DRAIN_S, self.timeouts.idle_s):g} s after the final "
                "'done' line; stopped reading"
            )
        return lines

    @staticmethod
    def _consume(
        t_ns: int,
        lines: list[bytes],
        trace: CallTrace,
        text: list[str],
        thinking: list[str],
        on_tokens: TokenSink | None,
    ) -> tuple[bool, list[bytes]]:
        """Fold the decoded lines of one read (all stamped `t_ns`) into the trace. Returns whether the
        final line has been seen, and the lines of this read that came after it (ignored)."""
        batch: list[TokenEvent] = []
        try:
            for i, raw in enumerate(lines):
                for event in ollama_line_events(t_ns, raw):
                    if type(event) is TokenEvent:
                        trace.add_token(t_ns, event.kind)
                        (text if event.kind == "content" else thinking).append(event.text)
                        batch.append(event)
                    elif type(event) is DoneEvent:
                        trace.final = event.final
                        trace.t_end_ns = t_ns
                    elif type(event) is ErrorEvent:
                        trace.t_end_ns = t_ns
                        message = sanitize_line(event.message)[:MAX_SERVER_TEXT]
                        raise StreamError(f"server error mid-stream: {message}")
                if trace.final is not None:
                    return True, lines[i + 1 :]
        finally:
            if batch and on_tokens is not None:
                on_tokens(batch)
        return False, []


def _body_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    stream = response.stream
    if not isinstance(stream, httpx.AsyncByteStream):  # an AsyncClient's response always is
        raise TypeError("expected an async response stream")
    return stream.__aiter__()


def _is_done_line(line: bytes) -> bool:
    try:
        return parse_json(line).get("done") is True
    except StreamError:
        return False


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: bytes


async def _read_bounded(response: httpx.Response, limit: int = MAX_ERROR_BODY) -> bytes:
    """At most `limit` bytes of the body (decoded: gzip and the like are undone)."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= limit:
            break
    return bytes(body[:limit])


def _http_error(status: int, body: bytes, url: str, path: str) -> ChimeraError:
    """Map a non-200 answer to a clear error, using Ollama's `{"error": ...}` body when present."""
    message: str | None = None
    try:
        data = json.loads(body.decode("utf-8"))
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            message = data["error"]
    except (UnicodeDecodeError, json.JSONDecodeError):
        pass
    return http_failure(status, message, body, url, path, SERVER, NotOllama)
