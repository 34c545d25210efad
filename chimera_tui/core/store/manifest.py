"""The session manifest (`session.toml`), typed: what was run, on what, and how it ended.

Every part is a dataclass whose fields mirror the TOML keys one for one. `from_dict` is tolerant of
older and hand-edited files: a missing key is None, a value of the wrong type is None (an int where a
float is expected is accepted), keys this version does not know are kept in `extra` and written back
unchanged. A part that must be a table but is not raises `ManifestError`, a `SessionError` whose text
is one line. `to_toml_dict` drops None (TOML has no null), so a manifest read and written again is
the same document.

Schema versions: 1 is the only one so far (this module reads and writes it); a file of a newer
version is refused by `core.store.sessions.read_manifest`.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from chimera_tui.core.errors import SessionError

SCHEMA_VERSION = 1


class ManifestError(SessionError):
    """A manifest part of the wrong shape (a table that is not a table)."""


def drop_none(value: Any) -> Any:
    """TOML has no null: drop None values (recursively) before writing a manifest."""
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_none(v) for v in value if v is not None]
    return value


# -- the codec ------------------------------------------------------------------------------------------
# Each Part class gets a plan once: one decoder per field, built from its type hint. A decoder takes the
# raw TOML value and the field's dotted name (for messages) and returns the typed value or None.
Decoder = Callable[[Any, str], Any]


def _tree_copy(value: Any) -> Any:
    """A copy of TOML data (tables and arrays copied, scalars shared): cheaper than deepcopy."""
    if isinstance(value, dict):
        return {k: _tree_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tree_copy(v) for v in value]
    return value


def _non_none(hint: Any) -> tuple[Any, ...]:
    """The non-None members of a `X | Y | None` hint (or the hint itself)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return tuple(a for a in typing.get_args(hint) if a is not type(None))
    return (hint,)


def _accepts(kind: Any) -> Callable[[Any], bool]:
    if kind is bool:
        return lambda v: isinstance(v, bool)
    if kind is int:
        return lambda v: isinstance(v, int) and not isinstance(v, bool)
    if kind is float:
        return lambda v: isinstance(v, int | float) and not isinstance(v, bool)
    if kind is str:
        return lambda v: isinstance(v, str)
    return lambda v: True  # Any


def _is_part(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, Part)


def _decoder(hint: Any) -> Decoder:
    kinds = _non_none(hint)
    kind: Any = kinds[0] if len(kinds) == 1 else None
    if _is_part(kind):
        part: type[Part] = kind

        def table(v: Any, where: str) -> Any:
            if not isinstance(v, dict):
                raise ManifestError(f"'{where}' must be a table")
            return part.from_dict(v, where)

        return table
    if kind is dict or typing.get_origin(kind) is dict:
        return lambda v, where: _tree_copy(v) if isinstance(v, dict) else None
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind) or (Any,)
        if _is_part(item):
            item_part: type[Part] = item

            def tables(v: Any, where: str) -> Any:
                if not isinstance(v, list):
                    raise ManifestError(f"'{where}' must be an array of tables")
                return [item_part.from_dict(x, f"{where}[{i}]") for i, x in enumerate(v)]

            return tables
        ok_item = _accepts(item)
        return lambda v, where: [_tree_copy(x) for x in v if ok_item(x)] if isinstance(v, list) else None
    # scalars, or a union of scalars (`str | int`): the first kind that accepts the value
    checks = [(k, _accepts(k)) for k in kinds]

    def scalar(v: Any, where: str) -> Any:
        for k, ok in checks:
            if ok(v):
                return float(v) if k is float else v
        return None

    return scalar


_INTERNAL = frozenset({"extra", "key_order"})
_PLANS: dict[type, dict[str, Decoder]] = {}


def _plan(cls: type) -> dict[str, Decoder]:
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls) if f.name not in _INTERNAL]
        plan = _PLANS[cls] = {name: _decoder(hints[name]) for name in names}
    return plan


def _encode(value: Any) -> Any:
    if isinstance(value, Part):
        return value.to_toml_dict()
    if isinstance(value, list):
        return [_encode(v) for v in value if v is not None]
    if isinstance(value, dict):
        return drop_none(value)
    return value


