"""Multi-agent sessions against simulators: dual runs the agents in parallel, shared with one slot
serializes them (slot wait), a failing agent, cancellation, and the CLI.

No test here asserts an efficiency or skew figure: those depend on how busy the machine is and are
benchmark targets (benchmarks/concurrency.py: dual >= 99.5 %, skew < 1 ms; shared one slot ~50 %).
The tests check the structure that makes those figures what they are; the three efficiencies'
closed-form values are asserted on a controlled clock (tests/test_sim_modes.py) and by hand
(tests/test_concurrency.py), and every saved round figure is recomputed from metrics.json here."""

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
        assert r.overlap_efficiency_pct is not None and r.research_efficiency_pct is not None


async def test_dual_runs_the_agents_in_parallel(tmp_path: Path) -> None:
    sims = {"http://a": fast_sim(tokens_per_s=300.0), "http://b": fast_sim(tokens_per_s=300.0)}
    session = await runner(multi_spec("dual", list(sims)), sims, tmp_path).run()
    measured = [r for r in session.rounds if not r.warmup]
    assert len(measured) == 5
    assert_ran_in_parallel(session.rounds)
    assert session.manifest.result.mean_overlap_efficiency_pct is not None
    assert session.manifest.result.mean_capacity_efficiency_pct is not None  # solo baseline by default
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
    # interleaved: each agent alone once before every measured round, so 2 solo calls per round
    order = [("solo" if r.solo else r.round) for r in sorted(session.runs, key=lambda r: r.index)]
    assert order[:2] == [0, 0] and order[2:4] == ["solo", "solo"]  # warm-up round, then solo calls


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
    captured = capsys.readouterr()
    out, err = captured.out, captured.err
    assert code == 0 and "waiting for a slot" in out
    assert "capacity efficiency" in out and "research efficiency" in out and "overlap efficiency" in out
    assert "needs --solo-baseline" not in out and "no solo baseline" not in out
    # every round's two result lines name their own agent (not "agent 2" twice)
    agent_lines = [line.strip().split(":")[0] for line in err.splitlines() if line.startswith("    agent ")]
    assert sorted(agent_lines) == ["agent 1"] * 3 + ["agent 2"] * 3
    assert err.count("  solo A1-s") == 3 and err.count("  solo A2-s") == 3


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
    assert code == 2 and "needs 2 --endpoint values" in capsys.readouterr().err  # a usage error


async def test_compare_shared_with_dual_shows_the_efficiency_difference(tmp_path: Path) -> None:
    from chimera_tui.core.measure.compare import compare_sessions

    dual_sims = {"http://a": fast_sim(tokens_per_s=300.0), "http://b": fast_sim(tokens_per_s=300.0)}
    dual = await runner(multi_spec("dual", list(dual_sims), runs=4), dual_sims, tmp_path).run()
    shared_sims = {"http://a": fast_sim(tokens_per_s=300.0, num_parallel=1)}
    shared = await runner(multi_spec("shared", ["http://a", "http://a"], runs=4), shared_sims, tmp_path).run()
    c = compare_sessions([shared, dual])
    eff = c.metric("overlap_efficiency_pct")
    # dual overlaps its calls, one slot serializes them: about 100 % against about 50 %, far outside
    # the noise whatever the load (the figures themselves: benchmarks/concurrency.py)
    assert eff.columns[1].delta_pct is not None and eff.columns[1].delta_pct > 0
    assert eff.columns[1].verdict == "higher (better)"  # never "faster" for an efficiency
    # per-call figures agent by agent: agent 2 of shared waited for the slot, agent 2 of dual did not
    ttft2 = c.metric("ttft_ms", agent=1)
    assert ttft2.spec.label.endswith("agent 2") and ttft2.columns[0].summary.n == 4
    assert not any(mc.spec.agent is None and mc.spec.key == "ttft_ms" for mc in c.metrics)
    assert c.notes and "agent i with agent i" in c.notes[0]
    from chimera_tui.core.run.single import BenchRunner
    from tests.helpers import spec as single_spec

    single_sim = fast_sim(tokens_per_s=300.0)
    single = await BenchRunner(single_spec(runs=3), tmp_path, transport=single_sim.transport()).run()
    c2 = compare_sessions([single, shared])
    assert c2.metric("ttft_ms", agent=1).columns[1].verdict == "no agent 2 on one side"
    assert c2.metric("ttft_ms", agent=0).columns[1].verdict != "no agent 1 on one side"


