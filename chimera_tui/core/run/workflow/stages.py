"""The workflow's two stages: their prompts, and reading each stage's calls and workflow.json back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chimera_tui.core.errors import SessionError
from chimera_tui.core.measure.stats import Summary
from chimera_tui.core.run.workflow.ingest import IngestResult
from chimera_tui.core.store.numbering import stage_of  # re-exported: its home is the numbering
from chimera_tui.core.store.safe_read import MAX_RECORD_BYTES, read_text
from chimera_tui.core.store.sessions import Session, compute_aggregates

STAGES: tuple[str, ...] = ("analysis", "report")
#: the side file with one entry per workflow run
WORKFLOW_FILE = "workflow.json"
#: the most characters of the analysis response that go into the report prompt
MAX_ANALYSIS_CHARS = 8000


def analysis_prompt(data: IngestResult) -> str:
    """Stage 1: analyse the ingested data."""
    return (
        "You are a performance engineer. Below is a digest of a folder of LLM benchmark data (CSV "
        "results, JSON configuration, Markdown notes). Analyse it: the key findings on throughput, time "
        "to first token and run-to-run variability, which configuration parameters matter and which do "
        "not, anomalies, and open questions. Answer in concise bullet points.\n\n"
        f"Data ({data.counts_text()}):\n{data.digest}"
    )


def report_prompt(data: IngestResult, analysis_text: str) -> str:
    """Stage 2: a Technical-Report-style document built on the analysis call's response."""
    analysis = analysis_text.strip()
    if len(analysis) > MAX_ANALYSIS_CHARS:
        analysis = analysis[:MAX_ANALYSIS_CHARS] + " ... (analysis truncated)"
    return (
        "You are writing a technical report in the style of Technical Report 108. Using the analysis "
        "below (from the previous step) and the data summary, write a structured Markdown report: an "
        "executive summary, the methodology, the key findings with a results table, and recommendations "
        "for production.\n\n"
        f"Analysis:\n{analysis or '(the analysis step returned no text)'}\n\n"
        f"Data summary: {data.counts_text()}; files: {', '.join(f.path for f in data.files[:20])}"
    )


def load_workflow_runs(session_path: Path) -> list[dict[str, Any]]:
    """The per-workflow entries of a workflow session (workflow.json); [] when there are none."""
    try:
        doc = json.loads(read_text(Path(session_path) / WORKFLOW_FILE, MAX_RECORD_BYTES))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise SessionError(f"{Path(session_path).name}: corrupt {WORKFLOW_FILE}: {exc}") from None
    runs = doc.get("workflow_runs") if isinstance(doc, dict) else None
    return [r for r in runs if isinstance(r, dict)] if isinstance(runs, list) else []


def stage_summaries(session: Session) -> dict[str, dict[str, Summary]]:
    """Per stage, the summaries of every metric over its measured successful calls."""
    return {stage: compute_aggregates([r for r in session.runs if stage_of(r) == stage]) for stage in STAGES}
