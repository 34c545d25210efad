"""Every per-call metric against hand-computed values; missing data gives None, never 0."""

from __future__ import annotations

import pytest

from chimera_tui.core.measure.metrics import CallTrace, compute_call_metrics

MS = 1_000_000


def trace_with(times_ms: list[float], final: dict | None, kinds: list[str] | None = None) -> CallTrace:
    t = CallTrace(t_send_ns=1_000 * MS)
    kinds = kinds or ["content"] * len(times_ms)
    for off, kind in zip(times_ms, kinds, strict=True):
        t.add_token(int(1_000 * MS + off * MS), kind)
    if final is not None:
        t.final = final
        t.t_end_ns = int(1_000 * MS + (times_ms[-1] + 5) * MS) if times_ms else 1_000 * MS
    return t


FINAL = {
    "done": True,
    "done_reason": "length",
    "total_duration": 1_000 * MS,
    "load_duration": 100 * MS,
    "prompt_eval_count": 50,
    "prompt_eval_duration": 200 * MS,
    "eval_count": 5,
    "eval_duration": 500 * MS,
}


def test_client_and_server_metrics_by_hand() -> None:
    # tokens at 100, 110, 130, 160, 200 ms after send
    m = compute_call_metrics(trace_with([100, 110, 130, 160, 200], FINAL))
    assert m.ttft_ms == pytest.approx(100)
    assert m.ttft_content_ms == pytest.approx(100)
    assert m.e2e_ms == pytest.approx(205)
    # (n-1)/(t_last - t_first) = 4 / 0.1 s
    assert m.client_decode_rate == pytest.approx(40.0)
    # gaps 10, 20, 30, 40 -> p50 25, p95 38.5, p99 39.7, max 40
    assert m.itl_p50_ms == pytest.approx(25)
    assert m.itl_p95_ms == pytest.approx(38.5)
    assert m.itl_p99_ms == pytest.approx(39.7)
    assert m.itl_max_ms == pytest.approx(40)
    assert m.token_count == 5
    assert m.server_decode_rate == pytest.approx(10.0)  # 5 / 0.5 s
    assert m.prompt_eval_rate == pytest.approx(250.0)  # 50 / 0.2 s
    assert (m.load_ms, m.prompt_eval_ms, m.eval_ms, m.total_ms) == (100, 200, 500, 1000)
    assert m.queue_gap_ms == pytest.approx(200)  # 1000 - 100 - 200 - 500
    assert m.done_reason == "length"


def test_thinking_counts_for_ttft_any_but_not_content() -> None:
    m = compute_call_metrics(trace_with([50, 60, 90], FINAL, ["thinking", "thinking", "content"]))
    assert m.ttft_ms == pytest.approx(50)
    assert m.ttft_content_ms == pytest.approx(90)
    assert m.thinking_token_count == 2
    assert m.token_count == 3


def test_missing_zero_fields_are_none_not_zero() -> None:
    final = {"done": True, "done_reason": "stop", "eval_count": 1, "total_duration": 10 * MS}
    m = compute_call_metrics(trace_with([5], final))
    assert m.eval_ms is None and m.server_decode_rate is None  # eval_duration omitted when eval_count == 1
    assert m.prompt_eval_rate is None and m.load_ms is None
    assert m.client_decode_rate is None and m.itl_p50_ms is None  # one token: no rate, no gaps
    assert m.queue_gap_ms == pytest.approx(10)


def test_no_tokens_and_no_final() -> None:
    m = compute_call_metrics(CallTrace(t_send_ns=1))
    assert m.ttft_ms is None and m.e2e_ms is None and m.total_ms is None and m.queue_gap_ms is None
    assert m.token_count == 0


def test_negative_or_bogus_server_values_are_ignored() -> None:
    final = {**FINAL, "eval_duration": -5, "prompt_eval_count": "lots", "load_duration": True}
    m = compute_call_metrics(trace_with([1, 2], final))
    assert m.eval_ms is None and m.server_decode_rate is None
    assert m.prompt_eval_count is None and m.prompt_eval_rate is None
    assert m.load_ms is None


