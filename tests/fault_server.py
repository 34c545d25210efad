"""A real TCP server for fault-injection tests: scripted raw answers on 127.0.0.1, in a thread.

Each request gets a *reply*: a list of actions run in order on the raw socket, then the connection is
closed. An action is `bytes` (sent as is), a `float` (sleep that many seconds) or `HANG` (wait until the
server stops). Helpers build the usual replies: a JSON or HTML answer, and a chunked NDJSON stream that
can stall, or be cut as by a killed server. `FakeOllama` answers the management endpoints like Ollama
and lets a test script the streamed generate/chat replies. `tls_context` makes a throwaway self-signed
certificate (the `cryptography` package, else the `openssl` command), and `full_backlog_port` gives a
port whose connect hangs, for connect timeouts.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class _Hang:
    def __repr__(self) -> str:
        return "HANG"


#: a reply action: keep the connection open, saying nothing more, until the server stops
HANG = _Hang()
Action = bytes | float | _Hang
Reply = list[Action]

REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error", 503: "Unavailable"}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}


Handler = Callable[[Request], Reply]


def ndjson(*objs: object) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


def head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join([*lines, "Connection: close"]) + "\r\n\r\n").encode("latin-1")


def body_reply(status: int, body: bytes, content_type: str) -> Reply:
    return [head(status, {"Content-Type": content_type, "Content-Length": str(len(body))}) + body]


def json_reply(status: int, obj: object) -> Reply:
    return body_reply(status, json.dumps(obj).encode(), "application/json; charset=utf-8")


def text_reply(status: int, text: str, content_type: str = "text/html; charset=utf-8") -> Reply:
    return body_reply(status, text.encode(), content_type)


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def stream_reply(items: Iterable[bytes | float | _Hang], end: bool = True) -> Reply:
    """A 200 NDJSON stream in chunked encoding: each bytes item is one chunk (lines as given), floats
    are pauses, HANG stalls. `end=False` closes without the final chunk, as a killed server does."""
    reply: Reply = [head(200, {"Content-Type": "application/x-ndjson", "Transfer-Encoding": "chunked"})]
    for item in items:
        reply.append(_chunk(item) if isinstance(item, bytes) else item)
    if end:
        reply.append(b"0\r\n\r\n")
    return reply


def tokens(n: int, text: str = "tok ") -> list[dict[str, Any]]:
    return [{"model": "m", "response": text, "done": False} for _ in range(n)]


FINAL: dict[str, Any] = {
    "model": "m",
    "response": "",
    "done": True,
    "done_reason": "stop",
    "total_duration": 90_000_000,
    "load_duration": 2_000_000,
    "prompt_eval_count": 10,
    "prompt_eval_duration": 8_000_000,
    "eval_count": 5,
    "eval_duration": 50_000_000,
}


def normal_stream(n: int = 5, final: dict[str, Any] | None = None) -> Reply:
    """A healthy stream: n one-token lines, each in its own chunk, then the final line."""
    return stream_reply(
        [*(ndjson(t) for t in tokens(n)), ndjson({**FINAL, "eval_count": n, **(final or {})})]
    )


class FaultServer:
    """Serves `handler`'s replies on a free loopback port until `stop()` (or leaving `with`)."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.requests: list[Request] = []
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._accept, name="fault-server", daemon=True)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    conn.close()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    # -- serving ---------------------------------------------------------------------------------
    def _accept(self) -> None:
        self._listener.settimeout(0.05)  # so that stop() is seen: closing does not wake accept()
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        conn = raw
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(raw, server_side=True)
                with self._lock:
                    self._conns.append(conn)
            request = _read_request(conn)
            if request is None:
                return
            self.requests.append(request)
            for action in self.handler(request):
                if isinstance(action, _Hang):
                    self._stop.wait()
                    return
                if isinstance(action, float | int):
                    if self._stop.wait(float(action)):
                        return
                    continue
                conn.sendall(action)
        except (OSError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()


def _read_request(conn: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk or len(data) > 1024 * 1024:
            return None
        data += chunk
    header, _, body = data.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    try:
        method, path, _version = lines[0].split(" ", 2)
    except ValueError:
        return None
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return Request(method, path, headers, body)


@dataclass
class FakeOllama:
    """Answers like Ollama 0.33 (probe, version, tags, show, ps, load/unload); streamed generate/chat
    calls get `stream(request)`, a healthy stream by default. Tests change fields live."""

    models: list[str] = field(default_factory=lambda: ["m:latest", "other:7b"])
    loaded: set[str] = field(default_factory=set)
    stream: Callable[[Request], Reply] = field(default=lambda _r: normal_stream())
    #: replaces the answer to one "METHOD /path" (e.g. "GET /")
    overrides: dict[str, Reply] = field(default_factory=dict)
    calls: int = 0

    def _model(self, request: Request) -> str:
        name = str(request.json().get("model", ""))
        return name if ":" in name else f"{name}:latest"

    def __call__(self, request: Request) -> Reply:
        key = f"{request.method} {request.path}"
        if key in self.overrides:
            return self.overrides[key]
        if key == "GET /":
            return text_reply(200, "Ollama is running", "text/plain; charset=utf-8")
        if key == "GET /api/version":
            return json_reply(200, {"version": "0.33.0"})
        if key == "GET /api/tags":
            return json_reply(200, {"models": [self._entry(m) for m in self.models]})
        if key == "GET /api/ps":
            return json_reply(200, {"models": [self._entry(m) for m in sorted(self.loaded)]})
        if key == "POST /api/show":
            if self._model(request) not in self.models:
                return json_reply(404, {"error": f"model '{request.json().get('model')}' not found"})
            return json_reply(200, {"capabilities": ["completion"], "details": {}})
        if key in ("POST /api/generate", "POST /api/chat"):
            body = request.json()
            model = self._model(request)
            if model not in self.models:
                return json_reply(404, {"error": f"model '{body.get('model')}' not found"})
            if body.get("stream") is False:  # a load (or with keep_alive 0, an unload)
                if body.get("keep_alive") == 0:
                    self.loaded.discard(model)
                    return json_reply(200, {"model": model, "done": True, "done_reason": "unload"})
                self.loaded.add(model)
                return json_reply(200, {"model": model, "response": "", "done": True, "done_reason": "load"})
            self.loaded.add(model)
            self.calls += 1
            return self.stream(request)
        return text_reply(404, "404 page not found", "text/plain")

    @staticmethod
    def _entry(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "model": name,
            "digest": "0" * 64,
            "size": 2_000_000_000,
            "size_vram": 2_000_000_000,
            "details": {"parameter_size": "3B", "quantization_level": "Q4_K_M", "family": "llama"},
        }


# -- TLS and connect timeouts -------------------------------------------------------------------------
def tls_context(folder: Path) -> ssl.SSLContext | None:
    """A server context with a fresh self-signed certificate for 127.0.0.1, or None if none can be made."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    if not _make_cert_cryptography(cert, key) and not _make_cert_openssl(cert, key):
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def _make_cert_cryptography(cert: Path, key: Path) -> bool:
    try:
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return False
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return True


def _make_cert_openssl(cert: Path, key: Path) -> bool:
    openssl = shutil.which("openssl")
    if openssl is None:
        return False
    command = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    command += ["-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return cert.is_file() and key.is_file()


@contextlib.contextmanager
def full_backlog_port() -> Iterator[int | None]:
    """A listening port that never accepts, its backlog filled: a new connect hangs (SYNs are dropped).
    Yields None where the OS accepts the connect anyway (the caller then skips)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers: list[socket.socket] = []
    try:
        for _ in range(8):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError, OSError):
                s.connect(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.05)
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(0.3)
        try:
            probe.connect(("127.0.0.1", port))
            hangs = False
        except TimeoutError:
            hangs = True
        except OSError:
            hangs = False
        finally:
            probe.close()
        yield port if hangs else None
    finally:
        for s in fillers:
            s.close()
        listener.close()
