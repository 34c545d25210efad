"""Async client for OpenAI-compatible servers (llama.cpp `llama-server`, vLLM, LM Studio, Ollama's `/v1`).

It has the shape of `OllamaClient` (probe, tags, ps, show, load, is_loaded, stream_call, aclose) so the
runner can drive either. What an OpenAI-compatible server cannot do:

- `ps()` is always `[]`: there is no list of resident models.
- `load()` is a no-op for warm mode (the server has its model loaded, or loads it on the first request:
  the runner's warm-up calls cover that). There is no unload, so cold mode is not supported:
  `load(..., keep_alive=0)` raises `ColdModeUnsupported`; check `supports_unload` first.
- `is_loaded()` is always True.

Requests take the runner's Ollama-style body (`model`, `prompt`/`messages`, `options`, `keep_alive`,
`think`) and translate it (`translate_body`, `map_options`); what cannot be sent is listed in the
outcome's notes. The stream is SSE (`chimera_tui/core/backends/sse.py`); each read is stamped with
`perf_counter_ns()` before anything is parsed, exactly as in the Ollama reader.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

import anyio
import httpx

from chimera_tui.core.backends.budget import call_deadline_s, max_tokens, too_many_bytes, too_many_tokens
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
from chimera_tui.core.backends.ollama import (
    DRAIN_MAX_BYTES,
    DRAIN_S,
    MAX_ERROR_BODY,
    MAX_JSON_BODY,
    CallOutcome,
    LoadedModel,
    ModelInfo,
    ServerInfo,
    Timeouts,
    TokenSink,
    tls_context,
)
from chimera_tui.core.backends.sse import OpenAIStreamDecoder, error_message
from chimera_tui.core.backends.stream import DoneEvent, ErrorEvent, LineSplitter, StampedLine, TokenEvent
from chimera_tui.core.errors import (
    MAX_SERVER_TEXT,
    BenchTimeout,
    ChimeraError,
    NotOllama,
    ServerError,
    StreamError,
)
from chimera_tui.core.measure.metrics import CallTrace, server_final_notes
from chimera_tui.safe_text import register_secret, sanitize_line

log = logging.getLogger(__name__)

DEFAULT_OPENAI_URL = "http://127.0.0.1:8080"

#: server flavours `probe()` can tell apart (they differ in the extra sampling fields they accept)
SERVER_KINDS = ("llama.cpp", "vllm", "ollama", "openai")
#: how messages name the server this client expects (the shared error mapping, failures.py)
SERVER = ServerNames(running="the server", kind="an OpenAI-compatible server")


class NotOpenAICompatible(NotOllama):
    """The port answers, but not with the OpenAI API (`/v1/models`)."""

    kind = "not_openai"


class ColdModeUnsupported(ChimeraError):
    """An OpenAI-compatible server cannot unload a model, so cold runs cannot be measured."""

    kind = "unsupported"

    def __init__(self, url: str) -> None:
        super().__init__(
            f"{url} is an OpenAI-compatible server: it has no way to unload a model, "
            "so cold mode is not supported (use warm mode)"
        )


# -- options --------------------------------------------------------------------------------------

#: Ollama options every OpenAI-compatible server takes, under these names
_STANDARD = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "stop": "stop",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}
#: extra sampling fields a server accepts in the request body, per flavour
_EXTRA = {
    "llama.cpp": {
        "top_k": "top_k",
        "min_p": "min_p",
        "typical_p": "typical_p",
        "repeat_penalty": "repeat_penalty",
        "repeat_last_n": "repeat_last_n",
        "num_keep": "n_keep",
    },
    "vllm": {"top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repetition_penalty"},
}


def map_options(options: dict[str, Any], server: str = "openai") -> tuple[dict[str, Any], list[str]]:
    """Ollama `options` → (the OpenAI request fields to send, the option names that are not applied).

    `server` is a flavour from `SERVER_KINDS` (unknown ones get the standard fields only).
    num_predict > 0 becomes max_tokens; -1 (unlimited) is simply not sent; other values are not applied.
    Load-time options (num_ctx, num_gpu, num_batch, num_thread, main_gpu, use_mmap) are server flags,
    never request fields, so they are always in the not-applied list.
    """
    names = {**_STANDARD, **_EXTRA.get(server, {})}
    sent: dict[str, Any] = {}
    not_applied: list[str] = []
    for key, value in options.items():
        if key == "num_predict":
            if isinstance(value, int) and value > 0:
                sent["max_tokens"] = value
            elif value != -1:
                not_applied.append(key)
        elif key in names:
            sent[names[key]] = value
        else:
            not_applied.append(key)
    return sent, not_applied


def translate_body(
    api: str, body: dict[str, Any], server: str = "openai"
) -> tuple[str, dict[str, Any], list[str]]:
    """The runner's Ollama-style body → (path, OpenAI request body, notes on what was not applied)."""
    fields, not_applied = map_options(dict(body.get("options") or {}), server)
    out: dict[str, Any] = {"model": body.get("model")}
    if api == "chat":
        path = "/v1/chat/completions"
        out["messages"] = body.get("messages") or [{"role": "user", "content": body.get("prompt", "")}]
    else:
        path = "/v1/completions"
        out["prompt"] = body.get("prompt", "")
    out.update(fields)
    out["stream"] = True
    out["stream_options"] = {"include_usage": True}
    not_applied += [key for key in ("keep_alive", "think") if body.get(key) is not None]
    notes = []
    if not_applied:
        notes.append("not applied by an OpenAI-compatible server: " + ", ".join(not_applied))
    if server == "vllm" and api != "chat" and "max_tokens" not in fields:
        notes.append("no num_predict: vLLM's /v1/completions then stops after 16 tokens")
    unset = [key for key in ("temperature", "top_p") if key not in fields]
    if server == "ollama" and unset:
        notes.append(f"{' and '.join(unset)} not set: Ollama's /v1 then uses 1.0, not the model's default")
    return path, out, notes


