"""One streamed call with a blocking client, for the Locust workers (gevent makes it cooperative).

The same request a `bench` run sends (`request_body`, and `translate_body` for OpenAI-compatible
servers), read with `http.client`: `perf_counter_ns()` is taken the moment each read returns, before
anything is split or parsed, then the core's own pure decoders fold the lines into a `CallTrace`
(`OllamaClient._consume`, the OpenAI `_consume` with `OpenAIStreamDecoder`) and `build_record`
computes the same per-call metrics. No asyncio and no Locust here.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from chimera_tui.core.backends.budget import call_deadline_s, max_tokens, too_many_bytes, too_many_tokens
from chimera_tui.core.backends.encoding import ACCEPT_ENCODING
from chimera_tui.core.backends.ollama import MAX_ERROR_BODY, CallOutcome, OllamaClient, tls_context
from chimera_tui.core.backends.ollama import _http_error as ollama_http_error
from chimera_tui.core.backends.openai import _consume as openai_consume
from chimera_tui.core.backends.openai import _http_error as openai_http_error
from chimera_tui.core.backends.openai import translate_body
from chimera_tui.core.backends.sse import OpenAIStreamDecoder
from chimera_tui.core.backends.stream import LineSplitter
from chimera_tui.core.errors import BenchTimeout, ChimeraError, EndpointUnreachable, StreamError
from chimera_tui.core.measure.metrics import CallTrace, server_final_notes
from chimera_tui.core.run.single import request_body, unique_prompt
from chimera_tui.load.plan import LoadPlan
from chimera_tui.safe_text import register_secret, sanitize_line

#: bytes asked of one read (a read returns what has arrived, up to this)
READ_SIZE = 64 * 1024


def make_body(plan: LoadPlan) -> dict[str, Any]:
    """The Ollama-style body of one call: exactly what `bench` sends (a unique marker unless
    `--same-prompt`, every option and keep_alive explicit)."""
    prompt = unique_prompt(plan.prompt) if plan.unique_prompt else plan.prompt
    return request_body(plan.api, plan.model, prompt, dict(plan.options), plan.keep_alive, plan.think)


def wire_request(plan: LoadPlan, body: dict[str, Any]) -> tuple[str, bytes, list[str]]:
    """(path, JSON payload, notes): what goes on the wire for this backend."""
    if plan.backend == "openai":
        path, payload, notes = translate_body(plan.api, body, plan.server)
    else:
        path = "/api/chat" if plan.api == "chat" else "/api/generate"
        payload, notes = {**body, "stream": True}, []
    return path, json.dumps(payload).encode("utf-8"), notes


@dataclass(slots=True)
class ConnectionPool:
    """Idle keep-alive connections per endpoint, so a call does not pay for a connect (like the
    bench client's connection the probe opened)."""

    connect_s: float
    idle: dict[str, list[http.client.HTTPConnection]] = field(default_factory=dict)

    def take(self, url: str) -> tuple[http.client.HTTPConnection, bool]:
        """A connection to `url` and whether it was reused."""
        free = self.idle.get(url)
        if free:
            return free.pop(), True
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname or "127.0.0.1"
        if parts.scheme == "https":
            return http.client.HTTPSConnection(
                host, port, timeout=self.connect_s, context=tls_context()
            ), False
        return http.client.HTTPConnection(host, port, timeout=self.connect_s), False

    def give_back(self, url: str, conn: http.client.HTTPConnection) -> None:
        self.idle.setdefault(url, []).append(conn)


def _headers(plan: LoadPlan) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "chimera-tui",
        "Accept-Encoding": ACCEPT_ENCODING,
    }
    key = os.environ.get(plan.api_key_env) if plan.api_key_env else None
    if key:
        register_secret(key)
        headers["Authorization"] = f"Bearer {key}"
    return headers


def stream_call(
    plan: LoadPlan, url: str, body: dict[str, Any], pool: ConnectionPool, outcome: CallOutcome
) -> None:
    """Send `body` to `url` and record the call into `outcome` (never raises for a run failure).
    A reused connection the server had closed is opened again once, before anything was read."""
    for attempt in (0, 1):
        conn, reused = pool.take(url)
        try:
            _stream(plan, url, body, conn, outcome)
            return
        except _StaleConnection:
            conn.close()
            if attempt or not reused:
                outcome.error = StreamError(f"{url} closed the connection without an HTTP answer")
                return
        finally:
            if outcome.error is None and getattr(conn, "_chimera_reusable", False):
                pool.give_back(url, conn)
            elif conn.sock is not None:
                conn.close()


class _StaleConnection(Exception):
    """A kept-alive connection broke before the answer began: worth one fresh try."""


