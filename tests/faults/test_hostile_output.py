"""Hostile model and server output: stored as sent, never reaching a terminal raw, escaped in every
export, and unable to steer a file name out of the sessions or export directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chimera_tui.cli import main
from chimera_tui.core.errors import ProfileError, SessionError
from chimera_tui.core.reports import default_filename, export_sessions
from chimera_tui.core.run.single import BenchRunner
from chimera_tui.core.store.profiles import Profile, ProfileStore
from chimera_tui.core.store.session_store import SessionStore
from chimera_tui.core.store.sessions import Session, SessionWriter, load_session
from chimera_tui.safe_text import sanitize, sanitize_line
from tests.fault_server import FINAL, FakeOllama, FaultServer, Reply, Request, ndjson, stream_reply
from tests.helpers import spec

pytestmark = pytest.mark.anyio

#: what a model (or a server) could send to take over a terminal or a report
EVIL_TOKENS = [
    "\x1b[31mred\x1b[0m ",  # CSI colours
    "\x1b[2J\x1b[H",  # clear the screen
    "\x1b]52;c;ZXZpbA==\x07",  # OSC 52: write the clipboard
    "\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\ ",  # OSC 8 hyperlink
    "\x1b]0;owned title\x07",  # OSC 0: window title
    "bell\x07\x07 ",
    "pass\x08\x08\x08\x08word ",  # backspace tricks
    "\rfake prompt$ ",  # carriage return overwrite
    "\x9b31m8-bit CSI ",
    "\x1bP+q544e\x1b\\",  # DCS: terminal capability query
    "</pre><script>alert(1)</script> ",
    "\n```\n# not a heading\n```\n",
    "| a | b |\n",
    '=HYPERLINK("http://evil") ',
]
EVIL_NAME = "../../evil\x1b[31m;rm -rf ~:latest"
CONTROL = ("\x1b", "\x07", "\x08", "\r", "\x9b", "\x90")


def hostile_stream(_request: Request) -> Reply:
    lines = [{"model": "m", "response": text, "done": False} for text in EVIL_TOKENS]
    final = {**FINAL, "eval_count": len(EVIL_TOKENS), "done_reason": "stop\x1b[2J"}
    return stream_reply([ndjson(line) for line in lines] + [ndjson(final)])


@pytest.fixture
async def hostile_session(tmp_path: Path) -> Session:
    fake = FakeOllama(models=[EVIL_NAME, "m:latest"], stream=hostile_stream)
    with FaultServer(fake) as server:
        runner = BenchRunner(
            spec(model=EVIL_NAME, endpoint=server.url, runs=1, warmup=0), tmp_path / "sessions"
        )
        return await runner.run()


def assert_inert(text: str) -> None:
    for char in CONTROL:
        assert char not in text, f"{char!r} in output"


async def test_the_session_stores_the_text_as_sent_inside_the_sessions_dir(
    hostile_session: Session, tmp_path: Path
) -> None:
    root = (tmp_path / "sessions").resolve()
    assert hostile_session.path.resolve().parent == root  # the model name cannot steer the folder
    assert "/" not in hostile_session.id and ".." not in hostile_session.id
    saved = load_session(hostile_session.path)
    assert saved.runs[0].response == "".join(EVIL_TOKENS)  # raw on disk: the record is faithful
    assert saved.runs[0].metrics.done_reason == "stop\x1b[2J"


def outside_fences(md: str) -> str:
    """The Markdown text outside fenced code blocks (where text is rendered, not shown as code)."""
    out: list[str] = []
    fence: str | None = None
    for line in md.splitlines():
        if fence is None and line.startswith("```"):
            fence = line[: len(line) - len(line.lstrip("`"))]
        elif fence is not None and line == fence:
            fence = None
        elif fence is None:
            out.append(line)
    return "\n".join(out)


async def test_markdown_export_is_escaped(hostile_session: Session) -> None:
    md = export_sessions([hostile_session], "md")
    assert_inert(md)
    assert "# not a heading" in md  # shown, inside the response's fence...
    rendered = outside_fences(md)
    assert "# not a heading" not in rendered and "<script>" not in rendered  # ...and nowhere else


async def test_html_export_is_escaped(hostile_session: Session) -> None:
    page = export_sessions([hostile_session], "html")
    assert_inert(page)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="http://evil' not in page


async def test_csv_and_json_exports_hold_no_raw_control_characters(hostile_session: Session) -> None:
    assert_inert(export_sessions([hostile_session], "json"))  # \u001b escapes, never the byte
    csv = export_sessions([hostile_session], "csv")
    assert_inert(csv)


async def test_cli_output_is_sanitized(hostile_session: Session, capsys: pytest.CaptureFixture[str]) -> None:
    root = hostile_session.path.parent
    for args in (["sessions"], ["export", hostile_session.id], ["export", hostile_session.id, "-f", "csv"]):
        assert main([*args, "--sessions-dir", str(root)]) == 0
        out, err = capsys.readouterr()
        assert_inert(out + err)


async def test_cli_progress_with_a_hostile_server(tmp_path: Path) -> None:
    fake = FakeOllama(models=[EVIL_NAME], stream=hostile_stream)
    with FaultServer(fake) as server:
        args = [sys.executable, "-m", "chimera_tui", "bench", "--endpoint", server.url, "--model", EVIL_NAME]
        args += ["--runs", "1", "--warmup", "0", "--sessions-dir", str(tmp_path / "s")]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert_inert(proc.stdout + proc.stderr)
    assert "evil" in proc.stderr and "stop" in proc.stderr


def test_sanitize_strips_every_kind_of_sequence() -> None:
    text = sanitize("".join(EVIL_TOKENS))
    assert_inert(text)
    for visible in ("red", "click", "bell", "word", "fake prompt$", "8-bit CSI", "<script>"):
        assert visible in text
    assert "owned title" not in text and "ZXZpbA" not in text and "544e" not in text
    assert "\n" not in sanitize_line("a\nb\tc")


# -- file names ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["../../../etc/passwd", "..", "/abs/path", "a/../../b", "C:\\x\\..\\y", ".hidden"]
)
def test_session_folders_stay_in_the_sessions_dir(tmp_path: Path, name: str) -> None:
    root = tmp_path / "sessions"
    writer = SessionWriter(root, {"model": {"name": name}, "profile": {"name": name}})
    assert writer.path.resolve().parent == root.resolve()
    assert not writer.path.name.startswith(".") and "/" not in writer.id and "\\" not in writer.id


def test_export_file_names_are_plain(tmp_path: Path) -> None:
    session = Session(tmp_path / "x", {"id": "../../../etc/cron.d/evil"}, [], "complete", {})
    for fmt in ("md", "html", "csv", "json"):
        name = default_filename([session], fmt)
        assert "/" not in name and "\\" not in name and ".." not in name and not name.startswith(".")
        assert (tmp_path / name).resolve().parent == tmp_path.resolve()
    many = default_filename([session, session], "md")
    assert "/" not in many and ".." not in many


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", ".hidden", "x" * 65, "sp ace"])
def test_profile_names_cannot_be_paths(tmp_path: Path, name: str) -> None:
    with pytest.raises(ProfileError):
        Profile(name, "", {})
    store = ProfileStore(tmp_path / "builtin", tmp_path / "user")
    with pytest.raises(ProfileError):
        store.delete_user(name)
    assert not (tmp_path / "evil.toml").exists()


def test_session_delete_and_rename_stay_inside(tmp_path: Path) -> None:
    root = tmp_path / "sessions"
    root.mkdir()
    outside = tmp_path / "precious"
    outside.mkdir()
    store = SessionStore(root)
    with pytest.raises(SessionError, match="is not a session folder"):
        store.delete(root / ".." / "precious")
    with pytest.raises(SessionError):
        store.set_label(root / ".." / "precious", "x")
    assert outside.is_dir()
