"""The resumable sweep record (``<sessions>/sweeps/<id>/sweep.json``): each configuration's state,
saved atomically after every configuration; listing, resolving and loading records and their sessions."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from chimera_tui.core.errors import SessionError
from chimera_tui.core.run.sweep.definition import SweepDefinition, SweepError, sweep_from_dict, sweep_to_dict
from chimera_tui.core.store.atomic import atomic_write_text
from chimera_tui.core.store.sessions import (
    Session,
    SessionStatus,
    compute_aggregates,
    load_session,
    safe_slug,
)

ConfigStatus = Literal["pending", "done", "partial", "failed"]
SweepStatus = Literal["running", "complete", "partial", "cancelled", "failed", "incomplete"]

#: the folder of sweep records inside the sessions directory
SWEEPS_DIRNAME = "sweeps"
RECORD_JSON = "sweep.json"
RECORD_TOML = "sweep.toml"
RECORD_SCHEMA = 1


@dataclass
class ConfigRecord:
    """What the sweep knows about one configuration (kept in sweep.json)."""

    key: str
    options: dict[str, Any]
    is_baseline: bool = False
    profile_name: str = ""
    point: dict[str, Any] = field(default_factory=dict)
    status: ConfigStatus = "pending"
    #: the sessions that count (complete ones), one per visit
    session_ids: list[str] = field(default_factory=list)
    #: sessions that stopped early (cancelled/failed); kept on disk, left out of the results
    discarded_session_ids: list[str] = field(default_factory=list)
    visits_done: int = 0
    #: per counted visit: the load time the switch to this configuration cost (see docs/metrics.md)
    reload_load_ms: list[float | None] = field(default_factory=list)
    #: per counted visit: the server's load_duration of the session's first call (warm-up included)
    first_call_load_ms: list[float | None] = field(default_factory=list)
    #: the load-time options that differ from the previous configuration, e.g. "num_ctx 256→512"
    reload_reason: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfigRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        record = cls(**{k: v for k, v in data.items() if k in known})
        if record.status not in get_args(ConfigStatus):
            record.status = "pending"
        return record


@dataclass
class SweepRecord:
    """A sweep run: its definition snapshot, where and on what it ran, and each configuration's state."""

    id: str
    path: Path
    definition: SweepDefinition
    endpoint: str
    model: str
    prompt: str
    prompt_label: str
    configs: list[ConfigRecord]
    #: configuration keys in execution order
    run_order: list[str]
    status: SweepStatus = "running"
    error: str | None = None
    created_at: str = ""
    finished_at: str | None = None
    api: str = "generate"
    keep_alive: str | int = "30m"
    timeouts: dict[str, float] = field(default_factory=dict)
    ps_wait_s: float = 60.0
    writer: dict[str, Any] = field(default_factory=dict)

    @property
    def sessions_root(self) -> Path:
        """The sessions directory the configurations' sessions are in."""
        return self.path.parent.parent

    def config(self, key: str) -> ConfigRecord:
        for c in self.configs:
            if c.key == key:
                return c
        raise KeyError(key)

    @property
    def baseline_key(self) -> str | None:
        return next((c.key for c in self.configs if c.is_baseline), None)

    def pending(self) -> list[ConfigRecord]:
        """Configurations not done yet (pending, partial or failed), in execution order."""
        by_key = {c.key: c for c in self.configs}
        return [by_key[k] for k in self.run_order if by_key[k].status != "done"]

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in get_args(ConfigStatus)}
        for c in self.configs:
            out[c.status] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": RECORD_SCHEMA,
            "id": self.id,
            "status": self.status,
            "error": self.error,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "endpoint": self.endpoint,
            "model": self.model,
            "prompt_label": self.prompt_label,
            "prompt": self.prompt,
            "api": self.api,
            "keep_alive": self.keep_alive,
            "timeouts": dict(self.timeouts),
            "ps_wait_s": self.ps_wait_s,
            "writer": dict(self.writer),
            "definition": sweep_to_dict(self.definition),
            "run_order": list(self.run_order),
            "configs": [c.to_dict() for c in self.configs],
        }

    @classmethod
    def from_dict(cls, path: Path, data: Mapping[str, Any]) -> SweepRecord:
        version = data.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool) or version > RECORD_SCHEMA:
            raise SweepError(f"{path}: unsupported sweep record schema {version!r}")
        defn = sweep_from_dict(data["definition"], f"{path / RECORD_JSON}: definition")
        configs = [ConfigRecord.from_dict(c) for c in data["configs"]]
        keys = [c.key for c in configs]
        run_order = [str(k) for k in data.get("run_order") or keys]
        if sorted(run_order) != sorted(keys):
            raise SweepError(f"{path}: run_order does not list the configurations")
        status = data.get("status", "incomplete")
        return cls(
            id=str(data["id"]),
            path=path,
            definition=defn,
            endpoint=str(data["endpoint"]),
            model=str(data["model"]),
            prompt=str(data["prompt"]),
            prompt_label=str(data.get("prompt_label", "custom")),
            configs=configs,
            run_order=run_order,
            status=status if status in get_args(SweepStatus) else "incomplete",
            error=data.get("error"),
            created_at=str(data.get("created_at", "")),
            finished_at=data.get("finished_at"),
            api=str(data.get("api", "generate")),
            keep_alive=data.get("keep_alive", "30m"),
            timeouts={k: float(v) for k, v in (data.get("timeouts") or {}).items()},
            ps_wait_s=float(data.get("ps_wait_s", 60.0)),
            writer=dict(data.get("writer") or {}),
        )

    def save(self) -> None:
        """Write sweep.json atomically (sweep.toml, the definition, is written once at the start)."""
        try:
            atomic_write_text(self.path / RECORD_JSON, json.dumps(self.to_dict(), indent=1, allow_nan=False))
        except OSError as exc:
            raise SweepError(f"cannot write {self.path / RECORD_JSON}: {exc.strerror or exc}") from None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load_sweep_record(path: Path) -> SweepRecord:
    """A sweep record from its folder or its sweep.json; a ``running`` record whose writer is gone
    (a crash, a kill) reads as ``incomplete``."""
    path = Path(path)
    folder = path.parent if path.name == RECORD_JSON else path
    try:
        data = json.loads((folder / RECORD_JSON).read_text(encoding="utf-8"))
        record = SweepRecord.from_dict(folder, data)
    except FileNotFoundError:
        raise SweepError(f"{folder}: not a sweep record (no {RECORD_JSON})") from None
    except SweepError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise SweepError(f"{folder}: corrupt {RECORD_JSON}: {' '.join(str(exc).split())[:200]}") from None
    if record.status == "running":
        w = record.writer
        pid = w.get("pid")
        alive = (
            w.get("host") == socket.gethostname()
            and isinstance(pid, int)
            and not isinstance(pid, bool)
            and _pid_alive(pid)
        )
        if not alive:
            record.status = "incomplete"
    return record