def test_all_tokens_in_one_read_give_no_client_rate() -> None:
    m = compute_call_metrics(trace_with([10, 10, 10], FINAL))
    assert m.client_decode_rate is None  # zero span: no division by zero
    assert m.itl_p50_ms == 0


# -- issue 14: cache-honest prefill, conventions, flags, thinking ---------------------------------

from chimera_tui.core.measure.metrics import (  # noqa: E402
    FLAG_CLIENT_STALL,
    FLAG_COLD,
    FLAG_PREFILL_CACHED_UNKNOWN,
    FLAG_REMOTE,
    FLAG_STOPPED_EARLY,
    FLAG_THINKING_BUDGET,
    NUMERIC_METRICS,
    CallMetrics,
    client_stalls,
    engine_decode_rate,
    flag_notes,
    is_cloud_name,
)


def test_prefill_counts_only_processed_tokens_when_the_server_says_what_was_cached() -> None:
    final = {**FINAL, "prompt_eval_cached_count": 40}  # 50 prompt tokens, 40 cached, 10 processed in 200 ms
    m = compute_call_metrics(trace_with([100, 110], final))
    assert m.prompt_cached_count == 40 and m.prompt_processed_count == 10
    assert m.prefill_rate == pytest.approx(10 / 0.2)
    assert m.prompt_eval_rate == pytest.approx(50 / 0.2)  # the raw ratio stays, named
    assert FLAG_PREFILL_CACHED_UNKNOWN not in m.flags


def test_reported_zero_cached_is_not_unknown() -> None:
    m = compute_call_metrics(trace_with([100, 110], {**FINAL, "prompt_eval_cached_count": 0}))
    assert m.prompt_cached_count == 0 and m.prompt_processed_count == 50
    assert m.prefill_rate == pytest.approx(50 / 0.2) and not m.flags


def test_unknown_cached_count_flags_the_prefill_rate() -> None:
    m = compute_call_metrics(trace_with([100, 110], FINAL))  # an older Ollama: no cached count
    assert m.prompt_cached_count is None and m.prompt_processed_count is None
    assert m.prefill_rate == pytest.approx(50 / 0.2)
    assert FLAG_PREFILL_CACHED_UNKNOWN in m.flags


def test_cached_above_count_is_inconsistent() -> None:
    from chimera_tui.core.measure.metrics import server_final_notes

    final = {**FINAL, "prompt_eval_cached_count": 60}
    m = compute_call_metrics(trace_with([100, 110], final))
    assert m.prompt_cached_count == 60 and m.prompt_processed_count is None and m.prefill_rate is None
    assert any("exceeds prompt_eval_count" in n for n in server_final_notes(final))


def test_llama_cpp_decode_rate_follows_the_engine() -> None:
    assert engine_decode_rate({"predicted_n": 20, "predicted_ms": 190.0}) == pytest.approx(19 / 0.19)
    assert (
        engine_decode_rate({"predicted_n": 20, "predicted_ms": 190.0, "predicted_per_second": 99.0}) == 99.0
    )
    assert engine_decode_rate({"predicted_n": 1, "predicted_ms": 5.0}) is None
    final = {
        "done": True,
        "eval_count": 20,
        "eval_duration": 190 * MS,
        "openai": {"timings": {"predicted_n": 20, "predicted_ms": 190.0}},
    }
    m = compute_call_metrics(trace_with([100, 110], final))
    assert m.server_decode_rate == pytest.approx(19 / 0.19)  # not 20 / 0.19
    ollama = compute_call_metrics(trace_with([100, 110], {k: v for k, v in final.items() if k != "openai"}))
    assert ollama.server_decode_rate == pytest.approx(20 / 0.19)  # Ollama's eval rate convention


def test_tpot_as_genai_perf_defines_it() -> None:
    m = compute_call_metrics(trace_with([100, 110, 130, 160, 200], FINAL))
    # (e2e - ttft) / (tokens - 1) = (205 - 100) / 4
    assert m.tpot_ms == pytest.approx(105 / 4)
    assert compute_call_metrics(trace_with([100], FINAL)).tpot_ms is None


