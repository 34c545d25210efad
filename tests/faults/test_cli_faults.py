"""The CLI against each fault: exactly one `chimera-tui: error: ...` line on stderr, a non-zero exit
code, and never a traceback (the log file gets the details).

Faults of the connection, the timeouts, the disk and the log file run the CLI in a subprocess
(`python -m chimera_tui`), so the exit code and the whole stderr of a real process are checked.
Their variants (each kind of failed run, bad profile, bad session folder) go through the same
`main()` in-process, which keeps the suite fast.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chimera_tui.cli import main
from chimera_tui.core.store.sessions import SCHEMA_VERSION
from tests.fault_server import (
    HANG,
    FakeOllama,
    FaultServer,
    Reply,
    full_backlog_port,
    json_reply,
    ndjson,
    normal_stream,
    stream_reply,
    text_reply,
    tls_context,
    tokens,
)

PREFIX = "chimera-tui: error: "


def cli(
    *args: str, timeout: float = 60, limit_file_bytes: int | None = None
) -> subprocess.CompletedProcess[str]:
    def limit() -> None:  # a full disk, as far as this process can tell: writes past N bytes fail
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        if limit_file_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_bytes, limit_file_bytes))

    return subprocess.run(
        [sys.executable, "-m", "chimera_tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NO_COLOR": "1"},
        preexec_fn=limit if limit_file_bytes is not None else None,
    )


def inprocess(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    """`main(args)` in this process, as a CompletedProcess (same checks as a subprocess)."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)


def bench_args(url: str, tmp_path: Path, *extra: str) -> list[str]:
    args = ["bench", "--endpoint", url, "--model", "m:latest", "--runs", "2", "--warmup", "0"]
    return [*args, "--num-predict", "5", "--sessions-dir", str(tmp_path / "sessions"), *extra]


