"""Multi-agent sessions against simulators: dual runs the agents in parallel, shared with one slot
serializes them (slot wait), a failing agent, cancellation, and the CLI.

No test here asserts an efficiency or skew figure: those depend on how busy the machine is and are
benchmark targets (benchmarks/concurrency.py: dual >= 99.5 %, skew < 1 ms; shared one slot ~50 %).
The tests check the structure that makes those figures what they are."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from chimera_tui.cli import main
from chimera_tui.core.backends.ollama import Timeouts
from chimera_tui.core.measure.concurrency import RoundMetrics
from chimera_tui.core.run.events import RoundFinished, RunEvent, RunStarted, TokenBatch
from chimera_tui.core.run.multi import AgentSpec, MultiRunner, MultiSpec
from chimera_tui.core.store.profiles import Profile
from chimera_tui.core.store.sessions import load_session
from chimera_tui.sim import OllamaSimulator, SimFaults
from tests.helpers import fast_sim

pytestmark = pytest.mark.anyio
BASE = Profile("baseline_default", "", {}, None, True)


def multi_spec(mode: str, urls: list[str], **kw: object) -> MultiSpec:
    agents = [AgentSpec(u, "gemma3:latest", BASE) for u in urls]
    args: dict = {"runs": 5, "warmup": 1, "num_predict": 40, "timeouts": Timeouts(2, 10, 5), "ps_wait_s": 5.0}
    args.update(kw)
    return MultiSpec(mode, agents, "Say hi", **args)  # type: ignore[arg-type]


def runner(spec: MultiSpec, sims: dict[str, OllamaSimulator], tmp_path: Path, emit=None) -> MultiRunner:  # type: ignore[no-untyped-def]
    return MultiRunner(spec, tmp_path, emit, transport_factory=lambda url: sims[url].transport())


def assert_ran_in_parallel(rounds: list[RoundMetrics]) -> None:
    """Every measured round had both calls in flight at once: the round took less than the two calls
    end to end, and the later start came before the round was over (the barrier released both)."""
    measured = [r for r in rounds if not r.warmup]
    assert measured and all(r.status == "ok" for r in measured)
    for r in measured:
        assert r.makespan_ms < r.sum_e2e_ms, r
        assert r.start_skew_ms < r.makespan_ms, r
        assert r.efficiency_pct is not None and r.speedup is not None


async def test_dual_runs_the_agents_in_parallel(tmp_path: Path) -> None:
    sims = {"http://a": fast_sim(tokens_per_s=300.0), "http://b": fast_sim(tokens_per_s=300.0)}
    session = await runner(multi_spec("dual", list(sims)), sims, tmp_path).run()
    measured = [r for r in session.rounds if not r.warmup]
    assert len(measured) == 5
    assert_ran_in_parallel(session.rounds)
    assert session.manifest.result.mean_efficiency_pct is not None
    saved = load_session(session.path)
    assert saved.manifest.mode == "dual" and len(saved.manifest.agents) == 2
    assert {r.agent for r in saved.runs} == {0, 1} and len(saved.rounds) == 6


async def test_shared_with_one_slot_serializes_and_names_the_slot_wait(tmp_path: Path) -> None:
    sims = {"http://a": fast_sim(tokens_per_s=300.0, num_parallel=1)}
    spec = multi_spec("shared", ["http://a", "http://a"], solo_baseline=True, runs=3)
    session = await runner(spec, sims, tmp_path).run()
    result = session.manifest.result.to_toml_dict()
    measured = [r for r in session.rounds if not r.warmup]
    # one slot: in every round one agent waited for the other's whole call (a server queue gap)
    assert measured and all(r.status == "ok" and r.queue_wait_ms > 0 for r in measured), measured
    assert result["dominant_cause"] == "waiting for a slot (server queue gap)"
    assert result["contention_rate_pct"] is not None and result["contention_rate_pct"] > 0
    assert session.counts["solo"] == 6 and session.aggregates["server_decode_rate"].n == 6


async def test_an_agent_failing_mid_run_keeps_the_other_and_marks_the_round_partial(tmp_path: Path) -> None:
    sims = {"http://a": fast_sim(), "http://b": fast_sim()}
    events: list[RunEvent] = []

    def emit(event: RunEvent) -> None:
        events.append(event)
        if isinstance(event, RunStarted) and not event.warmup:
            sims["http://b"].config.faults = SimFaults(midstream_error_after=5)

    session = await runner(multi_spec("dual", list(sims), runs=2), sims, tmp_path, emit).run()
    measured = [r for r in session.rounds if not r.warmup]
    assert [r.status for r in measured] == ["partial", "partial"]
    agent0 = [r for r in session.runs if r.agent == 0 and not r.warmup]
    agent1 = [r for r in session.runs if r.agent == 1 and not r.warmup]
    assert all(r.status == "ok" for r in agent0) and all(r.status == "failed" for r in agent1)
    assert session.aggregates["server_decode_rate"].n == 2  # only the successful agent's calls
    assert any(isinstance(e, RoundFinished) for e in events)


async def test_cancel_stops_every_agent(tmp_path: Path) -> None:
    sims = {"http://a": fast_sim(tokens_per_s=100.0), "http://b": fast_sim(tokens_per_s=100.0)}
    tokens = 0

    def emit(event: RunEvent) -> None:
        nonlocal tokens
        if isinstance(event, TokenBatch):
            tokens += len(event.tokens)
            if tokens > 10:
                r.cancel()

    r = runner(multi_spec("dual", list(sims), num_predict=3000, warmup=0), sims, tmp_path, emit)
    with anyio.fail_after(15):
        session = await r.run()
    assert session.status == "cancelled"
    assert {run.status for run in session.runs} == {"cancelled"}


def test_cli_dual_and_shared_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "bench",
            "--demo",
            "--mode",
            "dual",
            "--runs",
            "5",
            "--warmup",
            "1",
            "--num-predict",
            "20",
            "--json",
            "--sessions-dir",
            str(tmp_path),
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["mode"] == "dual"
    assert_ran_in_parallel([RoundMetrics.from_dict(r) for r in doc["rounds"]])
    code = main(
        [
            "bench",
            "--demo",
            "--mode",
            "shared",
            "--runs",
            "3",
            "--warmup",
            "0",
            "--num-predict",
            "20",
            "--sessions-dir",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "parallel efficiency" in out and "waiting for a slot" in out


def test_cli_rejects_mismatched_agent_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "bench",
            "--mode",
            "dual",
            "--endpoint",
            "http://a:1",
            "--endpoint",
            "http://b:2",
            "--endpoint",
            "http://c:3",
            "--agents",
            "2",
            "--sessions-dir",
            str(tmp_path),
        ]
    )
    assert code == 1 and "needs 2 --endpoint values" in capsys.readouterr().err


async def test_compare_shared_with_dual_shows_the_efficiency_difference(tmp_path: Path) -> None:
    from chimera_tui.core.measure.compare import compare_sessions

    dual_sims = {"http://a": fast_sim(tokens_per_s=300.0), "http://b": fast_sim(tokens_per_s=300.0)}
    dual = await runner(multi_spec("dual", list(dual_sims), runs=4), dual_sims, tmp_path).run()
    shared_sims = {"http://a": fast_sim(tokens_per_s=300.0, num_parallel=1)}
    shared = await runner(multi_spec("shared", ["http://a", "http://a"], runs=4), shared_sims, tmp_path).run()
    c = compare_sessions([shared, dual])
    eff = c.metric("efficiency_pct")
    # dual overlaps its calls, one slot serializes them: about 100 % against about 50 %, far outside
    # the noise whatever the load (the figures themselves: benchmarks/concurrency.py)
    assert eff.columns[1].delta_pct is not None and eff.columns[1].delta_pct > 0
    assert eff.columns[1].verdict == "faster"


async def test_multi_session_reports_have_a_concurrency_section(tmp_path: Path) -> None:
    from chimera_tui.core.reports import export_sessions

    sims = {"http://a": fast_sim(), "http://b": fast_sim()}
    session = await runner(multi_spec("dual", list(sims), runs=2), sims, tmp_path).run()
    md = export_sessions([session], "md")
    assert "### Concurrency: dual mode, 2 agents" in md and "parallel efficiency" in md
    assert "| w1 |" in md and "| 1 |" in md and "| 2 |" in md
    html = export_sessions([session], "html")
    assert "Concurrency: dual mode" in html


async def test_preflight_warns_when_the_models_likely_do_not_fit(tmp_path: Path) -> None:
    from tests.fake_nvml import GIB, FakeGpu, FakeNvml

    urls = ["http://127.0.0.1:1", "http://127.0.0.1:2"]  # local endpoints: the same GPU is shared
    sims = {u: fast_sim() for u in urls}
    small_gpu = FakeNvml(gpus=[FakeGpu(mem_total=4 * GIB, mem_used=2 * GIB)])
    r = MultiRunner(
        multi_spec("dual", urls, runs=1, warmup=0),
        tmp_path,
        transport_factory=lambda url: sims[url].transport(),
        nvml_module=small_gpu,
    )
    session = await r.run()
    warnings = session.manifest.concurrency.preflight_warnings
    assert any("likely do not fit" in w and "2.0 GiB free" in w for w in warnings)
    roomy = FakeNvml(gpus=[FakeGpu(mem_total=80 * GIB, mem_used=1 * GIB)])
    sims = {u: fast_sim() for u in urls}
    r = MultiRunner(
        multi_spec("dual", urls, runs=1, warmup=0),
        tmp_path,
        transport_factory=lambda url: sims[url].transport(),
        nvml_module=roomy,
    )
    assert (await r.run()).manifest.concurrency.preflight_warnings == []
