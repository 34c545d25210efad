"""The two-stage agent workload of TR111 v2 §2.2: ingest a folder of benchmark data (CSV, JSON,
Markdown), then an **analysis** call on a digest of it, then a **report** call built on the analysis
call's response.

One workflow session holds every call: each RunRecord carries ``notes = ["stage:analysis" |
"stage:report", "workflow_run:<n>"]`` and every per-call metric. The per-workflow figures (ingest time,
each stage's end-to-end time, the whole workflow's time, tokens) go to ``workflow.json`` in the session
folder (written atomically after every workflow run, like metrics.json), and their means to the
manifest's ``[result]``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx

from chimera_tui import __version__
from chimera_tui.core.backends import BenchClient, open_client
from chimera_tui.core.backends.ollama import (
    DEFAULT_URL,
    CallOutcome,
    ModelInfo,
    ServerInfo,
    Timeouts,
)
from chimera_tui.core.backends.stream import TokenEvent
from chimera_tui.core.errors import ChimeraError, SessionError
from chimera_tui.core.measure.metrics import CallTrace
from chimera_tui.core.measure.stats import Summary, summarize
from chimera_tui.core.run.events import (
    PhaseChanged,
    RunFailed,
    RunFinished,
    RunStarted,
    SessionFinished,
    SessionStarted,
    TokenBatch,
)
from chimera_tui.core.run.single import (
    FATAL_ERRORS,
    build_record,
    find_model,
    request_body,
    resolve_error,
    unique_prompt,
    wait_for_ps,
)
from chimera_tui.core.store.atomic import atomic_write_text
from chimera_tui.core.store.bundled import sample_data_dir
from chimera_tui.core.store.profiles import Profile
from chimera_tui.core.store.sessions import (
    RunRecord,
    Session,
    SessionStatus,
    SessionWriter,
    compute_aggregates,
    now_iso,
)
from chimera_tui.core.system.environment import collect_environment

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

log = logging.getLogger(__name__)

STAGES: tuple[str, ...] = ("analysis", "report")
#: the side file with one entry per workflow run
WORKFLOW_FILE = "workflow.json"
#: the most characters of data digest that go into the analysis prompt
MAX_DIGEST_CHARS = 6000
#: the most characters of the analysis response that go into the report prompt
MAX_ANALYSIS_CHARS = 8000
#: larger files are skipped (counted, and named in `problems`)
MAX_FILE_BYTES = 4 * 1024 * 1024
_KINDS = {".csv": "csv", ".json": "json", ".md": "markdown", ".markdown": "markdown"}
FileKind = Literal["csv", "json", "markdown"]


class WorkflowError(ChimeraError):
    kind = "workflow_error"


# -- ingest ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class IngestedFile:
    """One data file read by the ingest phase."""

    path: str
    """Relative to the ingested folder, with '/' separators."""
    kind: FileKind
    size_bytes: int
    summary: str
    """One line: ``CSV, 19 rows x 11 columns``."""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What the ingest phase read: the files, what it skipped, how long it took, and a prompt digest."""

    directory: Path
    files: list[IngestedFile]
    skipped: int
    problems: list[str]
    total_bytes: int
    ingest_ms: float
    digest: str

    def counts(self) -> dict[str, int]:
        out = {"csv": 0, "json": 0, "markdown": 0}
        for f in self.files:
            out[f.kind] += 1
        return out

    def counts_text(self) -> str:
        c = self.counts()
        return (
            f"{len(self.files)} files ({c['csv']} CSV, {c['json']} JSON, {c['markdown']} Markdown), "
            f"{self.skipped} skipped, {self.total_bytes} bytes"
        )


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _read_csv(text: str) -> tuple[str, dict[str, Any]]:
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    header = rows[0] if rows else []
    data = rows[1:]
    numeric: dict[str, dict[str, float]] = {}
    for i, name in enumerate(header):
        values = [row[i].strip() for row in data if i < len(row) and row[i].strip()]
        numbers = [n for n in (_number(v) for v in values) if n is not None]
        if numbers and len(numbers) == len(values):
            numeric[name] = {
                "min": min(numbers),
                "mean": sum(numbers) / len(numbers),
                "max": max(numbers),
            }
    detail = {"rows": len(data), "columns": header, "head": data[:3], "numeric": numeric}
    return f"CSV, {len(data)} rows x {len(header)} columns", detail


