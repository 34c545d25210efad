"""Crash safety: SIGKILL a real `chimera-tui bench` at random points of a multi-run session.

On "restart" (loading the folder afterwards) every run the process had reported finished is there
and ok, the run in flight is `incomplete`, the session is `incomplete`, and both files parse.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from chimera_tui.core.errors import SessionError
from chimera_tui.core.store.session_store import SessionStore
from chimera_tui.core.store.sessions import load_session

RUNS = 8
FINISHED = re.compile(rf"^  run (\d+)/{RUNS}: ", re.MULTILINE)


@dataclass
class Victim:
    root: Path
    stderr: Path
    proc: subprocess.Popen[bytes]
    wait_for_folder: bool
    delay_s: float
    started: float


def launch(tmp_path: Path, k: int, wait_for_folder: bool, delay_s: float) -> Victim:
    root = tmp_path / f"s{k}"
    stderr = tmp_path / f"stderr{k}.txt"
    command = [sys.executable, "-m", "chimera_tui", "bench", "--demo", "--runs", str(RUNS), "--warmup", "0"]
    command += ["--num-predict", "30", "--sessions-dir", str(root)]
    with stderr.open("wb") as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=dict(os.environ))
    return Victim(root, stderr, proc, wait_for_folder, delay_s, time.monotonic())


def kill_when_due(victim: Victim) -> None:
    deadline = victim.started + 15
    if victim.wait_for_folder:
        while time.monotonic() < deadline and victim.proc.poll() is None:
            if victim.root.is_dir() and any(victim.root.iterdir()):
                break
            time.sleep(0.005)
        time.sleep(victim.delay_s)
    else:
        time.sleep(max(0.0, victim.started + victim.delay_s - time.monotonic()))
    if victim.proc.poll() is None:
        victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(10)


def check(victim: Victim) -> str:
    """Check the invariants after the kill; returns what the kill hit, for the summary."""
    finished = {int(n) - 1 for n in FINISHED.findall(victim.stderr.read_text("utf-8", "replace"))}
    folders = [p for p in victim.root.iterdir() if p.is_dir()] if victim.root.is_dir() else []
    if not folders:
        assert not finished
        return "before the session folder"
    (folder,) = folders
    if not (folder / "session.toml").exists():
        with pytest.raises(SessionError, match="not a session"):
            load_session(folder)
        return "before the manifest"
    tomllib.loads((folder / "session.toml").read_text("utf-8"))  # parses
    json.loads((folder / "metrics.json").read_text("utf-8"))  # parses
    session = load_session(folder)
    indices = [r.index for r in session.runs]
    assert indices == list(range(len(indices)))  # no gap, no duplicate
    statuses = [r.status for r in session.runs]
    for index in finished:  # everything the process said was done survived the kill, intact
        run = session.runs[index]
        assert run.status == "ok" and run.metrics.token_count == 30 and len(run.token_offsets_ms) == 30
    assert all(s == "ok" for s in statuses[:-1])
    (summary,), broken = SessionStore(victim.root).summaries()
    assert broken == [] and summary.status == session.status
    if session.status == "complete":
        assert statuses == ["ok"] * RUNS
        return "after the end"
    assert session.status == "incomplete"
    assert not statuses or statuses[-1] in ("ok", "incomplete")
    assert session.counts["ok"] == sum(s == "ok" for s in statuses)
    assert (
        session.aggregates.get("ttft_ms") is None or session.aggregates["ttft_ms"].n == session.counts["ok"]
    )
    return f"after {session.counts['ok']} runs" + (
        " (one in flight)" if statuses[-1:] == ["incomplete"] else ""
    )


def test_sigkill_at_random_points_loses_nothing_finished(tmp_path: Path) -> None:
    rng = random.Random(20261122)
    plans = [(False, rng.uniform(0.2, 0.9))]  # likely before or while the session is created
    # inside the session (timed from its folder): the preload takes ~0.3 s, then 8 runs of ~0.3 s
    plans += [(True, rng.uniform(0.0, 0.7))]
    plans += [(True, 0.9 + rng.uniform(0.0, 2.0)) for _ in range(3)]
    victims = [launch(tmp_path, k, wait, delay) for k, (wait, delay) in enumerate(plans)]
    killers = [threading.Thread(target=kill_when_due, args=(v,)) for v in victims]
    try:
        for killer in killers:
            killer.start()
        for killer in killers:
            killer.join(30)
    finally:
        for victim in victims:
            if victim.proc.poll() is None:
                victim.proc.kill()
                victim.proc.wait(10)
    hits = [check(victim) for victim in victims]
    assert any("in flight" in hit for hit in hits) or len(set(hits)) > 1, hits
