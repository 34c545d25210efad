"""Issue 15, item 11: big inputs stay proportionate. A prompt above the stated size is refused in one
line; an accepted one is stored once per session (runs keep only their unique prefix). Real files,
a real socket server, the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from chimera_tui.core.store.sessions import load_session
from tests.fault_server import FakeOllama, FaultServer


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chimera_tui", *args, "--sessions-dir", str(root)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip


def test_a_prompt_above_the_limit_is_refused_in_one_line(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("word " * 420_000)  # 2.1 MB
    root = tmp_path / "sessions"
    proc = cli(root, "bench", "--demo", "--prompt-file", str(big))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("chimera-tui: error: ")]
    assert "is 2,100,000 bytes: prompts above 1 MiB are refused" in line and "--max-prompt-mib" in line
    assert not root.exists() or not any(root.iterdir())  # nothing was started


def test_the_prompt_is_stored_once_per_session(tmp_path: Path) -> None:
    prompt = "Summarise the following. " + "lorem ipsum " * 25_000  # 300 KB
    (tmp_path / "p.txt").write_text(prompt)
    root = tmp_path / "sessions"
    with FaultServer(FakeOllama()) as server:
        args = ["bench", "--endpoint", server.url, "--model", "m", "--runs", "3", "--warmup", "1"]
        proc = cli(root, *args, "--prompt-file", str(tmp_path / "p.txt"))
    assert proc.returncode == 0, proc.stderr
    (folder,) = [p for p in root.iterdir() if p.is_dir()]
    metrics = (folder / "metrics.json").read_text()
    assert "Summarise the following." not in metrics and len(metrics) < 100_000  # no run repeats the prompt
    assert (folder / "session.toml").read_text().count("Summarise the following.") == 1
    runs = json.loads(metrics)["runs"]
    assert all(r["prompt"] is None and r["prompt_prefix"].startswith("[run ") for r in runs)
    session = load_session(folder)  # the reader puts each run's prompt back together
    assert [r.prompt for r in session.runs] == [r["prompt_prefix"] + prompt for r in runs]
    assert len({r.prompt for r in session.runs}) == 4  # each run's unique prefix is kept
