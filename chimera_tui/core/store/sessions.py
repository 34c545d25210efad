"""Sessions on disk: `sessions/<id>/session.toml` (what was run, on what) + `metrics.json` (every call).

Each write is atomic. The runner writes the run it is about to start as `in_flight`, and replaces
it with the finished record before the next run starts, so a crash or kill loses at most the run
in flight, which a later load reports as `incomplete`. Listing tolerates corrupt or foreign folders.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
import socket
import tomllib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import tomli_w

from chimera_tui.core.errors import SessionError
from chimera_tui.core.measure.concurrency import RoundMetrics
from chimera_tui.core.measure.metrics import CallMetrics
from chimera_tui.core.measure.stats import Summary, aggregate
from chimera_tui.core.store.atomic import atomic_write_text
from chimera_tui.core.store.manifest import (
    SCHEMA_VERSION,
    Manifest,
    ManifestError,
    Result,
    as_manifest,
    drop_none,
)
from chimera_tui.core.store.numbering import number_of, number_runs

__all__ = ["SCHEMA_VERSION", "Manifest", "drop_none"]  # re-exported: the manifest's home is manifest.py
from chimera_tui.core.store.safe_read import MAX_MANIFEST_BYTES, MAX_RECORD_BYTES, read_text

MANIFEST = "session.toml"
#: folders inside the sessions directory that are not sessions (sweep records live in `sweeps/`)
RESERVED_DIRS = frozenset({"sweeps"})
METRICS = "metrics.json"

RunStatus = Literal["ok", "failed", "cancelled", "in_flight", "incomplete"]
RUN_STATUSES: tuple[str, ...] = ("ok", "failed", "cancelled", "in_flight", "incomplete")
SessionStatus = Literal["running", "complete", "cancelled", "failed", "incomplete"]
SESSION_STATUSES: tuple[str, ...] = ("running", "complete", "cancelled", "failed", "incomplete")


def default_sessions_dir() -> Path:
    """`$CHIMERA_TUI_SESSIONS`, else `./sessions` in a Chimera project, else the user data folder's."""
    from chimera_tui.places import sessions_dir

    return sessions_dir()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def safe_slug(text: str, limit: int = 40) -> str:
    """A file-name-safe slug of any text (model or profile names may hold `/`, `:` or worse)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return (slug or "x")[:limit]


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _plain_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63 else None


def _offsets(value: Any) -> list[float]:
    """Token offsets (ms): a list of finite, plausible numbers, else empty."""
    if not isinstance(value, list):
        return []
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return []
        try:
            if not math.isfinite(v) or abs(v) > 1e12:
                return []
        except OverflowError:
            return []
        out.append(float(v))
    return out


@dataclass(slots=True)
class RunRecord:
    """One call of a session, as stored in metrics.json."""

    index: int
    warmup: bool
    status: RunStatus
    started_at: str
    metrics: CallMetrics = field(default_factory=CallMetrics)
    error_kind: str | None = None
    error: str | None = None
    prompt: str | None = None
    response: str = ""
    thinking: str = ""
    #: arrival times of every token chunk, ms after the request was sent
    token_offsets_ms: list[float] = field(default_factory=list)
    server_final: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    #: which agent made the call (multi-agent modes; 0 in single mode)
    agent: int = 0
    #: the concurrent round the call belonged to (multi-agent modes; None in single mode)
    round: int | None = None
    #: a solo-baseline call (multi-agent modes): the agent ran alone; kept out of the statistics
    solo: bool = False
    #: a prompt-cache cohort (bench --cache-cohorts): "cache_cold" or "cache_warm"; None otherwise
    cohort: str | None = None
    #: 1-based among the calls of its kind (core/store/numbering.py); derived, not stored
    number: int | None = None
    #: GPU energy, clocks and throttling of the call, per GPU (core/run/gpu.py); None without NVML
    gpu: dict[str, Any] | None = None
    #: a capacity session's level (0-based) and when the call was sent, ms after that level started
    level: int | None = None
    t_send_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "agent": self.agent,
            "round": self.round,
            "solo": self.solo,
            "warmup": self.warmup,
            "status": self.status,
            "started_at": self.started_at,
            "error_kind": self.error_kind,
            "error": self.error,
            "metrics": self.metrics.to_dict(),
            "prompt": self.prompt,
            "response": self.response,
            "thinking": self.thinking,
            "token_offsets_ms": self.token_offsets_ms,
            "server_final": self.server_final,
            "notes": self.notes,
            # only in cache-cohort sessions (older readers and golden files see no new key)
            **({"cohort": self.cohort} if self.cohort else {}),
            **({"gpu": self.gpu} if self.gpu else {}),
            **({"level": self.level, "t_send_ms": self.t_send_ms} if self.level is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        return cls(
            index=int(data["index"]),
            warmup=bool(data.get("warmup", False)),
            status=data["status"] if data.get("status") in RUN_STATUSES else "failed",
            started_at=str(data.get("started_at", "")),
            metrics=CallMetrics.from_dict(data.get("metrics") or {}),
            error_kind=_opt_str(data.get("error_kind")),
            error=_opt_str(data.get("error")),
            # every field type-checked: a value of the wrong type reads as missing
            prompt=_opt_str(data.get("prompt")),
            response=_opt_str(data.get("response")) or "",
            thinking=_opt_str(data.get("thinking")) or "",
            token_offsets_ms=_offsets(data.get("token_offsets_ms")),
            server_final=data.get("server_final") if isinstance(data.get("server_final"), dict) else None,
            notes=[n for n in data.get("notes") or [] if isinstance(n, str)]
            if isinstance(data.get("notes"), list)
            else [],
            agent=_plain_int(data.get("agent")) or 0,
            round=data.get("round") if isinstance(data.get("round"), int) else None,
            solo=bool(data.get("solo", False)),
            cohort=data.get("cohort") if data.get("cohort") in COHORTS else None,
            gpu=data.get("gpu") if isinstance(data.get("gpu"), dict) else None,
            level=_plain_int(data.get("level")),
            t_send_ms=next(iter(_offsets([data.get("t_send_ms")])), None),
        )


#: the prompt-cache cohorts of a `--cache-cohorts` session (docs/metrics.md "Prompt-cache cohorts")
COHORTS = ("cache_cold", "cache_warm")


def measured_ok(runs: list[RunRecord]) -> list[RunRecord]:
    """The runs that count in statistics: successful, not warm-up, not a solo baseline."""
    return [r for r in runs if r.status == "ok" and not r.warmup and not r.solo]


def compute_aggregates(runs: list[RunRecord]) -> dict[str, Summary]:
    return aggregate([r.metrics for r in measured_ok(runs)])


def pooled_itl(runs: list[RunRecord]) -> Summary:
    """Every inter-token gap of the measured, successful runs, pooled (docs/metrics.md)."""
    from chimera_tui.core.measure.stats import pooled_gaps

    return pooled_gaps(r.token_offsets_ms for r in measured_ok(runs))


def flag_counts(runs: list[RunRecord]) -> dict[str, int]:
    """How many measured, successful runs carry each flag (only flags that occur), in FLAGS order."""
    from chimera_tui.core.measure.metrics import FLAGS

    ok = measured_ok(runs)
    counts = {flag: sum(1 for r in ok if flag in r.metrics.flags) for flag in FLAGS}
    return {flag: n for flag, n in counts.items() if n}


@dataclass(slots=True)
class Session:
    """A loaded (or live) session: manifest + runs + aggregates."""

    path: Path
    manifest: Manifest
    runs: list[RunRecord]
    status: SessionStatus
    aggregates: dict[str, Summary]
    #: multi-agent modes: one record per concurrent round (see core/measure/concurrency.py)
    rounds: list[RoundMetrics] = field(default_factory=list)

    def __post_init__(self) -> None:
        # a plain dict (tests, importers) is checked into the typed manifest; likewise rounds
        self.manifest = as_manifest(self.manifest)
        self.rounds = [r if isinstance(r, RoundMetrics) else RoundMetrics.from_dict(r) for r in self.rounds]
        number_runs(self.runs)

    @property
    def id(self) -> str:
        return self.manifest.id or self.path.name

    @property
    def counts(self) -> dict[str, int]:
        """Measured calls by status; warm-up and solo-baseline calls are counted on their own."""
        out = {"ok": 0, "failed": 0, "cancelled": 0, "incomplete": 0, "warmup": 0}
        for run in self.runs:
            if run.warmup:
                out["warmup"] += 1
            elif run.solo:
                out["solo"] = out.get("solo", 0) + 1
            elif run.status in out:
                out[run.status] += 1
        return out


@dataclass(frozen=True, slots=True)
class BrokenSession:
    """A folder in the sessions directory that could not be read as a session, and why."""

    path: Path
    reason: str


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SessionWriter:
    """Writes one session as it runs. Every method leaves consistent files on disk."""

    def __init__(self, root: Path, manifest: Manifest | dict[str, Any]) -> None:
        self.root = root
        manifest = as_manifest(manifest)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        model = safe_slug(manifest.model_name or "model", 30)
        profile = safe_slug(manifest.profile_name or "profile", 30)
        if root.is_symlink() and not root.exists():
            raise SessionError(f"the sessions directory {root} is a symbolic link to nothing")
        # 32 random bits, and a new draw if the folder exists anyway: two sessions never share an id
        for attempt in range(8):
            self.id = f"{stamp}-{model}-{profile}-{secrets.token_hex(4)}"
            self.path = root / self.id
            try:
                self.path.mkdir(parents=True, exist_ok=False)
                break
            except FileExistsError:
                if attempt == 7 or not self.path.is_dir():  # not a collision: a file, a dangling link
                    raise SessionError(
                        f"cannot create session folder {self.path}: it exists (a dangling link or a file?)"
                    ) from None
            except OSError as exc:
                raise SessionError(
                    f"cannot create session folder {self.path}: {exc.strerror or exc}"
                ) from None
        head = ("schema_version", "id", "created_at")
        self.manifest = replace(
            manifest,
            schema_version=SCHEMA_VERSION,
            id=self.id,
            created_at=now_iso(),
            key_order=(*head, *manifest.key_order) if manifest.key_order else (),
            # who writes it: a listing tells running from crashed by the manifest alone
            extra={**manifest.extra, "writer": {"pid": os.getpid(), "host": socket.gethostname()}},
        )
        self.runs: list[RunRecord] = []
        self.rounds: list[dict[str, Any]] = []
        self.status: SessionStatus = "running"
        self.error: str | None = None
        try:
            self._write_manifest()
            self._write_metrics()
        except SessionError:  # disk full at creation: leave no empty folder to be listed as unreadable
            shutil.rmtree(self.path, ignore_errors=True)
            raise

    # -- lifecycle ------------------------------------------------------------------------------
    def start_run(self, record: RunRecord) -> None:
        """Record the run about to start as in flight (so a crash leaves a trace of it); gives the
        record its number (core/store/numbering.py) if it has none."""
        if record.number is None:
            record.number = number_of(record, self.runs)
        self.runs.append(replace(record, status="in_flight"))
        self._write_metrics()

    def finish_run(self, record: RunRecord) -> None:
        """Replace the in-flight entry with the finished record; on disk before this returns."""
        for i, existing in enumerate(self.runs):
            if existing.index == record.index:
                self.runs[i] = record
                break
        else:
            self.runs.append(record)
        self._write_metrics()

    def add_runs(self, records: list[RunRecord]) -> None:
        """Append finished records in one write (a load run's batches from its workers)."""
        self.runs.extend(records)
        self._write_metrics()

    def finish_round(self, record: RoundMetrics | dict[str, Any], runs: list[RunRecord]) -> None:
        """Record a concurrent round and its finished calls in one write (multi-agent modes), so no
        disk write happens while another agent of the round is still streaming; on disk before the
        next round starts."""
        for run in runs:
            for i, existing in enumerate(self.runs):
                if existing.index == run.index:
                    self.runs[i] = run
                    break
            else:
                self.runs.append(run)
        self.rounds.append(record.to_dict() if isinstance(record, RoundMetrics) else record)
        self._write_metrics()

    def finish(
        self, status: SessionStatus, error: str | None = None, extra_result: dict[str, Any] | None = None
    ) -> Session:
        """Write the final status (and why, when the session stopped early) and the aggregates."""
        self.status = status
        self.error = error
        aggregates = compute_aggregates(self.runs)
        counts = Session(self.path, self.manifest, self.runs, status, aggregates).counts
        tok = aggregates.get("server_decode_rate")
        ttft = aggregates.get("ttft_ms")
        self.manifest.result = Result.from_dict(
            drop_none(
                {
                    **(extra_result or {}),
                    "status": status,
                    "error": error,
                    "finished_at": now_iso(),
                    "runs_ok": counts["ok"],
                    "runs_failed": counts["failed"],
                    "runs_cancelled": counts["cancelled"],
                    "mean_server_decode_rate": tok.mean if tok else None,
                    "mean_ttft_ms": ttft.mean if ttft else None,
                    "cv_server_decode_rate_pct": tok.cv_pct if tok else None,
                }
            )
        )
        self._write_metrics()
        self._write_manifest()
        rounds = [RoundMetrics.from_dict(r) for r in self.rounds]
        return Session(self.path, self.manifest.copy(), list(self.runs), status, aggregates, rounds)

    # -- files ----------------------------------------------------------------------------------
    def _write_manifest(self) -> None:
        try:
            atomic_write_text(self.path / MANIFEST, tomli_w.dumps(self.manifest.to_toml_dict()))
        except OSError as exc:
            raise SessionError(f"cannot write {self.path / MANIFEST}: {exc.strerror or exc}") from None

    def _write_metrics(self) -> None:
        doc = metrics_doc(self.id, self.status, self.error, self.manifest, self.runs, self.rounds)
        try:
            atomic_write_text(self.path / METRICS, json.dumps(doc, indent=1, allow_nan=False))
        except OSError as exc:
            raise SessionError(f"cannot write {self.path / METRICS}: {exc.strerror or exc}") from None
        except (TypeError, ValueError) as exc:  # a NaN or an object JSON cannot hold: a bug, said plainly
            raise SessionError(f"cannot save {self.path / METRICS}: {exc}") from None


def metrics_doc(
    session_id: str,
    status: str,
    error: str | None,
    manifest: Manifest,
    runs: list[RunRecord],
    rounds: list[dict[str, Any]],
) -> dict[str, Any]:
    """metrics.json: every run (prompts compacted), the rounds, the aggregates, who wrote it."""
    return {
        "schema_version": SCHEMA_VERSION,
        "session_id": session_id,
        "status": status,
        "error": error,
        "writer": {"pid": os.getpid(), "host": socket.gethostname()},
        "runs": [_compact_prompt(r.to_dict(), _session_prompt(manifest)) for r in runs],
        "rounds": rounds,
        "aggregates": {k: v.to_dict() for k, v in compute_aggregates(runs).items()},
    }


#: a run's prompt that is the session's prompt (with its unique prefix) is stored as that prefix
#: alone once the prompt is at least this long; session.toml holds the prompt once
COMPACT_PROMPT_CHARS = 256


def _session_prompt(manifest: Manifest) -> str | None:
    prompt = manifest.workload.prompt if manifest.workload is not None else None
    return prompt if isinstance(prompt, str) and len(prompt) >= COMPACT_PROMPT_CHARS else None


def _compact_prompt(run: dict[str, Any], base: str | None) -> dict[str, Any]:
    """`prompt` → `prompt_prefix` when the run's prompt is the session's, behind a unique prefix."""
    prompt = run.get("prompt")
    if base is not None and isinstance(prompt, str) and prompt.endswith(base):
        run = {**run, "prompt": None, "prompt_prefix": prompt[: len(prompt) - len(base)]}
    return run


def _expand_prompt(run: Any, base: str | None) -> Any:
    """The inverse of `_compact_prompt` (the session prompt from session.toml)."""
    if isinstance(run, dict) and isinstance(run.get("prompt_prefix"), str) and run.get("prompt") is None:
        return {**run, "prompt": run["prompt_prefix"] + base if base is not None else None}
    return run


def load_session(path: Path) -> Session:
    """Load one session folder; raise SessionError saying what is wrong with it."""
    manifest = read_manifest(path)
    metrics_path = path / METRICS
    try:
        doc = json.loads(read_text(metrics_path, MAX_RECORD_BYTES))
        if not isinstance(doc, dict) or not isinstance(doc.get("runs", []), list):
            raise ValueError("not a metrics document (an object with a list of runs)")
        base = _session_prompt(manifest)
        runs = [RunRecord.from_dict(_expand_prompt(r, base)) for r in doc.get("runs", [])]
        rounds = [RoundMetrics.from_dict(r) for r in doc.get("rounds", []) if isinstance(r, dict)]
    except FileNotFoundError:
        raise SessionError(f"{path.name}: {METRICS} is missing") from None
    except (OSError, KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        # truncated or hand-edited: not UTF-8, not JSON, or runs of the wrong shape
        raise SessionError(f"{path.name}: corrupt {METRICS}: {_one_line(exc)}") from None
    raw_status = doc.get("status")
    status: SessionStatus = raw_status if raw_status in SESSION_STATUSES else "incomplete"
    raw_writer = doc.get("writer")
    writer: dict[str, Any] = raw_writer if isinstance(raw_writer, dict) else {}
    writer_alive = (
        status == "running"
        and writer.get("host") == socket.gethostname()
        and isinstance(writer.get("pid"), int)
        and _pid_alive(writer["pid"])
    )
    if status == "running" and not writer_alive:
        status = "incomplete"
    if not writer_alive:
        for run in runs:
            if run.status == "in_flight":
                run.status = "incomplete"
    return Session(path, manifest, runs, status, compute_aggregates(runs), rounds)


def read_manifest(path: Path) -> Manifest:
    """The manifest of a session folder, checked for a usable schema version and typed."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise SessionError(f"{path.name}: not a session (no {MANIFEST})")
    try:
        raw = tomllib.loads(read_text(manifest_path, MAX_MANIFEST_BYTES))
    except (OSError, ValueError, RecursionError) as exc:  # TOMLDecodeError and UnicodeDecodeError too
        raise SessionError(f"{path.name}: unreadable {MANIFEST}: {_one_line(exc)}") from None
    version = raw.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise SessionError(f"{path.name}: {MANIFEST} has no schema_version")
    if version > SCHEMA_VERSION:
        raise SessionError(
            f"{path.name}: written by a newer chimera-tui (schema {version} > {SCHEMA_VERSION}); "
            "upgrade to read it"
        )
    try:
        return Manifest.from_dict(raw)
    except ManifestError as exc:
        raise SessionError(f"{path.name}: {MANIFEST}: {exc}") from None


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Replace a session's manifest (atomic), as a SessionError when the disk refuses."""
    try:
        atomic_write_text(folder / MANIFEST, tomli_w.dumps(manifest.to_toml_dict()))
    except OSError as exc:
        raise SessionError(f"cannot write {folder / MANIFEST}: {exc.strerror or exc}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
