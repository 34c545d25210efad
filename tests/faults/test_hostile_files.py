"""Issue 15, items 4 and 8 (ids) and the file cases of 9: hostile files in the sessions directory, as
prompt files, profiles and workflow data. Nothing hangs, nothing reads without bound, every problem
is one line. Real FIFOs, device symlinks and large files; the CLI in subprocesses under a timeout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w

from chimera_tui.core.errors import ProfileError, SessionError
from chimera_tui.core.run.workflow import ingest
from chimera_tui.core.store import safe_read, sessions
from chimera_tui.core.store.profiles import load_profile
from chimera_tui.core.store.safe_read import UnsafeRead, read_bytes
from chimera_tui.core.store.session_store import SessionStore
from chimera_tui.core.store.sessions import SessionWriter

MANIFEST = {"mode": "single", "model": {"name": "m:latest"}, "profile": {"name": "baseline"}}


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chimera_tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,  # a hang fails the test instead of blocking the suite
        env={**os.environ, "NO_COLOR": "1"},
        stdin=subprocess.DEVNULL,
    )


def one_line(proc: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr and "unexpected" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("chimera-tui: error: ")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_safe_read_refuses_what_is_not_a_regular_file_of_bounded_size(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    zero = tmp_path / "zero"
    zero.symlink_to("/dev/zero")
    big = tmp_path / "big"
    big.write_bytes(b"x" * 2000)
    with pytest.raises(UnsafeRead, match="is a FIFO"):
        read_bytes(fifo, 100)  # returns at once: no writer needed
    with pytest.raises(UnsafeRead, match="is a character device"):
        read_bytes(zero, 100)
    with pytest.raises(UnsafeRead, match="is a directory"):
        read_bytes(tmp_path, 100)
    with pytest.raises(UnsafeRead, match=r"larger than 1 KiB \(2,000 bytes\)"):
        read_bytes(big, 1024)
    assert read_bytes(big, 2000) == b"x" * 2000


def _running_session(root: Path) -> SessionWriter:
    return SessionWriter(root, MANIFEST)  # no result: listed from the writer in its manifest


def test_listing_never_opens_metrics_json(tmp_path: Path) -> None:
    root = tmp_path / "sessions"
    fifo_one = _running_session(root)
    (fifo_one.path / "metrics.json").unlink()
    os.mkfifo(fifo_one.path / "metrics.json")  # a FIFO: opening it would hang the listing
    zero_one = _running_session(root)
    (zero_one.path / "metrics.json").unlink()
    (zero_one.path / "metrics.json").symlink_to("/dev/zero")  # reading it would never end
    proc = cli("sessions", "--sessions-dir", str(root), "--json")
    assert proc.returncode == 0, proc.stderr
    assert fifo_one.id in proc.stdout and zero_one.id in proc.stdout
    # the export of such a session is one line naming the file
    line = one_line(cli("export", zero_one.id, "--sessions-dir", str(root)))
    assert "metrics.json is a character device, not a regular file" in line


def test_running_or_crashed_comes_from_the_manifest(tmp_path: Path) -> None:
    writer = _running_session(tmp_path)
    (writer.path / "metrics.json").unlink()  # not needed to tell the status
    (row,), _ = SessionStore(tmp_path).summaries()
    assert row.status == "running"
    manifest = tomllib.loads((writer.path / "session.toml").read_text())
    manifest["writer"]["pid"] = 2**22 + 12345  # a pid no process has: the writer crashed
    (writer.path / "session.toml").write_text(tomli_w.dumps(manifest))
    (row,), _ = SessionStore(tmp_path).summaries()
    assert row.status == "incomplete"


def test_a_hostile_manifest_is_one_line_and_never_hangs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "sessions"
    big = _running_session(root)
    monkeypatch.setattr(sessions, "MAX_MANIFEST_BYTES", 100)
    _, broken = SessionStore(root).summaries()
    assert [b.path for b in broken] == [big.path] and "larger than" in broken[0].reason
    monkeypatch.undo()
    fifo_one = root / "fifo-session"
    fifo_one.mkdir()
    os.mkfifo(fifo_one / "session.toml")
    proc = cli("sessions", "--sessions-dir", str(root))
    assert proc.returncode == 0 and "fifo-session" in proc.stdout + proc.stderr


def test_prompt_file_profile_and_workflow_data_fifos(tmp_path: Path) -> None:
    fifo = tmp_path / "prompt.txt"
    os.mkfifo(fifo)
    line = one_line(cli("bench", "--demo", "--prompt-file", str(fifo), "--sessions-dir", str(tmp_path)))
    assert "cannot read prompt file" in line and "is a FIFO" in line
    profile = tmp_path / "p.toml"
    os.mkfifo(profile)
    with pytest.raises(ProfileError, match="is a FIFO"):
        load_profile(profile)
    data = tmp_path / "data"
    data.mkdir()
    (data / "ok.csv").write_text("a,b\n1,2\n")
    os.mkfifo(data / "trap.csv")
    result = ingest(data)
    assert [f.path for f in result.files] == ["ok.csv"]
    assert any("trap.csv" in p and "FIFO" in p for p in result.problems)


@pytest.mark.parametrize(
    "ref", ["/etc", "**", pytest.param("x" * 5000, id="5000-chars"), "../..", "a*b", "\x1b[2J"]
)
def test_bad_session_references_are_one_line(tmp_path: Path, ref: str) -> None:
    line = one_line(cli("export", ref, "--sessions-dir", str(tmp_path)))
    assert "no session" in line and len(line) < 300 and "\x1b" not in line


def test_session_ids_never_collide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = {SessionWriter(tmp_path, MANIFEST).id for _ in range(300)}  # one second, one model
    assert len(ids) == 300
    draws = iter(["dup0dup0", "dup0dup0", "fresh000"])
    monkeypatch.setattr(sessions.secrets, "token_hex", lambda _n: next(draws))
    first = SessionWriter(tmp_path / "c", MANIFEST)
    second = SessionWriter(tmp_path / "c", MANIFEST)  # same second, same draw: drawn again
    assert first.id != second.id and second.id.endswith("fresh000")


def test_dangling_sessions_dir_and_disk_full_at_creation(tmp_path: Path) -> None:
    link = tmp_path / "sessions"
    link.symlink_to(tmp_path / "gone")
    with pytest.raises(SessionError, match="is a symbolic link to nothing"):
        SessionWriter(link, MANIFEST)
    root = tmp_path / "ro"
    root.mkdir()
    code = (
        "import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN);"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (10, 10));"
        "from chimera_tui.core.store.sessions import SessionWriter;"
        f"SessionWriter(__import__('pathlib').Path({str(root)!r}), {MANIFEST!r})"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert "SessionError" in proc.stderr and "File too large" in proc.stderr
    assert list(root.iterdir()) == []  # no empty folder left to be listed as unreadable


def test_every_file_read_goes_through_safe_read() -> None:
    """No module reads a file but through core/store/safe_read.py (a grep; /proc files excepted)."""
    package = Path(safe_read.__file__).parents[2]
    offenders = [
        f"{path.relative_to(package)}:{n}"
        for path in package.rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if any(call in line for call in (".read_text(", ".read_bytes(", "tomllib.load(", "json.load("))
    ]
    assert offenders == []
