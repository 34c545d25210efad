"""Issue 15, item 1: writing an export or a report never replaces what it should not.

Real files, FIFOs, sockets, devices and symbolic links; the CLI in a subprocess for `-o /dev/stdout`.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from chimera_tui.core.reports import write_export
from chimera_tui.core.store.atomic import OutputRefused, write_output

FIXTURE = Path(__file__).parent.parent / "fixtures" / "chimeraforge_metrics.json"


def test_existing_regular_file_is_replaced_keeping_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    target.write_text("old")
    target.chmod(0o644)
    assert write_output(target, b"new") == "replaced"
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]  # no temp file left


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_file_gets_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        target = tmp_path / "sub" / "new.html"
        assert write_output(target, b"x") == "created"
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_fifo_is_written_through_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []

    def reader() -> None:
        with open(fifo, "rb") as fh:
            got.append(fh.read())

    thread = threading.Thread(target=reader)
    thread.start()
    # the reader opens the FIFO; the writer's non-blocking open needs it there
    for _ in range(200):
        try:
            result = write_output(fifo, b"through the pipe")
            break
        except OutputRefused:
            threading.Event().wait(0.01)
    thread.join(5)
    assert result == "written through"
    assert got == [b"through the pipe"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_fifo_without_a_reader_is_refused_not_hung(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputRefused, match="no process is reading"):
        write_output(fifo, b"x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_dev_null_stays_a_device() -> None:
    assert write_output(Path("/dev/null"), b"gone") == "written through"
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


def test_symlink_to_a_file_is_refused_and_both_stay(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    real.write_text("keep")
    link = tmp_path / "link.md"
    link.symlink_to(real)
    with pytest.raises(OutputRefused, match="symbolic link to a regular file") as err:
        write_export("new", link)
    assert "\n" not in str(err.value)
    assert link.is_symlink() and real.read_text() == "keep"


def test_dangling_symlink_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "link.md"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputRefused, match="dangling"):
        write_output(link, b"x")
    assert link.is_symlink() and not (tmp_path / "nowhere").exists()


def test_directory_and_socket_are_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputRefused, match="is a directory"):
        write_output(tmp_path, b"x")
    sock_path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        with pytest.raises(OutputRefused, match="is a socket"):
            write_output(sock_path, b"x")
        assert stat.S_ISSOCK(os.lstat(sock_path).st_mode)


def _cli(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chimera_tui", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
        **kw,  # type: ignore[call-overload]
    )


def test_cli_export_to_dev_stdout_and_refusals(tmp_path: Path) -> None:
    result = _cli(
        "export", str(FIXTURE), "--format", "md", "-o", "/dev/stdout", "--sessions-dir", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert "|" in result.stdout  # the report went to the pipe that is stdout
    link = tmp_path / "l.md"
    link.symlink_to(tmp_path / "target.md")
    result = _cli("export", str(FIXTURE), "-o", str(link), "--sessions-dir", str(tmp_path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chimera-tui: error: cannot write")
    assert "symbolic link" in lines[0] and link.is_symlink()
