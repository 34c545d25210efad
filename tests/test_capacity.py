"""Capacity: per-level statistics, the stopping rules and the verdicts (pure, on made-up levels), then
the runner against the simulator's three settings of point 5 (one slot, shared compute, a queue
limit answering 503): each gives its verdict of issue 18's point 3.

The simulator checks assert structure the simulator guarantees (one slot serves one stream at a time;
shared compute divides one rate between the streams; a full queue answers 503), never a wall-clock
figure: the verdict's cause and its parallel estimate, with margins of a factor of two.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from chimera_tui.cli import main
from chimera_tui.core.backends.ollama import Timeouts
from chimera_tui.core.measure.capacity import (
    LevelCall,
    ServerHints,
    Slo,
    level_stats,
    poisson_gaps,
    stop_rule,
    verdict,
)
from chimera_tui.core.measure.metrics import CallMetrics
from chimera_tui.core.reports import export_sessions
from chimera_tui.core.reports.capacity import capacity_levels
from chimera_tui.core.run.capacity import CapacityRunner, CapacitySpec, LevelFinished
from chimera_tui.core.store.profiles import Profile
from chimera_tui.core.store.session_store import SessionStore
from chimera_tui.core.store.sessions import load_session
from tests.helpers import fast_sim


# -- made-up levels -----------------------------------------------------------------------------------
def _calls(
    level: int, streams: int, per_stream: int, rate: float, tokens: int, queue_ms: float = 0.0, fail: int = 0
) -> list[LevelCall]:
    """`streams` streams each making `per_stream` back-to-back calls of `tokens` tokens at `rate` tok/s,
    after `queue_ms` of waiting each; the last `fail` calls failed with a 503."""
    out = []
    call_ms = queue_ms + tokens / rate * 1000
    for s in range(streams):
        for k in range(per_stream):
            t_send = k * call_ms
            offsets = [queue_ms + (i + 1) * 1000 / rate for i in range(tokens)]
            m = CallMetrics(
                ttft_ms=offsets[0],
                e2e_ms=call_ms,
                client_decode_rate=rate,
                queue_gap_ms=queue_ms,
            )
            out.append(LevelCall(level, True, t_send + s * 0.001, m, offsets))
    for c in out[len(out) - fail :]:
        c.ok, c.error, c.token_offsets_ms = False, "server returned HTTP 503: server busy", []
    return out


def _curve(specs: list[tuple[int, float, float]], slo: Slo | None = None, fail_at: int | None = None):
    """Levels of (streams, per-stream rate, queue ms); stops as the runner does."""
    slo = slo or Slo()
    levels = []
    rule = "levels_done"
    for i, (n, rate, queue) in enumerate(specs):
        fail = 3 if fail_at == i else 0
        levels.append(level_stats(i, n, _calls(i, n, 4, rate, 50, queue, fail)))
        fired = stop_rule(levels, slo)
        if fired:
            rule = fired
            break
    return levels, rule


def test_level_stats_throughput_and_percentiles() -> None:
    lv = level_stats(0, 2, _calls(0, 2, 4, 100.0, 50))
    assert lv.sent == lv.ok == 8 and lv.failed == 0
    assert lv.window_s == pytest.approx(2.0, abs=0.01)  # 4 calls of 0.5 s back to back
    assert lv.throughput_tps == pytest.approx(200.0, rel=0.01)  # 400 tokens over 2 s
    assert lv.throughput.n == 5 and lv.throughput.ci95_low is not None
    assert lv.stream_tps.median == pytest.approx(100.0)
    assert lv.ttft_ms.p95 == pytest.approx(10.0)
    assert lv.queue_ms.median == 0.0


def test_missing_figures_stay_none() -> None:
    lv = level_stats(0, 1, [LevelCall(0, False, None, CallMetrics(), [], "boom")])
    assert lv.throughput_tps is None and lv.window_s is None and lv.ttft_ms.p95 is None
    assert lv.errors == ["boom"] and lv.error_pct == 100.0


def test_one_slot_queues() -> None:
    # one at a time: aggregate flat at 100, each stream at full speed, the second waits a call
    levels, rule = _curve([(1, 100.0, 0.0), (2, 100.0, 500.0), (4, 100.0, 1500.0)])
    assert rule == "plateau" and len(levels) == 2
    v = verdict(levels, "closed", "plateau", Slo(), ServerHints(kind="ollama"))
    assert v.cause == "queueing"
    assert v.parallel == pytest.approx(1.0, abs=0.1)
    assert "requests queue — the server runs about 1 at once" in v.text
    assert "OLLAMA_NUM_PARALLEL" in v.text
    assert "throughput peaks at 1 concurrent stream" in v.text


def test_llama_cpp_slots_named_as_the_cause() -> None:
    levels = [level_stats(0, 1, _calls(0, 1, 4, 100.0, 50))]
    stop_rule(levels, Slo())
    levels.append(level_stats(1, 2, _calls(1, 2, 4, 100.0, 50, 500.0)))
    stop_rule(levels, Slo())
    v = verdict(levels, "closed", "plateau", Slo(), ServerHints(kind="openai", slots=1))
    assert "llama.cpp reports 1 slot(s)" in v.text


def test_shared_compute_is_compute_bound() -> None:
    levels, rule = _curve([(1, 100.0, 0.0), (2, 50.0, 0.0), (4, 25.0, 0.0)])
    assert rule == "plateau" and len(levels) == 2
    v = verdict(levels, "closed", rule, Slo())
    assert v.cause == "compute"
    assert v.text.endswith("each stream slower (100.0 → 50.0 tok/s)")
    assert "compute-bound: aggregate throughput flat from 1 concurrent stream" in v.text


def test_errors_stop_and_are_named() -> None:
    levels, rule = _curve([(1, 100.0, 0.0), (2, 100.0, 0.0), (4, 100.0, 0.0)], fail_at=2)
    assert rule == "errors" and len(levels) == 3
    v = verdict(levels, "closed", rule, Slo(), ServerHints(kind="ollama"))
    assert v.cause == "errors"
    assert "errors from 4 concurrent streams: 3 of 16 requests failed: the server's queue is full" in v.text


def test_slo_stops_and_sustains() -> None:
    slo = Slo(ttft_p95_ms=300.0, min_stream_tps=20.0)
    levels, rule = _curve([(1, 100.0, 0.0), (2, 100.0, 0.0), (4, 100.0, 400.0)], slo)
    assert rule == "slo"
    assert [lv.meets_slo for lv in levels] == [True, True, False]
    v = verdict(levels, "closed", rule, slo)
    assert v.sustained == 2
    assert v.text.startswith("sustains 2 concurrent streams (TTFT p95 ≤ 300 ms")


def test_no_saturation_says_so() -> None:
    levels, rule = _curve([(1, 100.0, 0.0), (2, 100.0, 0.0), (4, 100.0, 0.0)])
    assert rule == "levels_done" and all(lv.grew is not False for lv in levels)
    v = verdict(levels, "closed", rule, Slo())
    assert v.cause == "unsaturated" and "no saturation up to 4 concurrent streams" in v.text


def test_poisson_gaps_have_the_rate_as_mean() -> None:
    import random

    gaps = poisson_gaps(4.0, 20_000, random.Random(1))
    assert sum(gaps) / len(gaps) == pytest.approx(0.25, rel=0.05)
    assert min(gaps) > 0


# -- the runner against the simulator -----------------------------------------------------------------
def _run(tmp_path: Path, levels: list[float], loop: str = "closed", **sim: Any) -> tuple[Any, list[Any]]:
    server = fast_sim(tokens_per_s=200.0, **sim)
    spec = CapacitySpec(
        model="gemma3:latest",
        profile=Profile("baseline_default", "", {}, None, True),
        prompt="Say hello.",
        endpoint="http://sim",
        loop=loop,  # type: ignore[arg-type]
        levels=levels,
        requests=8,
        num_predict=16,
        timeouts=Timeouts(connect_s=2, first_byte_s=10, idle_s=5),
        ps_wait_s=5.0,
    )
    events: list[Any] = []
    runner = CapacityRunner(spec, tmp_path, events.append, transport_factory=lambda url: server.transport())
    session = anyio.run(runner.run)
    return session, events


@pytest.mark.slow
def test_sim_one_slot_queues(tmp_path: Path) -> None:
    session, events = _run(tmp_path, [1, 2, 4], num_parallel=1)
    v = session.manifest.capacity.verdict
    assert v["stop_rule"] == "plateau" and v["cause"] == "queueing"
    assert v["parallel"] < 1.5  # one slot: never more than one stream served at once
    assert "requests queue — the server runs about 1 at once" in v["text"]
    finished = [e.stats.load for e in events if isinstance(e, LevelFinished)]
    saved = load_session(session.path)
    assert saved.manifest.kind == "capacity" and saved.manifest.mode == "capacity"
    assert [lv.load for lv in capacity_levels(saved)] == finished and len(finished) >= 2
    assert all(r.level is not None and r.t_send_ms is not None for r in saved.runs if not r.warmup)


@pytest.mark.slow
def test_sim_shared_compute_is_compute_bound(tmp_path: Path) -> None:
    session, _ = _run(tmp_path, [1, 2, 4], num_parallel=4, compute="shared")
    v = session.manifest.capacity.verdict
    assert v["cause"] == "compute", v["text"]
    assert "compute-bound: aggregate throughput flat" in v["text"] and "each stream slower" in v["text"]


@pytest.mark.slow
def test_sim_queue_limit_gives_errors(tmp_path: Path) -> None:
    session, _ = _run(tmp_path, [1, 8], num_parallel=2, max_queue=1)  # 8 on 2 slots + 1 waiting
    v = session.manifest.capacity.verdict
    assert v["stop_rule"] == "errors" and v["cause"] == "errors"
    assert "errors from 8 concurrent streams" in v["text"] and "queue is full" in v["text"]
    failed = [r for r in session.runs if r.status == "failed"]
    assert failed and all("503" in (r.error or "") for r in failed)


@pytest.mark.slow
def test_open_loop_runs_every_rate(tmp_path: Path) -> None:
    session, _ = _run(tmp_path, [2.0, 4.0], loop="open", num_parallel=8)
    levels = capacity_levels(load_session(session.path))
    assert [lv.load for lv in levels] == [2.0, 4.0] and all(lv.sent == 8 for lv in levels)
    assert session.manifest.capacity.loop == "open" and session.manifest.capacity.seed == 0


@pytest.mark.slow
def test_listed_compared_and_exported(tmp_path: Path) -> None:
    a, _ = _run(tmp_path, [1, 2], num_parallel=1)
    b, _ = _run(tmp_path, [1, 2], num_parallel=2)
    rows, broken = SessionStore(tmp_path).summaries()
    assert not broken and {r.mode for r in rows} == {"capacity"}
    sessions = [load_session(a.path), load_session(b.path)]
    html = export_sessions(sessions, "html")
    assert html.count("<polyline") == 4  # two charts, two curves each
    doc = json.loads(export_sessions(sessions, "json"))
    assert doc["kind"] == "capacity" and len(doc["sessions"]) == 2
    md = export_sessions(sessions[:1], "md")
    assert "**Answer:**" in md and "closed loop" in md


@pytest.mark.slow
def test_cli_demo_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "capacity", "--demo", "--levels", "1,2", "--requests", "4", "--num-predict", "8",
            "--slo-ttft-p95-ms", "60000", "--json", "--sessions-dir", str(tmp_path),
        ]
    )  # fmt: skip
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["loop"] == "closed" and len(doc["levels"]) == 2
    assert doc["verdict"]["text"].startswith("sustains")
    assert Path(doc["path"]).is_dir()


def test_cli_rejects_fractional_streams(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["capacity", "--demo", "--levels", "1,2.5"]) == 1
    assert "whole numbers" in capsys.readouterr().err


@pytest.mark.slow
def test_sim_llama_cpp_slots_named(tmp_path: Path) -> None:
    session, _ = _run(tmp_path, [1, 2, 4], num_parallel=1, api="openai")
    v = session.manifest.capacity.verdict
    assert v["cause"] == "queueing", v["text"]
    assert "llama.cpp reports 1 slot(s) (/props total_slots" in v["text"]
    assert session.manifest.capacity.server["slots"] == 1


@pytest.mark.slow
def test_cancel_after_a_level_keeps_it_and_says_so(tmp_path: Path) -> None:
    server = fast_sim(tokens_per_s=400.0)
    spec = CapacitySpec(
        model="gemma3:latest",
        profile=Profile("baseline_default", "", {}, None, True),
        prompt="Say hello.",
        endpoint="http://sim",
        levels=[1, 2, 4],
        requests=2,
        num_predict=8,
        timeouts=Timeouts(connect_s=2, first_byte_s=10, idle_s=5),
        ps_wait_s=5.0,
    )
    holder: list[CapacityRunner] = []

    def emit(event: Any) -> None:
        if isinstance(event, LevelFinished):
            holder[0].cancel()

    runner = CapacityRunner(spec, tmp_path, emit, transport_factory=lambda url: server.transport())
    holder.append(runner)
    session = anyio.run(runner.run)
    assert session.status == "cancelled"
    v = session.manifest.capacity.verdict
    assert v["stop_rule"] == "cancelled" and "the run was cancelled at 1 concurrent stream" in v["text"]
    assert [lv.load for lv in capacity_levels(load_session(session.path))] == [1]


def test_quantile_ci_brackets_the_quantile() -> None:
    from chimera_tui.core.measure.capacity import quantile_ci

    values = [float(v) for v in range(1, 201)]
    lo, hi = quantile_ci(values, 0.95)
    assert lo is not None and hi is not None and lo < 190 < hi
    assert quantile_ci(values[:10], 0.95)[1] is None  # too few calls for an upper end
    assert quantile_ci([1.0], 0.95) == (None, None)


def test_a_ratio_under_one_still_reads_one_at_once() -> None:
    """Aggregate / per-stream under 1 (the window's ramp and TTFTs): the words never say "0 at once"."""
    import dataclasses

    levels, _ = _curve([(1, 100.0, 0.0), (2, 100.0, 500.0)])
    levels[-1] = dataclasses.replace(levels[-1], throughput_tps=30.0)
    v = verdict(levels, "closed", "plateau", Slo(), ServerHints(kind="ollama"))
    assert v.parallel == pytest.approx(0.3) and "about 1 at once" in v.text and "0 at once" not in v.text
