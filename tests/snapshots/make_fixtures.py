"""Rebuild the saved sessions and the sweep that the screen snapshots show (tests/snapshots/fixtures).

    .venv/bin/python -m tests.snapshots.make_fixtures

Runs the headless CLI against the embedded simulator (two single sessions, one shared session, a
five-configuration sweep), then rewrites what depends on the machine or the day (host, pid, OS,
CPU, RAM, Python, ports, the date) to fixed values, so the snapshots never show this machine. The
measured figures stay as they were measured: once written, the fixture is static. After rebuilding,
regenerate the snapshots (`pytest tests/snapshots --snapshot-update`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import tomli_w

HERE = Path(__file__).parent
OUT = HERE / "fixtures" / "sessions"
DATE = ("2026-01-15", "20260115")
ENVIRONMENT = {
    "hostname": "bench-host",
    "os": "Linux 6.8.0",
    "python": "3.12.3",
    "cpu": "AMD Ryzen 9 7950X",
    "cpu_cores_logical": 32,
    "cpu_cores_physical": 16,
    "ram_total_bytes": 64 * 2**30,
    "pid": 4242,
}
SWEEP = """name = "tiny"
runs = 3
warmup = 0
num_predict = 16
prompt_preset = "short"
[grid]
num_ctx = [256, 512]
temperature = [0.6, 0.8]
"""


def _cli(work: Path, *args: str) -> None:
    env = {
        **os.environ,
        "CHIMERA_TUI_PROFILES": str(work / "profiles"),
        "CHIMERA_TUI_LOG": str(work / "log"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "chimera_tui", *args], cwd=work, env=env, capture_output=True
    )
    if done.returncode:
        raise SystemExit(f"chimera-tui {' '.join(args)} failed:\n{done.stderr.decode()}")


def _text(text: str) -> str:
    text = re.sub(r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:11434", text)
    today = re.search(r"(\d{4})-(\d{2})-(\d{2})T", text)
    if today:
        iso = today.group(0)[:-1]
        text = text.replace(iso, DATE[0]).replace(iso.replace("-", ""), DATE[1])
    return text


def _manifest(path: Path, label: str | None) -> None:
    doc = tomllib.loads(_text(path.read_text()))
    if "environment" in doc:
        doc["environment"].update(ENVIRONMENT)
    if label:
        doc["label"] = label
    path.write_text(tomli_w.dumps(doc))


def _metrics(path: Path) -> None:
    doc = json.loads(_text(path.read_text()))
    if "writer" in doc:
        doc["writer"] = {"pid": ENVIRONMENT["pid"], "host": ENVIRONMENT["hostname"]}
    path.write_text(json.dumps(doc, indent=1))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "tiny.toml").write_text(SWEEP)
        common = ["--runs", "5", "--warmup", "1", "--num-predict", "32", "--sessions-dir", "s"]
        labels: dict[str, str] = {}
        for profile, name in (("baseline_default", "base"), ("tier2_balanced", "tuned")):
            _cli(work, "--demo", "bench", "-p", profile, *common)
            labels[profile] = name
        shared = ["--mode", "shared", "--runs", "3", "--warmup", "0", "--num-predict", "32"]
        _cli(work, "--demo", "bench", *shared, "--sessions-dir", "s")
        _cli(work, "sweep", "run", "tiny.toml", "--demo", "--sessions-dir", "s")
        if OUT.exists():
            shutil.rmtree(OUT)
        shutil.copytree(work / "s", OUT)
    sweep_sessions: set[str] = set()
    for record in OUT.glob("sweeps/*/sweep.json"):
        for config in json.loads(record.read_text())["configs"]:
            sweep_sessions.update(config["session_ids"])
    for folder in sorted(OUT.iterdir()):
        if not (folder / "session.toml").is_file():
            continue
        doc = tomllib.loads((folder / "session.toml").read_text())
        single = doc.get("mode") == "single" and folder.name not in sweep_sessions
        label = labels.get(str(doc.get("profile", {}).get("name"))) if single else None
        _manifest(folder / "session.toml", label)
        _metrics(folder / "metrics.json")
    for record in OUT.glob("sweeps/*"):
        _metrics(record / "sweep.json")
        (record / "sweep.toml").write_text(_text((record / "sweep.toml").read_text()))
    for path in sorted(OUT.rglob("*")):  # folder names carry the date too
        if path.is_dir() and DATE[1] not in path.name and re.match(r"\d{8}-", path.name):
            path.rename(path.with_name(DATE[1] + path.name[8:]))


if __name__ == "__main__":
    main()