@dataclass(slots=True)
class Part:
    """A table of the manifest. Subclasses declare one field per key; unknown keys live in `extra`."""

    extra: dict[str, Any] = field(default_factory=dict, kw_only=True)
    #: the key order of the table read (kept when written back); field order for a new one
    key_order: tuple[str, ...] = field(default=(), kw_only=True, repr=False, compare=False)

    #: the table's name in messages
    NAME: ClassVar[str] = ""

    @classmethod
    def from_dict(cls, data: Any, where: str | None = None) -> Self:
        where = where or cls.NAME or "manifest"
        if not isinstance(data, dict):
            raise ManifestError(f"'{where}' must be a table")
        plan = _plan(cls)
        known: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            decode = plan.get(key)
            if decode is None:
                extra[key] = _tree_copy(value)
            else:
                known[key] = decode(value, f"{where}.{key}" if cls.NAME else key)
        return cls(**known, extra=extra, key_order=tuple(data))

    def to_toml_dict(self) -> dict[str, Any]:
        """The table as TOML would hold it: keys in field order, None dropped, unknown keys kept."""
        out: dict[str, Any] = {}
        for name in _plan(type(self)):
            value = getattr(self, name)
            if value is not None:
                out[name] = _encode(value)
        out.update(drop_none(self.extra))
        if self.key_order:
            first = {k: out[k] for k in self.key_order if k in out}
            out = {**first, **{k: v for k, v in out.items() if k not in first}}
        return out


# -- the parts --------------------------------------------------------------------------------------------
@dataclass(slots=True)
class ToolInfo(Part):
    NAME: ClassVar[str] = "tool"
    name: str | None = None
    version: str | None = None


@dataclass(slots=True)
class ModelRecord(Part):
    """The model as the server described it (for multi-agent sessions: the first agent's, named for all)."""

    NAME: ClassVar[str] = "model"
    name: str | None = None
    digest: str | None = None
    parameter_size: str | None = None
    quantization: str | None = None
    family: str | None = None
    size_bytes: int | None = None
    capabilities: list[str] | None = None


@dataclass(slots=True)
class ProfileRecord(Part):
    NAME: ClassVar[str] = "profile"
    name: str | None = None
    description: str | None = None
    builtin: bool | None = None
    options: dict[str, Any] | None = None


@dataclass(slots=True)
class EndpointRecord(Part):
    """One server: its URL, backend kind, flavour, version, and options it could not apply."""

    NAME: ClassVar[str] = "endpoints"
    url: str | None = None
    kind: str | None = None
    server: str | None = None
    version: str | None = None
    options_not_applied: list[str] | None = None
    #: the server's effective state after the runs (docs/metrics.md "Server state")
    state: dict[str, Any] | None = None


@dataclass(slots=True)
class AgentRecord(Part):
    """One agent of a multi-agent session."""

    NAME: ClassVar[str] = "agents"
    index: int | None = None
    endpoint: str | None = None
    server_version: str | None = None
    model: ModelRecord | None = None
    profile: ProfileRecord | None = None
    options_sent: dict[str, Any] | None = None


@dataclass(slots=True)
class Workload(Part):
    NAME: ClassVar[str] = "workload"
    #: "agent_workflow" for the two-stage workflow; absent for a plain benchmark
    kind: str | None = None
    prompt_label: str | None = None
    prompt: str | None = None
    directory: str | None = None
    files: list[str] | None = None
    file_count: int | None = None
    stages: list[str] | None = None
    api: str | None = None
    runs: int | None = None
    warmup: int | None = None
    cold: bool | None = None
    unique_prompt: bool | None = None
    keep_alive: str | int | None = None
    num_predict: int | None = None
    #: false / true, or a level: low / medium / high / max
    think: bool | str | None = None
    #: a remote / cloud model was allowed (--allow-remote)
    allow_remote: bool | None = None
    #: the prompt-cache workload: each run is a cache-cold call then the same prompt cache-warm
    cache_cohorts: bool | None = None
    #: where the cache-busting marker sits in the cold call ("first after BOS (raw)", ...)
    cache_marker: str | None = None
    options_sent: dict[str, Any] | None = None


