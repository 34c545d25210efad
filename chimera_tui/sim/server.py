"""Serving a simulator on a real port with uvicorn: in a background thread, or blocking."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from chimera_tui.sim.simulator import OllamaSimulator


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # `--host ::1`
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _check_bindable(host: str, port: int) -> None:
    """Raise OSError now if host:port cannot be bound (uvicorn would log and sys.exit instead)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # `--host ::1`
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))


def _config(sim: OllamaSimulator, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        sim.asgi,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        server_header=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )


class RunningSimulator:
    """A simulator served by uvicorn in a daemon thread. `stop()` (or leaving `with`) shuts it down."""

    def __init__(self, sim: OllamaSimulator, host: str, port: int) -> None:
        self.sim = sim
        self.host = host
        self.port = port
        self._server = uvicorn.Server(_config(sim, host, port))
        self._thread = threading.Thread(target=self._server.run, name=f"ollama-sim-{port}", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _start(self, timeout: float) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise RuntimeError(f"simulator failed to start on {self.url}")
            if self._server.started:
                try:
                    with socket.create_connection((self.host, self.port), timeout=0.5):
                        return
                except OSError:
                    pass
            time.sleep(0.01)
        self.stop()
        raise TimeoutError(f"simulator did not start on {self.url} within {timeout:g} s")

    def stop(self, timeout: float = 5.0) -> None:
        """Ask uvicorn to exit and join its thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_background(
    sim: OllamaSimulator, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0
) -> RunningSimulator:
    """Serve `sim` on host:port (0 = a free port) in a daemon thread; returns once it accepts connections.

    Raises OSError if an explicit port cannot be bound.
    """
    if port:
        _check_bindable(host, port)
    running = RunningSimulator(sim, host, port or _free_port(host))
    running._start(timeout)
    return running


def serve(sim: OllamaSimulator, host: str = "127.0.0.1", port: int = 11435) -> None:
    """Serve `sim` in the foreground until Ctrl-C (uvicorn handles the signal and exits cleanly).

    Raises OSError if the port cannot be bound.
    """
    _check_bindable(host, port)
    uvicorn.Server(_config(sim, host, port)).run()