async def test_multi_session_reports_have_a_concurrency_section(tmp_path: Path) -> None:
    from chimera_tui.core.reports import export_sessions

    sims = {"http://a": fast_sim(), "http://b": fast_sim()}
    session = await runner(multi_spec("dual", list(sims), runs=2), sims, tmp_path).run()
    md = export_sessions([session], "md")
    assert "### Concurrency: dual mode, 2 agents" in md and "capacity efficiency" in md
    assert "research efficiency" in md and "overlap efficiency" in md
    assert "| metric (all agents) |" in md  # the pooled table says so; per-agent figures follow
    assert "capacity efficiency" in md.split("## 3. Results")[0]  # the summary leads with capacity
    assert "| round | status | capacity efficiency % | research efficiency % | overlap efficiency %" in md
    assert "| w1 |" in md and "| 1 |" in md and "| 2 |" in md
    html = export_sessions([session], "html")
    assert "Concurrency: dual mode" in html
    assert "capacity efficiency" in html and "research efficiency" in html
    doc = json.loads(export_sessions([session], "json"))
    concurrency = doc["session"]["concurrency"]
    assert concurrency["headline"].startswith("capacity efficiency")
    assert concurrency["result"]["mean_capacity_efficiency_pct"] is not None
    assert all(r["timeline"] for r in concurrency["rounds"])
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(export_sessions([session], "csv"))))
    assert {r["agent"] for r in rows} == {"1", "2"}
    assert {r["solo"] for r in rows} == {"true", "false"}
    measured = [r for r in rows if r["solo"] == "false" and r["warmup"] == "false"]
    assert all(r["round_capacity_efficiency_pct"] for r in measured)


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


# -- the simulator's three concurrency modes through the runner ------------------------------------------
# The closed-form figures (50/75/50, 50/100/100, 100/100/100) are asserted on a controlled clock in
# tests/test_sim_modes.py; here, on the wall clock, only what the schedule guarantees whatever the load.


async def _mode_session(tmp_path: Path, sim_mode: str) -> list:  # type: ignore[type-arg]
    from chimera_tui.sim import sim_mode_settings

    sims = {"http://a": fast_sim(tokens_per_s=300.0, **sim_mode_settings(sim_mode, 2))}
    spec = multi_spec("shared", ["http://a", "http://a"], runs=3, num_predict=60)
    session = await runner(spec, sims, tmp_path).run()
    assert session.status == "complete"
    measured = [r for r in session.rounds if not r.warmup]
    assert len(measured) == 3 and all(r.status == "ok" for r in measured)
    assert all(r.capacity_efficiency_pct is not None for r in measured)  # solo calls before each round
    return measured


async def test_sim_fifo_one_slot_makes_one_agent_wait(tmp_path: Path) -> None:
    for r in await _mode_session(tmp_path, "fifo"):
        assert r.queue_wait_ms > 0 and r.cause == "waiting for a slot (server queue gap)"
        assert r.research_efficiency_pct > r.overlap_efficiency_pct  # the wait counts as work there


async def test_sim_shared_compute_slows_every_stream(tmp_path: Path) -> None:
    for r in await _mode_session(tmp_path, "shared-compute"):
        # each stream gets half the budget: its decode rate falls far below solo (the flag needs > 10%)
        assert r.contended is True and r.cause == "slower decoding (decode rate below solo)"


async def test_sim_independent_slots_do_not_wait(tmp_path: Path) -> None:
    for r in await _mode_session(tmp_path, "independent"):
        assert r.cause != "waiting for a slot (server queue gap)"
        assert r.overlap_efficiency_pct == pytest.approx(r.research_efficiency_pct, abs=5.0)  # no wait


async def test_every_round_figure_recomputes_from_the_saved_file(tmp_path: Path) -> None:
    sims = {"http://a": fast_sim(tokens_per_s=300.0, num_parallel=1)}
    session = await runner(multi_spec("shared", ["http://a", "http://a"], runs=2), sims, tmp_path).run()
    doc = json.loads((session.path / "metrics.json").read_text(encoding="utf-8"))
    rounds = doc["rounds"]
    assert len(rounds) == 3
    for r in rounds:
        timeline = r["timeline"]
        assert [a["agent"] for a in timeline] == [0, 1] and all(a["ok"] for a in timeline)
        for a in timeline:  # relative to the round's release: sends just after it, in order
            assert 0 <= a["send_ms"] <= a["first_token_ms"] <= a["end_ms"]
        n = len(timeline)
        sends, ends = [a["send_ms"] for a in timeline], [a["end_ms"] for a in timeline]
        makespan = max(ends) - min(sends)
        own = sum(a["end_ms"] - a["send_ms"] for a in timeline)
        served = sum(a["end_ms"] - a["send_ms"] - a["server_wait_ms"] for a in timeline)
        assert r["makespan_ms"] == pytest.approx(makespan, abs=1e-6)
        assert r["start_skew_ms"] == pytest.approx(max(sends) - min(sends), abs=1e-6)
        assert r["research_efficiency_pct"] == pytest.approx(own / makespan / n * 100)
        assert r["research_speedup"] == pytest.approx(own / makespan)
        assert r["overlap_efficiency_pct"] == pytest.approx(served / makespan / n * 100)
        if r["warmup"]:
            assert r["capacity_efficiency_pct"] is None  # no solo calls before warm-up rounds
            continue
        solo = sum(a["solo_e2e_ms"] for a in timeline)
        assert r["capacity_efficiency_pct"] == pytest.approx(solo / makespan / n * 100)
        assert r["capacity_speedup"] == pytest.approx(solo / makespan)
        # the solo figures in the timeline are the saved solo calls that ran just before the round
        solo_runs = [run for run in doc["runs"] if run.get("solo")]
        e2e = {round(run["metrics"]["e2e_ms"], 6) for run in solo_runs}
        assert all(round(a["solo_e2e_ms"], 6) in e2e for a in timeline)