def bench(url: str, tmp_path: Path, *extra: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return cli(*bench_args(url, tmp_path, *extra), **kwargs)  # type: ignore[arg-type]


def one_error_line(proc: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The single error line, after checking the exit code and that nothing else went wrong."""
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith(PREFIX)]
    assert len(lines) == 1, proc.stderr
    return lines[0][len(PREFIX) :]


@pytest.fixture
def fake() -> Iterator[tuple[FakeOllama, FaultServer]]:
    ollama = FakeOllama()
    with FaultServer(ollama) as server:
        yield ollama, server


def always(reply: Reply) -> FaultServer:
    return FaultServer(lambda _r: reply).start()


# -- the endpoint -------------------------------------------------------------------------------------
def test_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = one_error_line(bench(f"http://127.0.0.1:{port}", tmp_path))
    assert (
        line
        == f"cannot reach http://127.0.0.1:{port}: connection refused (is Ollama running, and on this port?)"
    )


def test_dns_failure(tmp_path: Path) -> None:
    line = one_error_line(bench("http://chimera-fault-test.invalid:11434", tmp_path))
    assert "cannot resolve the host name 'chimera-fault-test.invalid'" in line


def test_a_port_answering_html_is_not_ollama(tmp_path: Path) -> None:
    server = always(text_reply(200, "<html>It works!</html>"))
    try:
        line = one_error_line(bench(server.url, tmp_path))
    finally:
        server.stop()
    assert line == f"{server.url} answers but is not an Ollama server (GET / gave HTTP 200)"


def test_a_port_answering_404_to_everything_is_not_ollama(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = always(text_reply(404, "404 page not found", "text/plain"))
    try:
        line = one_error_line(inprocess(capsys, *bench_args(server.url, tmp_path)))
    finally:
        server.stop()
    assert line == f"{server.url} answers but is not an Ollama server (GET / gave HTTP 404)"


def test_tls_endpoint(tmp_path: Path) -> None:
    ctx = tls_context(tmp_path)
    if ctx is None:
        pytest.skip("cannot make a self-signed certificate (no `cryptography` package, no `openssl`)")
    with FaultServer(FakeOllama(), tls=ctx) as server:
        plain = one_error_line(bench(server.url.replace("https", "http"), tmp_path))
        assert "TLS" in plain and "https" in plain
        secure = one_error_line(bench(server.url, tmp_path))
        assert "TLS certificate verification failed" in secure


def test_never_answers_names_the_timeout(tmp_path: Path) -> None:
    server = always([HANG])
    try:
        line = one_error_line(bench(server.url, tmp_path, "--idle-timeout", "0.3"))
    finally:
        server.stop()
    assert line == f"timed out after 0.3 s waiting for a response from {server.url} (idle timeout)"


def test_connect_timeout(tmp_path: Path) -> None:
    with full_backlog_port() as port:
        if port is None:
            pytest.skip("this OS accepts connects beyond the listen backlog: no way to make connect hang")
        line = one_error_line(bench(f"http://127.0.0.1:{port}", tmp_path, "--connect-timeout", "0.3"))
    assert line == f"timed out after 0.3 s connecting to http://127.0.0.1:{port} (connect timeout)"


def test_first_byte_timeout_fails_the_runs(fake: tuple[FakeOllama, FaultServer], tmp_path: Path) -> None:
    ollama, server = fake
    ollama.stream = lambda _r: stream_reply([HANG])
    proc = bench(server.url, tmp_path, "--first-byte-timeout", "0.3")
    assert "waiting for the first byte" in one_error_line(proc) and "(first-byte timeout)" in proc.stderr
    assert proc.stderr.count("FAILED: timed out after 0.3 s") == 2  # each run, recorded


# -- the model and the runs ---------------------------------------------------------------------------
def test_unknown_model_shows_the_models_that_exist(
    fake: tuple[FakeOllama, FaultServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, server = fake
    proc = inprocess(
        capsys, "bench", "--endpoint", server.url, "--model", "nope", "--sessions-dir", str(tmp_path)
    )
    assert one_error_line(proc) == f"model 'nope' not found on {server.url}; available: m:latest, other:7b"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (json_reply(500, {"error": "llama runner process has terminated"}), "HTTP 500: llama runner"),
        (json_reply(400, {"error": '"m" does not support thinking'}), "HTTP 400"),
        (json_reply(503, {"error": "server busy, please try again."}), "HTTP 503: server busy"),
        (stream_reply([ndjson(*tokens(2), {"error": "out of memory"})]), "mid-stream: out of memory"),
        (stream_reply([ndjson(*tokens(2))], end=False), "broke mid-stream"),
        (stream_reply([b"\xff\xfe\n"]), "not valid UTF-8"),
    ],
    ids=["500", "400", "503", "midstream-error", "killed", "not-utf8"],
)
def test_every_run_failing_is_one_error_line(
    fake: tuple[FakeOllama, FaultServer],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    reply: Reply,
    expected: str,
) -> None:
    ollama, server = fake
    ollama.stream = lambda _r: reply
    proc = inprocess(capsys, *bench_args(server.url, tmp_path, "--json"))
    assert expected in one_error_line(proc)
    doc = json.loads(proc.stdout)  # the session is still saved and reported
    assert doc["counts"]["failed"] == 2 and all(r["error"] for r in doc["runs"])
    assert doc["aggregates"]["server_decode_rate"]["n"] == 0


def test_some_runs_failing_exits_3(
    fake: tuple[FakeOllama, FaultServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ollama, server = fake
    replies = iter([normal_stream(5), json_reply(500, {"error": "boom"})])
    ollama.stream = lambda _r: next(replies)
    proc = inprocess(capsys, *bench_args(server.url, tmp_path))
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    assert "chimera-tui: 1 run(s) failed; see the session for causes" in proc.stderr.splitlines()


def test_hostile_server_text_never_reaches_the_terminal(
    fake: tuple[FakeOllama, FaultServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ollama, server = fake
    evil = "\x1b]52;c;ZXZpbA==\x07\x1b[2J\x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\\rline\nbreak\x08"
    ollama.stream = lambda _r: json_reply(500, {"error": evil})
    line = one_error_line(inprocess(capsys, *bench_args(server.url, tmp_path)))
    assert "click" in line and "line break" in line and "\x1b" not in line


def test_disk_full_mid_session(fake: tuple[FakeOllama, FaultServer], tmp_path: Path) -> None:
    ollama, server = fake
    ollama.stream = lambda _r: normal_stream(200)  # each run adds a few KiB to metrics.json
    proc = bench(server.url, tmp_path, "--runs", "8", limit_file_bytes=12_000)
    line = one_error_line(proc)
    assert line.startswith("cannot write ") and "metrics.json: File too large" in line


# -- profiles and sessions ----------------------------------------------------------------------------
OPTS = 'name = "p"\n[options]\n'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            OPTS + 'temperature = "hot"',
            "option 'temperature' must be a number between 0 and 5, got 'hot' (str)",
        ),
        (OPTS + "num_ctxx = 2048", "unknown option 'num_ctxx' (did you mean 'num_ctx'?)"),
        (OPTS + "top_p = 7.5", "option 'top_p' must be a number between 0 and 1, got 7.5 (float)"),
        (OPTS + "num_ctx = 99999999999999999999", "must be an integer >= 1 that fits in 64 bits"),
        ('name = "p"\nbogus = 1\n', "unknown top-level key 'bogus'"),
        ('name = "p"\n[options\n', "invalid TOML"),
    ],
    ids=["wrong-type", "unknown-key", "out-of-range", "huge-int", "unknown-top-level", "broken-toml"],
)
def test_a_bad_profile_is_one_line_naming_file_and_key(
    fake: tuple[FakeOllama, FaultServer],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    body: str,
    expected: str,
) -> None:
    _, server = fake
    path = tmp_path / "p.toml"
    path.write_text(body)
    line = one_error_line(inprocess(capsys, *bench_args(server.url, tmp_path, "--profile", str(path))))
    assert line.startswith(str(path)) and expected in line


def _sessions(tmp_path: Path) -> Path:
    root = tmp_path / "sessions"
    for name, manifest, metrics in [
        ("truncated", "schema_version = 1\nid = 'truncated'\n", '{"schema_version": 1, "runs": [{"ind'),
        ("newer", f"schema_version = {SCHEMA_VERSION + 1}\nid = 'newer'\n", "{}"),
        ("foreign", None, None),
        ("garbage", "schema_version = 1\nmodel = 'x'\n", "[]"),
    ]:
        folder = root / name
        folder.mkdir(parents=True)
        if manifest is not None:
            (folder / "session.toml").write_text(manifest)
            (folder / "metrics.json").write_text(metrics or "")
        else:
            (folder / "notes.txt").write_text("my own files")
    return root


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("truncated", "truncated: corrupt metrics.json"),
        ("newer", f"newer: written by a newer chimera-tui (schema {SCHEMA_VERSION + 1} > {SCHEMA_VERSION})"),
        ("foreign", "foreign: not a session (no session.toml)"),
        ("garbage", "garbage: session.toml: 'model' must be a table"),
    ],
)
def test_a_bad_session_folder_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, expected: str
) -> None:
    root = _sessions(tmp_path)
    proc = inprocess(capsys, "export", name, "--sessions-dir", str(root))
    assert one_error_line(proc).startswith(expected)


def test_the_sessions_listing_reports_bad_folders_and_exits_0(tmp_path: Path) -> None:
    root = _sessions(tmp_path)
    proc = cli("sessions", "--sessions-dir", str(root), "--json")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert [s["id"] for s in doc["sessions"]] == ["truncated"]  # listing reads manifests only
    assert doc["sessions"][0]["status"] == "incomplete"
    assert sorted(Path(u["path"]).name for u in doc["unreadable"]) == ["foreign", "garbage", "newer"]


def test_an_unwritable_log_file_prints_no_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "full.log"
    log.write_text("x" * 20_000)  # past the file-size limit below: every log write fails
    monkeypatch.setenv("CHIMERA_TUI_LOG", str(log))
    line = one_error_line(bench("http://chimera-fault-test.invalid:1", tmp_path, limit_file_bytes=12_000))
    assert "cannot resolve" in line


def test_details_go_to_the_log_file_and_to_stderr_with_debug(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "http://chimera-fault-test.invalid:1"
    quiet = inprocess(capsys, *bench_args(url, tmp_path))
    assert "cannot resolve" in one_error_line(quiet)
    log = Path(os.environ["CHIMERA_TUI_LOG"]).read_text()
    assert "EndpointUnreachable" in log and "Traceback" in log  # the details, for a bug report
    loud = inprocess(capsys, "--debug", *bench_args(url, tmp_path))
    assert loud.returncode == 1 and "Traceback" in loud.stderr
    assert sum(line.startswith(PREFIX) for line in loud.stderr.splitlines()) == 1