def _stream(
    plan: LoadPlan, url: str, body: dict[str, Any], conn: http.client.HTTPConnection, outcome: CallOutcome
) -> None:
    path, payload, notes = wire_request(plan, body)
    headers = _headers(plan)
    openai = plan.backend == "openai"
    decoder = OpenAIStreamDecoder() if openai else None
    splitter = LineSplitter()
    text: list[str] = []
    thinking: list[str] = []
    trace = outcome.trace = CallTrace(t_send_ns=0)
    outcome.notes[:] = [n for n in outcome.notes if n not in notes] + notes
    call_s = call_deadline_s(plan.first_byte_s, plan.idle_s, plan.call_s, body)
    byte_cap, token_cap, received = plan.max_call_bytes, max_tokens(body), 0
    conn._chimera_reusable = False  # type: ignore[attr-defined]
    first = True
    try:
        try:
            if conn.sock is None:  # connect before the clock starts, as the bench client does
                conn.connect()
            sock = conn.sock
            sock.settimeout(min(plan.first_byte_s, call_s))
            trace.t_send_ns = time.perf_counter_ns()
            end_ns = trace.t_send_ns + int(call_s * 1e9)
            try:
                conn.request("POST", path, body=payload, headers=headers)
                response = conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                raise _StaleConnection() from exc
            outcome.http_status = response.status
            if response.status != 200:
                data = response.read(MAX_ERROR_BODY)
                error_of = openai_http_error if openai else ollama_http_error
                raise error_of(response.status, data, url, path)
            done = False
            while not done:
                remaining_s = (end_ns - time.perf_counter_ns()) / 1e9
                if remaining_s <= 0:
                    raise _timeout("call", call_s, url, trace.t_send_ns)
                sock.settimeout(min(plan.first_byte_s if first else plan.idle_s, remaining_s))
                data = response.read1(READ_SIZE)
                t_ns = time.perf_counter_ns()  # the stamp: before anything else
                if data:
                    first = False
                    received += len(data)
                    if received > byte_cap:
                        raise too_many_bytes(received, byte_cap)
                if decoder is not None:
                    lines = splitter.feed(t_ns, data) if data else splitter.flush(t_ns)
                    done, _ = openai_consume(lines, decoder, trace, text, thinking, None)
                    if not data and not done:
                        event = decoder.end()
                        if event is None:
                            raise StreamError("the stream ended without [DONE] (server stopped or crashed)")
                        trace.final, trace.t_end_ns, done = event.final, event.t_ns, True
                        outcome.notes.append("the stream closed without [DONE] after its last chunk")
                else:
                    raw = splitter.lines(data) if data else splitter.flush_lines()
                    done, _ = OllamaClient._consume(t_ns, raw, trace, text, thinking, None)
                    if not data and not done:
                        raise StreamError(
                            "the stream ended without a final 'done' line (server stopped or crashed)"
                        )
                if len(text) + len(thinking) > token_cap:
                    raise too_many_tokens(len(text) + len(thinking), token_cap)
            outcome.notes.extend(server_final_notes(trace.final))
            conn._chimera_reusable = _drain(response, plan.idle_s)  # type: ignore[attr-defined]
        except TimeoutError:
            which = "first_byte" if first else "idle"
            raise _timeout(which, getattr(plan, f"{which}_s"), url, trace.t_send_ns) from None
        except ConnectionRefusedError:
            raise EndpointUnreachable(
                f"cannot reach {url}: connection refused (is the server running?)"
            ) from None
        except socket.gaierror as exc:
            raise EndpointUnreachable(f"cannot resolve the host of {url} ({exc.strerror or exc})") from None
        except ssl.SSLError as exc:
            raise EndpointUnreachable(f"TLS to {url} failed: {sanitize_line(str(exc))}") from None
        except (OSError, http.client.HTTPException) as exc:
            detail = sanitize_line(str(exc)) or type(exc).__name__
            if trace.t_send_ns == 0:
                raise EndpointUnreachable(f"cannot reach {url}: {detail}") from None
            raise StreamError(f"the connection to {url} broke mid-stream: {detail}") from None
    except ChimeraError as exc:
        outcome.error = exc
    finally:
        outcome.text = "".join(text)
        outcome.thinking = "".join(thinking)


def _timeout(which: str, seconds: float, url: str, t_send_ns: int) -> BenchTimeout:
    elapsed = (time.perf_counter_ns() - t_send_ns) / 1e9 if t_send_ns else None
    return BenchTimeout(which, seconds, url, elapsed_s=elapsed)


def _drain(response: http.client.HTTPResponse, idle_s: float) -> bool:
    """Read the end of the response after the final line, so the connection can be reused."""
    try:
        while response.read1(READ_SIZE):
            pass
    except (OSError, http.client.HTTPException):
        return False
    return not response.will_close
