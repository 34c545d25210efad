"""The whole tool against real inference: llama.cpp's llama-server serving a generated GGUF model,
driven through the runners and the CLI exactly as a user would (backend auto-detected)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from chimera_tui.cli import main
from chimera_tui.core.backends.ollama import Timeouts
from chimera_tui.core.run.events import RunEvent, TokenBatch
from chimera_tui.core.run.multi import AgentSpec, MultiRunner, MultiSpec
from chimera_tui.core.run.single import BenchRunner, BenchSpec
from chimera_tui.core.store.profiles import Profile
from tests import real_engine
from tests.real_engine import SETUP_TIMEOUT_S, LlamaServer, running_server
from tools.make_gguf_model import write_model

pytestmark = [pytest.mark.slow, pytest.mark.anyio, pytest.mark.timeout(SETUP_TIMEOUT_S)]

llama_server_bin = real_engine.llama_server_bin
gguf_model = real_engine.gguf_model

TIMEOUTS = Timeouts(connect_s=5, first_byte_s=60, idle_s=20)
PROFILE = Profile("det", "deterministic", {"temperature": 0.0, "seed": 1, "num_ctx": 2048}, None, False)


@pytest.fixture(scope="module")
def endless_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Never stops by itself and decodes at a few hundred tok/s on one thread: long, real calls."""
    return write_model(tmp_path_factory.mktemp("gguf") / "endless.gguf", width=512, layers=4, eos_after=0)


@pytest.fixture(scope="module")
def server(llama_server_bin: Path, gguf_model: Path) -> Iterator[LlamaServer]:
    with running_server(llama_server_bin, gguf_model, threads=1, slots=1) as s:
        yield s


def spec(url: str, **kw: object) -> BenchSpec:
    args: dict = {
        "model": "",
        "profile": PROFILE,
        "prompt": "hello",
        "endpoint": url,
        "runs": 3,
        "warmup": 1,
        "api": "chat",
        "num_predict": 32,
        "timeouts": TIMEOUTS,
    }
    args.update(kw)
    return BenchSpec(**args)


async def test_single_agent_counts_match_the_server(server: LlamaServer, tmp_path: Path) -> None:
    session = await BenchRunner(spec(server.url, model=await _model(server.url)), tmp_path).run()
    assert session.status == "complete", [r.error for r in session.runs]
    endpoint = session.manifest.endpoints[0]
    assert endpoint.kind == "openai" and endpoint.server == "llama.cpp"
    not_applied = endpoint.options_not_applied or []
    assert "num_ctx" in not_applied and "keep_alive" not in not_applied
    for run in (r for r in session.runs if not r.warmup):
        m = run.metrics
        timings = run.server_final["openai"]["timings"]
        assert m.token_count == timings["predicted_n"] == m.eval_count == 32
        assert m.ttft_ms is not None and m.e2e_ms is not None and 0 < m.ttft_ms <= m.e2e_ms
        assert m.server_decode_rate and m.client_decode_rate  # how close they are: benchmarks/


def test_cli_bench_against_llama_server(
    server: LlamaServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "bench",
            "--endpoint",
            server.url,
            "--runs",
            "2",
            "--warmup",
            "1",
            "--num-predict",
            "16",
            "--api",
            "chat",
            "--json",
            "--sessions-dir",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    doc = json.loads(out.out)
    assert doc["counts"]["ok"] == 2 and doc["endpoints"][0]["kind"] == "openai"
    code = main(["bench", "--endpoint", server.url, "--cold", "--sessions-dir", str(tmp_path)])
    assert code == 1 and "cold" in capsys.readouterr().err  # no unload on an OpenAI server: refused up front


async def _model(url: str) -> str:
    from chimera_tui.core.backends.openai import OpenAIClient

    async with OpenAIClient(url, TIMEOUTS) as client:
        return (await client.tags())[0].name


def _multi(mode: str, urls: list[str], model: str) -> MultiSpec:
    agents = [AgentSpec(u, model, PROFILE) for u in urls]
    return MultiSpec(
        mode,
        agents,
        "hello",
        runs=3,
        warmup=1,
        api="chat",
        num_predict=200,  # type: ignore[arg-type]
        timeouts=TIMEOUTS,
    )


async def test_dual_servers_run_in_parallel(
    llama_server_bin: Path, endless_model: Path, tmp_path: Path
) -> None:
    with (
        running_server(llama_server_bin, endless_model, threads=1, slots=1) as a,
        running_server(llama_server_bin, endless_model, threads=1, slots=1) as b,
    ):
        model = await _model(a.url)
        session = await MultiRunner(_multi("dual", [a.url, b.url], model), tmp_path).run()
    assert session.status == "complete"
    # parallel: in every round both calls were in flight at once (the makespan is shorter than the two
    # calls end to end). The efficiency figure itself (close to 100%) depends on how busy the machine
    # is: it is a benchmark target (benchmarks/concurrency.py), not a test.
    measured = [r for r in session.rounds if not r.warmup]
    assert len(measured) == 3 and all(r.status == "ok" for r in measured)
    for r in measured:
        assert r.makespan_ms < r.sum_e2e_ms, r
        assert r.start_skew_ms < min(r.makespan_ms, r.sum_e2e_ms / 2), r


async def test_shared_server_with_one_slot_serializes(
    llama_server_bin: Path, endless_model: Path, tmp_path: Path
) -> None:
    with running_server(llama_server_bin, endless_model, threads=1, slots=1) as s:
        model = await _model(s.url)
        session = await MultiRunner(_multi("shared", [s.url, s.url], model), tmp_path).run()
    result = session.manifest.result.to_toml_dict()
    # one slot: in every round one call waited for the other (a queue gap), whatever the machine's load
    measured = [r for r in session.rounds if not r.warmup]
    assert measured and all(r.queue_wait_ms > 0 for r in measured), measured
    # the research's figure counts the waiting agent's wait as work, the overlap figure does not
    assert all(r.research_efficiency_pct > r.overlap_efficiency_pct for r in measured), measured
    assert all(r.capacity_efficiency_pct is not None for r in measured), measured  # solo by default
    assert result["dominant_cause"] == "waiting for a slot (server queue gap)"
    assert any(
        "1 parallel slot(s) for 2 agents" in w for w in session.manifest.concurrency.preflight_warnings
    )


async def test_cancel_and_server_killed_mid_stream(
    llama_server_bin: Path, endless_model: Path, tmp_path: Path
) -> None:
    with running_server(llama_server_bin, endless_model, threads=1, slots=1) as s:
        model = await _model(s.url)
        seen = threading.Event()

        def emit(event: RunEvent) -> None:
            if isinstance(event, TokenBatch):
                seen.set()
                runner.cancel()

        runner = BenchRunner(spec(s.url, model=model, warmup=0, num_predict=5000), tmp_path, emit)
        with anyio.fail_after(30):
            session = await runner.run()
        assert seen.is_set() and session.status == "cancelled"
        assert session.runs[0].status == "cancelled"
        assert s.healthy()  # the server lives on after the client closed the stream

        def kill_on_tokens(event: RunEvent) -> None:
            if isinstance(event, TokenBatch) and s.alive():
                s.kill()

        killed = BenchRunner(
            spec(s.url, model=model, warmup=0, runs=1, num_predict=5000), tmp_path, kill_on_tokens
        )
        with anyio.fail_after(30):
            session = await killed.run()
    run = session.runs[0]
    assert run.status == "failed" and run.error_kind in {"stream_error", "unreachable"}
    assert session.aggregates["server_decode_rate"].n == 0
