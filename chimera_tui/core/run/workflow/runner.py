"""The workflow runner: every workflow run (ingest → analysis → report) of one session, each saved
before the next starts (see the package docstring)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from contextlib import aclosing
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
from chimera_tui.core.measure.stats import summarize
from chimera_tui.core.run.base import RunnerBase
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
    timeouts_record,
    unique_prompt,
    wait_for_ps,
)
from chimera_tui.core.run.workflow.events import (
    IngestDone,
    WorkflowEvent,
    WorkflowRunFinished,
    WorkflowRunStarted,
)
from chimera_tui.core.run.workflow.ingest import MAX_DIGEST_CHARS, IngestResult, WorkflowError, ingest
from chimera_tui.core.run.workflow.stages import (
    STAGES,
    WORKFLOW_FILE,
    analysis_prompt,
    report_prompt,
)
from chimera_tui.core.store.atomic import atomic_write_text
from chimera_tui.core.store.manifest import (
    EndpointRecord,
    Manifest,
    ToolInfo,
    Workload,
    model_record,
    profile_record,
)
from chimera_tui.core.store.profiles import Profile
from chimera_tui.core.store.sessions import (
    RunRecord,
    Session,
    SessionStatus,
    SessionWriter,
    now_iso,
)
from chimera_tui.core.system.environment import collect_environment

log = logging.getLogger(__name__)


def _tokens(record: RunRecord | None) -> int | None:
    if record is None:
        return None
    m = record.metrics
    return m.eval_count if m.eval_count is not None else m.token_count


class WorkflowRunner(RunnerBase[WorkflowEvent]):
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
        super().__init__(emit)
        self.endpoint = endpoint or DEFAULT_URL
        self.model = model
        self.profile = profile
        self.directory = Path(directory)
        self.sessions_root = Path(sessions_root)
        self.runs = runs
        self.warmup = warmup
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
        self.session_path: Path | None = None
        self.workflow_runs: list[dict[str, Any]] = []

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
        client = await open_client(self.endpoint, "auto", self.timeouts, self._transport)
        async with aclosing(client):
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
        async with self._watching_cancel():
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

        body = request_body(self.api, model, prompt, self.request_options(), self.keep_alive, think)
        await self._stream_call(client, self.api, body, on_tokens, outcome)
        error = await resolve_error(client, model, outcome.error)
        finished = build_record(record, outcome, error, body, expect_warm=True)
        writer.finish_run(finished)
        self._emit(RunFinished(finished) if finished.status == "ok" else RunFailed(finished))
        return finished

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
    ) -> Manifest:
        t = self.timeouts
        return Manifest(
            tool=ToolInfo(name="chimera-tui", version=__version__),
            mode="workflow",
            model=model_record(model, capabilities),
            profile=profile_record(self.profile),
            endpoints=[EndpointRecord(url=self.endpoint, kind="ollama", version=info.version)],
            workload=Workload(
                kind="agent_workflow",
                prompt_label="agent_workflow",
                directory=str(self.directory.resolve()),
                files=[f.path for f in preview.files[:200]],
                file_count=len(preview.files),
                stages=list(STAGES),
                api=self.api,
                runs=self.runs,
                warmup=self.warmup,
                cold=False,
                unique_prompt=self.unique_prompt,
                keep_alive=self.keep_alive,
                num_predict=self.num_predict,
                think=self.think,
                options_sent=self.request_options(),
            ),
            timeouts=timeouts_record(t),
            environment=collect_environment(self._nvml_module),
        )


def run_workflow_sync(runner: WorkflowRunner) -> Session:
    """Run a workflow session to completion on a fresh event loop in the calling thread."""
    return anyio.run(runner.run)
