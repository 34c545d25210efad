"""The one error mapping both backends share: an httpx failure (or a non-200 answer) becomes the
ChimeraError a user reads as one line. The backends differ only in how they name the server they
expect (`ServerNames`) and in the error class for "this port is not that server"."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

import httpx

from chimera_tui.core.errors import (
    BenchTimeout,
    ChimeraError,
    EndpointUnreachable,
    ServerError,
    StreamError,
)
from chimera_tui.safe_text import sanitize_line


@dataclass(frozen=True, slots=True)
class ServerNames:
    """How messages name the expected server: `running` in "is … running", `kind` in "is this …"."""

    running: str
    kind: str


def _host(exc: BaseException) -> str:
    try:
        return exc.request.url.host if isinstance(exc, httpx.RequestError) else "?"
    except RuntimeError:  # an httpx error without its request
        return "?"


def reason(exc: BaseException, running: str = "the server") -> str:
    """One line for an httpx error: what the OS or TLS said, named plainly where we can."""
    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:
        visited.add(id(seen))
        for cause in (seen, *(a for a in seen.args if isinstance(a, BaseException))):
            if isinstance(cause, socket.gaierror):
                return f"cannot resolve the host name '{_host(exc)}' ({cause.strerror or cause})"
            if isinstance(cause, ConnectionRefusedError):
                return f"connection refused (is {running} running, and on this port?)"
            if isinstance(cause, ssl.SSLCertVerificationError):
                return f"TLS certificate verification failed: {cause.verify_message or cause}"
        seen = seen.__cause__ or seen.__context__
    text = sanitize_line(str(exc)).strip()
    return text or type(exc).__name__


def stream_failure(
    exc: BaseException, url: str, connect_s: float, http_status: int | None, names: ServerNames
) -> ChimeraError:
    """The error of a streaming call that failed in transport (`ChimeraError`s pass through)."""
    if isinstance(exc, ChimeraError):
        return exc
    if isinstance(exc, httpx.ConnectTimeout):
        return BenchTimeout("connect", connect_s, url)
    if isinstance(exc, httpx.ConnectError):
        return EndpointUnreachable(f"cannot reach {url}: {reason(exc, names.running)}")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError) and http_status is None:
        # not even a status line: a crash, or not an HTTP server
        return StreamError(
            f"{url} closed the connection without an HTTP answer ({reason(exc, names.running)}); "
            f"server crashed, or not {names.kind} (a TLS port?)"
        )
    return StreamError(f"the connection to {url} broke mid-stream: {reason(exc, names.running)}")


def request_failure(
    exc: httpx.HTTPError,
    url: str,
    path: str,
    connect_s: float,
    names: ServerNames,
    not_server: type[ChimeraError],
) -> ChimeraError:
    """The error of a plain (non-streaming) request that failed in transport."""
    if isinstance(exc, httpx.ConnectTimeout):
        return BenchTimeout("connect", connect_s, url)
    if isinstance(exc, httpx.ConnectError):
        return EndpointUnreachable(f"cannot reach {url}: {reason(exc, names.running)}")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return not_server(
            f"{url} closed the connection without a usable HTTP answer ({reason(exc, names.running)}); "
            f"is this {names.kind} (and not a TLS port: https)?"
        )
    return EndpointUnreachable(f"request to {url}{path} failed: {reason(exc, names.running)}")


def http_failure(
    status: int,
    message: str | None,
    body: bytes,
    url: str,
    path: str,
    names: ServerNames,
    not_server: type[ChimeraError],
) -> ChimeraError:
    """A non-200 answer: the server's own message when it sent one; a bare 404 means the port answers
    but not with this API; else the start of the body."""
    if message is not None:
        return ServerError(status, message)
    if status == 404:
        return not_server(f"{url}{path} is not found (HTTP 404); is this {names.kind}?")
    snippet = body[:80].decode("utf-8", "replace").strip().replace("\n", " ")
    return ServerError(status, snippet or "(empty body)")
