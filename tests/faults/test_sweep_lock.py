"""Issue 15, item 8: two resumes of one sweep never run at once. A real fcntl lock held by another
process refuses the second with one line; a sweep killed mid-way (SIGKILL) stays resumable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chimera_tui.core.store.lock import Locked, folder_lock

HOLD = "import sys, time; from chimera_tui.core.store.lock import folder_lock\n" \
    "with folder_lock(__import__('pathlib').Path(sys.argv[1]), 'x'):\n" \
    "    print('held', flush=True); time.sleep(60)\n"  # fmt: skip


def hold(folder: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_the_lock_is_exclusive_across_processes_and_dies_with_its_holder(tmp_path: Path) -> None:
    holder = hold(tmp_path)
    try:
        expected = rf"sweep s is being run by another process \(pid {holder.pid}\)"
        with pytest.raises(Locked, match=expected), folder_lock(tmp_path, "sweep s"):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with folder_lock(tmp_path, "sweep s"):  # a killed holder leaves nothing behind
        pass


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chimera_tui", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip


def test_a_second_resume_is_refused_while_the_first_lives(tmp_path: Path) -> None:
    definition = tmp_path / "lock.toml"
    definition.write_text(
        'name = "lock"\nruns = 3\nwarmup = 0\nnum_predict = 40\n[grid]\nnum_ctx = [256, 512, 768, 1024]\n'
    )
    root = tmp_path / "sessions"
    first = subprocess.Popen(
        [sys.executable, "-m", "chimera_tui", "sweep", "run", str(definition), "--demo",
         "--sessions-dir", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        records: list[Path] = []
        while time.monotonic() < deadline and not records:
            records = list((root / "sweeps").glob("*/sweep.json")) if (root / "sweeps").is_dir() else []
            time.sleep(0.05)
        assert records, "the sweep never started"
        time.sleep(0.5)
        first.send_signal(signal.SIGKILL)  # a crash mid-sweep
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    folder = records[0].parent
    assert json.loads(records[0].read_text())["status"] == "running"  # as the killed writer left it
    holder = hold(folder)  # another resume in progress, as far as the lock tells
    try:
        proc = cli("sweep", "resume", folder.name, "--demo", "--sessions-dir", str(root))
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("chimera-tui: error: ")]
    assert errors == [f"chimera-tui: error: sweep {folder.name} is being run by another process "
                      f"(pid {holder.pid}); wait for it to end, or stop it first"]  # fmt: skip
    proc = cli("sweep", "resume", folder.name, "--demo", "--sessions-dir", str(root))  # now it may
    assert proc.returncode == 0, proc.stderr
    assert json.loads(records[0].read_text())["status"] == "complete"
