"""Issue 15, item 7 and the closed-pipe case of 9: SIGTERM and SIGHUP during `bench` are handled as
SIGINT is (run in flight recorded cancelled with its partial tokens, session closed, one line, exit
128 + signal); output to a closed pipe ends quietly. Real signals to a real subprocess, a real socket
server streaming slowly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.fault_server import FakeOllama, FaultServer, Reply, Request, ndjson, stream_reply, tokens


def slow_stream(started: threading.Event) -> FakeOllama:
    fake = FakeOllama()

    def stream(_r: Request) -> Reply:
        started.set()
        return stream_reply([item for t in tokens(1000) for item in (ndjson(t), 0.05)])

    fake.stream = stream
    return fake


@pytest.mark.parametrize(
    ("sig", "code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
def test_stop_signals_cancel_the_run_in_flight_and_close_the_session(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    started = threading.Event()
    with FaultServer(slow_stream(started)) as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "chimera_tui", "bench", "--endpoint", server.url, "--model", "m",
             "--runs", "3", "--warmup", "0", "--sessions-dir", str(tmp_path)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
        try:
            assert started.wait(30), "the run never started"
            time.sleep(0.6)  # a few tokens in
            proc.send_signal(sig)
            _out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert f"chimera-tui: cancelled by {sig.name}; the run in flight is recorded as cancelled" in err
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    doc = json.loads((folder / "metrics.json").read_text())
    assert doc["status"] == "cancelled"
    (run,) = doc["runs"]
    assert run["status"] == "cancelled" and run["response"].startswith("tok tok")  # partial tokens kept
    assert "result" in (folder / "session.toml").read_text()  # the session is closed


def test_output_to_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    root = tmp_path / "sessions"
    for i in range(200):  # enough lines to outlast the pipe buffer
        (root / f"s{i:03d}").mkdir(parents=True)
    # a listing to a reader that reads one line and leaves: `chimera-tui sessions | head -1`
    proc = subprocess.run(
        f"{sys.executable} -m chimera_tui sessions --sessions-dir {root} | head -1; exit ${{PIPESTATUS[0]}}",
        shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode in (0, 141), proc.stderr
    assert proc.stderr == "", proc.stderr