@dataclass(slots=True)
class Concurrency(Part):
    NAME: ClassVar[str] = "concurrency"
    agents: int | None = None
    solo_baseline: bool | None = None
    #: when the solo calls ran (issue 13: each agent alone once before every measured round)
    solo_schedule: str | None = None
    #: the research's contention: TTFT more than this above solo
    research_ttft_increase_threshold_ms: float | None = None
    rate_drop_threshold_pct: float | None = None
    ttft_growth_threshold_pct: float | None = None
    preflight_warnings: list[str] | None = None


@dataclass(slots=True)
class TimeoutsRecord(Part):
    NAME: ClassVar[str] = "timeouts"
    connect_s: float | None = None
    first_byte_s: float | None = None
    idle_s: float | None = None
    #: the whole-call deadline given with --call-timeout (None: derived per call, see call_rule)
    call_s: float | None = None
    #: how each call's deadline and token cap were derived (core/backends/budget.py)
    call_rule: str | None = None
    max_call_mib: float | None = None


@dataclass(slots=True)
class SweepTag(Part):
    """Set on a session that is one configuration of a sweep."""

    NAME: ClassVar[str] = "sweep"
    id: str | None = None
    key: str | None = None
    visit: int | None = None
    visits: int | None = None


@dataclass(slots=True)
class CapacityRecord(Part):
    """A capacity session (`kind = "capacity"`): the load model, the SLO, and the answer."""

    NAME: ClassVar[str] = "capacity"
    #: "closed" (concurrent streams) or "open" (Poisson arrivals at a rate)
    loop: str | None = None
    #: concurrency levels (closed) or arrival rates in requests/s (open), as planned
    levels: list[float] | None = None
    requests_per_level: int | None = None
    duration_s: float | None = None
    slo_ttft_p95_ms: float | None = None
    min_stream_tps: float | None = None
    max_error_pct: float | None = None
    min_gain_pct: float | None = None
    seed: int | None = None
    #: what the server says about its parallelism (llama.cpp slots, OLLAMA_NUM_PARALLEL, /api/ps)
    server: dict[str, Any] | None = None
    #: the answer (core/measure/capacity.py Verdict.to_dict())
    verdict: dict[str, Any] | None = None


@dataclass(slots=True)
class LoadRecord(Part):
    """A load run (`chimera-tui load`, mode "load"): the schedule asked for and what came of it.

    Rates use the master's clock (when it received each record); every per-call figure was measured
    on its worker's own clock (docs/metrics.md "Load runs")."""

    NAME: ClassVar[str] = "load"
    #: "closed" (users, each one call after another) or "open" (Poisson arrivals at `rate`)
    loop: str | None = None
    users: int | None = None
    spawn_rate: float | None = None
    rate: float | None = None
    duration_s: float | None = None
    requests: int | None = None
    workers: int | None = None
    grace_s: float | None = None
    requests_started: int | None = None
    requests_ok: int | None = None
    requests_failed: int | None = None
    requests_incomplete: int | None = None
    #: started on a worker but never reported (a worker lost): 0 when every request is accounted for
    requests_unaccounted: int | None = None
    elapsed_s: float | None = None
    requests_per_s: float | None = None
    tokens_per_s: float | None = None
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None
    errors: dict[str, Any] | None = None


