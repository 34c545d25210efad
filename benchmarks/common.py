"""Shared pieces of the benchmark suite: result rows, statistics, server subprocesses, a pty runner.

Every benchmark is a module with `run(quick: bool) -> list[Result]`. Servers always run in their own
process (the firehose, `chimera-tui sim`), so a server never competes with the client for its GIL.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@dataclass(slots=True)
class Result:
    """One row of the results table. `passed` is None for informational figures (no target)."""

    bench: str
    figure: str
    value: float | None
    unit: str
    target: str = ""
    passed: bool | None = None
    detail: str = ""
    #: the target as a test: value `op` limit (None for informational rows and plain yes/no rows)
    op: str | None = None
    limit: float | None = None

    def shown(self) -> str:
        if self.value is None:
            return "—"
        v = self.value
        if self.unit == "x":
            return f"{v:.2f} x"
        text = f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}" if abs(v) < 10 else f"{v:,.1f}"
        return f"{text} {self.unit}".strip()

    def verdict(self) -> str:
        return "info" if self.passed is None else ("PASS" if self.passed else "FAIL")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check(
    bench: str, figure: str, value: float | None, unit: str, op: str, limit: float, detail: str = ""
) -> Result:
    """A row with a target `value op limit` (op: '<', '<=', '>', '>=')."""
    passed = value is not None and _OPS[op](value, limit)
    shown_limit = f"{limit:g}" if unit in ("x", "", "%") else f"{limit:g} {unit}"
    return Result(bench, figure, value, unit, f"{op} {shown_limit}", passed, detail, op, limit)


def combine(rounds: list[list[Result]]) -> list[Result]:
    """The median of each figure over repeated runs of the suite, its target checked on the median."""
    groups: dict[tuple[str, str], list[Result]] = {}
    for results in rounds:
        for r in results:
            groups.setdefault((r.bench, r.figure), []).append(r)
    out = []
    for rows in groups.values():
        first = rows[0]
        values = [r.value for r in rows if r.value is not None]
        value = median(values) if len(values) == len(rows) else None
        if first.op is not None and first.limit is not None:
            passed: bool | None = value is not None and _OPS[first.op](value, first.limit)
        elif first.passed is None:
            passed = None
        else:
            passed = all(r.passed for r in rows)
        spread = f"median of {len(rows)}: {min(values):.4g}..{max(values):.4g}" if values else "failed"
        detail = f"{first.detail}; {spread}" if first.detail else spread
        out.append(
            Result(
                first.bench,
                first.figure,
                value,
                first.unit,
                first.target,
                passed,
                detail,
                first.op,
                first.limit,
            )
        )
    return out


def info(bench: str, figure: str, value: float | None, unit: str, detail: str = "") -> Result:
    return Result(bench, figure, value, unit, "", None, detail)


def median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=float)))


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[Any] | None = None, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server process exited ({proc.returncode}) before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listening on port {port} after {timeout:g} s")


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child: this checkout importable, no colour surprises."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.pop("CHIMERA_TUI_BENCH_TRACE", None)
    env.pop("CHIMERA_TUI_BENCH_AUTOSTART", None)
    env.update(extra)
    return env


@contextlib.contextmanager
def server(args: Sequence[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A server subprocess (`python ARGS`), up and listening on `port`; SIGINT on exit."""
    proc = subprocess.Popen(
        [PYTHON, *args], cwd=ROOT, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_port(port, proc)
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGINT (the servers write what they recorded on the way out), then wait; kill if stuck."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def firehose(tokens: int = 100_000) -> Iterator[str]:
    """The pre-rendered NDJSON server (benchmarks/firehose.py) in its own process; yields its URL."""
    port = free_port()
    with server(["-m", "benchmarks.firehose", "--port", str(port), "--tokens", str(tokens)], port):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def simulator(
    tokens_per_s: float, *, emit_times: Path | None = None, extra: Sequence[str] = ()
) -> Iterator[str]:
    """`chimera-tui sim` in its own process, no jitter, no load time; yields its URL."""
    port = free_port()
    args = ["-m", "chimera_tui", "sim", "--port", str(port), "--tokens-per-s", str(tokens_per_s)]
    args += ["--jitter", "0", "--load-s", "0", *extra]
    if emit_times is not None:
        args += ["--emit-times", str(emit_times)]
    with server(args, port):
        yield f"http://127.0.0.1:{port}"


def exited(proc: subprocess.Popen[Any]) -> bool:
    """Whether the child has exited, without reaping it."""
    if proc.returncode is not None:
        return True
    return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


class PeakRss:
    """The child's own peak RSS (`VmHWM` in /proc/PID/status), read every 10 ms until it exits.

    Not `ru_maxrss` from wait4: on Linux a child started from a large parent (this suite) inherits
    the parent's high-water mark at exec, so every child would report at least the parent's size.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        path = Path(f"/proc/{self.pid}/status")
        while not self._stop.is_set():
            try:
                for line in path.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_kib = max(self.peak_kib, int(line.split()[1]))
            except (OSError, ValueError):
                return
            self._stop.wait(0.01)

    def stop(self) -> float:
        """Peak RSS in MB."""
        self._stop.set()
        self._thread.join()
        return self.peak_kib / 1024


def peak_rss_mb(proc: subprocess.Popen[Any], poller: PeakRss) -> tuple[int, float]:
    """Wait for the child; its exit code and peak RSS (MB). The poller must have been started at once
    after the launch; the last reading is taken before the child is reaped."""
    while not exited(proc):
        time.sleep(0.01)
    rss = poller.stop()
    return proc.wait(), rss


@dataclass(slots=True)
class PtyRun:
    """A process run in a pseudo-terminal: what it printed, when, and how it ended."""

    returncode: int | None
    output: bytes
    peak_rss_mb: float | None
    #: perf_counter() at launch, and when `wait_for` first appeared in the output (None if never)
    t_launch: float
    t_seen: float | None
    timed_out: bool


def run_in_pty(
    argv: Sequence[str],
    env: dict[str, str],
    *,
    size: tuple[int, int] = (160, 48),
    timeout: float = 60.0,
    wait_for: bytes | None = None,
    stop_when_seen: bool = False,
) -> PtyRun:
    """Run `argv` with a pty as its terminal, reading everything it writes (a terminal that keeps up).

    With `wait_for`, notes when that text first appears; `stop_when_seen` then ends the process
    (SIGTERM) instead of waiting for it to exit by itself.
    """
    master, slave = os.openpty()
    cols, rows = size
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    t_launch = time.perf_counter()
    proc = subprocess.Popen(
        list(argv), cwd=ROOT, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
    )
    poller = PeakRss(proc.pid)
    os.close(slave)
    out = bytearray()
    t_seen: float | None = None
    timed_out = False
    deadline = t_launch + timeout
    try:
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([master], [], [], min(left, 0.1))
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                out += data
                if wait_for is not None and t_seen is None and wait_for in out[-len(data) - len(wait_for) :]:
                    t_seen = time.perf_counter()
                    if stop_when_seen:
                        break
            elif exited(proc):
                break
    finally:
        if not exited(proc):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            # keep reading so a child blocked on the terminal can exit
            end = time.perf_counter() + 5
            while not exited(proc) and time.perf_counter() < end:
                if select.select([master], [], [], 0.05)[0]:
                    try:
                        os.read(master, 65536)
                    except OSError:
                        break
            if not exited(proc):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        code, rss = peak_rss_mb(proc, poller)
        os.close(master)
    return PtyRun(code, bytes(out), rss, t_launch, t_seen, timed_out)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