def _read_json(text: str) -> tuple[str, dict[str, Any]]:
    doc = json.loads(text)
    if isinstance(doc, dict):
        keys = [str(k) for k in doc]
        return f"JSON object, {len(keys)} top-level keys", {"type": "object", "keys": keys}
    if isinstance(doc, list):
        return f"JSON array of {len(doc)} items", {"type": "array", "length": len(doc)}
    return f"JSON {type(doc).__name__}", {"type": type(doc).__name__}


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def _read_markdown(text: str) -> tuple[str, dict[str, Any]]:
    headings: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match:
            headings.append(f"{match.group(1)} {match.group(2)}")
    words = len(text.split())
    return f"Markdown, {words} words, {len(headings)} headings", {"headings": headings, "words": words}


_READERS: dict[str, Callable[[str], tuple[str, dict[str, Any]]]] = {
    "csv": _read_csv,
    "json": _read_json,
    "markdown": _read_markdown,
}


def _digest_lines(f: IngestedFile) -> list[str]:
    lines = [f"## {f.path} ({f.summary}, {f.size_bytes} bytes)"]
    d = f.detail
    if f.kind == "csv":
        lines.append("columns: " + ", ".join(d["columns"]))
        for name, s in d["numeric"].items():
            lines.append(f"  {name}: mean {s['mean']:.4g} (min {s['min']:.4g}, max {s['max']:.4g})")
        lines += ["head:", *("  " + ", ".join(row) for row in d["head"])]
    elif f.kind == "json":
        if d.get("keys"):
            lines.append("top-level keys: " + ", ".join(d["keys"][:30]))
    else:
        lines += ["headings:", *("  " + h for h in d["headings"][:30])]
    return lines