# -- the client -------------------------------------------------------------------------------------


def _root_url(url: str) -> str:
    """`http://h:p`, `http://h:p/`, `http://h:p/v1` and `http://h:p/v1/` all mean the server root."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _http_client(
    url: str, timeouts: Timeouts, transport: httpx.AsyncBaseTransport | None
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url,
        auth=auth_for(url),
        transport=transport,
        # read=None: reads are bounded by our own first-byte / idle deadlines, which name themselves
        timeout=httpx.Timeout(
            connect=timeouts.connect_s, read=None, write=timeouts.connect_s, pool=timeouts.connect_s
        ),
        limits=httpx.Limits(max_keepalive_connections=8, keepalive_expiry=300),
        # identity: a compressing hop would buffer tokens into blocks (backends/encoding.py)
        headers={"User-Agent": "chimera-tui", "Accept-Encoding": ACCEPT_ENCODING},
        verify=tls_context(),
    )


class OpenAIClient:
    """An OpenAI-compatible server over one kept-alive connection pool.

    The API key, if any, is read from the environment variable `api_key_env` at each request and sent
    as `Authorization: Bearer ...`; it is never stored.
    """

    #: OpenAI-compatible servers have no unload: the runner must refuse cold mode
    supports_unload = False
    backend = "openai"

    def __init__(
        self,
        base_url: str = DEFAULT_OPENAI_URL,
        timeouts: Timeouts | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        api_key_env: str | None = None,
    ) -> None:
        #: never holds user-info: that stays in memory for the requests only (backends/endpoint.py)
        self.url = _root_url(strip_userinfo(base_url))
        self.timeouts = timeouts or Timeouts()
        self.api_key_env = api_key_env
        #: the flavour `probe()` found (one of SERVER_KINDS); decides which extra options are sent
        self.server = "openai"
        #: llama.cpp `/props` as probe() read it (total_slots, build_info, ...), else None
        self.props: dict[str, Any] | None = None
        self._http = _http_client(self.url, self.timeouts, transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> OpenAIClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        register_secret(key)  # a server echoing the key back has it redacted from every message
        return {"Authorization": f"Bearer {key}"} if key else {}

    # -- plain requests ------------------------------------------------------------------------
    async def _get_json(self, path: str) -> dict[str, Any]:
        status, data = await _get(self._http, self.url, path, self.timeouts, self._headers())
        if status != 200:
            raise _http_error(status, data, self.url, path)
        obj = _json_object(data)
        if obj is None:
            raise NotOpenAICompatible(
                f"{self.url}{path} did not return a JSON object; is this an OpenAI-compatible server?"
            )
        return obj

    async def _models(self) -> list[dict[str, Any]]:
        try:
            data = await self._get_json("/v1/models")
        except ServerError as exc:
            if exc.status == 404:
                raise NotOpenAICompatible(
                    f"{self.url}/v1/models is not found (HTTP 404); is this an OpenAI-compatible server?"
                ) from None
            raise
        models = data.get("data")
        if not isinstance(models, list):
            raise NotOpenAICompatible(
                f"{self.url}/v1/models has no 'data' list; is this an OpenAI-compatible server?"
            )
        return [m for m in models if isinstance(m, dict) and isinstance(m.get("id"), str)]

    async def _optional(self, path: str) -> dict[str, Any] | None:
        try:
            return await self._get_json(path)
        except ChimeraError:
            return None

    async def probe(self) -> ServerInfo:
        """`GET /v1/models` (opens the connection the benchmark reuses), then tells the flavour apart:
        llama.cpp `/props` (`build_info` is the version), vLLM `/version`, Ollama `/api/version`."""
        await self._models()
        props = await self._optional("/props")
        if props is not None and isinstance(props.get("build_info"), str):
            self.server, self.props = "llama.cpp", props
            return ServerInfo(self.url, props["build_info"])
        for path, kind in (("/version", "vllm"), ("/api/version", "ollama")):
            data = await self._optional(path)
            if data is not None and isinstance(data.get("version"), str):
                self.server = kind
                return ServerInfo(self.url, data["version"])
        self.server = "openai"
        return ServerInfo(self.url, None)

    async def tags(self) -> list[ModelInfo]:
        """`/v1/models`: name = id; llama.cpp's `meta.size` gives the size, other fields are None."""
        out = []
        for m in await self._models():
            meta = m.get("meta")
            size = meta.get("size") if isinstance(meta, dict) else None
            size_ok = isinstance(size, int) and not isinstance(size, bool) and size > 0
            out.append(ModelInfo(name=m["id"], size_bytes=size if size_ok else None))
        return out

    async def ps(self) -> list[LoadedModel]:
        """Not available on OpenAI-compatible servers: always empty."""
        return []

    async def show(self, model: str) -> dict[str, Any]:
        """`{"capabilities": ["completion"]}`, plus llama.cpp's slot count and context when known."""
        info: dict[str, Any] = {"capabilities": ["completion"], "server": self.server}
        if self.props is not None:
            settings = self.props.get("default_generation_settings")
            n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
            info["total_slots"] = self.props.get("total_slots")
            info["n_ctx"] = n_ctx if isinstance(n_ctx, int) else None
        return info

    async def load(self, api: str, model: str, options: dict[str, Any], keep_alive: str | int) -> None:
        """No-op for a load (warm-up requests warm the server); an unload raises ColdModeUnsupported."""
        if str(keep_alive).strip() in ("0", "0s", "0m", "0h"):
            raise ColdModeUnsupported(self.url)

    async def is_loaded(self, model: str) -> bool:
        """Always True: the server serves its model(s) for as long as it runs."""
        return True

    # -- streaming -------------------------------------------------------------------------------
    async def stream_call(
        self,
        api: str,
        body: dict[str, Any],
        on_tokens: TokenSink | None = None,
        outcome: CallOutcome | None = None,
    ) -> CallOutcome:
        """POST a streaming (chat) completion and record it; same contract as OllamaClient.stream_call.

        Never raises for run failures (the error goes into the outcome, partial timings kept). Cancel
        with an anyio cancel scope around the call; pass `outcome` to keep the partial record then.
        """
        path, payload, notes = translate_body(api, body, self.server)
        request = self._http.build_request("POST", path, json=payload, headers=self._headers())
        timeouts = self.timeouts
        splitter = LineSplitter()
        decoder = OpenAIStreamDecoder()
        text: list[str] = []
        thinking: list[str] = []
        outcome = outcome if outcome is not None else CallOutcome(CallTrace(0))
        outcome.notes.extend(notes)
        trace = outcome.trace = CallTrace(t_send_ns=time.perf_counter_ns())
        call_s = call_deadline_s(timeouts.first_byte_s, timeouts.idle_s, timeouts.call_s, body)
        end_ns = trace.t_send_ns + int(call_s * 1e9)  # the whole call's deadline
        byte_cap, token_cap, received = timeouts.max_call_bytes, max_tokens(body), 0
        try:
            deadline = min(trace.t_send_ns + int(timeouts.first_byte_s * 1e9), end_ns)
            with anyio.move_on_after(min(timeouts.first_byte_s, call_s)) as scope:
                response = await self._http.send(request, stream=True)
            if scope.cancelled_caught:
                raise self._timeout(True, trace.t_send_ns, end_ns, call_s)
            try:
                outcome.http_status = response.status_code
                if response.status_code != 200:
                    raise _http_error(response.status_code, await _read_bounded(response), self.url, path)
                chunks: Any = response.aiter_raw().__aiter__()
                if (encoding := content_encoding(response.headers)) is not None:
                    chunks = DecodedChunks(chunks, encoding, byte_cap)  # a proxy compressed anyway
                    outcome.notes.append(COMPRESSED_NOTE.format(encoding=encoding))
                first = True
                done = False
                idle_ns = int(timeouts.idle_s * 1e9)
                while not done:
                    wait_s = max(0.0, (min(deadline, end_ns) - time.perf_counter_ns()) / 1e9)
                    with anyio.move_on_after(wait_s) as scope:
                        try:
                            data: bytes | None = await chunks.__anext__()
                            t_ns = time.perf_counter_ns()  # the stamp: before any parsing
                        except StopAsyncIteration:
                            data = None
                    if scope.cancelled_caught:
                        raise self._timeout(first, trace.t_send_ns, end_ns, call_s)
                    if data is None:
                        lines = splitter.flush(time.perf_counter_ns())
                    else:
                        received += len(data)
                        if received > byte_cap:
                            raise too_many_bytes(received, byte_cap)
                        lines = splitter.feed(t_ns, data)
                        if first or lines:  # idle: between lines, so a trickle of bytes still ends
                            deadline = t_ns + idle_ns
                        first = False
                    done, after = _consume(lines, decoder, trace, text, thinking, on_tokens)
                    if len(text) + len(thinking) > token_cap:
                        raise too_many_tokens(len(text) + len(thinking), token_cap)
                    if data is None and not done:
                        event = decoder.end()
                        if event is None:
                            raise StreamError("the stream ended without [DONE] (server stopped or crashed)")
                        trace.final, trace.t_end_ns, done = event.final, event.t_ns, True
                        outcome.notes.append("the stream closed without [DONE] after its last chunk")
                outcome.notes.extend(server_final_notes(trace.final))
                if data is not None:
                    after += await self._drain(chunks, splitter, outcome)
                if after:
                    outcome.extra_done_lines = len(after)
                    outcome.notes.append(f"{len(after)} line(s) after [DONE] were ignored")
            finally:
                with anyio.CancelScope(shield=True):
                    await response.aclose()
        except (ChimeraError, httpx.HTTPError) as exc:
            outcome.error = stream_failure(exc, self.url, timeouts.connect_s, outcome.http_status, SERVER)
        finally:
            outcome.text = "".join(text)
            outcome.thinking = "".join(thinking)
        return outcome

    def _timeout(self, first: bool, t_send_ns: int, end_ns: int, call_s: float) -> BenchTimeout:
        """The timeout that fired: the call's deadline, else first-byte or idle (with the real time)."""
        now = time.perf_counter_ns()
        elapsed_s = (now - t_send_ns) / 1e9
        if now >= end_ns:
            return BenchTimeout("call", call_s, self.url, elapsed_s=elapsed_s)
        which = "first_byte" if first else "idle"
        seconds = self.timeouts.first_byte_s if first else self.timeouts.idle_s
        return BenchTimeout(which, seconds, self.url, elapsed_s=elapsed_s)

    async def _drain(self, chunks: Any, splitter: LineSplitter, outcome: CallOutcome) -> list[StampedLine]:
        """After [DONE]: read the rest of the response (normally only its end) so the connection is
        reused; return the non-empty lines that came after [DONE]."""
        lines: list[StampedLine] = []
        received = 0
        with anyio.move_on_after(min(DRAIN_S, self.timeouts.idle_s)) as scope:
            try:
                async for data in chunks:
                    received += len(data)
                    try:
                        lines += splitter.feed(time.perf_counter_ns(), data)
                    except StreamError:
                        lines.append(StampedLine(0, b""))
                    if received > DRAIN_MAX_BYTES:
                        outcome.notes.append("the server kept sending after [DONE]; stopped reading")
                        return lines
            except httpx.HTTPError as exc:
                outcome.notes.append(f"the connection broke after [DONE]: {reason(exc)}")
                return lines
            return lines + splitter.flush(time.perf_counter_ns())
        if scope.cancelled_caught:
            outcome.notes.append("the server kept the stream open after [DONE]; stopped reading")
        return lines


