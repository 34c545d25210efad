"""The Chimeraforge research tools' `data/metrics.json` (the TR111 Rust agent), read and written.

Its shape (Rust structs, serde defaults): an `AgentExecution` is `{agent_type, configuration,
llm_calls: [LlmCallRecord], aggregate_metrics: AggregateMetrics}`; an `LlmCallRecord` is `{stage,
run_number, prompt, response, metrics: CallMetrics}`; its `CallMetrics` is `{throughput_tokens_per_sec,
tokens_generated, ttft_ms, eval_duration_ms, load_duration_ms, prompt_eval_duration_ms,
total_duration_ms}`. The reader is liberal: a list of executions, one execution, an object of them
keyed by agent (`{"baseline": ..., "chimera": ...}`), a bare list of call records, missing fields.

Imported sessions are read-only and live in memory only; their statistics are ours (computed from
the calls), never the file's `aggregate_metrics`, which is kept in `manifest["source"]` for reference.
"""

from __future__ import annotations

import json
import math
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chimera_tui.core.errors import SessionError
from chimera_tui.core.measure.metrics import CallMetrics
from chimera_tui.core.measure.stats import summarize
from chimera_tui.core.store.atomic import atomic_write_text
from chimera_tui.core.store.manifest import Manifest, ModelRecord, ProfileRecord, Result, Workload
from chimera_tui.core.store.safe_read import MAX_RECORD_BYTES, read_text
from chimera_tui.core.store.sessions import (
    METRICS,
    SCHEMA_VERSION,
    RunRecord,
    Session,
    compute_aggregates,
    drop_none,
    load_session,
    measured_ok,
    metrics_doc,
    safe_slug,
    write_manifest,
)

#: CallMetrics duration fields of the Rust agent -> ours
_DURATIONS = {
    "eval_duration_ms": "eval_ms",
    "load_duration_ms": "load_ms",
    "prompt_eval_duration_ms": "prompt_eval_ms",
    "total_duration_ms": "total_ms",
}


# -- reading --------------------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    """A finite, non-negative number, else None (serde writes NaN/inf as null; bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None


def _count(value: Any) -> int | None:
    number = _num(value)
    return int(number) if number is not None and number == int(number) else None


def _is_call(obj: Any) -> bool:
    return isinstance(obj, dict) and "llm_calls" not in obj and isinstance(obj.get("metrics"), dict)


def _is_execution(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("llm_calls"), list)


