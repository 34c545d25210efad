"""One numbering for runs (core/store/numbering.py): the same labels live, on load, and for old sessions."""

from __future__ import annotations

import json
from pathlib import Path

from chimera_tui.core.store.numbering import (
    number_runs,
    progress_label,
    round_labels,
    run_kind,
    run_label,
    run_labels,
)
from chimera_tui.core.store.sessions import RunRecord, SessionWriter, load_session


def _rec(index: int, warmup: bool = False, **kw: object) -> RunRecord:
    return RunRecord(index=index, warmup=warmup, status="ok", started_at="", **kw)  # type: ignore[arg-type]


def test_single_mode_warmups_then_measured() -> None:
    runs = [_rec(0, True), _rec(1, True), _rec(2), _rec(3), _rec(4)]
    assert run_labels(runs) == ["w1", "w2", "1", "2", "3"]


def test_failed_runs_keep_their_place() -> None:
    runs = [_rec(0, True), _rec(1), _rec(2), _rec(3)]
    runs[2].status = "failed"
    assert run_labels(runs) == ["w1", "1", "2", "3"]


def test_cache_cohorts_share_the_measured_number() -> None:
    runs = [_rec(0, True)]
    for i in range(2):
        runs += [_rec(1 + 2 * i, cohort="cache_cold"), _rec(2 + 2 * i, cohort="cache_warm")]
    assert run_labels(runs) == ["w1", "1c", "1w", "2c", "2w"]


def test_multi_agent_per_agent_numbers_and_solo() -> None:
    runs = []
    index = 0
    for r, warm in enumerate([True, False, False]):
        if not warm:
            for agent in (0, 1):
                runs.append(_rec(index, agent=agent, solo=True))
                index += 1
        for agent in (0, 1):
            runs.append(_rec(index, warm, agent=agent, round=r))
            index += 1
    assert run_labels(runs) == [
        "A1-w1", "A2-w1",
        "A1-s1", "A2-s1", "A1-1", "A2-1",
        "A1-s2", "A2-s2", "A1-2", "A2-2",
    ]  # fmt: skip


def test_workflow_stages_by_workflow_even_when_a_stage_is_missing() -> None:
    def call(index: int, stage: str, position: int, warmup: bool = False) -> RunRecord:
        return _rec(index, warmup, notes=[f"stage:{stage}", f"workflow_run:{position}"])

    runs = [call(0, "analysis", 1, True), call(1, "report", 1, True), call(2, "analysis", 2)]
    runs[2].status = "failed"  # its report never ran
    runs += [call(3, "analysis", 3), call(4, "report", 3)]
    assert run_labels(runs) == ["analysis w1", "report w1", "analysis 1", "analysis 2", "report 2"]


def test_writer_numbers_live_and_load_numbers_the_same(tmp_path: Path) -> None:
    writer = SessionWriter(tmp_path, {"model": {"name": "m"}, "profile": {"name": "p"}})
    live = []
    for index, warm in enumerate([True, False, False]):
        record = _rec(index, warm)
        writer.start_run(record)
        writer.finish_run(record)
        live.append(run_label(record))
    session = writer.finish("complete")
    assert live == ["w1", "1", "2"]
    loaded = load_session(session.path)
    assert [run_label(r) for r in loaded.runs] == live
    # derived, not stored: metrics.json keeps its shape
    doc = json.loads((session.path / "metrics.json").read_text())
    assert "number" not in doc["runs"][0]


def test_a_record_outside_a_session_falls_back_to_its_index() -> None:
    assert run_label(_rec(4)) == "5"
    runs = [_rec(0, True), _rec(1)]
    number_runs(runs)
    assert [r.number for r in runs] == [1, 1]


def test_kind_and_progress() -> None:
    assert [run_kind(r) for r in (_rec(0, True), _rec(1, solo=True), _rec(2))] == [
        "warm-up",
        "solo baseline",
        "run",
    ]
    assert progress_label(1, 2, True) == "w1/2"
    assert progress_label(3, 5, False, agent=1) == "A2-3/5"
    assert progress_label(3, 5, False, agent=0, solo=True) == "A1-s3/5"


def test_round_labels_match_their_calls() -> None:
    assert round_labels([True, False, False]) == ["w1", "1", "2"]
