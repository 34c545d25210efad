"""Issue 14 end to end: the simulator's prompt cache and cached counts, early end of text, thinking
budget, cloud models, think levels, and the runner's flags and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from chimera_tui.core.errors import RemoteModelRefused
from chimera_tui.core.measure.metrics import (
    FLAG_COLD,
    FLAG_PREFILL_CACHED_UNKNOWN,
    FLAG_REMOTE,
    FLAG_STOPPED_EARLY,
    FLAG_THINKING_BUDGET,
)
from chimera_tui.core.run.single import BenchRunner
from chimera_tui.core.store.profiles import Profile, ProfileError, load_profile, parse_think
from chimera_tui.sim import SimModel
from chimera_tui.sim.prompt_cache import PromptCaches, chat_pieces, generate_pieces, reports_cached_count
from tests.helpers import fast_sim, spec

pytestmark = pytest.mark.anyio


def measured(session):  # type: ignore[no-untyped-def]
    return [r for r in session.runs if not r.warmup and r.status == "ok"]


def test_prompt_cache_reuses_the_common_prefix_on_the_same_load() -> None:
    caches, runner = PromptCaches(), object()
    pieces = generate_pieces("", "one two three four five six seven eight nine ten", raw=False)
    assert caches.lookup("m", runner, pieces, 14) == 0  # first prompt: nothing cached
    assert caches.lookup("m", runner, pieces, 14) == 13  # the same prompt: all but the last token
    other = generate_pieces("", "[run ab12] one two three", raw=False)
    assert caches.lookup("m", runner, other, 5) == 1  # a unique prefix still reuses the BOS/template
    assert caches.lookup("m", object(), other, 5) == 0  # a reload empties the cache
    chat = chat_pieces([{"role": "user", "content": "[run x] hi"}])
    assert chat[:4] == chat_pieces([{"role": "user", "content": "[run y] hi"}])[:4]
    assert reports_cached_count("0.33.0", "0.33.0") and not reports_cached_count("0.30.2", "0.33.0")
    assert reports_cached_count("v0.34.1-rc1", "0.33.0")


async def test_same_prompt_hits_the_cache_and_prefill_counts_processed_tokens(tmp_path: Path) -> None:
    sim = fast_sim(prompt_tokens_per_s=5_000.0)
    prompt = " ".join(f"w{i}" for i in range(200))
    runner = BenchRunner(spec(prompt=prompt, unique_prompt=False), tmp_path, transport=sim.transport())
    session = await runner.run()
    runs = measured(session)
    assert len(runs) == 2
    for r in runs:
        m = r.metrics
        assert m.prompt_cached_count == m.prompt_eval_count - 1 and m.prompt_processed_count == 1
        assert m.prefill_rate is not None and m.prompt_eval_rate is not None
        assert m.prefill_rate < m.prompt_eval_rate  # the raw ratio counts the cached tokens
        assert FLAG_PREFILL_CACHED_UNKNOWN not in m.flags
    assert session.aggregates["prompt_cached_count"].n == 2


async def test_unique_prompt_is_cache_cold_except_the_template(tmp_path: Path) -> None:
    sim = fast_sim()
    session = await BenchRunner(spec(prompt="a b c d e f"), tmp_path, transport=sim.transport()).run()
    for r in measured(session):
        # the BOS/template token and the marker's fixed "[run" word are cached on every run: the
        # server says so, and prefill counts only the processed rest
        assert r.metrics.prompt_cached_count == 2
        assert r.metrics.prompt_processed_count == r.metrics.prompt_eval_count - 2


async def test_older_ollama_omits_the_cached_count_and_prefill_is_flagged(tmp_path: Path) -> None:
    sim = fast_sim(version="0.30.2")
    session = await BenchRunner(spec(), tmp_path, transport=sim.transport()).run()
    for r in measured(session):
        assert r.server_final is not None and "prompt_eval_cached_count" not in r.server_final
        assert r.metrics.prompt_cached_count is None and r.metrics.prompt_processed_count is None
        assert FLAG_PREFILL_CACHED_UNKNOWN in r.metrics.flags


async def test_early_end_of_text_is_flagged_stopped_early(tmp_path: Path) -> None:
    sim = fast_sim(eos_after=5)
    session = await BenchRunner(spec(num_predict=20), tmp_path, transport=sim.transport()).run()
    for r in measured(session):
        assert r.metrics.done_reason == "stop" and r.metrics.eval_count == 5
        assert FLAG_STOPPED_EARLY in r.metrics.flags


async def test_thinking_that_uses_the_budget_is_flagged(tmp_path: Path) -> None:
    sim = fast_sim(think_share=1.0)
    s = spec(model="qwen3:4b", num_predict=8, think="high")
    session = await BenchRunner(s, tmp_path, transport=sim.transport()).run()
    assert sim.last_request is not None and sim.last_request["think"] == "high"
    for r in measured(session):
        m = r.metrics
        assert m.done_reason == "length" and m.answer_token_count == 0 and m.thinking_token_count == 8
        assert FLAG_THINKING_BUDGET in m.flags
        assert m.answer_decode_rate is None and m.ttft_content_ms is None


async def test_answer_figures_beside_all_token_ones(tmp_path: Path) -> None:
    sim = fast_sim()
    session = await BenchRunner(
        spec(model="qwen3:4b", num_predict=20), tmp_path, transport=sim.transport()
    ).run()
    for r in measured(session):
        m = r.metrics
        assert m.thinking_token_count == 4 and m.answer_token_count == 16
        assert m.answer_decode_rate is not None and m.client_decode_rate is not None
        assert m.ttft_content_ms is not None and m.ttft_ms is not None and m.ttft_content_ms > m.ttft_ms


async def test_cloud_model_is_refused_by_default_and_flagged_when_allowed(tmp_path: Path) -> None:
    cloud = SimModel("gpt-oss:120b-cloud", remote_host="https://ollama.com:443")
    sim = fast_sim()
    sim.config.models.append(cloud)
    with pytest.raises(RemoteModelRefused, match="--allow-remote"):
        await BenchRunner(spec(model=cloud.name), tmp_path, transport=sim.transport()).run()
    session = await BenchRunner(
        spec(model=cloud.name, allow_remote=True), tmp_path, transport=sim.transport()
    ).run()
    assert session.status == "complete"
    assert all(FLAG_REMOTE in r.metrics.flags for r in measured(session))


async def test_a_local_name_answered_remotely_stops_the_session(tmp_path: Path) -> None:
    sim = fast_sim()
    sim.config.models.append(SimModel("proxy:latest", remote_host="https://ollama.com:443"))
    session = await BenchRunner(spec(model="proxy:latest"), tmp_path, transport=sim.transport()).run()
    assert session.status == "failed" and "remote host" in (session.manifest.result_or_empty.error or "")
    assert len(session.runs) == 1  # stopped after the first answer


async def test_cold_when_warm_expected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chimera_tui.core.measure import metrics
    from chimera_tui.core.measure.metrics import CallTrace, compute_call_metrics

    monkeypatch.setattr(metrics, "COLD_LOAD_MS", 20.0)  # the simulator's load takes 50 ms
    sim = fast_sim(load_s=0.05)
    warm = await BenchRunner(spec(), tmp_path, transport=sim.transport()).run()
    assert all(FLAG_COLD not in r.metrics.flags for r in warm.runs)  # preloaded: every call is warm
    cold_mode = await BenchRunner(spec(cold=True), tmp_path, transport=sim.transport()).run()
    assert all(r.metrics.load_ms and r.metrics.load_ms > 20 for r in cold_mode.runs)
    assert all(FLAG_COLD not in r.metrics.flags for r in cold_mode.runs)  # cold was asked for
    trace = CallTrace(0, final={"done": True, "load_duration": 50_000_000})
    assert FLAG_COLD in compute_call_metrics(trace, expect_warm=True).flags


def test_think_levels_in_profiles_and_cli(tmp_path: Path) -> None:
    assert parse_think("on") is True and parse_think("false") is False and parse_think("max") == "max"
    with pytest.raises(ValueError):
        parse_think("extreme")
    p = Profile("t", "", {}, None, False, think="low")
    path = tmp_path / "t.toml"
    path.write_text(p.to_toml())
    assert load_profile(path).think == "low"
    path.write_text('name = "t"\nthink = "huge"\n')
    with pytest.raises(ProfileError, match="'think' must be"):
        load_profile(path)


def _run(index: int, offsets: list[float], flags: list[str], eval_count: int = 10):  # type: ignore[no-untyped-def]
    from chimera_tui.core.measure.metrics import CallMetrics
    from chimera_tui.core.store.sessions import RunRecord

    m = CallMetrics(eval_count=eval_count, token_count=eval_count, flags=list(flags))
    return RunRecord(index, False, "ok", "t", metrics=m, token_offsets_ms=offsets)


def test_pooled_inter_token_gaps_keep_the_outlier_a_mean_of_p99s_hides() -> None:
    from chimera_tui.core.store.sessions import pooled_itl

    steady = [float(i) for i in range(0, 101)]  # 100 gaps of 1 ms
    spiky = [*[float(i) for i in range(0, 100)], 305.0]  # 99 gaps of 1 ms, one of 206 ms
    pooled = pooled_itl([_run(0, steady, []), _run(1, spiky, [])])
    assert pooled.n == 200 and pooled.max == pytest.approx(206.0)
    assert pooled.p50 == pytest.approx(1.0)


def test_flag_counts_and_cli_lines() -> None:
    from chimera_tui.cli.output import flags_text, session_extra_lines
    from chimera_tui.core.store.sessions import Session, flag_counts

    runs = [_run(0, [1.0, 2.0, 3.0], ["client_stall"]), _run(1, [1.0, 2.0], [])]
    assert flag_counts(runs) == {"client_stall": 1}
    assert flags_text(["client_stall", "remote_model"]) == "client stall, remote model"
    session = Session(Path("/nonexistent"), {}, runs, "complete", {})
    lines = session_extra_lines(session)
    assert lines[0].startswith("inter-token gaps, pooled over 3 gaps")
    assert lines[1] == "flag: client stall in 1 of 2 runs"


def test_comparison_warns_when_output_lengths_differ() -> None:
    from chimera_tui.core.measure.compare import comparability_warnings
    from chimera_tui.core.store.sessions import Session

    def session(n: int) -> Session:
        return Session(Path("/x"), {"id": f"s{n}"}, [_run(0, [], [], n), _run(1, [], [], n)], "complete", {})

    warnings = comparability_warnings([session(100), session(60)])
    assert any("output lengths differ by more than 10%" in w for w in warnings)
    assert not any("output lengths" in w for w in comparability_warnings([session(100), session(105)]))


# -- the simulator's OpenAI-compatible (llama.cpp-like) mode ------------------------------------------


async def test_openai_mode_props_timings_and_cached_counts(tmp_path: Path) -> None:
    import httpx

    sim = fast_sim(api="openai")
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as http:
        props = (await http.get("/props")).json()
        assert props["total_slots"] == 1 and props["build_info"].startswith("b")
        assert props["default_generation_settings"]["n_ctx"] == 4096
        assert (await http.get("/api/tags")).status_code == 404
    s = spec(backend="openai", api="chat", prompt=" ".join(f"w{i}" for i in range(50)), unique_prompt=False)
    session = await BenchRunner(s, tmp_path, transport=sim.transport()).run()
    assert session.manifest.endpoint_list[0].server == "llama.cpp"
    runs = measured(session)
    assert len(runs) == 2
    for r in runs:
        m = r.metrics
        timings = r.server_final["openai"]["timings"]  # type: ignore[index]
        assert m.prompt_cached_count == timings["cache_n"] > 0
        assert m.prompt_processed_count == timings["prompt_n"] == 1  # the same prompt: all but one cached
        assert m.server_decode_rate == pytest.approx(timings["predicted_per_second"])
        assert m.prefill_rate == pytest.approx(timings["prompt_per_second"], rel=1e-6)
        assert m.token_count == m.eval_count == 20 and m.chunk_count == 20
        assert FLAG_PREFILL_CACHED_UNKNOWN not in m.flags


async def test_openai_mode_completions_marker_precedes_every_cached_token(tmp_path: Path) -> None:
    sim = fast_sim(api="openai")
    s = spec(backend="openai", api="generate", prompt="one two three four five")
    session = await BenchRunner(s, tmp_path, transport=sim.transport()).run()
    for r in measured(session):
        # /v1/completions has no template: only the marker's fixed "[run" word can be reused
        assert r.metrics.prompt_cached_count == 1


# -- the server's effective state and drift ------------------------------------------------------------


async def test_effective_state_recorded_and_drift_warned(tmp_path: Path) -> None:
    from chimera_tui.core.measure.compare import comparability_warnings
    from chimera_tui.core.store.sessions import load_session

    sim = fast_sim()
    a = await BenchRunner(spec(runs=2, warmup=0), tmp_path, transport=sim.transport()).run()
    state = load_session(a.path).manifest.endpoint_list[0].state
    assert state["version"] == "0.33.0" and state["format"] == "gguf" and state["engine"] == "llama.cpp"
    assert state["context_length"] == 4096 and state["gpu_share"] == 1.0 and state["trained_context"] == 4096
    assert state["quantization"] == "Q4_K_M" and "temperature 0.8" in state["parameters"]
    assert state["capabilities"] == ["completion"]

    profile = Profile("cpu", "", {"num_ctx": 2048, "num_gpu": 0}, None, False)
    sim.config.version = "0.34.0"
    b = await BenchRunner(spec(runs=2, warmup=0, profile=profile), tmp_path, transport=sim.transport()).run()
    warnings = comparability_warnings([load_session(a.path), load_session(b.path)])
    drift = [w for w in warnings if w.startswith("server drift")]
    assert any("server version differs" in w and "0.34.0" in w for w in drift)
    assert any("effective context (/api/ps) differs" in w and "2048" in w for w in drift)
    assert any("share of the model on the GPU differs" in w for w in drift)


def test_state_items_and_drift_rules() -> None:
    from chimera_tui.core.measure.server_state import server_state, state_drift

    props = {"default_generation_settings": {"n_ctx": 8192}, "total_slots": 4, "build_info": "b11434"}
    show = {"details": {"format": "safetensors"}, "modelfile": "FROM x\nDRAFT qwen3:0.6b\n"}
    s = server_state(None, show, None, props)
    assert s == {
        "format": "safetensors",
        "engine": "mlx",
        "draft_model": "qwen3:0.6b",
        "n_ctx": 8192,
        "slots": 4,
        "build_info": "b11434",
    }
    assert state_drift({"gpu_share": 0.5}, {"gpu_share": 0.505}) == []
    assert state_drift({"slots": 1}, {"slots": 4}) == [("parallel slots", 1, 4)]
    assert state_drift({"slots": 1}, {}) == []  # missing on one side: not compared