def list_sweeps(sessions_root: Path) -> tuple[list[SweepRecord], list[tuple[Path, str]]]:
    """Every sweep record under ``<sessions_root>/sweeps/``, newest first, and the unreadable ones."""
    good: list[SweepRecord] = []
    broken: list[tuple[Path, str]] = []
    folder = Path(sessions_root) / SWEEPS_DIRNAME
    if not folder.is_dir():
        return good, broken
    for entry in sorted(folder.iterdir()):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        try:
            good.append(load_sweep_record(entry))
        except SweepError as exc:
            broken.append((entry, str(exc)))
    good.sort(key=lambda r: r.created_at, reverse=True)
    return good, broken


def resolve_sweep(sessions_root: Path, ref: str) -> Path:
    """A sweep record folder by path (folder or sweep.json), id, or unique id prefix."""
    as_path = Path(ref)
    if as_path.name == RECORD_JSON and as_path.is_file():
        return as_path.parent
    if (as_path / RECORD_JSON).is_file():
        return as_path
    folder = Path(sessions_root) / SWEEPS_DIRNAME
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", ref):  # no glob characters, no path outside the folder
        raise SweepError(f"no sweep '{ref}' in {folder}")
    found = [p for p in folder.glob(f"{ref}*") if (p / RECORD_JSON).is_file()] if folder.is_dir() else []
    if len(found) == 1:
        return found[0]
    if not found:
        raise SweepError(f"no sweep '{ref}' in {folder}")
    raise SweepError(f"'{ref}' matches {len(found)} sweeps; give more of the id")


def pool_sessions(sessions: Sequence[Session]) -> Session:
    """Several sessions of one configuration (interleaved visits) as one: runs concatenated, the first
    session's manifest and path, aggregates over all measured runs."""
    if not sessions:
        raise SessionError("no sessions to pool")
    if len(sessions) == 1:
        return sessions[0]
    runs = [run for s in sessions for run in s.runs]
    statuses = {s.status for s in sessions}
    status: SessionStatus = "complete" if statuses == {"complete"} else sessions[-1].status
    return Session(sessions[0].path, sessions[0].manifest.copy(), runs, status, compute_aggregates(runs))


def load_sweep_sessions(record: SweepRecord) -> tuple[dict[str, Session], list[str]]:
    """Each configuration's counted sessions, loaded and pooled (key → Session), in execution order,
    and one line per session that could not be loaded."""
    out: dict[str, Session] = {}
    problems: list[str] = []
    root = record.sessions_root
    by_key = {c.key: c for c in record.configs}
    for key in record.run_order:
        loaded: list[Session] = []
        for sid in by_key[key].session_ids:
            try:
                loaded.append(load_session(root / safe_slug(sid, 200)))
            except SessionError as exc:
                problems.append(f"{key}: {exc}")
        if loaded:
            out[key] = pool_sessions(loaded)
    return out, problems
