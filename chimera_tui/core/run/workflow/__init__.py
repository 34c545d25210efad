"""The two-stage agent workload of TR111 v2 §2.2: ingest a folder of benchmark data (CSV, JSON,
Markdown), then an **analysis** call on a digest of it, then a **report** call built on the analysis
call's response.

One workflow session holds every call: each RunRecord carries ``notes = ["stage:analysis" |
"stage:report", "workflow_run:<n>"]`` and every per-call metric. The per-workflow figures (ingest time,
each stage's end-to-end time, the whole workflow's time, tokens) go to ``workflow.json`` in the session
folder (written atomically after every workflow run, like metrics.json), and their means to the
manifest's ``[result]``.

Modules: ``ingest`` (the folder → digest), ``stages`` (the prompts, reading results back), ``events``,
``runner`` (WorkflowRunner). The names below are re-exported for callers.
"""

from __future__ import annotations

from chimera_tui.core.run.workflow.events import IngestDone, WorkflowRunFinished, WorkflowRunStarted
from chimera_tui.core.run.workflow.ingest import (
    IngestedFile,
    IngestResult,
    WorkflowError,
    ingest,
)
from chimera_tui.core.run.workflow.runner import WorkflowRunner, run_workflow_sync
from chimera_tui.core.run.workflow.stages import (
    STAGES,
    WORKFLOW_FILE,
    analysis_prompt,
    load_workflow_runs,
    report_prompt,
    stage_of,
    stage_summaries,
)
from chimera_tui.core.store.bundled import sample_data_dir

__all__ = [
    "STAGES",
    "WORKFLOW_FILE",
    "IngestDone",
    "IngestResult",
    "IngestedFile",
    "WorkflowError",
    "WorkflowRunFinished",
    "WorkflowRunStarted",
    "WorkflowRunner",
    "analysis_prompt",
    "ingest",
    "load_workflow_runs",
    "report_prompt",
    "run_workflow_sync",
    "sample_data_dir",
    "stage_of",
    "stage_summaries",
]
