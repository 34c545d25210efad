"""`chimera-tui load` (issue 19): the pure parts, the request it sends, and a real master with two
worker processes against simulator processes, saved as a normal session."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chimera_tui.cli.main import main
from chimera_tui.core.store.session_store import SessionStore
from chimera_tui.core.store.sessions import load_session
from chimera_tui.load import locust_available
from chimera_tui.load.call import ConnectionPool, make_body, stream_call, wire_request
from chimera_tui.load.plan import LoadPlan, MasterConfig, quotas
from chimera_tui.load.tally import Tally, percentile
from chimera_tui.sim import OllamaSimulator, SimConfig, SimFaults, start_background

needs_locust = pytest.mark.skipif(not locust_available(), reason="locust is not installed (the 'load' extra)")


def _plan(url: str, **kw: object) -> LoadPlan:
    base: dict[str, object] = {
        "endpoints": [url],
        "backend": "ollama",
        "server": "ollama",
        "model": "gemma3:latest",
        "prompt": "hello",
        "options": {"num_predict": 8, "temperature": 0.0},
        "users": 2,
        "duration_s": 1.0,
    }
    base.update(kw)
    return LoadPlan(**base)  # type: ignore[arg-type]


def test_quotas_split_every_request() -> None:
    assert quotas(10, 3) == [4, 3, 3]
    assert sum(quotas(257, 2)) == 257  # type: ignore[arg-type]
    assert quotas(None, 2) == [None, None]


def test_plan_and_config_round_trip() -> None:
    plan = _plan("http://127.0.0.1:1", rate=5.0, users=None, requests=10, workers=2)
    config = MasterConfig(plan, "/tmp/x", {"mode": "load"}, bind_port=1234)
    again = MasterConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again.plan == plan and again.bind_port == 1234
    assert plan.open_loop and plan.locust_users() == 2


def test_the_request_is_the_one_bench_sends() -> None:
    from chimera_tui.core.run.single import request_body

    plan = _plan("http://x", unique_prompt=False, keep_alive="5m", think=False)
    body = make_body(plan)
    assert body == request_body("generate", "gemma3:latest", "hello", plan.options, "5m", False)
    path, payload, _ = wire_request(plan, body)
    assert path == "/api/generate" and json.loads(payload) == {**body, "stream": True}
    openai = _plan("http://x", backend="openai", server="llama.cpp", api="chat")
    path, payload, _ = wire_request(openai, make_body(openai))
    sent = json.loads(payload)
    assert path == "/v1/chat/completions" and sent["max_tokens"] == 8 and sent["stream"] is True


def test_tally_counts_every_status_and_missing_ttft_stays_none() -> None:
    tally = Tally()
    tally.add({"status": "ok", "metrics": {"ttft_ms": 10.0, "eval_count": 5}}, now=1.0)
    tally.add({"status": "failed", "error_kind": "timeout", "metrics": {}}, now=1.0)
    tally.add({"status": "incomplete", "metrics": {"ttft_ms": 3.0}}, now=1.0)
    snap = tally.snapshot(now=2.0, elapsed_s=2.0, users=1)
    assert (snap["ok"], snap["failed"], snap["incomplete"]) == (1, 1, 1)
    assert snap["tokens_per_s"] == 2.5 and snap["ttft_p95_ms"] == 10.0
    assert snap["errors"] == {"timeout": 1}
    assert Tally().totals(0.0)["ttft_p95_ms"] is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5


def test_blocking_call_measures_like_bench() -> None:
    from chimera_tui.core.backends.ollama import CallOutcome
    from chimera_tui.core.measure.metrics import CallTrace
    from chimera_tui.core.run.single import build_record
    from chimera_tui.core.store.sessions import RunRecord

    sim = start_background(OllamaSimulator(SimConfig(load_s=0.0, tokens_per_s=2000.0, num_parallel=2)))
    try:
        plan = _plan(sim.url)
        pool = ConnectionPool(5.0)
        for _ in range(2):  # the second call reuses the kept-alive connection
            outcome = CallOutcome(CallTrace(0))
            body = make_body(plan)
            stream_call(plan, sim.url, body, pool, outcome)
            assert outcome.error is None
            record = build_record(RunRecord(0, False, "ok", ""), outcome, None, body)
            assert record.status == "ok" and record.metrics.token_count == 8
            assert record.metrics.ttft_ms is not None and record.metrics.server_decode_rate is not None
        assert len(pool.idle[sim.url]) == 1
    finally:
        sim.stop()


@pytest.mark.parametrize("api", ["chat", "generate"])
def test_blocking_call_reads_openai_sse(api: str) -> None:
    from chimera_tui.core.backends.ollama import CallOutcome
    from chimera_tui.core.measure.metrics import CallTrace
    from chimera_tui.core.run.single import build_record
    from chimera_tui.core.store.sessions import RunRecord

    config = SimConfig(load_s=0.0, tokens_per_s=2000.0, api="openai")
    sim = start_background(OllamaSimulator(config))
    try:
        plan = _plan(sim.url, backend="openai", server="llama.cpp", api=api)
        outcome = CallOutcome(CallTrace(0))
        body = make_body(plan)
        stream_call(plan, sim.url, body, ConnectionPool(5.0), outcome)
        assert outcome.error is None, outcome.error
        record = build_record(RunRecord(0, False, "ok", ""), outcome, None, body)
        assert record.metrics.token_count == 8 and record.metrics.eval_count == 8
        assert record.metrics.ttft_ms is not None
    finally:
        sim.stop()


def test_blocking_call_records_a_server_error() -> None:
    from chimera_tui.core.backends.ollama import CallOutcome
    from chimera_tui.core.measure.metrics import CallTrace

    sim = start_background(OllamaSimulator(SimConfig(load_s=0.0, faults=SimFaults(status_503=True))))
    try:
        outcome = CallOutcome(CallTrace(0))
        stream_call(_plan(sim.url), sim.url, make_body(_plan(sim.url)), ConnectionPool(5.0), outcome)
        assert outcome.error is not None and outcome.http_status == 503
    finally:
        sim.stop()
    outcome = CallOutcome(CallTrace(0))
    stream_call(
        _plan("http://127.0.0.1:9"), "http://127.0.0.1:9", {"model": "m"}, ConnectionPool(1.0), outcome
    )
    assert outcome.error is not None and outcome.error.kind == "unreachable"


def test_missing_locust_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("chimera_tui.load.locust_available", lambda: False)
    assert main(["load", "--demo", "--users", "1", "--duration", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["chimera-tui: chimera-tui load needs Locust: pip install 'chimera-tui[load]'"]


def test_the_cli_process_never_imports_locust() -> None:
    code = (
        "import sys, chimera_tui.cli.main, chimera_tui.cli.load\n"
        "print('locust' in sys.modules, 'gevent' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@needs_locust
@pytest.mark.slow
@pytest.mark.timeout(90)
def test_master_and_two_workers_save_one_session(tmp_path: Path) -> None:
    """A real run: master + 2 worker processes, 2 simulator processes, every request accounted for."""
    argv = ["--sessions-dir", str(tmp_path), "load", "--demo", "--processes", "2", "--users", "8"]
    argv += ["--duration", "3", "--num-predict", "16", "--json", "--grace", "20"]
    proc = subprocess.run(
        [sys.executable, "-m", "chimera_tui", *argv], capture_output=True, text=True, timeout=80
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    stdout, stderr = proc.stdout, proc.stderr
    doc = json.loads(stdout)
    load = doc["load"]
    assert load["workers"] == 2 and load["loop"] == "closed"
    assert load["requests_ok"] > 0 and load["requests_unaccounted"] == 0
    assert (
        load["requests_started"]
        == load["requests_ok"] + load["requests_failed"] + load["requests_incomplete"]
    )
    [summary], broken = SessionStore(tmp_path).summaries()
    assert not broken and summary.mode == "load"
    session = load_session(summary.path)
    assert len(session.runs) == load["requests_started"]
    assert len({r.index for r in session.runs}) == len(session.runs)
    ok = [r for r in session.runs if r.status == "ok"]
    assert all(r.metrics.token_count == 16 and r.metrics.ttft_ms is not None for r in ok)
    assert len(session.manifest.endpoint_list) == 2  # one simulator process per worker
    assert session.manifest.load is not None and session.manifest.load.requests_ok == load["requests_ok"]
    from chimera_tui.core.reports.markdown import session_markdown

    assert "| requests\\_unaccounted | 0 |" in session_markdown(session)
    assert "users" in stderr and "tok/s" in stderr  # the progress lines


def test_exported_locustfile_is_valid_python_with_the_bench_request() -> None:
    from chimera_tui.load.locustfile import render

    text = render(
        ["http://h:1", "http://h:1"],
        "ollama",
        "/api/generate",
        {"model": "m", "prompt": "p"},
        None,
        True,
        5.0,
        6.0,
    )
    compile(text, "locustfile.py", "exec")
    assert 'ENDPOINTS = ["http://h:1"]' in text and "PATH = '/api/generate'" in text


@needs_locust
@pytest.mark.slow
@pytest.mark.timeout(60)
def test_exported_locustfile_reports_ttft_through_locust(tmp_path: Path) -> None:
    sim = start_background(OllamaSimulator(SimConfig(load_s=0.0, tokens_per_s=500.0, num_parallel=4)))
    try:
        out = tmp_path / "locustfile.py"
        assert main(["export-locust", "--endpoint", sim.url, "--num-predict", "8", "-o", str(out)]) == 0
        cmd = [sys.executable, "-m", "locust", "-f", str(out), "--headless", "-u", "2", "-r", "2"]
        cmd += ["-t", "2s", "--only-summary", "--csv", str(tmp_path / "stats")]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=50, cwd=tmp_path)
    finally:
        sim.stop()
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = (tmp_path / "stats_stats.csv").read_text().splitlines()
    names = {row.split(",")[1] for row in rows[1:]}
    assert {"TTFT", "time per output token", "end-to-end"} <= names


@needs_locust
@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.timeout(90)
async def test_tui_starts_a_load_run_and_follows_its_snapshots(tmp_path: Path) -> None:
    """The TUI process starts the run as a subprocess and reads the master's snapshots from a Unix
    socket; Locust never enters it."""
    import asyncio

    from textual.widgets import Input, Log

    from chimera_tui.ui.app import ChimeraApp
    from chimera_tui.ui.config import AppConfig
    from chimera_tui.ui.screens.load_run import LoadScreen

    app = ChimeraApp(AppConfig(demo=True, sessions_root=tmp_path, monitor_interval_s=0))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = LoadScreen()
        await app.push_screen(screen)
        await pilot.pause()
        screen.query_one("#load-users", Input).value = "4"
        screen.query_one("#load-duration", Input).value = "2"
        await pilot.press("f5")
        for _ in range(600):
            await asyncio.sleep(0.1)
            if (
                screen.proc is not None
                and screen.proc.poll() is not None
                and "open the session" in "\n".join(screen.query_one("#load-log", Log).lines)
            ):
                break
        lines = "\n".join(screen.query_one("#load-log", Log).lines)
        assert "tok/s" in lines and "complete: press o to open the session" in lines, lines
        assert "locust" not in sys.modules and "gevent" not in sys.modules
        assert screen.session_path is not None and (screen.session_path / "metrics.json").is_file()


def test_unreachable_server_is_one_line_before_any_process(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["load", "--endpoint", "http://127.0.0.1:9", "--model", "m", "--users", "1", "--duration", "1"]
    assert main([*argv, "--connect-timeout", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("chimera-tui: error:"), err


@needs_locust
@pytest.mark.slow
@pytest.mark.timeout(60)
def test_failed_calls_are_recorded_with_their_error(tmp_path: Path) -> None:
    sim = start_background(OllamaSimulator(SimConfig(load_s=0.0, faults=SimFaults(status_503=True))))
    try:
        argv = ["--sessions-dir", str(tmp_path), "load", "--endpoint", sim.url, "--users", "2"]
        argv += ["--requests", "6", "--duration", "20", "--json"]
        proc = subprocess.run(
            [sys.executable, "-m", "chimera_tui", *argv], capture_output=True, text=True, timeout=50
        )
    finally:
        sim.stop()
    assert proc.returncode == 1, proc.stderr[-2000:]  # no call succeeded
    load = json.loads(proc.stdout)["load"]
    assert load["requests_started"] == load["requests_failed"] == 6 and load["requests_ok"] == 0
    session = load_session(SessionStore(tmp_path).summaries()[0][0].path)
    assert {r.status for r in session.runs} == {"failed"} and all(r.error for r in session.runs)