def test_a_session_saved_before_the_three_efficiencies_still_reads(tmp_path: Path) -> None:
    from chimera_tui.cli.output import concurrency_lines
    from chimera_tui.core.reports import export_sessions

    sims = {"http://a": fast_sim(tokens_per_s=300.0, num_parallel=1)}
    spec = multi_spec("shared", ["http://a", "http://a"], runs=2, solo_baseline=False)
    session = anyio.run(runner(spec, sims, tmp_path).run)
    path = session.path / "metrics.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    for r in doc["rounds"]:  # rewrite the rounds as the previous version saved them
        r["efficiency_pct"], r["speedup"] = r.pop("overlap_efficiency_pct"), r.pop("overlap_speedup")
        r["efficiency_vs_solo_pct"], r["speedup_vs_solo"] = None, None
        for key in ("timeline", "capacity_efficiency_pct", "capacity_speedup", "research_efficiency_pct"):
            r.pop(key)
        r.pop("research_speedup"), r.pop("research_contended"), r.pop("sum_solo_ms"), r.pop("missing")
    path.write_text(json.dumps(doc), encoding="utf-8")
    old = load_session(session.path)
    text = "\n".join(concurrency_lines(old))
    assert "capacity unknown (no solo baseline)" in text
    assert "not available: per-agent send / first-token / end times not saved" in text
    md = export_sessions([old], "md")
    assert "capacity unknown (no solo baseline) · research efficiency " in md  # from sum_e2e_ms
    from chimera_tui.core.measure.concurrency import result_view

    result = result_view(old.manifest.result_or_empty, old.rounds)
    assert (
        result["mean_research_efficiency_pct"] is not None
        and result["mean_overlap_efficiency_pct"] is not None
    )
    assert result["mean_capacity_efficiency_pct"] is None


def test_cli_demo_sim_mode_shared_compute(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "--demo", "--mode", "shared", "--sim-mode", "shared-compute", "--runs", "2"]
    argv += ["--warmup", "0", "--num-predict", "30", "--json", "--sessions-dir", str(tmp_path)]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["result"]["dominant_cause"] == "slower decoding (decode rate below solo)"
    assert doc["result"]["mean_capacity_efficiency_pct"] is not None


def test_sim_command_modes_parse() -> None:
    from chimera_tui.cli import build_parser
    from chimera_tui.sim import sim_mode_settings

    args = build_parser().parse_args(["sim", "--sim-mode", "shared-compute", "--num-parallel", "3"])
    assert args.sim_mode == "shared-compute" and args.num_parallel == 3
    assert sim_mode_settings("shared-compute", 3) == {"num_parallel": 3, "compute": "shared"}
    assert sim_mode_settings("fifo", 3) == {"num_parallel": 1, "compute": "independent"}
    with pytest.raises(ValueError):
        sim_mode_settings("bogus", 2)
    assert build_parser().parse_args(["bench", "--no-solo-baseline"]).solo_baseline is False
    assert build_parser().parse_args(["bench"]).solo_baseline is True


def test_console_names_the_agent_whose_call_finished_in_any_order() -> None:
    import io

    from chimera_tui.cli.output import HeadlessProgress
    from chimera_tui.core.run.events import RoundStarted, RunFinished
    from chimera_tui.core.store.sessions import RunRecord

    out = io.StringIO()
    progress = HeadlessProgress(out)
    progress(RunStarted(0, 1, 1, False, agent=0, solo=True))
    progress(RunFinished(RunRecord(0, False, "ok", "t", agent=0, solo=True)))
    progress(RoundStarted(0, 1, 1, False))
    progress(RunStarted(1, 1, 1, False, agent=0))
    progress(RunStarted(2, 1, 1, False, agent=1))
    progress(RunFinished(RunRecord(2, False, "ok", "t", agent=1, round=0)))  # agent 2 ends first
    progress(RunFinished(RunRecord(1, False, "ok", "t", agent=0, round=0)))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("  solo A1-s1/1:")
    assert [line.split(":")[0].strip() for line in lines[2:4]] == ["agent 2", "agent 1"]
