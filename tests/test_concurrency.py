"""Round metrics by hand: makespan, speedup, efficiency, skew, contention and the cause."""

from __future__ import annotations

import pytest

from chimera_tui.core.measure.concurrency import (
    CAPACITY_UNKNOWN,
    NO_TIMELINE,
    AgentCall,
    SoloBaseline,
    contention_rate,
    dominant_cause,
    headline,
    recompute_round,
    result_view,
    round_aggregates,
    round_metrics,
    round_view,
    session_result,
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
    assert r.overlap_speedup == pytest.approx(2000 / 1000.5)
    assert r.overlap_efficiency_pct == pytest.approx(2000 / 1000.5 / 2 * 100)
    assert r.research_efficiency_pct == pytest.approx(2000 / 1000.5 / 2 * 100)
    assert r.capacity_efficiency_pct is None  # no solo baseline: unknown, not another figure
    assert r.start_skew_ms == pytest.approx(0.5)
    assert r.aggregate_tok_s == pytest.approx(200 / 1.0005)
    assert r.cause == "calls overlapped; capacity unknown (no solo baseline)"


def test_serialized_round_is_fifty_percent_and_blames_the_slot_wait() -> None:
    # agent 1 waits 1000 ms for the only slot (server queue gap), then runs 1000 ms
    r = round_metrics(0, False, [call(0, 0, 1000), call(1, 0, 2000, gap_ms=1000)])
    assert r.makespan_ms == pytest.approx(2000)
    assert r.sum_e2e_ms == pytest.approx(3000)
    assert r.sum_busy_ms == pytest.approx(2000)
    assert r.overlap_speedup == pytest.approx(1.0)
    assert r.overlap_efficiency_pct == pytest.approx(50.0)
    assert r.research_efficiency_pct == pytest.approx(75.0)
    assert r.wait_share_pct == pytest.approx(1000 / 3000 * 100)
    assert r.cause == "waiting for a slot (server queue gap)"


def test_unknown_queue_gap_counts_as_busy_time() -> None:
    r = round_metrics(0, False, [call(0, 0, 1000, gap_ms=None), call(1, 0, 2000, gap_ms=None)])
    assert r.overlap_speedup == pytest.approx(1.5) and r.overlap_efficiency_pct == pytest.approx(75.0)


def test_contention_against_solo_baseline() -> None:
    solo = {0: SoloBaseline(100.0, 50.0, 1000.0), 1: SoloBaseline(100.0, 50.0, 1000.0)}
    # agent 0 decodes 20% slower; agent 1's TTFT doubles
    r = round_metrics(0, False, [call(0, 0, 1250, rate=80.0), call(1, 0, 1100, ttft=100.0)], solo)
    assert r.contended is True
    by_agent = {s["agent"]: s for s in r.slowdowns}
    assert by_agent[0]["decode_rate_change_pct"] == pytest.approx(-20.0)
    assert by_agent[1]["ttft_change_pct"] == pytest.approx(100.0)
    assert r.capacity_speedup == pytest.approx(2000 / 1250)
    assert r.capacity_efficiency_pct == pytest.approx(2000 / 1250 / 2 * 100)
    assert r.cause == "slower decoding (decode rate below solo)"
    calm = round_metrics(1, False, [call(0, 0, 1000, rate=95.0), call(1, 0, 1000, ttft=70.0)], solo)
    assert calm.contended is False  # -5% and +40% are inside the 10% / 50% thresholds
    assert round_metrics(2, False, [call(0, 0, 1000), call(1, 0, 1000)]).contended is None  # no baseline


def test_partial_and_failed_rounds_have_no_speedup() -> None:
    partial = round_metrics(0, False, [call(0, 0, 1000), call(1, 0, 300, ok=False)])
    assert partial.status == "partial" and partial.overlap_speedup is None
    assert partial.capacity_efficiency_pct is None and partial.research_efficiency_pct is None
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
    eff = agg["overlap_efficiency_pct"]
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
    assert r.overlap_efficiency_pct == pytest.approx(50.0)
    assert r.cause == "waiting for a slot (server queue gap)"


# -- the three efficiencies against closed-form timelines ---------------------------------------------
# Each case is the exact schedule the named server produces for N agents whose call takes T ms alone
# (T = 1000): no clocks are read, so these values are exact.
T = 1000.0


def solo_of(n: int, rate: float = 100.0, ttft: float = 50.0) -> dict[int, SoloBaseline]:
    return {i: SoloBaseline(rate, ttft, T) for i in range(n)}


@pytest.mark.parametrize("n", [2, 3, 4])
def test_fifo_one_slot(n: int) -> None:
    # agent i waits i·T for the slot, then is served for T: makespan n·T
    calls = [call(i, 0, (i + 1) * T, gap_ms=i * T, ttft=50.0 + i * T) for i in range(n)]
    r = round_metrics(0, False, calls, solo_of(n))
    assert r.capacity_efficiency_pct == pytest.approx(100.0 / n)  # Σ solo = n·T over n·T, / n
    assert r.overlap_efficiency_pct == pytest.approx(100.0 / n)  # served time n·T over n·T, / n
    # Σ own durations = T·n(n+1)/2 over n·T, / n = (n+1)/(2n): 75% for 2, 66.7% for 3
    assert r.research_efficiency_pct == pytest.approx((n + 1) / (2 * n) * 100)
    assert r.cause == "waiting for a slot (server queue gap)"


def test_fifo_two_agents_named_values() -> None:
    r = round_metrics(0, False, [call(0, 0, T), call(1, 0, 2 * T, gap_ms=T, ttft=50 + T)], solo_of(2))
    assert (r.capacity_efficiency_pct, r.research_efficiency_pct, r.overlap_efficiency_pct) == (
        pytest.approx(50.0),
        pytest.approx(75.0),
        pytest.approx(50.0),
    )


@pytest.mark.parametrize("n", [2, 3])
def test_shared_compute(n: int) -> None:
    # n slots share one compute budget: every stream runs at 1/n speed, all end at n·T, no waiting
    calls = [call(i, 0, n * T, rate=100.0 / n) for i in range(n)]
    r = round_metrics(0, False, calls, solo_of(n))
    assert r.capacity_efficiency_pct == pytest.approx(100.0 / n)
    assert r.research_efficiency_pct == pytest.approx(100.0)
    assert r.overlap_efficiency_pct == pytest.approx(100.0)
    assert r.contended is True  # decode rate fell by more than 10%
    assert r.cause == "slower decoding (decode rate below solo)"


@pytest.mark.parametrize("n", [2, 4])
def test_independent_instances(n: int) -> None:
    r = round_metrics(0, False, [call(i, 0, T) for i in range(n)], solo_of(n))
    assert r.capacity_efficiency_pct == pytest.approx(100.0)
    assert r.research_efficiency_pct == pytest.approx(100.0)
    assert r.overlap_efficiency_pct == pytest.approx(100.0)
    assert r.contended is False and r.research_contended is False
    assert r.cause == "none: agents ran in parallel"


def test_tr113_shape_one_server_partial_overlap() -> None:
    # the research's 82.2% on one Ollama: the second agent waits 0.553·T, then runs T; its own
    # duration counts the wait: research = (T + 1.553·T) / 1.553·T / 2 = 82.2%; capacity 64.4%
    wait = 0.553 * T
    r = round_metrics(0, False, [call(0, 0, T), call(1, 0, T + wait, gap_ms=wait)], solo_of(2))
    assert r.research_efficiency_pct == pytest.approx(82.2, abs=0.05)
    assert r.capacity_efficiency_pct == pytest.approx(64.4, abs=0.05)
    assert r.overlap_efficiency_pct == pytest.approx(64.4, abs=0.05)


def test_research_contention_is_a_ttft_increase_over_three_seconds() -> None:
    solo = solo_of(2, ttft=200.0)
    calm = round_metrics(0, False, [call(0, 0, T, ttft=2000.0), call(1, 0, T, ttft=200.0)], solo)
    # +1800 ms: the tool's definition (+800%) says contended; the research's (> 3 s) does not
    assert calm.contended is True and calm.research_contended is False
    hit = round_metrics(1, False, [call(0, 0, T, ttft=3300.0), call(1, 0, T, ttft=200.0)], solo)
    assert hit.research_contended is True
    by_agent = {s["agent"]: s for s in hit.slowdowns}
    assert by_agent[0]["ttft_increase_ms"] == pytest.approx(3100.0)
    rounds = [calm.to_dict(), hit.to_dict()]
    assert contention_rate(rounds) == 100.0
    assert contention_rate(rounds, "research_contended") == 50.0
    assert round_metrics(2, False, [call(0, 0, T), call(1, 0, T)]).research_contended is None


def test_timeline_is_relative_to_the_release_and_recomputes_every_figure() -> None:
    release = 5 * MS
    calls = [
        AgentCall(0, True, 6 * MS, 1006 * MS, CallMetrics(queue_gap_ms=0.0, eval_count=10), 56 * MS),
        AgentCall(1, True, 7 * MS, 2007 * MS, CallMetrics(queue_gap_ms=1000.0, eval_count=10), 1057 * MS),
    ]
    r = round_metrics(0, False, calls, solo_of(2), release_ns=release).to_dict()
    t0, t1 = r["timeline"]
    assert (t0["send_ms"], t0["first_token_ms"], t0["end_ms"]) == (1.0, 51.0, 1001.0)
    assert (t1["send_ms"], t1["first_token_ms"], t1["end_ms"]) == (2.0, 1052.0, 2002.0)
    again = recompute_round(r)
    for key, value in again.items():
        assert r[key] == pytest.approx(value), key


def test_rounds_saved_before_the_three_efficiencies_still_read() -> None:
    old = {
        "round": 1,
        "warmup": False,
        "agents": 2,
        "status": "ok",
        "makespan_ms": 2000.0,
        "sum_busy_ms": 2000.0,
        "sum_e2e_ms": 3000.0,
        "speedup": 1.0,
        "efficiency_pct": 50.0,
        "speedup_vs_solo": None,
        "efficiency_vs_solo_pct": None,
        "contended": None,
        "cause": "waiting for a slot (server queue gap)",
        "slowdowns": [],
    }
    v = round_view(old)
    assert v["overlap_efficiency_pct"] == 50.0
    assert v["research_efficiency_pct"] == pytest.approx(75.0)
    assert v["capacity_efficiency_pct"] is None
    assert CAPACITY_UNKNOWN in v["missing"] and NO_TIMELINE in v["missing"]
    assert recompute_round(old) == {}
    with_solo = round_view({**old, "efficiency_vs_solo_pct": 49.0, "speedup_vs_solo": 0.98})
    assert with_solo["capacity_efficiency_pct"] == 49.0 and CAPACITY_UNKNOWN not in with_solo["missing"]
    result = result_view({"mean_efficiency_pct": 50.0, "dominant_cause": "x"}, [old])
    assert result["mean_overlap_efficiency_pct"] == 50.0
    assert result["mean_research_efficiency_pct"] == pytest.approx(75.0)
    assert result["mean_capacity_efficiency_pct"] is None and result["capacity_note"] == CAPACITY_UNKNOWN
    assert headline(result).startswith(CAPACITY_UNKNOWN)


def test_session_result_leads_with_capacity() -> None:
    rounds = [
        round_metrics(i, False, [call(0, 0, T), call(1, 0, 2 * T, gap_ms=T)], solo_of(2)).to_dict()
        for i in range(3)
    ]
    result = session_result(rounds)
    assert result["mean_capacity_efficiency_pct"] == pytest.approx(50.0)
    assert result["mean_research_efficiency_pct"] == pytest.approx(75.0)
    assert result["mean_overlap_efficiency_pct"] == pytest.approx(50.0)
    assert result["capacity_note"] is None
    assert result["solo_drift_pct"] == {"1": 0.0, "2": 0.0}
    drifting = [
        round_metrics(
            i, False, [call(0, 0, T), call(1, 0, T)], {0: SoloBaseline(100, 50, T + 100 * i)}
        ).to_dict()
        for i in range(3)
    ]
    assert session_result(drifting)["solo_drift_pct"] == {"1": pytest.approx(20.0)}
    assert headline(result) == (
        "capacity efficiency 50.0% · research efficiency 75.0% · overlap efficiency 50.0%"
    )
