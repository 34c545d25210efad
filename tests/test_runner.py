"""The runner against the in-process simulator: warm/cold, events, saving, failures, cancellation."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import anyio
import pytest

from chimera_tui.core.errors import EndpointUnreachable, ModelNotFound
from chimera_tui.core.run.events import (
    RunEvent,
    RunFailed,
    RunFinished,
    RunStarted,
    SessionFinished,
    SessionStarted,
    TokenBatch,
)
from chimera_tui.core.run.single import BenchRunner
from chimera_tui.core.store.profiles import Profile
from chimera_tui.core.store.sessions import load_session
from chimera_tui.sim import SimFaults
from tests.helpers import fast_sim, spec

pytestmark = pytest.mark.anyio


async def test_warm_session_events_and_saved_files(tmp_path: Path) -> None:
    sim = fast_sim()
    events: list[RunEvent] = []
    profile = Profile("p", "", {"num_ctx": 512, "temperature": 0.6, "seed": 7}, None, False)
    runner = BenchRunner(spec(profile=profile), tmp_path, events.append, transport=sim.transport())
    session = await runner.run()

    kinds = [type(e).__name__ for e in events if not isinstance(e, TokenBatch)]
    assert kinds[0] == "PhaseChanged" and "SessionStarted" in kinds
    assert [type(e) for e in events if isinstance(e, RunStarted | RunFinished)].count(RunFinished) == 3
    assert isinstance(events[-1], SessionFinished)
    started = [e for e in events if isinstance(e, RunStarted)]
    assert [(e.warmup, e.number, e.total) for e in started] == [(True, 1, 1), (False, 1, 2), (False, 2, 2)]

    assert session.status == "complete"
    assert session.counts["ok"] == 2 and session.counts["warmup"] == 1
    measured = [r for r in session.runs if not r.warmup]
    for r in measured:
        assert r.metrics.token_count == 20 and r.metrics.eval_count == 20
        assert (
            r.metrics.load_ms is not None and r.metrics.load_ms < 40
        )  # warm: preloaded with the same options
        assert r.prompt is not None and r.prompt.startswith("[run ") and r.prompt.endswith("Say hello.")
    assert measured[0].prompt != measured[1].prompt  # unique prefix defeats the prompt cache
    assert session.aggregates["server_decode_rate"].n == 2

    # the same options went out on every request, and the model stayed loaded with them
    (loaded,) = sim.loaded_models()
    assert loaded.options.get("num_ctx") == 512
    assert sim.loads == 1

    on_disk = load_session(session.path)
    assert on_disk.manifest.profile.options == {"num_ctx": 512, "temperature": 0.6, "seed": 7}
    assert on_disk.manifest.workload.options_sent["num_predict"] == 20
    assert on_disk.manifest.endpoints[0].version == "0.33.0"
    assert on_disk.manifest.model.quantization == "Q4_K_M"
    assert "gpu_status" in on_disk.manifest.environment
    doc = json.loads((session.path / "metrics.json").read_text())
    assert doc["schema_version"] == 1 and len(doc["runs"]) == 3


async def test_cold_mode_unloads_before_every_run_and_pays_the_load(tmp_path: Path) -> None:
    sim = fast_sim(load_s=0.2)
    runner = BenchRunner(spec(cold=True, warmup=0, runs=2), tmp_path, transport=sim.transport())
    session = await runner.run()
    assert session.status == "complete"
    for r in session.runs:
        assert r.metrics.load_ms is not None and r.metrics.load_ms >= 190
        assert r.metrics.ttft_ms is not None and r.metrics.ttft_ms >= 190
    assert sim.loads == 2


async def test_a_failed_preload_fails_the_session_and_says_why(tmp_path: Path) -> None:
    runner = BenchRunner(spec(), tmp_path, transport=fast_sim(SimFaults(status_503=True)).transport())
    session = await runner.run()
    assert session.status == "failed" and session.runs == []
    saved = load_session(session.path)
    assert "503" in saved.manifest.result.error


async def test_unknown_model_lists_available_ones(tmp_path: Path) -> None:
    runner = BenchRunner(spec(model="nope:1b"), tmp_path, transport=fast_sim().transport())
    with pytest.raises(ModelNotFound) as info:
        await runner.run()
    assert "gemma3:latest" in str(info.value) and "nope:1b" in str(info.value)
    assert not list(tmp_path.iterdir())  # nothing started, nothing half-written


async def test_unreachable_endpoint(tmp_path: Path) -> None:
    runner = BenchRunner(spec(endpoint="http://127.0.0.1:9"), tmp_path)
    with pytest.raises(EndpointUnreachable):
        await runner.run()


@pytest.mark.parametrize(
    ("faults", "kind", "text"),
    [
        (SimFaults(midstream_error_after=5), "stream_error", "mid-stream"),
        (SimFaults(cut_after=5), "stream_error", "without a final 'done'"),
        (SimFaults(status_503=True), "server_error", "503"),
    ],
)
async def test_failed_runs_are_recorded_with_cause_and_excluded(
    tmp_path: Path, faults: SimFaults, kind: str, text: str
) -> None:
    sim = fast_sim()
    events: list[RunEvent] = []

    def emit(event: RunEvent) -> None:
        events.append(event)
        if isinstance(event, RunStarted):
            sim.config.faults = faults  # the preload succeeded; the measured calls hit the fault

    runner = BenchRunner(spec(warmup=0), tmp_path, emit, transport=sim.transport())
    session = await runner.run()
    failed = [e for e in events if isinstance(e, RunFailed)]
    assert len(failed) == 2
    for r in session.runs:
        assert r.status == "failed" and r.error_kind == kind and text in (r.error or "")
    assert session.aggregates["server_decode_rate"].n == 0
    assert load_session(session.path).counts["failed"] == 2


async def test_cancel_mid_stream_records_a_cancelled_run_and_stops(tmp_path: Path) -> None:
    sim = fast_sim(tokens_per_s=200.0)
    events: list[RunEvent] = []

    def emit(event: RunEvent) -> None:
        events.append(event)
        if (
            isinstance(event, TokenBatch)
            and sum(len(e.tokens) for e in events if isinstance(e, TokenBatch)) >= 5
        ):
            runner.cancel()

    runner = BenchRunner(spec(warmup=0, runs=3, num_predict=2000), tmp_path, emit, transport=sim.transport())
    with anyio.fail_after(10):
        session = await runner.run()
    assert session.status == "cancelled"
    assert [r.status for r in session.runs] == ["cancelled"]
    r = session.runs[0]
    assert 5 <= (r.metrics.token_count or 0) < 2000 and r.metrics.ttft_ms is not None
    assert r.metrics.e2e_ms is None  # never finished: no end-to-end time


async def test_thinking_model_separates_ttft_any_and_content(tmp_path: Path) -> None:
    runner = BenchRunner(
        spec(model="qwen3:4b", warmup=0, runs=1, num_predict=40), tmp_path, transport=fast_sim().transport()
    )
    session = await runner.run()
    m = session.runs[0].metrics
    assert m.thinking_token_count and m.thinking_token_count > 0
    assert m.ttft_content_ms is not None and m.ttft_ms is not None and m.ttft_content_ms > m.ttft_ms
    assert session.runs[0].thinking and session.runs[0].response


async def test_chat_api(tmp_path: Path) -> None:
    runner = BenchRunner(spec(api="chat", warmup=0, runs=1), tmp_path, transport=fast_sim().transport())
    session = await runner.run()
    assert session.runs[0].status == "ok" and session.runs[0].metrics.token_count == 20


def test_cancel_from_another_thread(tmp_path: Path) -> None:
    """The TUI cancels from the UI thread while the runner runs in a worker thread."""
    from chimera_tui.core.run.single import run_bench_sync

    sim = fast_sim(tokens_per_s=100.0)
    started = threading.Event()

    def emit(event: RunEvent) -> None:
        if isinstance(event, TokenBatch):
            started.set()

    runner = BenchRunner(spec(warmup=0, runs=5, num_predict=5000), tmp_path, emit, transport=sim.transport())
    result: dict = {}
    t = threading.Thread(target=lambda: result.setdefault("s", run_bench_sync(runner)))
    t.start()
    assert started.wait(10)
    runner.cancel()
    t.join(10)
    assert not t.is_alive()
    assert result["s"].status == "cancelled"


async def test_session_started_carries_the_server_version(tmp_path: Path) -> None:
    events: list[RunEvent] = []
    await BenchRunner(spec(warmup=0, runs=1), tmp_path, events.append, transport=fast_sim().transport()).run()
    (started,) = [e for e in events if isinstance(e, SessionStarted)]
    assert started.server_version == "0.33.0" and started.runs == 1
