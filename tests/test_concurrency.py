"""Round metrics by hand: makespan, speedup, efficiency, skew, contention and the cause."""

from __future__ import annotations

import pytest

from chimera_tui.core.measure.concurrency import (
    AgentCall,
    SoloBaseline,
    contention_rate,
    dominant_cause,
    round_aggregates,
    round_metrics,
)
from chimera_tui.core.measure.metrics import CallMetrics

MS = 1_000_000


def call(
    agent: int,
    send_ms: float,
    end_ms: float,
    gap_ms: float | None = 0.0,
    ok: bool = True,
    rate: float | None = 100.0,
    ttft: float | None = 50.0,
    tokens: int = 100,
) -> AgentCall:
    m = CallMetrics(queue_gap_ms=gap_ms, server_decode_rate=rate, ttft_ms=ttft, eval_count=tokens)
    return AgentCall(agent, ok, int(send_ms * MS), int(end_ms * MS), m)


def test_perfect_parallel_round() -> None:
    r = round_metrics(0, False, [call(0, 0, 1000), call(1, 0.5, 1000.5)])
    assert r.status == "ok"
    assert r.makespan_ms == pytest.approx(1000.5)
    assert r.sum_busy_ms == pytest.approx(2000)
    assert r.speedup == pytest.approx(2000 / 1000.5)
    assert r.efficiency_pct == pytest.approx(2000 / 1000.5 / 2 * 100)
    assert r.start_skew_ms == pytest.approx(0.5)
    assert r.aggregate_tok_s == pytest.approx(200 / 1.0005)
    assert r.cause == "none: agents ran in parallel"


def test_serialized_round_is_fifty_percent_and_blames_the_slot_wait() -> None:
    # agent 1 waits 1000 ms for the only slot (server queue gap), then runs 1000 ms
    r = round_metrics(0, False, [call(0, 0, 1000), call(1, 0, 2000, gap_ms=1000)])
    assert r.makespan_ms == pytest.approx(2000)
    assert r.sum_e2e_ms == pytest.approx(3000)
    assert r.sum_busy_ms == pytest.approx(2000)
    assert r.speedup == pytest.approx(1.0)
    assert r.efficiency_pct == pytest.approx(50.0)
    assert r.wait_share_pct == pytest.approx(1000 / 3000 * 100)
    assert r.cause == "waiting for a slot (server queue gap)"


def test_unknown_queue_gap_counts_as_busy_time() -> None:
    r = round_metrics(0, False, [call(0, 0, 1000, gap_ms=None), call(1, 0, 2000, gap_ms=None)])
    assert r.speedup == pytest.approx(1.5) and r.efficiency_pct == pytest.approx(75.0)


def test_contention_against_solo_baseline() -> None:
    solo = {0: SoloBaseline(100.0, 50.0, 1000.0), 1: SoloBaseline(100.0, 50.0, 1000.0)}
    # agent 0 decodes 20% slower; agent 1's TTFT doubles
    r = round_metrics(0, False, [call(0, 0, 1250, rate=80.0), call(1, 0, 1100, ttft=100.0)], solo)
    assert r.contended is True
    by_agent = {s["agent"]: s for s in r.slowdowns}
    assert by_agent[0]["decode_rate_change_pct"] == pytest.approx(-20.0)
    assert by_agent[1]["ttft_change_pct"] == pytest.approx(100.0)
    assert r.speedup_vs_solo == pytest.approx(2000 / 1250)
    assert r.efficiency_vs_solo_pct == pytest.approx(2000 / 1250 / 2 * 100)
    assert r.cause == "slower decoding (decode rate below solo)"
    calm = round_metrics(1, False, [call(0, 0, 1000, rate=95.0), call(1, 0, 1000, ttft=70.0)], solo)
    assert calm.contended is False  # -5% and +40% are inside the 10% / 50% thresholds
    assert round_metrics(2, False, [call(0, 0, 1000), call(1, 0, 1000)]).contended is None  # no baseline


def test_partial_and_failed_rounds_have_no_speedup() -> None:
    partial = round_metrics(0, False, [call(0, 0, 1000), call(1, 0, 300, ok=False)])
    assert partial.status == "partial" and partial.speedup is None and partial.efficiency_pct is None
    assert partial.start_skew_ms == pytest.approx(0)
    failed = round_metrics(1, False, [call(0, 0, 10, ok=False), call(1, 0, 10, ok=False)])
    assert failed.status == "failed"


def test_aggregates_over_rounds_exclude_warmup_and_partial() -> None:
    rounds = [
        round_metrics(0, True, [call(0, 0, 1000), call(1, 0, 2000, gap_ms=1000)]).to_dict(),
        round_metrics(1, False, [call(0, 0, 1000), call(1, 0, 1000)]).to_dict(),
        round_metrics(2, False, [call(0, 0, 1000), call(1, 0, 1250)]).to_dict(),
        round_metrics(3, False, [call(0, 0, 1000), call(1, 0, 5, ok=False)]).to_dict(),
    ]
    agg = round_aggregates(rounds)
    eff = agg["efficiency_pct"]
    assert eff.n == 2
    assert eff.mean == pytest.approx((100.0 + 2250 / 1250 / 2 * 100) / 2)
    assert contention_rate(rounds) is None
    assert dominant_cause(rounds) is not None


def test_wait_from_prompt_and_decode_times_when_the_server_reports_no_total() -> None:
    def timed(agent: int, end_ms: float, prompt_ms: float, eval_ms: float) -> AgentCall:
        m = CallMetrics(queue_gap_ms=None, prompt_eval_ms=prompt_ms, eval_ms=eval_ms, eval_count=10)
        return AgentCall(agent, True, 0, int(end_ms * MS), m)

    # llama.cpp with one slot: the second request waits 1000 ms, then is served for 1000 ms
    r = round_metrics(0, False, [timed(0, 1000, 100, 900), timed(1, 2000, 100, 900)])
    assert r.queue_wait_ms == pytest.approx(1000)
    assert r.efficiency_pct == pytest.approx(50.0)
    assert r.cause == "waiting for a slot (server queue gap)"