def _agent_name(value: Any) -> str | None:
    """AgentType as serde writes it: a string (unit variant) or `{"Variant": ...}`."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, dict) and len(value) == 1:
        return str(next(iter(value)))
    return None


def _executions(doc: Any) -> list[dict[str, Any]]:
    """Every AgentExecution-like object in `doc`, with `agent_type` filled from its key when absent."""
    if _is_execution(doc):
        return [doc]
    if isinstance(doc, list):
        if doc and all(_is_call(item) for item in doc):
            return [{"llm_calls": doc}]
        found: list[dict[str, Any]] = []
        for item in doc:
            found.extend(_executions(item) if isinstance(item, list | dict) else [])
        return found
    if isinstance(doc, dict):
        if _is_call(doc):
            return [{"llm_calls": [doc]}]
        found = []
        for key, value in doc.items():
            if isinstance(value, list) and value and all(_is_call(item) for item in value):
                value = {"llm_calls": value}
            for execution in _executions(value) if isinstance(value, list | dict) else []:
                if _agent_name(execution.get("agent_type")) is None and isinstance(value, dict):
                    execution = {**execution, "agent_type": key}
                found.append(execution)
        return found
    return []


def _call_metrics(raw: dict[str, Any]) -> CallMetrics:
    """Map one Rust CallMetrics to ours.

    `throughput_tokens_per_sec` is `tokens_generated / eval_duration` as the Rust agent computed it
    from Ollama's final chunk, i.e. the server-side decode rate: it becomes `server_decode_rate`
    (derived from tokens_generated / eval_duration_ms when missing; a rate <= 0 is None). Everything
    the file does not hold (client decode rate, inter-token gaps, e2e...) stays None.
    """
    m = CallMetrics()
    tokens = _count(raw.get("tokens_generated"))
    m.token_count = m.eval_count = tokens
    m.ttft_ms = _num(raw.get("ttft_ms"))
    for theirs, ours in _DURATIONS.items():
        setattr(m, ours, _num(raw.get(theirs)))
    rate = _num(raw.get("throughput_tokens_per_sec"))
    if not rate and tokens and m.eval_ms:
        rate = tokens / (m.eval_ms / 1000)
    m.server_decode_rate = rate or None
    return m


def _run(index: int, call: Any) -> RunRecord:
    call = call if isinstance(call, dict) else {}
    stage, number = call.get("stage"), call.get("run_number")
    record = RunRecord(
        index=index,
        warmup=False,
        status="ok",
        started_at="",
        prompt=call.get("prompt") if isinstance(call.get("prompt"), str) else None,
        response=call.get("response") if isinstance(call.get("response"), str) else "",
        notes=[f"chimeraforge: stage {stage or '?'}, run {number if number is not None else '?'}"],
    )
    if isinstance(call.get("metrics"), dict):
        record.metrics = _call_metrics(call["metrics"])
    else:
        record.status = "failed"
        record.error_kind = "no_metrics"
        record.error = "the Chimeraforge file holds no metrics for this call"
    return record


_MODEL_KEYS = ("model", "model_name")


def _model_name(execution: dict[str, Any], doc: Any) -> str:
    config = execution.get("configuration")
    for holder in (execution, config, execution.get("chimera_tui"), doc):
        if isinstance(holder, dict):
            for key in _MODEL_KEYS:
                if isinstance(holder.get(key), str) and holder[key]:
                    return holder[key]
    return "unknown"


def _session(path: Path, execution: dict[str, Any], doc: Any, session_id: str, created: str) -> Session:
    agent = _agent_name(execution.get("agent_type"))
    config = execution.get("configuration")
    options = (
        drop_none({k: v for k, v in config.items() if k not in _MODEL_KEYS})
        if isinstance(config, dict)
        else {}
    )
    runs = [_run(i, call) for i, call in enumerate(execution["llm_calls"])]
    first_prompt = next((r.prompt for r in runs if r.prompt), None)
    aggregates = compute_aggregates(runs)
    rate, ttft = aggregates["server_decode_rate"], aggregates["ttft_ms"]
    source: dict[str, Any] = {"kind": "chimeraforge", "path": str(path), "agent_type": agent}
    if isinstance(execution.get("aggregate_metrics"), dict):
        source["aggregate_metrics"] = drop_none(execution["aggregate_metrics"])
    if isinstance(execution.get("chimera_tui"), dict):
        source["chimera_tui"] = drop_none(execution["chimera_tui"])
    manifest = Manifest(
        schema_version=SCHEMA_VERSION,
        id=session_id,
        label=agent or path.stem,
        created_at=created,
        read_only=True,
        source=drop_none(source),
        mode="single",
        model=ModelRecord(name=_model_name(execution, doc)),
        profile=ProfileRecord(name=agent or "chimeraforge", options=options),
        workload=Workload(prompt_label="chimeraforge", prompt=first_prompt, runs=len(runs), warmup=0),
        result=Result(
            status="complete",
            runs_ok=sum(r.status == "ok" for r in runs),
            runs_failed=sum(r.status == "failed" for r in runs),
            runs_cancelled=0,
            mean_server_decode_rate=rate.mean,
            mean_ttft_ms=ttft.mean,
            cv_server_decode_rate_pct=rate.cv_pct,
        ),
        # the order the import has always written its keys in
        key_order=("schema_version", "id", "label", "created_at", "read_only", "source", "mode"),
    )
    return Session(path=path, manifest=manifest, runs=runs, status="complete", aggregates=aggregates)


def import_chimeraforge_all(path: Path) -> list[Session]:
    """One read-only Session per agent execution (with at least one call) in a Chimeraforge metrics.json.

    Raises SessionError (one line) when the file cannot be read, is not JSON, is not the Chimeraforge
    shape, or holds no LLM calls.
    """
    path = Path(path)
    try:
        doc = json.loads(read_text(path, MAX_RECORD_BYTES))
    except FileNotFoundError:
        raise SessionError(f"{path}: no such file") from None
    except OSError as exc:
        raise SessionError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SessionError(f"{path}: not a text file") from None
    except json.JSONDecodeError as exc:
        raise SessionError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    executions = _executions(doc)
    if not executions:
        raise SessionError(
            f"{path}: not a Chimeraforge metrics file (no agent executions with llm_calls, no call records)"
        )
    executions = [e for e in executions if e["llm_calls"]]
    if not executions:
        raise SessionError(f"{path}: the Chimeraforge metrics file holds no LLM calls")
    try:
        created = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
    except OSError:
        created = ""
    created = created.replace("+00:00", "Z")
    sessions: list[Session] = []
    used: set[str] = set()
    for execution in executions:
        agent = _agent_name(execution.get("agent_type"))
        base = f"chimeraforge-{safe_slug(path.stem)}" + (f"-{safe_slug(agent)}" if agent else "")
        session_id, n = base, 1
        while session_id in used:
            n += 1
            session_id = f"{base}-{n}"
        used.add(session_id)
        sessions.append(_session(path, execution, doc, session_id, created))
    return sessions


def import_chimeraforge(path: Path) -> Session:
    """The first agent execution of a Chimeraforge metrics.json as a read-only Session (see _all)."""
    return import_chimeraforge_all(path)[0]


def import_into(path: Path, root: Path) -> tuple[list[Session], list[str]]:
    """Import a Chimeraforge metrics.json into the sessions folder `root`: each agent execution is
    written as a normal (read-only) session folder, so it is listed, compared and exported like any
    other and survives a restart. Returns the saved sessions and a note for each one skipped because
    a session with its id is already there (importing a file twice adds nothing)."""
    saved: list[Session] = []
    skipped: list[str] = []
    for session in import_chimeraforge_all(path):
        folder = root / session.id
        if folder.exists():
            skipped.append(f"{session.id}: already imported")
            continue
        try:
            folder.mkdir(parents=True)
        except OSError as exc:
            raise SessionError(f"cannot create session folder {folder}: {exc.strerror or exc}") from None
        try:
            write_manifest(folder, session.manifest)
            doc = metrics_doc(session.id, session.status, None, session.manifest, session.runs, [])
            atomic_write_text(folder / METRICS, json.dumps(doc, indent=1, allow_nan=False))
        except (OSError, ValueError, SessionError) as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise SessionError(f"cannot save {folder}: {exc}") from None
        saved.append(load_session(folder))
    return saved, skipped


# -- writing --------------------------------------------------------------------------------------


def to_chimeraforge(session: Session) -> dict[str, Any]:
    """One AgentExecution-shaped dict of the session's measured successful runs, ready for json.dump.

    `agent_type` is the profile name and `configuration` its options; calls get stage "benchmark"
    and a 1-based `run_number`; `throughput_tokens_per_sec` is our `server_decode_rate`,
    `tokens_generated` our `eval_count` (else `token_count`). `aggregate_metrics` holds our means and
    sample stddevs; its token and duration fields are sums over the calls. A "chimera_tui" key names
    the session and its model.

    Caveat: a value we lack is written as JSON null, and so is a stddev of fewer than 2 calls. The
    Rust structs declare these fields `f64`/`u64`, so serde rejects such a file (as it may reject an
    `agent_type` that is not one of its AgentType variants); Python tools and our importer read it.
    """
    manifest = session.manifest
    prompt = manifest.workload_or_empty.prompt
    runs = measured_ok(session.runs)
    calls: list[dict[str, Any]] = []
    for number, run in enumerate(runs, start=1):
        m = run.metrics
        tokens = m.eval_count if m.eval_count is not None else m.token_count
        calls.append(
            {
                "stage": "benchmark",
                "run_number": number,
                "prompt": run.prompt if run.prompt is not None else (prompt or ""),
                "response": run.response,
                "metrics": {
                    "throughput_tokens_per_sec": m.server_decode_rate,
                    "tokens_generated": tokens,
                    "ttft_ms": m.ttft_ms,
                    **{theirs: getattr(m, ours) for theirs, ours in _DURATIONS.items()},
                },
            }
        )

    def total(field: str) -> float | int | None:
        values = [c["metrics"][field] for c in calls if c["metrics"][field] is not None]
        return sum(values) if values else None

    rate = summarize(c["metrics"]["throughput_tokens_per_sec"] for c in calls)
    ttft = summarize(c["metrics"]["ttft_ms"] for c in calls)
    return {
        "agent_type": manifest.profile_name or "unknown",
        "configuration": manifest.profile_options,
        "llm_calls": calls,
        "aggregate_metrics": {
            "average_tokens_per_second": rate.mean,
            "stddev_throughput": rate.stddev,
            "average_ttft_ms": ttft.mean,
            "stddev_ttft": ttft.stddev,
            "total_tokens_generated": total("tokens_generated"),
            **{theirs: total(theirs) for theirs in _DURATIONS},
        },
        "chimera_tui": drop_none(
            {"schema_version": SCHEMA_VERSION, "session_id": session.id, "model": manifest.model_name}
        ),
    }