@dataclass(slots=True)
class Result(Part):
    """How the session ended, and the headline numbers a listing shows without reading metrics.json.

    Multi-agent sessions add the round figures, workflow sessions their means.
    """

    NAME: ClassVar[str] = "result"
    status: str | None = None
    error: str | None = None
    finished_at: str | None = None
    runs_ok: int | None = None
    runs_failed: int | None = None
    runs_cancelled: int | None = None
    mean_server_decode_rate: float | None = None
    mean_ttft_ms: float | None = None
    cv_server_decode_rate_pct: float | None = None
    # multi-agent sessions (issue 13): the three efficiencies, capacity first; sessions saved before
    # them have mean_efficiency_pct (the overlap figure) instead
    mean_capacity_efficiency_pct: float | None = None
    capacity_efficiency_ci95_low: float | None = None
    capacity_efficiency_ci95_high: float | None = None
    mean_capacity_speedup: float | None = None
    mean_research_efficiency_pct: float | None = None
    research_efficiency_ci95_low: float | None = None
    research_efficiency_ci95_high: float | None = None
    mean_research_speedup: float | None = None
    mean_overlap_efficiency_pct: float | None = None
    overlap_efficiency_ci95_low: float | None = None
    overlap_efficiency_ci95_high: float | None = None
    mean_overlap_speedup: float | None = None
    capacity_note: str | None = None
    solo_drift_pct: list[float | None] | None = None
    research_contention_rate_pct: float | None = None
    mean_efficiency_pct: float | None = None
    efficiency_ci95_low: float | None = None
    efficiency_ci95_high: float | None = None
    mean_speedup: float | None = None
    mean_start_skew_ms: float | None = None
    contention_rate_pct: float | None = None
    dominant_cause: str | None = None
    # agent workflow sessions: means over the measured, successful workflow runs
    workflow_runs_ok: int | None = None
    mean_ingest_ms: float | None = None
    mean_analysis_e2e_ms: float | None = None
    mean_report_e2e_ms: float | None = None
    mean_workflow_ms: float | None = None
    mean_total_tokens: float | None = None


@dataclass(slots=True)
class Manifest(Part):
    """`session.toml`. `environment` is the machine snapshot of `core.system.environment` (free-form)."""

    schema_version: int | None = SCHEMA_VERSION
    #: the session's kind: "capacity" for a load curve; absent for a benchmark
    kind: str | None = None
    id: str | None = None
    created_at: str | None = None
    label: str | None = None
    read_only: bool | None = None
    tool: ToolInfo | None = None
    mode: str | None = None
    model: ModelRecord | None = None
    profile: ProfileRecord | None = None
    agents: list[AgentRecord] | None = None
    endpoints: list[EndpointRecord] | None = None
    workload: Workload | None = None
    concurrency: Concurrency | None = None
    timeouts: TimeoutsRecord | None = None
    environment: dict[str, Any] | None = None
    #: GPU energy context (core/run/gpu.py): status, simulated, idle baseline, scope, processes
    gpu: dict[str, Any] | None = None
    source: dict[str, Any] | None = None
    sweep: SweepTag | None = None
    capacity: CapacityRecord | None = None
    load: LoadRecord | None = None
    result: Result | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str | None = None) -> Self:
        if "schema_version" not in (data if isinstance(data, dict) else {}):
            data = {**data, "schema_version": None} if isinstance(data, dict) else data
        return super(Manifest, cls).from_dict(data, where)

    # -- what readers ask for, with the defaults they want ------------------------------------------
    @property
    def model_name(self) -> str | None:
        return self.model.name if self.model else None

    @property
    def profile_name(self) -> str | None:
        return self.profile.name if self.profile else None

    @property
    def profile_options(self) -> dict[str, Any]:
        return dict(self.profile.options or {}) if self.profile else {}

    @property
    def endpoint_list(self) -> list[EndpointRecord]:
        return list(self.endpoints or [])

    @property
    def agent_list(self) -> list[AgentRecord]:
        return list(self.agents or [])

    @property
    def result_or_empty(self) -> Result:
        return self.result if self.result is not None else Result()

    @property
    def workload_or_empty(self) -> Workload:
        return self.workload if self.workload is not None else Workload()

    def copy(self) -> Manifest:
        return copy.deepcopy(self)


def model_record(model: Any, capabilities: list[str]) -> ModelRecord:
    """The manifest's [model] from a backend's ModelInfo (name, digest, size, quantization...)."""
    return ModelRecord(
        name=model.name,
        digest=model.digest,
        parameter_size=model.parameter_size,
        quantization=model.quantization,
        family=model.family,
        size_bytes=model.size_bytes,
        capabilities=capabilities,
    )


def profile_record(profile: Any) -> ProfileRecord:
    """The manifest's [profile] from a Profile (name, description, built-in or not, options)."""
    return ProfileRecord(
        name=profile.name,
        description=profile.description,
        builtin=profile.builtin,
        options=dict(profile.options),
    )


def as_manifest(value: Manifest | dict[str, Any]) -> Manifest:
    """A Manifest from a Manifest (as is) or a plain dict (checked, as from_dict does)."""
    return value if isinstance(value, Manifest) else Manifest.from_dict(value)