def test_openai_token_count_from_usage_and_chunk_count_kept() -> None:
    final = {"done": True, "eval_count": 9, "openai": {"usage": {"completion_tokens": 9}}}
    m = compute_call_metrics(trace_with([100, 110, 120], final))
    assert m.token_count == 9 and m.chunk_count == 3
    assert m.tpot_ms == pytest.approx((125 - 100) / 8)
    m2 = compute_call_metrics(trace_with([100, 110, 120], {"done": True, "openai": {}}))
    assert m2.token_count == 3  # no usage: the chunk count is all there is


def test_answer_only_decode_rate_and_counts() -> None:
    kinds = ["thinking", "thinking", "content", "content", "content"]
    m = compute_call_metrics(trace_with([100, 110, 130, 150, 170], FINAL, kinds))
    assert m.answer_token_count == 3 and m.thinking_token_count == 2
    assert m.answer_decode_rate == pytest.approx(2 / 0.040)
    assert m.ttft_content_ms == pytest.approx(130)  # the answer TTFT


def test_client_stall_definition() -> None:
    # steady 10 ms reads, then a 120 ms gap after which one read brings 3 tokens: a stall
    times = [100, 110, 120, 130, 250, 250, 250, 260]
    trace = trace_with(times, FINAL)
    assert client_stalls(trace.token_times_ns) == [(pytest.approx(120), 3)]
    m = compute_call_metrics(trace)
    assert FLAG_CLIENT_STALL in m.flags
    assert flag_notes(trace) == ["client stall: 3 tokens arrived in one read after a 120.0 ms gap"]
    # the same gap bringing one token is the server pausing, not the reader falling behind
    assert (
        FLAG_CLIENT_STALL not in compute_call_metrics(trace_with([100, 110, 120, 130, 250, 260], FINAL)).flags
    )
    # a gap under 50 ms never counts, even if 10x the median
    assert client_stalls(trace_with([100, 101, 102, 103, 140, 140], FINAL).token_times_ns) == []


def test_stopped_early_thinking_budget_cold_and_remote_flags() -> None:
    stop = {**FINAL, "done_reason": "stop", "eval_count": 5}
    assert FLAG_STOPPED_EARLY in compute_call_metrics(trace_with([1, 2], stop), num_predict=64).flags
    assert FLAG_STOPPED_EARLY not in compute_call_metrics(trace_with([1, 2], stop), num_predict=5).flags
    assert FLAG_STOPPED_EARLY not in compute_call_metrics(trace_with([1, 2], stop)).flags
    thinking = compute_call_metrics(trace_with([1, 2], FINAL, ["thinking", "thinking"]))
    assert FLAG_THINKING_BUDGET in thinking.flags
    cold = {**FINAL, "load_duration": 2_000 * MS}
    assert FLAG_COLD in compute_call_metrics(trace_with([1, 2], cold), expect_warm=True).flags
    assert FLAG_COLD not in compute_call_metrics(trace_with([1, 2], cold)).flags  # cold mode
    remote = {**FINAL, "remote_host": "https://ollama.com:443", "remote_model": "gpt-oss:120b"}
    assert FLAG_REMOTE in compute_call_metrics(trace_with([1, 2], remote)).flags
    assert FLAG_REMOTE in compute_call_metrics(trace_with([1, 2], {**FINAL, "model": "x:cloud"})).flags
    assert is_cloud_name("gpt-oss:120b-cloud") and not is_cloud_name("cloudy:latest")


def test_old_records_read_new_figures_as_missing() -> None:
    old = {"ttft_ms": 5.0, "token_count": 3, "done_reason": "stop"}
    m = CallMetrics.from_dict(old)
    assert m.prefill_rate is None and m.tpot_ms is None and m.chunk_count is None and m.flags == []
    assert "flags" not in NUMERIC_METRICS and "prefill_rate" in NUMERIC_METRICS
    assert CallMetrics.from_dict({"flags": ["client_stall", 3]}).flags == ["client_stall"]
