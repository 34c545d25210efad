"""Issue 15, items 2 and 6: endpoints parse as Ollama parses OLLAMA_HOST (invalid ones are one line),
and no secret (endpoint user-info, an API key a server echoes) is written anywhere.

Real sockets (FaultServer), the CLI in subprocesses, every file it wrote searched for the secret.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chimera_tui.core.backends.endpoint import InvalidEndpoint, parse_endpoint
from chimera_tui.core.backends.openai import OpenAIClient
from chimera_tui.core.errors import ChimeraError
from tests.fault_server import FakeOllama, FaultServer, Request, json_reply, normal_stream

SECRET = "s3cret-pw-42"


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:11434"),  # Ollama's usual OLLAMA_HOST: this machine, port 11434
        ("localhost", "http://localhost:11434"),
        ("example.com", "http://example.com:11434"),
        (":11435", "http://127.0.0.1:11435"),
        ("0.0.0.0:8080", "http://127.0.0.1:8080"),
        ("http://h", "http://h:80"),  # an explicit scheme means its own default port, as in Ollama
        ("https://h", "https://h:443"),
        ("https://h:8443/", "https://h:8443"),
        ("[::1]", "http://[::1]:11434"),
        ("[::1]:9", "http://[::1]:9"),
        ("::1", "http://[::1]:11434"),  # a bare IPv6 address takes the default port
        ("[::]", "http://[::1]:11434"),
        ("http://h:1/base/", "http://h:1/base"),
        (f"http://alice:{SECRET}@h:1", "http://h:1"),
    ],
)
def test_endpoints_parse_as_ollama_parses_ollama_host(text: str, url: str) -> None:
    assert parse_endpoint(text) == url


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("h:99999", "port '99999' is not a number from 1 to 65535"),
        ("h:abc", "port 'abc' is not a number"),
        ("h:0", "port '0'"),
        ("http://[::1", "'[' without a closing ']'"),
        ("http://[nope]:1", "is not an IPv6 address"),
        ("ftp://h", "scheme 'ftp' is not http or https"),
        ("a b", "spaces or control characters"),
        ("h\x1b[2J", "spaces or control characters"),
        ("http://h/?q", "query or fragment"),
        ("fe80::1:2:3:4:5:6:7:8", "must be in brackets"),
        ("", "empty"),
        ("h" * 5000, "longer than 2048"),
    ],
)
def test_invalid_endpoints_are_one_line_naming_the_problem(text: str, why: str) -> None:
    with pytest.raises(InvalidEndpoint) as err:
        parse_endpoint(text)
    assert why in str(err.value) and "\n" not in str(err.value) and "\x1b" not in str(err.value)
    assert len(str(err.value)) < 200


def test_invalid_endpoint_error_never_echoes_the_password() -> None:
    with pytest.raises(InvalidEndpoint) as err:
        parse_endpoint(f"http://alice:{SECRET}@h:99999")
    assert SECRET not in str(err.value) and "***@h:99999" in str(err.value)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chimera_tui", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (("bench", "--endpoint", "http://127.0.0.1:99999"), {}, "port '99999'"),
        (("bench", "--endpoint", "abc:abc"), {}, "port 'abc'"),
        (("bench", "--endpoint", "http://[::1"), {}, "'[' without a closing ']'"),
        (("sweep", "resume", "x", "--endpoint", "h:70000"), {}, "port '70000'"),
        (("bench", "--model", "m"), {"OLLAMA_HOST": "h:abc"}, "OLLAMA_HOST: invalid endpoint 'h:abc'"),
    ],
)
def test_cli_rejects_an_invalid_endpoint_in_one_line(
    args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    proc = _cli(*args, env=env)
    assert proc.returncode in (1, 2) and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and expected in errors[0], proc.stderr


def test_ollama_host_0000_connects_to_this_machine(tmp_path: Path) -> None:
    fake = FakeOllama()
    with FaultServer(fake) as server:
        proc = _cli(
            "bench", "--model", "m", "--runs", "1", "--warmup", "0", "--sessions-dir", str(tmp_path),
            env={"OLLAMA_HOST": f"0.0.0.0:{server.port}"},
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert fake.calls == 1


def _files_text(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


def test_endpoint_credentials_are_sent_but_never_shown_or_stored(tmp_path: Path) -> None:
    fake = FakeOllama()
    replies = iter([normal_stream(3), json_reply(500, {"error": f"auth alice:{SECRET} rejected ({SECRET})"})])
    fake.stream = lambda _r: next(replies)
    with FaultServer(fake) as server:
        url = f"http://alice:{SECRET}@127.0.0.1:{server.port}"
        proc = _cli(
            "--debug", "bench", "--endpoint", url, "--model", "m", "--runs", "2", "--warmup", "0",
            "--json", "--sessions-dir", str(tmp_path / "sessions"),
            env={"CHIMERA_TUI_LOG": str(tmp_path / "log.txt")},
        )  # fmt: skip
        proc_export = _cli("export", "--sessions-dir", str(tmp_path / "sessions"), _only_session(tmp_path))
    assert proc.returncode == 3, proc.stderr
    auth = "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()
    assert all(r.headers.get("authorization") == auth for r in server.requests)  # sent with each request
    assert f"127.0.0.1:{server.port}" in proc.stdout
    for text in (proc.stdout, proc.stderr, proc_export.stdout, proc_export.stderr, _files_text(tmp_path)):
        assert SECRET not in text and "alice:" not in text
    assert "auth ***" in _files_text(tmp_path / "sessions")  # the server's echo, redacted


def _only_session(tmp_path: Path) -> str:
    (session,) = [p for p in (tmp_path / "sessions").iterdir() if p.is_dir()]
    return session.name


@pytest.mark.anyio
async def test_an_api_key_echoed_by_the_server_is_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-test-0123456789abcdef"
    monkeypatch.setenv("CHIMERA_TEST_KEY", key)

    def handler(request: Request) -> list[bytes | float]:
        got = request.headers.get("authorization", "")
        return json_reply(401, {"error": {"message": f"invalid api key: {got.removeprefix('Bearer ')}"}})  # type: ignore[return-value]

    with FaultServer(handler) as server:
        client = OpenAIClient(server.url, api_key_env="CHIMERA_TEST_KEY")
        try:
            with pytest.raises(ChimeraError) as err:
                await client.probe()
        finally:
            await client.aclose()
    assert server.requests and server.requests[0].headers["authorization"] == f"Bearer {key}"
    assert key not in str(err.value), str(err.value)


@pytest.mark.anyio
async def test_tui_setup_reads_host_only_endpoints_as_ollama_and_never_saves_credentials(
    tmp_path: Path,
) -> None:
    from textual.widgets import Input, Static

    from chimera_tui.ui.app import ChimeraApp
    from chimera_tui.ui.config import AppConfig
    from tests.fake_nvml import FakeNvml
    from tests.tui_helpers import wait_until

    fake = FakeOllama()
    with FaultServer(fake) as server:
        config = AppConfig(
            endpoints=[f"0.0.0.0:{server.port}"],  # host-only, as in OLLAMA_HOST
            sessions_root=tmp_path / "sessions",
            nvml_module=FakeNvml(gpus=1),
            idle_baseline_s=0,
            monitor_interval_s=0,
        )
        app = ChimeraApp(config)
        async with app.run_test(size=(120, 40)) as pilot:
            status = app.screen.query_one("#endpoint-status", Static)
            await wait_until(pilot, lambda: "reachable" in str(status.render()))
            endpoint = app.screen.query_one("#endpoint", Input)
            endpoint.value = "h:99999"
            endpoint.focus()
            await pilot.press("enter")
            await wait_until(pilot, lambda: "port '99999' is not a number" in str(status.render()))
            endpoint.value = f"http://alice:{SECRET}@127.0.0.1:{server.port}"
            await pilot.press("enter")
            await wait_until(pilot, lambda: "reachable" in str(status.render()))
            choice = app.screen.build_choice()  # type: ignore[attr-defined]
            assert choice.endpoint == f"http://127.0.0.1:{server.port}"
    assert any(r.headers.get("authorization", "").startswith("Basic ") for r in server.requests)
