"""Issue 14: the prompt-cache workload (`bench --cache-cohorts`): the same prompt cache-cold, then
cache-warm, reported per cohort in every face."""

from __future__ import annotations

from pathlib import Path

import pytest

from chimera_tui.core.measure.cohorts import cohort_summaries, warm_cold_ttft_ratio
from chimera_tui.core.reports._common import result_rows, session_notes
from chimera_tui.core.run.single import BenchRunner, cache_busting_prompt
from chimera_tui.core.store.sessions import load_session, measured_ok
from tests.helpers import fast_sim, spec

pytestmark = pytest.mark.anyio

PROMPT = " ".join(f"w{i}" for i in range(120))


def test_cache_busting_marker_comes_first_and_changes_its_first_character() -> None:
    first = cache_busting_prompt("hello")
    assert first.endswith(": hello") and len(first.split(":")[0]) == 8
    for _ in range(50):
        nxt = cache_busting_prompt("hello", avoid_first=first[0])
        assert nxt[0] != first[0]
        first = nxt


def test_cache_cohorts_need_warm_mode() -> None:
    with pytest.raises(ValueError, match="warm mode"):
        spec(cache_cohorts=True, cold=True)


async def test_ollama_cold_cohort_caches_nothing_and_warm_cohort_all_but_one(tmp_path: Path) -> None:
    sim = fast_sim()
    session = await BenchRunner(
        spec(prompt=PROMPT, cache_cohorts=True, runs=3), tmp_path, transport=sim.transport()
    ).run()
    runs = measured_ok(session.runs)
    assert [r.cohort for r in runs] == ["cache_cold", "cache_warm"] * 3
    for cold, warm in zip(runs[::2], runs[1::2], strict=True):
        assert warm.prompt == cold.prompt and cold.prompt is not None and cold.prompt.endswith(PROMPT)
        # raw: no template before the marker, and the marker's first token is new every time
        assert cold.metrics.prompt_cached_count == 0
        assert cold.metrics.prompt_processed_count == cold.metrics.prompt_eval_count
        assert warm.metrics.prompt_processed_count == 1
        assert warm.metrics.prompt_cached_count == warm.metrics.prompt_eval_count - 1
    workload = session.manifest.workload_or_empty
    assert workload.cache_cohorts is True and "raw" in (workload.cache_marker or "")

    summaries = cohort_summaries([(r.cohort, r.metrics) for r in runs])
    assert [s.cohort for s in summaries] == ["cache_cold", "cache_warm"]
    assert all(s.figures["ttft_ms"].n == 3 for s in summaries)
    assert summaries[1].figures["prompt_processed_count"].mean == 1
    assert warm_cold_ttft_ratio(summaries) is not None

    # saved and read back: the cohorts survive, and every face shows them
    loaded = load_session(session.path)
    assert [r.cohort for r in measured_ok(loaded.runs)] == [r.cohort for r in runs]
    assert any(line.startswith("  cache-warm") for line in session_notes(loaded))
    titles = [row[0] for row in result_rows(loaded)]
    assert "TTFT, cache-cold (ms)" in titles and "prefill rate, cache-warm (tok/s)" in titles


async def test_openai_completions_cold_cohort_caches_nothing(tmp_path: Path) -> None:
    sim = fast_sim(api="openai")
    s = spec(backend="openai", api="generate", prompt=PROMPT, cache_cohorts=True)
    session = await BenchRunner(s, tmp_path, transport=sim.transport()).run()
    runs = measured_ok(session.runs)
    assert [r.metrics.prompt_cached_count for r in runs[::2]] == [0, 0]
    assert [r.metrics.prompt_processed_count for r in runs[1::2]] == [1, 1]
    assert "/v1/completions" in (session.manifest.workload_or_empty.cache_marker or "")


async def test_ordinary_sessions_have_no_cohorts(tmp_path: Path) -> None:
    session = await BenchRunner(spec(), tmp_path, transport=fast_sim().transport()).run()
    assert all(r.cohort is None for r in session.runs)
    assert not any("cohort" in line for line in session_notes(session))
    assert session.manifest.workload_or_empty.cache_cohorts is None
    raw = (session.path / "metrics.json").read_text()
    assert '"cohort"' not in raw
