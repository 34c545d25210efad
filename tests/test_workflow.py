"""The two-stage agent workflow: ingest, prompts, and the analysis → report session on the simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chimera_tui.core.backends.ollama import Timeouts
from chimera_tui.core.run.events import RunFinished, RunStarted, SessionFinished, SessionStarted
from chimera_tui.core.run.workflow.events import IngestDone, WorkflowRunFinished, WorkflowRunStarted
from chimera_tui.core.run.workflow.ingest import WorkflowError, ingest
from chimera_tui.core.run.workflow.runner import WorkflowRunner
from chimera_tui.core.run.workflow.stages import (
    WORKFLOW_FILE,
    analysis_prompt,
    load_workflow_runs,
    report_prompt,
    stage_of,
    stage_summaries,
)
from chimera_tui.core.store.bundled import sample_data_dir
from chimera_tui.core.store.profiles import Profile
from chimera_tui.core.store.sessions import load_session
from chimera_tui.sim import SimFaults
from tests.helpers import fast_sim

TIMEOUTS = Timeouts(connect_s=2, first_byte_s=10, idle_s=5)
PROFILE = Profile("p", "", {"num_ctx": 2048, "temperature": 0.6})


def workflow(root: Path, sim: Any, events: list[Any] | None = None, **kw: Any) -> WorkflowRunner:
    options: dict[str, Any] = {"runs": 2, "warmup": 0, "num_predict": 8, "timeouts": TIMEOUTS, "ps_wait_s": 5}
    options.update(kw)
    emit = events.append if events is not None else None
    return WorkflowRunner(
        "http://sim",
        "gemma3:latest",
        PROFILE,
        sample_data_dir(),
        root,
        emit=emit,
        transport=sim.transport(),
        **options,
    )


# -- ingest ----------------------------------------------------------------------------------------
def test_ingest_the_bundled_sample() -> None:
    data = ingest(sample_data_dir())
    assert data.counts() == {"csv": 2, "json": 1, "markdown": 1} and data.skipped == 0
    assert data.total_bytes == sum(p.stat().st_size for p in sample_data_dir().iterdir())
    assert 1000 < data.total_bytes < 10_000 and data.ingest_ms > 0
    results = next(f for f in data.files if f.path == "tr111_results.csv")
    assert results.detail["rows"] == 19 and results.detail["columns"][0] == "config"
    assert results.detail["numeric"]["throughput_tok_s"]["max"] == 114.98
    assert "throughput_tok_s" in data.digest and "## Observations" in data.digest


def test_ingest_counts_skips_and_reports_problems(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x,y\n1,2\n3,4\n")
    (tmp_path / "b.json").write_text('{"k": 1, "m": [1, 2]}')
    (tmp_path / "c.md").write_text("# Title\n\ntext words here\n```\n# not a heading\n```\n## Sub\n")
    (tmp_path / "d.txt").write_text("ignored")
    (tmp_path / ".hidden.csv").write_text("h\n1\n")
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.csv").write_text("only,header\n")
    data = ingest(tmp_path)
    assert [f.path for f in data.files] == ["a.csv", "b.json", "c.md", "sub/e.csv"]
    assert data.skipped == 3 and len(data.problems) == 1 and data.problems[0].startswith("bad.json: skipped")
    by = {f.path: f for f in data.files}
    assert by["a.csv"].detail["rows"] == 2 and by["a.csv"].detail["numeric"]["y"]["mean"] == 3.0
    assert by["b.json"].detail["keys"] == ["k", "m"]
    assert by["c.md"].detail["headings"] == ["# Title", "## Sub"]
    assert data.total_bytes == sum((tmp_path / p).stat().st_size for p in by)
    short = ingest(tmp_path, max_digest_chars=120)
    assert len(short.digest) <= 120 and short.digest.endswith("(digest truncated at 120 characters)")


def test_ingest_a_missing_folder_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WorkflowError, match="does not exist"):
        ingest(tmp_path / "nope")


def test_the_report_prompt_is_built_on_the_analysis() -> None:
    data = ingest(sample_data_dir())
    first = analysis_prompt(data)
    assert data.digest in first and "Analyse" in first
    second = report_prompt(data, "  ANALYSIS: throughput is flat  ")
    assert "ANALYSIS: throughput is flat" in second and "tr111_results.csv" in second
    assert "truncated" in report_prompt(data, "x" * 20_000)


# -- the workflow session --------------------------------------------------------------------------
@pytest.mark.anyio
async def test_two_stage_workflow_against_the_simulator(tmp_path: Path) -> None:
    events: list[Any] = []
    session = await workflow(tmp_path, fast_sim(), events, warmup=1).run()
    assert session.status == "complete"
    assert len(session.runs) == 6  # (1 warm-up + 2) workflows x 2 calls
    assert [stage_of(r) for r in session.runs] == ["analysis", "report"] * 3
    assert [r.notes[:2] for r in session.runs[:2]] == [
        ["stage:analysis", "workflow_run:1"],
        ["stage:report", "workflow_run:1"],
    ]
    assert [r.warmup for r in session.runs] == [True, True, False, False, False, False]
    for analysis, report in zip(session.runs[::2], session.runs[1::2], strict=True):
        assert analysis.status == report.status == "ok"
        assert analysis.response and analysis.response in (report.prompt or "")
        assert report.metrics.token_count == 8 and report.metrics.e2e_ms is not None

    manifest = load_session(session.path).manifest
    assert manifest.mode == "workflow"
    workload = manifest.workload
    assert workload.kind == "agent_workflow" and workload.file_count == 4
    assert "tr111_results.csv" in workload.files and workload.directory == str(sample_data_dir())
    assert workload.options_sent == {"num_ctx": 2048, "temperature": 0.6, "num_predict": 8}
    result = manifest.result.to_toml_dict()
    assert result["workflow_runs_ok"] == 2 and result["mean_total_tokens"] == 16
    assert result["mean_workflow_ms"] >= result["mean_analysis_e2e_ms"] + result["mean_report_e2e_ms"]

    entries = load_workflow_runs(session.path)
    assert [e["run"] for e in entries] == [1, 2, 3] and entries[0]["warmup"] is True
    for e in entries:
        assert e["status"] == "ok" and e["files"] == 4 and e["ingest_ms"] > 0
        assert e["total_tokens"] == e["analysis_tokens"] + e["report_tokens"] == 16
        assert e["workflow_ms"] >= e["ingest_ms"] + e["analysis_e2e_ms"] + e["report_e2e_ms"]
        assert session.runs[e["report_index"]].notes[1] == f"workflow_run:{e['run']}"
    summaries = stage_summaries(session)
    assert summaries["analysis"]["e2e_ms"].n == 2 and summaries["report"]["ttft_ms"].n == 2

    kinds = [type(e) for e in events]
    assert kinds.count(WorkflowRunStarted) == 3 and kinds.count(IngestDone) == 3
    assert kinds.count(WorkflowRunFinished) == 3 and kinds.count(RunStarted) == 6
    assert kinds.count(RunFinished) == 6 and SessionStarted in kinds and kinds[-1] is SessionFinished


@pytest.mark.anyio
async def test_a_failed_analysis_skips_the_report(tmp_path: Path) -> None:
    session = await workflow(tmp_path, fast_sim(SimFaults(midstream_error_after=3)), runs=1).run()
    assert len(session.runs) == 1 and session.runs[0].status == "failed"
    (entry,) = load_workflow_runs(session.path)
    assert entry["status"] == "failed" and entry["error"].startswith("analysis: ")
    assert entry["report_e2e_ms"] is None and entry["workflow_ms"] is None and "report_index" not in entry


@pytest.mark.anyio
async def test_cancel_between_stages(tmp_path: Path) -> None:
    holder: list[WorkflowRunner] = []

    def emit(event: Any) -> None:
        if isinstance(event, RunFinished) and stage_of(event.record) == "analysis":
            holder[0].cancel()

    runner = WorkflowRunner(
        "http://sim",
        "gemma3:latest",
        PROFILE,
        sample_data_dir(),
        tmp_path,
        2,
        0,
        emit,
        fast_sim().transport(),
        TIMEOUTS,
    )
    holder.append(runner)
    session = await runner.run()
    assert session.status == "cancelled"
    assert [r.status for r in session.runs] == ["ok", "cancelled"]
    doc = json.loads((session.path / WORKFLOW_FILE).read_text())
    assert [e["status"] for e in doc["workflow_runs"]] == ["cancelled"]


def test_the_package_re_exports_every_public_name() -> None:
    """Callers (the CLI, the live and session screens) import from `chimera_tui.core.run.workflow`."""
    import chimera_tui.core.run.workflow as package

    assert [name for name in package.__all__ if not hasattr(package, name)] == []
    assert package.WorkflowRunner is WorkflowRunner and package.stage_of is stage_of