def ingest(
    directory: Path, max_digest_chars: int = MAX_DIGEST_CHARS, max_file_bytes: int = MAX_FILE_BYTES
) -> IngestResult:
    """Read every CSV, JSON and Markdown file under ``directory`` (recursively, in name order; hidden
    entries and symlinks skipped); other files are skipped and counted. Timed with perf_counter_ns.

    A file that cannot be read or parsed is skipped and named in ``problems``. WorkflowError when the
    directory itself cannot be read.
    """
    t0 = time.perf_counter_ns()
    root = Path(directory)
    if not root.is_dir():
        raise WorkflowError(f"data folder {root} does not exist or is not a folder")
    files: list[IngestedFile] = []
    problems: list[str] = []
    skipped = 0
    total = 0
    errors: list[OSError] = []
    for folder, dirs, names in os.walk(root, onerror=errors.append, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            kind = _KINDS.get(path.suffix.lower())
            if kind is None or name.startswith(".") or path.is_symlink():
                skipped += 1
                continue
            try:
                size = path.stat().st_size
                if size > max_file_bytes:
                    skipped += 1
                    problems.append(f"{rel}: skipped, {size} bytes is over the {max_file_bytes}-byte limit")
                    continue
                text = path.read_bytes().decode("utf-8-sig")
                summary, detail = _READERS[kind](text)
            except (OSError, UnicodeDecodeError, ValueError, csv.Error, RecursionError) as exc:
                skipped += 1
                problems.append(f"{rel}: skipped, {' '.join(str(exc).split())[:160]}")
                continue
            total += size
            files.append(IngestedFile(rel, kind, size, summary, detail))  # type: ignore[arg-type]
    if errors and not files and errors[0].filename == str(root):
        raise WorkflowError(f"cannot read data folder {root}: {errors[0].strerror or errors[0]}")
    problems += [f"{e.filename}: {e.strerror or e}" for e in errors]
    head = f"{len(files)} data files, {skipped} other files skipped, {total} bytes read."
    digest = "\n".join([head, *(line for f in files for line in _digest_lines(f))])
    if len(digest) > max_digest_chars:
        marker = f"\n... (digest truncated at {max_digest_chars} characters)"
        digest = digest[: max(0, max_digest_chars - len(marker))] + marker
    ingest_ms = round((time.perf_counter_ns() - t0) / 1e6, 3)
    return IngestResult(root, files, skipped, problems, total, ingest_ms, digest)


# -- prompts ---------------------------------------------------------------------------------------
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


# -- events ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WorkflowRunStarted:
    """A workflow run (ingest → analysis → report) starts; ``run`` is 1-based over all runs."""

    run: int
    number: int
    total: int
    warmup: bool


@dataclass(frozen=True, slots=True)
class IngestDone:
    run: int
    files: int
    skipped: int
    total_bytes: int
    ingest_ms: float


@dataclass(frozen=True, slots=True)
class WorkflowRunFinished:
    """A workflow run's figures (the entry written to workflow.json)."""

    run: int
    metrics: dict[str, Any]


# -- the runner ------------------------------------------------------------------------------------
def stage_of(record: RunRecord) -> str | None:
    """ "analysis" or "report" from a record's notes; None for a call of another mode."""
    for note in record.notes:
        if note.startswith("stage:"):
            return note.removeprefix("stage:")
    return None


def _tokens(record: RunRecord | None) -> int | None:
    if record is None:
        return None
    m = record.metrics
    return m.eval_count if m.eval_count is not None else m.token_count


class WorkflowRunner:
    """Runs the agent workflow ``runs`` times (after ``warmup`` warm-up workflows) as one session.
    ``cancel()`` may be called from any thread. Warm mode: the model is loaded with the profile's
    options first, and every request carries the same options and keep_alive."""

    def __init__(
        self,
        endpoint: str,
        model: str,
        profile: Profile,
        directory: Path,
        sessions_root: Path,
        runs: int = 3,
        warmup: int = 0,
        emit: Callable[[Any], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeouts: Timeouts | None = None,
        num_predict: int | None = None,
        *,
        nvml_module: Any | None = None,
        api: Literal["generate", "chat"] = "generate",
        keep_alive: str | int = "30m",
        think: bool | None = None,
        unique_prompt: bool = True,
        ps_wait_s: float = 60.0,
        max_digest_chars: int = MAX_DIGEST_CHARS,
    ) -> None:
        if runs < 1 or warmup < 0:
            raise WorkflowError(f"runs must be >= 1 and warm-up >= 0 (got runs={runs}, warmup={warmup})")
        self.endpoint = endpoint or DEFAULT_URL
        self.model = model
        self.profile = profile
        self.directory = Path(directory)
        self.sessions_root = Path(sessions_root)
        self.runs = runs
        self.warmup = warmup
        self._emit = emit or (lambda _event: None)
        self._transport = transport
        self.timeouts = timeouts or Timeouts()
        self.num_predict = num_predict
        self._nvml_module = nvml_module
        self.api = api
        self.keep_alive = keep_alive
        self.think = think
        self.unique_prompt = unique_prompt
        self.ps_wait_s = ps_wait_s
        self.max_digest_chars = max_digest_chars
        self._cancel = threading.Event()
        self._scope: anyio.CancelScope | None = None
        self.session_path: Path | None = None
        self.workflow_runs: list[dict[str, Any]] = []

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def request_options(self) -> dict[str, Any]:
        options = dict(self.profile.options)
        if self.num_predict is not None:
            options["num_predict"] = self.num_predict
        return options

    async def run(self) -> Session:
        """Probe, check the model, then every workflow run, each saved before the next starts.

        Raises ChimeraError when the session cannot start; later failures are recorded in it.
        """
        preview = ingest(self.directory, self.max_digest_chars)  # the files the manifest lists
        self._emit(PhaseChanged(f"connecting to {self.endpoint}"))
        async with await open_client(self.endpoint, "auto", self.timeouts, self._transport) as client:
            info = await client.probe()
            model = await find_model(client, self.model)
            show = await client.show(model.name)
            capabilities = [c for c in show.get("capabilities", []) if isinstance(c, str)]
            writer = SessionWriter(self.sessions_root, self._manifest(info, model, capabilities, preview))
            self.session_path = writer.path
            self._emit(
                SessionStarted(
                    writer.id,
                    writer.path,
                    model.name,
                    self.profile.name,
                    self.endpoint,
                    info.version,
                    self.runs,
                    self.warmup,
                )
            )
            think = self.think if self.think is not None else (True if "thinking" in capabilities else None)
            status, error = await self._run_all(client, writer, model.name, think)
            session = writer.finish(status, error, self._result())
        self._emit(SessionFinished(session))
        return session

    async def _run_all(
        self, client: BenchClient, writer: SessionWriter, model: str, think: bool | None
    ) -> tuple[SessionStatus, str | None]:
        plan = [(True, k + 1, self.warmup) for k in range(self.warmup)]
        plan += [(False, i + 1, self.runs) for i in range(self.runs)]
        status: SessionStatus = "complete"
        error: str | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch_cancel)
            try:
                if not self.cancelled:
                    self._emit(PhaseChanged(f"loading {model} with the profile's options (warm mode)"))
                    await self._guarded(self._preload(client, model))
                for position, (warmup, number, total) in enumerate(plan, start=1):
                    if self.cancelled:
                        status = "cancelled"
                        break
                    outcome, fatal = await self._one_workflow(
                        client, writer, model, think, position, warmup, number, total
                    )
                    if outcome == "cancelled":
                        status = "cancelled"
                        break
                    if fatal is not None:
                        status, error = "failed", fatal
                        break
            except ChimeraError as exc:
                self._emit(PhaseChanged(f"stopped: {exc}"))
                status, error = "failed", str(exc)
            finally:
                tg.cancel_scope.cancel()
        return status, error

    async def _preload(self, client: BenchClient, model: str) -> None:
        await client.load(self.api, model, self.request_options(), self.keep_alive)
        await wait_for_ps(client, model, True, self.ps_wait_s)

    async def _one_workflow(
        self,
        client: BenchClient,
        writer: SessionWriter,
        model: str,
        think: bool | None,
        position: int,
        warmup: bool,
        number: int,
        total: int,
    ) -> tuple[str, str | None]:
        """One ingest → analysis → report. Returns (status, fatal error text or None)."""
        self._emit(WorkflowRunStarted(position, number, total, warmup))
        t0 = time.perf_counter_ns()
        entry: dict[str, Any] = {"run": position, "number": number, "warmup": warmup, "started_at": now_iso()}
        try:
            data = ingest(self.directory, self.max_digest_chars)
        except WorkflowError as exc:
            entry.update(status="failed", error=str(exc))
            self._save_entry(writer, entry)
            return "failed", str(exc)
        entry.update(
            ingest_ms=data.ingest_ms, files=len(data.files), skipped=data.skipped, bytes=data.total_bytes
        )
        self._emit(IngestDone(position, len(data.files), data.skipped, data.total_bytes, data.ingest_ms))
        records: dict[str, RunRecord] = {}
        status, fatal = "ok", None
        for stage in STAGES:
            prompt = (
                analysis_prompt(data)
                if stage == "analysis"
                else report_prompt(data, records["analysis"].response)
            )
            record = await self._call(
                client, writer, model, think, stage, prompt, position, warmup, number, total
            )
            records[stage] = record
            entry[f"{stage}_index"] = record.index
            if record.status != "ok":
                status = "cancelled" if record.status == "cancelled" else "failed"
                entry["error"] = f"{stage}: {record.error}" if record.error else None
                if record.error_kind in {cls.kind for cls in FATAL_ERRORS}:
                    fatal = record.error
                break
        t_end = time.perf_counter_ns()
        for stage in STAGES:
            r = records.get(stage)
            entry[f"{stage}_e2e_ms"] = r.metrics.e2e_ms if r is not None else None
            entry[f"{stage}_ttft_ms"] = r.metrics.ttft_ms if r is not None else None
            entry[f"{stage}_tokens"] = _tokens(r)
        counted = [t for t in (entry["analysis_tokens"], entry["report_tokens"]) if t is not None]
        entry["total_tokens"] = sum(counted) if counted else None
        entry["workflow_ms"] = round((t_end - t0) / 1e6, 3) if status == "ok" else None
        entry["status"] = status
        self._save_entry(writer, entry)
        self._emit(WorkflowRunFinished(position, dict(entry)))
        return status, fatal

    def _save_entry(self, writer: SessionWriter, entry: dict[str, Any]) -> None:
        self.workflow_runs.append(entry)
        doc = {"session_id": writer.id, "stages": list(STAGES), "workflow_runs": self.workflow_runs}
        try:
            atomic_write_text(writer.path / WORKFLOW_FILE, json.dumps(doc, indent=1, allow_nan=False))
        except (OSError, ValueError) as exc:
            raise SessionError(f"cannot write {writer.path / WORKFLOW_FILE}: {exc}") from None

    async def _call(
        self,
        client: BenchClient,
        writer: SessionWriter,
        model: str,
        think: bool | None,
        stage: str,
        text: str,
        position: int,
        warmup: bool,
        number: int,
        total: int,
    ) -> RunRecord:
        index = len(writer.runs)
        prompt = unique_prompt(text) if self.unique_prompt else text
        notes = [f"stage:{stage}", f"workflow_run:{position}"]
        record = RunRecord(
            index=index, warmup=warmup, status="ok", started_at=now_iso(), prompt=prompt, notes=notes
        )
        writer.start_run(record)
        self._emit(RunStarted(index, number, total, warmup))
        outcome = CallOutcome(CallTrace(0))

        def on_tokens(tokens: list[TokenEvent]) -> None:
            self._emit(TokenBatch(index, tokens, outcome.trace.t_send_ns))

        with anyio.CancelScope() as scope:
            self._scope = scope
            if self.cancelled:
                scope.cancel()
            body = request_body(self.api, model, prompt, self.request_options(), self.keep_alive, think)
            await client.stream_call(self.api, body, on_tokens, outcome)
        self._scope = None
        if scope.cancelled_caught:
            outcome.cancelled = True
        error = await resolve_error(client, model, outcome.error)
        finished = build_record(record, outcome, error, body, expect_warm=True)
        writer.finish_run(finished)
        self._emit(RunFinished(finished) if finished.status == "ok" else RunFailed(finished))
        return finished

    async def _watch_cancel(self) -> None:
        while not self._cancel.is_set():
            await anyio.sleep(0.02)
        if self._scope is not None:
            self._scope.cancel()

    async def _guarded(self, step: Any) -> None:
        with anyio.CancelScope() as scope:
            self._scope = scope
            if self.cancelled:
                scope.cancel()
            await step
        self._scope = None

    def _result(self) -> dict[str, Any]:
        """Means over the measured, successful workflow runs, for the manifest's [result]."""
        ok = [e for e in self.workflow_runs if e.get("status") == "ok" and not e.get("warmup")]
        out: dict[str, Any] = {"workflow_runs_ok": len(ok)}
        for key in ("ingest_ms", "analysis_e2e_ms", "report_e2e_ms", "workflow_ms", "total_tokens"):
            mean = summarize(e.get(key) for e in ok).mean
            out[f"mean_{key}"] = None if mean is None else round(mean, 3)
        return out

    def _manifest(
        self, info: ServerInfo, model: ModelInfo, capabilities: list[str], preview: IngestResult
    ) -> dict[str, Any]:
        t = self.timeouts
        return {
            "tool": {"name": "chimera-tui", "version": __version__},
            "mode": "workflow",
            "model": {
                "name": model.name,
                "digest": model.digest,
                "parameter_size": model.parameter_size,
                "quantization": model.quantization,
                "family": model.family,
                "size_bytes": model.size_bytes,
                "capabilities": capabilities,
            },
            "profile": {
                "name": self.profile.name,
                "description": self.profile.description,
                "builtin": self.profile.builtin,
                "options": dict(self.profile.options),
            },
            "endpoints": [{"url": self.endpoint, "kind": "ollama", "version": info.version}],
            "workload": {
                "kind": "agent_workflow",
                "prompt_label": "agent_workflow",
                "directory": str(self.directory.resolve()),
                "files": [f.path for f in preview.files[:200]],
                "file_count": len(preview.files),
                "stages": list(STAGES),
                "api": self.api,
                "runs": self.runs,
                "warmup": self.warmup,
                "cold": False,
                "unique_prompt": self.unique_prompt,
                "keep_alive": self.keep_alive,
                "num_predict": self.num_predict,
                "think": self.think,
                "options_sent": self.request_options(),
            },
            "timeouts": {"connect_s": t.connect_s, "first_byte_s": t.first_byte_s, "idle_s": t.idle_s},
            "environment": collect_environment(self._nvml_module),
        }


def run_workflow_sync(runner: WorkflowRunner) -> Session:
    """Run a workflow session to completion on a fresh event loop in the calling thread."""
    return anyio.run(runner.run)


# -- reading results -------------------------------------------------------------------------------
def load_workflow_runs(session_path: Path) -> list[dict[str, Any]]:
    """The per-workflow entries of a workflow session (workflow.json); [] when there are none."""
    try:
        doc = json.loads((Path(session_path) / WORKFLOW_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise SessionError(f"{Path(session_path).name}: corrupt {WORKFLOW_FILE}: {exc}") from None
    runs = doc.get("workflow_runs") if isinstance(doc, dict) else None
    return [r for r in runs if isinstance(r, dict)] if isinstance(runs, list) else []


def stage_summaries(session: Session) -> dict[str, dict[str, Summary]]:
    """Per stage, the summaries of every metric over its measured successful calls."""
    return {stage: compute_aggregates([r for r in session.runs if stage_of(r) == stage]) for stage in STAGES}
