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
