"""Issue 15, item 9: every error path is one clear line. CLI numbers are finite and in range (usage
error, exit 2, naming the option); fields read from a session file are type-checked (wrong types read
as missing, never an "unexpected" error); `sim` binds IPv6. Real files and sockets, real processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from chimera_tui.cli import main
from chimera_tui.core.store.sessions import load_session


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "--runs", "1e9"],
        ["bench", "--runs", "nan"],
        ["bench", "--warmup", "-1"],
        ["bench", "--num-predict", "-3"],
        ["bench", "--agents", "99999"],
        ["bench", "--idle-timeout", "nan"],
        ["bench", "--first-byte-timeout", "inf"],
        ["bench", "--connect-timeout", "1e300"],
        ["bench", "--connect-timeout", "-1"],
        ["bench", "--contention-rate-drop", "nan"],
        ["sim", "--port", "99999"],
        ["sim", "--port", "abc"],
        ["sim", "--tokens-per-s", "0"],
        ["sim", "--jitter", "inf"],
        ["sim", "--num-parallel", "0"],
        ["sweep", "run", "x", "--cooldown", "-5"],
        ["sweep", "run", "x", "--seed", "1" * 40],
    ],
    ids=lambda argv: " ".join(argv)[:40],
)
def test_every_cli_number_is_validated(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ": error: argument " in line]
    assert len(errors) == 1 and "Traceback" not in err and len(errors[0]) < 200, err


def _session(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    root = tmp_path / "sessions"
    args = ["bench", "--demo", "--runs", "1", "--warmup", "0", "--num-predict", "5", "--json"]
    assert main([*args, "--sessions-dir", str(root)]) == 0
    capsys.readouterr()
    (folder,) = [p for p in root.iterdir() if p.is_dir()]
    return folder


def _edit_run(folder: Path, key: str, value: Any, in_metrics: bool = False) -> None:
    doc = json.loads((folder / "metrics.json").read_text())
    target = doc["runs"][0]["metrics"] if in_metrics else doc["runs"][0]
    target[key] = value
    # json.dumps writes 1e308 as 1e+308 (valid JSON); a 400-digit integer as itself
    (folder / "metrics.json").write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("key", "value", "in_metrics"),
    [
        ("ttft_ms", int("9" * 400), True),
        ("ttft_ms", 1e308, True),
        ("server_decode_rate", -1e308, True),
        ("response", {"not": "a string"}, False),
        ("thinking", 5, False),
        ("prompt", ["x"], False),
        ("token_offsets_ms", "abc", False),
        ("token_offsets_ms", [1, "x"], False),
        ("notes", 5, False),
        ("server_final", [1, 2], False),
        ("agent", "z", False),
    ],
    ids=lambda v: str(v)[:20],
)
def test_wrong_types_in_metrics_json_read_as_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, value: Any, in_metrics: bool
) -> None:
    folder = _session(tmp_path, capsys)
    _edit_run(folder, key, value, in_metrics)
    session = load_session(folder)
    run = session.runs[0]
    if in_metrics:
        assert getattr(run.metrics, key) is None  # absurd or unusable: missing
    for fmt in ("md", "html", "csv", "json"):
        assert main(["export", str(folder), "-f", fmt, "-o", str(tmp_path / f"x.{fmt}")]) == 0
    assert main(["compare", str(folder), str(folder)]) == 0
    err = capsys.readouterr().err
    assert "unexpected" not in err and "error" not in err


def test_a_non_table_profile_options_is_read_as_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _session(tmp_path, capsys)
    text = (folder / "session.toml").read_text()
    start = text.index("[profile.options]")
    end = text.find("\n[", start + 1)
    text = text[:start] + text[end + 1 :] if end > 0 else text[:start]
    text = text.replace("[profile]\n", "[profile]\noptions = 5\n", 1)
    (folder / "session.toml").write_text(text)
    for fmt in ("md", "html", "csv", "json"):
        assert main(["export", str(folder), "-f", fmt, "-o", str(tmp_path / f"x.{fmt}")]) == 0
    assert main(["sessions", "--sessions-dir", str(folder.parent)]) == 0
    assert "unexpected" not in capsys.readouterr().err


def test_sim_serves_on_ipv6(tmp_path: Path) -> None:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
            port = s.getsockname()[1]
    except OSError:
        pytest.skip("no IPv6 loopback here")
    proc = subprocess.Popen(
        [sys.executable, "-m", "chimera_tui", "sim", "--host", "::1", "--port", str(port), "--load-s", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("::1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.05)
        args = ["bench", "--endpoint", f"[::1]:{port}", "--runs", "1", "--warmup", "0", "--num-predict", "3"]
        result = subprocess.run(
            [sys.executable, "-m", "chimera_tui", *args, "--sessions-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert f"http://[::1]:{port}" in result.stderr
    finally:
        proc.terminate()
        proc.wait(10)