def _consume(
    lines: list[StampedLine],
    decoder: OpenAIStreamDecoder,
    trace: CallTrace,
    text: list[str],
    thinking: list[str],
    on_tokens: TokenSink | None,
) -> tuple[bool, list[StampedLine]]:
    """Fold one read's lines into the trace. Returns whether [DONE] was seen, and the lines after it."""
    batch: list[TokenEvent] = []
    try:
        for i, line in enumerate(lines):
            for event in decoder.feed(line):
                if isinstance(event, TokenEvent):
                    trace.add_token(event.t_ns, event.kind)
                    (text if event.kind == "content" else thinking).append(event.text)
                    batch.append(event)
                elif isinstance(event, DoneEvent):
                    trace.final = event.final
                    trace.t_end_ns = event.t_ns
                    return True, lines[i + 1 :]
                elif isinstance(event, ErrorEvent):
                    trace.t_end_ns = event.t_ns
                    message = sanitize_line(event.message)[:MAX_SERVER_TEXT]
                    raise StreamError(f"server error mid-stream: {message}")
    finally:
        if batch and on_tokens is not None:
            on_tokens(batch)
    return False, []


# -- kind detection ----------------------------------------------------------------------------------


async def detect_kind(
    url: str, timeouts: Timeouts | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> str:
    """ "ollama" when `GET /api/version` answers JSON with a version, "openai" when `GET /v1/models`
    answers with a model list; EndpointUnreachable/BenchTimeout when nothing answers, NotOllama when
    something answers but is neither."""
    root = _root_url(strip_userinfo(url))
    timeouts = timeouts or Timeouts()
    async with _http_client(root, timeouts, transport) as http:
        status, data = await _get(http, root, "/api/version", timeouts, {})
        obj = _json_object(data) if status == 200 else None
        if obj is not None and isinstance(obj.get("version"), str):
            return "ollama"
        status, data = await _get(http, root, "/v1/models", timeouts, {})
        obj = _json_object(data) if status in (200, 401, 403) else None
        if status in (401, 403):
            return "openai"  # an OpenAI-style server that wants an API key
        if obj is not None and isinstance(obj.get("data"), list):
            return "openai"
    raise NotOllama(
        f"{root} answers, but neither as Ollama (/api/version) nor as an OpenAI-compatible server "
        f"(/v1/models gave HTTP {status})"
    )


# -- helpers ------------------------------------------------------------------------------------------


async def _get(
    http: httpx.AsyncClient, url: str, path: str, timeouts: Timeouts, headers: dict[str, str]
) -> tuple[int, bytes]:
    """One GET, body read in full (bounded), errors mapped to ChimeraErrors."""
    try:
        with anyio.fail_after(timeouts.connect_s + timeouts.idle_s):
            response = await http.send(http.build_request("GET", path, headers=headers), stream=True)
            try:
                data = await _read_bounded(response, MAX_JSON_BODY + 1)
            finally:
                await response.aclose()
    except TimeoutError:
        raise BenchTimeout("idle", timeouts.idle_s, url, "waiting for a response from") from None
    except httpx.HTTPError as exc:
        raise request_failure(exc, url, path, timeouts.connect_s, SERVER, NotOpenAICompatible) from None
    if len(data) > MAX_JSON_BODY:
        raise NotOpenAICompatible(f"{url}{path} sent more than {MAX_JSON_BODY // (1024 * 1024)} MiB")
    return response.status_code, data


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


async def _read_bounded(response: httpx.Response, limit: int = MAX_ERROR_BODY) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= limit:
            break
    return bytes(body[:limit])


def _http_error(status: int, body: bytes, url: str, path: str) -> ChimeraError:
    """A non-200 answer → ServerError with the server's message (`{"error": {"message": ...}}` or
    `{"error": "..."}`, `{"detail": ...}` for vLLM/FastAPI); a bare 404 → NotOpenAICompatible."""
    obj = _json_object(body[:MAX_ERROR_BODY])
    message: str | None = None
    if obj is not None:
        if "error" in obj:
            message = error_message(obj["error"])
        elif isinstance(obj.get("detail"), str):
            message = obj["detail"]
        elif isinstance(obj.get("message"), str):
            message = obj["message"]
    return http_failure(status, message, body, url, path, SERVER, NotOpenAICompatible)
