"""Parameter sweeps (TR111): a grid of Ollama options, one session per configuration, ranked vs a baseline.

A sweep file (``sweeps/tr111.toml``)::

    name = "tr111"
    base_profile = "baseline_default"    # the grid's options are laid over this profile's options
    include_baseline = true              # also run the base profile itself: the "baseline" configuration
    runs = 3                             # measured calls per configuration
    warmup = 1                           # warm-up calls per configuration (absorb the reload)
    order = "sequential"                 # or "shuffled" (with `seed`) or "interleaved"
    prompt_preset = "tr_report"
    [grid]
    num_gpu = [60, 80, 120]
    num_ctx = [256, 512, 1024]
    temperature = [0.6, 0.8]

Running it writes ordinary sessions (one per configuration; one per visit in interleaved order) into the
sessions directory, and a **sweep record** in ``<sessions>/sweeps/<sweep-id>/``: ``sweep.toml`` (the
definition, loadable again with :func:`load_sweep`) and ``sweep.json`` (endpoint, model, prompt and,
per configuration, its status, sessions and reload times), rewritten atomically after every
configuration, so a sweep stopped half-way keeps what it measured and :func:`resume_sweep` finishes it.

Ranking, success rate, heat maps and the best profile are pure functions over loaded sessions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import os
import random
import re
import secrets
import socket
import threading
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import anyio
import httpx
import tomli_w

from chimera_tui.core.backends import BenchClient, open_client
from chimera_tui.core.backends.ollama import DEFAULT_URL, Timeouts
from chimera_tui.core.errors import ChimeraError, ProfileError, SessionError
from chimera_tui.core.measure.catalogue import METRICS
from chimera_tui.core.measure.compare import (
    MetricSpec,
    permutation_p_value,
    values_for,
    verdict,
)
from chimera_tui.core.measure.stats import Summary, summarize
from chimera_tui.core.run.events import PhaseChanged, RunEvent
from chimera_tui.core.run.prompts import PRESETS, resolve_prompt
from chimera_tui.core.run.single import BenchRunner, BenchSpec, find_model
from chimera_tui.core.store.atomic import atomic_write_text
from chimera_tui.core.store.bundled import bundled_dir
from chimera_tui.core.store.manifest import SweepTag
from chimera_tui.core.store.profiles import (
    BASELINE_PROFILE,
    NAME_PATTERN,
    OPTION_SPECS,
    Profile,
    ProfileStore,
    format_value,
    reload_reason,
    validate_options,
)
from chimera_tui.core.store.sessions import (
    MANIFEST,
    Session,
    SessionStatus,
    compute_aggregates,
    load_session,
    now_iso,
    read_manifest,
    safe_slug,
)

__all__ = [
    "BASELINE_KEY",
    "ORDERS",
    "RECORD_JSON",
    "RECORD_TOML",
    "SWEEPS_DIRNAME",
    "ConfigFinished",
    "ConfigRecord",
    "ConfigStarted",
    "HeatMap",
    "PlannedRun",
    "RankRow",
    "SweepConfig",
    "SweepDefinition",
    "SweepError",
    "SweepFinished",
    "SweepRecord",
    "SweepRunner",
    "SweepStarted",
    "best_profile",
    "builtin_sweeps_dir",
    "config_key",
    "default_tr111_sweep",
    "execution_order",
    "expand_grid",
    "find_sweep",
    "heatmap",
    "heatmaps_by",
    "list_sweeps",
    "load_sweep",
    "load_sweep_record",
    "load_sweep_sessions",
    "plan",
    "pool_sessions",
    "rank",
    "resolve_sweep",
    "resume_sweep",
    "run_sweep_sync",
    "smallest_p_value",
    "success_rate",
    "sweep_from_dict",
    "sweep_to_dict",
    "sweep_to_toml",
]

Order = Literal["sequential", "shuffled", "interleaved"]
ORDERS: tuple[str, ...] = get_args(Order)
ConfigStatus = Literal["pending", "done", "partial", "failed"]
SweepStatus = Literal["running", "complete", "partial", "cancelled", "failed", "incomplete"]

#: the key of the base profile's own configuration
BASELINE_KEY = "baseline"
#: the folder of sweep records inside the sessions directory
SWEEPS_DIRNAME = "sweeps"
RECORD_JSON = "sweep.json"
RECORD_TOML = "sweep.toml"
RECORD_SCHEMA = 1
#: the most configurations one sweep may expand to
MAX_CONFIGS = 1000
_TOP_LEVEL_KEYS = (
    "name",
    "description",
    "base_profile",
    "grid",
    "include_baseline",
    "runs",
    "warmup",
    "cold",
    "order",
    "seed",
    "cooldown_s",
    "prompt_preset",
    "prompt",
    "num_predict",
)


class SweepError(ChimeraError):
    """An invalid sweep file or an unreadable sweep record; the message names the file and the key."""

    kind = "invalid_sweep"


def _got(value: Any) -> str:
    try:
        shown = repr(value)
    except ValueError:  # an int too long to print
        shown = f"<{type(value).__name__}>"
    return (shown[:57] + "...") if len(shown) > 60 else shown


# -- the definition --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepDefinition:
    """A validated sweep: a grid of options over a base profile, and how to run it.

    Construction validates and types every field (grid values with the profiles' option specs), raising
    SweepError naming ``path`` (or the sweep's name) and the key.
    """

    name: str
    description: str = ""
    base_profile: str = BASELINE_PROFILE
    grid: dict[str, list[Any]] = field(default_factory=dict, hash=False)
    include_baseline: bool = True
    runs: int = 3
    warmup: int = 1
    cold: bool = False
    order: Order = "sequential"
    #: the shuffle seed (order "shuffled"); the runner picks and records one when it is None
    seed: int | None = None
    cooldown_s: float = 0.0
    prompt_preset: str | None = None
    prompt: str | None = None
    num_predict: int | None = None
    path: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        src = str(self.path) if self.path is not None else f"sweep '{self.name}'"
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise SweepError(
                f"{src}: 'name' must be 1-64 letters, digits, '_', '.' or '-', got {_got(self.name)}"
            )
        _need(isinstance(self.description, str), src, "description", "a string", self.description)
        _need(
            isinstance(self.base_profile, str) and bool(self.base_profile.strip()),
            src,
            "base_profile",
            "a profile name",
            self.base_profile,
        )
        _need(
            isinstance(self.include_baseline, bool),
            src,
            "include_baseline",
            "true or false",
            self.include_baseline,
        )
        _need(_is_int(self.runs) and self.runs >= 1, src, "runs", "an integer >= 1", self.runs)
        _need(_is_int(self.warmup) and self.warmup >= 0, src, "warmup", "an integer >= 0", self.warmup)
        _need(isinstance(self.cold, bool), src, "cold", "true or false", self.cold)
        _need(self.order in ORDERS, src, "order", " or ".join(f"'{o}'" for o in ORDERS), self.order)
        _need(self.seed is None or _is_int(self.seed), src, "seed", "an integer", self.seed)
        cooldown = self.cooldown_s
        ok = isinstance(cooldown, int | float) and not isinstance(cooldown, bool)
        _need(ok and math.isfinite(cooldown) and cooldown >= 0, src, "cooldown_s", "a number >= 0", cooldown)
        object.__setattr__(self, "cooldown_s", float(cooldown))
        if self.prompt_preset is not None and self.prompt_preset not in PRESETS:
            raise SweepError(
                f"{src}: unknown prompt_preset {_got(self.prompt_preset)}; available: {', '.join(PRESETS)}"
            )
        _need(
            self.prompt is None or (isinstance(self.prompt, str) and bool(self.prompt.strip())),
            src,
            "prompt",
            "a non-empty string",
            self.prompt,
        )
        if self.num_predict is not None:
            try:
                validate_options({"num_predict": self.num_predict}, src)
            except ProfileError as exc:
                raise SweepError(str(exc)) from None
        object.__setattr__(self, "grid", _validate_grid(self.grid, src, self.include_baseline))

    @property
    def config_count(self) -> int:
        """How many configurations the sweep expands to (the baseline included)."""
        return math.prod(len(v) for v in self.grid.values()) + (1 if self.include_baseline else 0)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _need(ok: bool, src: str, key: str, expected: str, value: Any) -> None:
    if not ok:
        raise SweepError(f"{src}: '{key}' must be {expected}, got {_got(value)}")


def _validate_grid(grid: Any, src: str, include_baseline: bool) -> dict[str, list[Any]]:
    if not isinstance(grid, Mapping):
        raise SweepError(f"{src}: 'grid' must be a table ([grid]) of option = [values], got {_got(grid)}")
    if not grid:
        raise SweepError(f"{src}: [grid] must list at least one option, e.g. num_ctx = [512, 1024]")
    out: dict[str, list[Any]] = {}
    where = f"{src} [grid]"
    for key, values in grid.items():
        if key not in OPTION_SPECS:
            validate_options_or_raise({key: None}, where)  # raises: unknown option, with a suggestion
        if not isinstance(values, list | tuple) or not values:
            raise SweepError(f"{where}: '{key}' must be a non-empty list of values, got {_got(values)}")
        typed: list[Any] = []
        for value in values:
            checked = validate_options_or_raise({key: value}, where)[key]
            if checked in typed:
                raise SweepError(f"{where}: '{key}' lists {format_value(checked)} twice")
            typed.append(checked)
        out[str(key)] = typed
    total = math.prod(len(v) for v in out.values()) + (1 if include_baseline else 0)
    if total > MAX_CONFIGS:
        raise SweepError(f"{src}: [grid] expands to {total} configurations (at most {MAX_CONFIGS})")
    return out


def validate_options_or_raise(options: Mapping[str, Any], source: str) -> dict[str, Any]:
    """profiles.validate_options, its ProfileError re-raised as SweepError (same one-line message)."""
    try:
        return validate_options(options, source)
    except ProfileError as exc:
        raise SweepError(str(exc)) from None


def sweep_to_dict(defn: SweepDefinition) -> dict[str, Any]:
    """The definition as plain data (None fields left out): TOML- and JSON-ready."""
    data: dict[str, Any] = {
        "name": defn.name,
        "description": defn.description,
        "base_profile": defn.base_profile,
        "include_baseline": defn.include_baseline,
        "runs": defn.runs,
        "warmup": defn.warmup,
        "cold": defn.cold,
        "order": defn.order,
        "seed": defn.seed,
        "cooldown_s": defn.cooldown_s,
        "prompt_preset": defn.prompt_preset,
        "prompt": defn.prompt,
        "num_predict": defn.num_predict,
        "grid": {k: list(v) for k, v in defn.grid.items()},
    }
    return {k: v for k, v in data.items() if v is not None}


def sweep_from_dict(data: Mapping[str, Any], source: str, path: Path | None = None) -> SweepDefinition:
    """Validate plain data (a parsed sweep file) into a SweepDefinition; SweepError naming ``source``."""
    if not isinstance(data, Mapping):
        raise SweepError(f"{source}: a sweep must be a table, got {_got(data)}")
    for key in data:
        if key in _TOP_LEVEL_KEYS:
            continue
        if key in OPTION_SPECS:
            raise SweepError(f"{source}: option '{key}' must be under [grid] as a list of values")
        raise SweepError(f"{source}: unknown key '{key}' (allowed: {', '.join(_TOP_LEVEL_KEYS)})")
    if "name" not in data:
        raise SweepError(f"{source}: missing required key 'name' (a string)")
    if "grid" not in data:
        raise SweepError(f"{source}: missing required table [grid] (option = [values])")
    kwargs = {k: data[k] for k in _TOP_LEVEL_KEYS if k in data}
    return SweepDefinition(**kwargs, path=path)


def load_sweep(path: Path) -> SweepDefinition:
    """Read and validate one sweep file; every problem raises SweepError naming the file and key."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SweepError(f"{path}: cannot read sweep: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise SweepError(f"{path}: invalid TOML: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{path}: invalid TOML: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise SweepError(f"{path}: invalid TOML: {' '.join(str(exc).split())[:120]}") from None
    return sweep_from_dict(data, str(path), path)


def sweep_to_toml(defn: SweepDefinition) -> str:
    """The definition as TOML text; :func:`load_sweep` reads it back equal."""
    return tomli_w.dumps(sweep_to_dict(defn))


def builtin_sweeps_dir() -> Path:
    """The built-in sweeps (such as ``tr111.toml``): packed in the wheel, or the checkout's ``sweeps/``."""
    return bundled_dir("sweeps")


def find_sweep(ref: str) -> SweepDefinition:
    """A sweep by path to a .toml file, or by the name of a built-in sweep (``tr111``)."""
    candidate = Path(ref).expanduser()
    if candidate.suffix == ".toml" and candidate.is_file():
        return load_sweep(candidate)
    builtin = builtin_sweeps_dir() / f"{ref}.toml"
    if NAME_PATTERN.match(ref) and builtin.is_file():
        return load_sweep(builtin)
    names = sorted(p.stem for p in builtin_sweeps_dir().glob("*.toml")) or ["none"]
    raise SweepError(f"unknown sweep '{ref}': not a .toml file, nor a built-in sweep ({', '.join(names)})")


def default_tr111_sweep() -> SweepDefinition:
    """The TR111 sweep: num_gpu 60/80/120 × num_ctx 256/512/1024 × temperature 0.6/0.8 + baseline, 3 runs."""
    return SweepDefinition(
        name="tr111",
        description=(
            "TR111 parameter sweep: GPU layers 60/80/120 x context 256/512/1024 x temperature 0.6/0.8, "
            "plus Ollama's defaults as the baseline; 3 runs per configuration"
        ),
        base_profile=BASELINE_PROFILE,
        grid={"num_gpu": [60, 80, 120], "num_ctx": [256, 512, 1024], "temperature": [0.6, 0.8]},
        include_baseline=True,
        runs=3,
        warmup=1,
        order="sequential",
        prompt_preset="tr_report",
    )


# -- the grid --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepConfig:
    """One configuration: the base profile's options with one grid point laid over them."""

    key: str
    options: dict[str, Any] = field(hash=False)
    profile: Profile
    is_baseline: bool = False
    #: the grid point alone (empty for the baseline)
    point: dict[str, Any] = field(default_factory=dict, hash=False)


def _value_slug(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value).replace("-", "m")
    if isinstance(value, float):
        return repr(value).replace("-", "m").replace(".", "p").replace("+", "")
    if isinstance(value, list | tuple):
        return "-".join(_value_slug(v) for v in value) or "none"
    return re.sub(r"[^A-Za-z0-9]+", "-", str(value)).strip("-") or "x"


def config_key(point: Mapping[str, Any]) -> str:
    """A stable, profile-name-safe key of a grid point: ``num_gpu60_num_ctx256_temperature0p6``.

    Floats write "." as "p" and "-" as "m"; keys longer than 64 characters are cut and end in a hash.
    """
    if not point:
        return BASELINE_KEY
    key = "_".join(f"{name}{_value_slug(value)}" for name, value in point.items())
    key = re.sub(r"[^A-Za-z0-9_.-]", "-", key)
    if len(key) > 64 or not NAME_PATTERN.match(key):
        digest = format(hash_text(key), "08x")
        key = f"{key[:55].rstrip('_.-') or 'c'}_{digest}"
    return key


def hash_text(text: str) -> int:
    """A stable 32-bit hash (FNV-1a) of text: the same on every run, unlike hash()."""
    value = 0x811C9DC5
    for byte in text.encode("utf-8"):
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def _describe(point: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={format_value(v)}" for k, v in point.items())


def expand_grid(
    defn: SweepDefinition, base: Profile | None = None, store: ProfileStore | None = None
) -> list[SweepConfig]:
    """Every configuration, in a fixed order: the baseline first (when included), then the grid points
    of ``itertools.product`` over the grid's keys in file order.

    ``base`` is the base profile; by default ``store`` (or a fresh ProfileStore) resolves
    ``defn.base_profile``. The baseline configuration's profile is the base profile itself.
    """
    if base is None:
        try:
            base = (store or ProfileStore()).get(defn.base_profile)
        except ProfileError as exc:
            raise SweepError(f"sweep '{defn.name}': base_profile: {exc}") from None
    configs: list[SweepConfig] = []
    if defn.include_baseline:
        configs.append(SweepConfig(BASELINE_KEY, dict(base.options), base, True, {}))
    seen = {c.key for c in configs}
    names = list(defn.grid)
    for values in itertools.product(*(defn.grid[n] for n in names)):
        point = dict(zip(names, values, strict=True))
        key = config_key(point)
        if key in seen:  # two string values that slug alike
            key = next(f"{key[:60]}_{i}" for i in itertools.count(2) if f"{key[:60]}_{i}" not in seen)
        seen.add(key)
        options = {**base.options, **point}
        description = f"sweep '{defn.name}': {_describe(point)}"
        if base.options and base.name != BASELINE_PROFILE:
            description += f" over profile '{base.name}'"
        try:
            profile = Profile(key, description, options)
        except ProfileError as exc:
            raise SweepError(f"sweep '{defn.name}': configuration {key}: {exc}") from None
        configs.append(SweepConfig(key, dict(profile.options), profile, False, point))
    return configs


# -- the plan --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PlannedRun:
    """One call of the sweep, in the order it will be made."""

    key: str
    #: 1-based number among the configuration's calls of its kind (warm-up k, or measured run i)
    run: int
    #: 0-based position among all calls of the sweep
    position: int
    warmup: bool
    #: 1-based visit of the configuration this call belongs to (always 1 unless interleaved)
    visit: int = 1


@dataclass(frozen=True, slots=True)
class _Step:
    """One BenchRunner session: a configuration's visit."""

    key: str
    visit: int
    visits: int
    runs: int
    warmup: int


def execution_order(defn: SweepDefinition, configs: Sequence[SweepConfig]) -> list[str]:
    """The configuration keys in the order they run: as expanded, or shuffled with ``defn.seed``."""
    keys = [c.key for c in configs]
    if defn.order == "shuffled":
        if defn.seed is None:
            raise SweepError(f"sweep '{defn.name}': order 'shuffled' needs a seed")
        random.Random(defn.seed).shuffle(keys)
    return keys


def _steps(defn: SweepDefinition, order: Sequence[str], visits_done: Mapping[str, int]) -> list[_Step]:
    """The sessions still to run, in order, skipping visits already done."""
    if defn.order == "interleaved":
        return [
            _Step(key, v, defn.runs, 1, defn.warmup if v == 1 else 0)
            for v in range(1, defn.runs + 1)
            for key in order
            if visits_done.get(key, 0) < v
        ]
    return [_Step(key, 1, 1, defn.runs, defn.warmup) for key in order if visits_done.get(key, 0) < 1]


def plan(defn: SweepDefinition, configs: Sequence[SweepConfig]) -> list[PlannedRun]:
    """Every call of the sweep in order.

    sequential: each configuration's warm-ups then its runs, configuration after configuration.
    shuffled: the same, with the configurations shuffled by ``defn.seed`` (a configuration's calls stay
    together, so its warm-up still precedes its runs). interleaved: round-robin, one measured call per
    configuration per step (warm-ups on the first visit only), so drift spreads evenly; every visit
    switches options, so every visit starts with a reload.
    """
    out: list[PlannedRun] = []
    for step in _steps(defn, execution_order(defn, configs), {}):
        for k in range(step.warmup):
            out.append(PlannedRun(step.key, k + 1, len(out), True, step.visit))
        for i in range(step.runs):
            number = step.visit if defn.order == "interleaved" else i + 1
            out.append(PlannedRun(step.key, number, len(out), False, step.visit))
    return out


# -- events ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SweepStarted:
    sweep_id: str
    configs: list[str]
    runs_per_config: int
    path: Path | None = None
    order: str = "sequential"
    #: configurations still to run (fewer than len(configs) when resuming)
    pending: int = 0


@dataclass(frozen=True, slots=True)
class ConfigStarted:
    """A configuration's session is about to start (one per visit in interleaved order)."""

    index: int
    """0-based position among this run's sessions."""
    total: int
    key: str
    options: dict[str, Any]
    visit: int = 1
    visits: int = 1


@dataclass(frozen=True, slots=True)
class ConfigFinished:
    index: int
    key: str
    session_id: str | None
    status: str
    """The configuration's status after this session: pending, partial, done or failed."""
    reload_load_ms: float | None = None


@dataclass(frozen=True, slots=True)
class SweepFinished:
    record: SweepRecord


SweepEvent = RunEvent | SweepStarted | ConfigStarted | ConfigFinished | SweepFinished


# -- the record ------------------------------------------------------------------------------------
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
        alive = w.get("host") == socket.gethostname() and _is_int(w.get("pid")) and _pid_alive(w["pid"])
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


# -- running ---------------------------------------------------------------------------------------
def _new_sweep_id(name: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{safe_slug(name, 40)}-{secrets.token_hex(2)}"


def _first_load_ms(session: Session) -> float | None:
    return session.runs[0].metrics.load_ms if session.runs else None


def _tag_session(path: Path, sweep_id: str, key: str, visit: int, visits: int, label: str) -> None:
    """Mark a finished session as part of a sweep: a label and a ``[sweep]`` table in its manifest."""
    manifest = read_manifest(path)
    manifest.label = " ".join(label.split())[:80]
    manifest.sweep = SweepTag(id=sweep_id, key=key, visit=visit, visits=visits)
    atomic_write_text(path / MANIFEST, tomli_w.dumps(manifest.to_toml_dict()))


class SweepRunner:
    """Runs a sweep (or the rest of one): one BenchRunner session per configuration (per visit when
    interleaved), the record saved after each. ``cancel()`` may be called from any thread.

    Interleaved order cannot append calls to an open session (BenchRunner runs a whole session), so each
    visit is its own one-run session, labelled and tagged with the sweep; the results pool a
    configuration's visits.
    """

    def __init__(
        self,
        defn: SweepDefinition,
        sessions_root: Path,
        endpoint: str = DEFAULT_URL,
        model: str = "",
        emit: Callable[[Any], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        nvml_module: Any | None = None,
        prompt: str | None = None,
        timeouts: Timeouts | None = None,
        *,
        store: ProfileStore | None = None,
        base: Profile | None = None,
        api: Literal["generate", "chat"] = "generate",
        keep_alive: str | int = "30m",
        ps_wait_s: float = 60.0,
        record: SweepRecord | None = None,
    ) -> None:
        if defn.order == "shuffled" and defn.seed is None:
            defn = dataclasses.replace(defn, seed=secrets.randbelow(2**31))
        self.defn = defn
        self.sessions_root = Path(sessions_root)
        self.endpoint = endpoint
        self.model = model
        self._emit = emit or (lambda _event: None)
        self._transport = transport
        self._nvml_module = nvml_module
        self.timeouts = timeouts or Timeouts()
        self.api = api
        self.keep_alive = keep_alive
        self.ps_wait_s = ps_wait_s
        if prompt:
            self.prompt_label, self.prompt = "custom", prompt
        else:
            try:
                self.prompt_label, self.prompt = resolve_prompt(defn.prompt_preset, defn.prompt)
            except KeyError as exc:
                raise SweepError(str(exc.args[0])) from None
        self._cancel = threading.Event()
        self._current: BenchRunner | None = None
        self._scope: anyio.CancelScope | None = None
        self.record = record
        self._configs: dict[str, SweepConfig] = {}
        if record is None:
            self._configs = {c.key: c for c in expand_grid(defn, base, store)}

    @classmethod
    def from_record(
        cls,
        path: Path,
        emit: Callable[[Any], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        nvml_module: Any | None = None,
        timeouts: Timeouts | None = None,
        endpoint: str | None = None,
    ) -> SweepRunner:
        """A runner that finishes the sweep recorded at ``path`` (its folder or sweep.json): the
        configurations not done yet, with the recorded options, prompt, endpoint and model."""
        record = load_sweep_record(path)
        if record.status == "complete":
            raise SweepError(f"sweep {record.id} is already complete")
        t, d = record.timeouts, Timeouts()
        recorded = Timeouts(
            t.get("connect_s", d.connect_s), t.get("first_byte_s", d.first_byte_s), t.get("idle_s", d.idle_s)
        )
        runner = cls(
            record.definition,
            record.sessions_root,
            endpoint or record.endpoint,
            record.model,
            emit,
            transport,
            nvml_module,
            record.prompt,
            timeouts or recorded,
            api="chat" if record.api == "chat" else "generate",
            keep_alive=record.keep_alive,
            ps_wait_s=record.ps_wait_s,
            record=record,
        )
        runner.prompt_label = record.prompt_label
        for c in record.configs:
            profile_name = c.profile_name or c.key
            try:
                profile = Profile(profile_name, f"sweep '{record.definition.name}'", c.options)
            except ProfileError as exc:
                raise SweepError(f"{record.path}: configuration {c.key}: {exc}") from None
            runner._configs[c.key] = SweepConfig(
                c.key, dict(profile.options), profile, c.is_baseline, c.point
            )
        return runner

    def cancel(self) -> None:
        self._cancel.set()
        current = self._current
        if current is not None:
            current.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def _new_record(self) -> SweepRecord:
        defn = self.defn
        configs = list(self._configs.values())
        sweep_id = _new_sweep_id(defn.name)
        t = self.timeouts
        return SweepRecord(
            id=sweep_id,
            path=self.sessions_root / SWEEPS_DIRNAME / sweep_id,
            definition=defn,
            endpoint=self.endpoint,
            model=self.model,
            prompt=self.prompt,
            prompt_label=self.prompt_label,
            configs=[
                ConfigRecord(c.key, dict(c.options), c.is_baseline, c.profile.name, dict(c.point))
                for c in configs
            ],
            run_order=execution_order(defn, configs),
            created_at=now_iso(),
            api=self.api,
            keep_alive=self.keep_alive,
            timeouts={"connect_s": t.connect_s, "first_byte_s": t.first_byte_s, "idle_s": t.idle_s},
            ps_wait_s=self.ps_wait_s,
        )

    async def run(self) -> SweepRecord:
        """Run every configuration not done yet; the record is on disk after each one.

        Raises ChimeraError (one line) when the endpoint or model cannot be reached before anything
        starts; a fatal error later stops the sweep, saved as ``failed`` with the reason, and is raised.
        """
        self._emit(PhaseChanged(f"connecting to {self.endpoint}"))
        async with await open_client(self.endpoint, "auto", self.timeouts, self._transport) as client:
            await client.probe()
            model = (await find_model(client, self.model)).name
            if self.record is None:
                self.record = self._new_record()
                self.record.model = model
                try:
                    self.record.path.mkdir(parents=True, exist_ok=False)
                    atomic_write_text(self.record.path / RECORD_TOML, sweep_to_toml(self.defn))
                except OSError as exc:
                    raise SweepError(
                        f"cannot create sweep folder {self.record.path}: {exc.strerror or exc}"
                    ) from None
            record = self.record
            record.status, record.error, record.finished_at = "running", None, None
            record.writer = {"pid": os.getpid(), "host": socket.gethostname()}
            record.save()
            by_key = {c.key: c for c in record.configs}
            steps = _steps(self.defn, record.run_order, {c.key: c.visits_done for c in record.configs})
            self._emit(
                SweepStarted(
                    record.id,
                    list(record.run_order),
                    self.defn.runs,
                    record.path,
                    self.defn.order,
                    len({s.key for s in steps}),
                )
            )
            failure: ChimeraError | None = None
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._watch_cancel)
                try:
                    failure = await self._run_steps(client, model, steps, by_key)
                finally:
                    tg.cancel_scope.cancel()
        if failure is not None:
            record.status, record.error = "failed", str(failure)
        elif self.cancelled:
            record.status = "cancelled"
        else:
            record.status = "complete" if all(c.status == "done" for c in record.configs) else "partial"
        record.finished_at = now_iso()
        record.save()
        self._emit(SweepFinished(record))
        if failure is not None:
            raise failure
        return record

    async def _run_steps(
        self, client: BenchClient, model: str, steps: list[_Step], by_key: dict[str, ConfigRecord]
    ) -> ChimeraError | None:
        record = self.record
        assert record is not None
        previous: Profile | None = None
        for index, step in enumerate(steps):
            if self.cancelled:
                break
            if index > 0 and self.defn.cooldown_s > 0:
                self._emit(PhaseChanged(f"cooling down {self.defn.cooldown_s:g} s between configurations"))
                await self._guarded(anyio.sleep(self.defn.cooldown_s))
                if self.cancelled:
                    break
            cfg = self._configs[step.key]
            crec = by_key[step.key]
            self._emit(ConfigStarted(index, len(steps), step.key, dict(cfg.options), step.visit, step.visits))
            spec = self._spec(cfg, model, step)
            reasons = reload_reason(previous, cfg.profile)
            if index == 0 and not reasons:
                reasons = ["first configuration of the run (the options loaded before are unknown)"]
            previous = cfg.profile
            reload_ms = None if self.defn.cold else await self._timed_preload(client, spec)
            if self.cancelled:
                break
            runner = BenchRunner(spec, self.sessions_root, self._emit, self._transport, self._nvml_module)
            self._current = runner
            if self.cancelled:
                runner.cancel()
            try:
                session = await runner.run()
            except ChimeraError as exc:
                crec.status, crec.error = "failed", str(exc)
                record.save()
                self._emit(ConfigFinished(index, step.key, None, crec.status))
                return exc
            finally:
                self._current = None
            first = _first_load_ms(session)
            if session.status == "complete":
                crec.session_ids.append(session.id)
                crec.visits_done += 1
                crec.reload_load_ms.append(first if self.defn.cold else reload_ms)
                crec.first_call_load_ms.append(first)
                if step.visit == 1:
                    crec.reload_reason = reasons
                crec.status = "done" if crec.visits_done >= step.visits else "partial"
                crec.error = None
            else:
                crec.discarded_session_ids.append(session.id)
                if session.status == "failed":
                    crec.status = "failed"
                    crec.error = session.manifest.result_or_empty.error or "the session failed"
                else:
                    crec.status = "partial" if crec.visits_done else "pending"
            visit_text = f" (visit {step.visit}/{step.visits})" if step.visits > 1 else ""
            with contextlib.suppress(SessionError, OSError, ValueError):
                _tag_session(
                    session.path,
                    record.id,
                    step.key,
                    step.visit,
                    step.visits,
                    f"{self.defn.name} · {step.key}{visit_text}",
                )
            record.save()
            self._emit(ConfigFinished(index, step.key, session.id, crec.status, _last_reload(crec)))
        return None

    def _spec(self, cfg: SweepConfig, model: str, step: _Step) -> BenchSpec:
        return BenchSpec(
            model=model,
            profile=cfg.profile,
            prompt=self.prompt,
            prompt_label=self.prompt_label,
            endpoint=self.endpoint,
            runs=step.runs,
            warmup=step.warmup,
            cold=self.defn.cold,
            api=self.api,
            keep_alive=self.keep_alive,
            num_predict=self.defn.num_predict,
            timeouts=self.timeouts,
            ps_wait_s=self.ps_wait_s,
        )

    async def _timed_preload(self, client: BenchClient, spec: BenchSpec) -> float | None:
        """Apply the configuration's options with an empty request, timed by the client: the reload
        (Ollama's load reply carries no durations). None when it failed (the session then says why)."""
        self._emit(PhaseChanged(f"loading {spec.model} with {spec.profile.name}'s options"))
        t0 = time.perf_counter_ns()
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                if self.cancelled:
                    scope.cancel()
                await client.load(spec.api, spec.model, spec.request_options(), spec.keep_alive)
        except ChimeraError:
            return None
        finally:
            self._scope = None
        if scope.cancelled_caught:
            return None
        return round((time.perf_counter_ns() - t0) / 1e6, 3)

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


def _last_reload(crec: ConfigRecord) -> float | None:
    """The last recorded reload time of a configuration."""
    return crec.reload_load_ms[-1] if crec.reload_load_ms else None


def run_sweep_sync(runner: SweepRunner) -> SweepRecord:
    """Run a sweep to completion on a fresh event loop in the calling thread (the TUI's worker)."""
    return anyio.run(runner.run)


async def resume_sweep(
    record_path: Path,
    emit: Callable[[Any], None] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    nvml_module: Any | None = None,
    timeouts: Timeouts | None = None,
) -> SweepRecord:
    """Finish the sweep recorded at ``record_path``: run the configurations not yet done."""
    runner = SweepRunner.from_record(record_path, emit, transport, nvml_module, timeouts)
    return await runner.run()


# -- results ---------------------------------------------------------------------------------------
def _metric_spec(metric: str) -> MetricSpec:
    if metric in METRICS:
        return MetricSpec.of(metric)  # direction, label and unit from the one catalogue
    return MetricSpec(metric, metric, "", "higher" if metric.endswith("rate") else "lower")


_TTFT = _metric_spec("ttft_ms")


@dataclass(frozen=True)
class RankRow:
    """One configuration's results against the baseline."""

    rank: int
    key: str
    options: dict[str, Any] = field(hash=False)
    is_baseline: bool
    #: measured successful runs where the ranking metric is present
    n: int
    #: the ranking metric (server decode rate by default)
    summary: Summary
    ttft: Summary
    delta_pct: float | None
    ttft_delta_pct: float | None
    p_value: float | None
    verdict: str
    ttft_p_value: float | None
    ttft_verdict: str
    metric: str = "server_decode_rate"
    #: every metric's summary over the measured runs
    aggregates: dict[str, Summary] = field(default_factory=dict, hash=False)
    reload_load_ms: float | None = None
    notes: tuple[str, ...] = ()

    @property
    def mean(self) -> float | None:
        return self.summary.mean

    @property
    def sd(self) -> float | None:
        return self.summary.stddev

    @property
    def cv_pct(self) -> float | None:
        return self.summary.cv_pct

    @property
    def mean_ttft_ms(self) -> float | None:
        return self.ttft.mean


def _session_options(session: Session) -> dict[str, Any]:
    return session.manifest.profile_options


def _delta_pct(base: Summary | None, other: Summary) -> float | None:
    if base is None or base.mean is None or other.mean is None or base.mean == 0:
        return None
    return (other.mean - base.mean) / abs(base.mean) * 100


def _notes(record: SweepRecord | None, key: str) -> tuple[tuple[str, ...], float | None]:
    if record is None:
        return (), None
    try:
        crec = record.config(key)
    except KeyError:
        return (), None
    defn = record.definition
    notes: list[str] = []
    if defn.cold:
        notes.append("cold: every call includes a load")
    elif defn.order == "interleaved":
        notes.append("interleaved: every measured call follows a reload")
    elif defn.warmup == 0 and crec.reload_reason:
        notes.append("no warm-up: first call follows a reload")
    if crec.status != "done":
        visits = defn.runs if defn.order == "interleaved" else 1
        notes.append(f"{crec.status}: {crec.visits_done} of {visits} session(s) counted")
    values = [v for v in crec.reload_load_ms if v is not None]
    return tuple(notes), (sum(values) / len(values) if values else None)


def rank(
    sweep_sessions: Mapping[str, Session | Sequence[Session]],
    baseline_key: str | None = BASELINE_KEY,
    metric: str = "server_decode_rate",
    *,
    record: SweepRecord | None = None,
    alpha: float = 0.05,
    resamples: int = 10_000,
    seed: int = 0,
) -> list[RankRow]:
    """Rank configurations by the mean of ``metric`` (best first: highest rate / lowest latency), each
    with its verdict against the baseline (compare.verdict: "faster", "slower", "within noise",
    "too few runs"; "baseline" for the baseline itself, "no baseline" without one).

    ``sweep_sessions`` maps a configuration key to its session (or its visits' sessions, pooled);
    ``record`` adds each configuration's reload time and notes.
    """
    spec = _metric_spec(metric)
    pooled = {
        key: value if isinstance(value, Session) else pool_sessions(list(value))
        for key, value in sweep_sessions.items()
    }
    base = pooled.get(baseline_key) if baseline_key is not None else None
    base_values = values_for(base, metric) if base is not None else []
    base_ttft_values = values_for(base, "ttft_ms") if base is not None else []
    base_summary = summarize(base_values) if base is not None else None
    base_ttft = summarize(base_ttft_values) if base is not None else None
    unranked: list[RankRow] = []
    for key, session in pooled.items():
        values = values_for(session, metric)
        ttft_values = values_for(session, "ttft_ms")
        summary, ttft = summarize(values), summarize(ttft_values)
        is_base = base is not None and key == baseline_key
        if is_base:
            p = tp = None
            v = tv = "baseline"
        elif base is None or base_summary is None or base_ttft is None:
            p = tp = None
            v = tv = "no baseline"
        else:
            p = permutation_p_value(base_values, values, resamples, seed)
            tp = permutation_p_value(base_ttft_values, ttft_values, resamples, seed)
            v = verdict(spec, base_summary, summary, p, alpha)
            tv = verdict(_TTFT, base_ttft, ttft, tp, alpha)
        notes, reload_ms = _notes(record, key)
        unranked.append(
            RankRow(
                rank=0,
                key=key,
                options=_session_options(session),
                is_baseline=is_base,
                n=summary.n,
                summary=summary,
                ttft=ttft,
                delta_pct=None if is_base else _delta_pct(base_summary, summary),
                ttft_delta_pct=None if is_base else _delta_pct(base_ttft, ttft),
                p_value=p,
                verdict=v,
                ttft_p_value=tp,
                ttft_verdict=tv,
                metric=metric,
                aggregates=dict(session.aggregates),
                reload_load_ms=reload_ms,
                notes=notes,
            )
        )
    sign = -1.0 if spec.better == "higher" else 1.0
    ordered = sorted(unranked, key=lambda r: (r.mean is None, sign * r.mean if r.mean is not None else 0.0))
    return [dataclasses.replace(r, rank=i + 1) for i, r in enumerate(ordered)]


def success_rate(rows: Sequence[RankRow]) -> tuple[int, int, float | None]:
    """``(beat, total, pct)``: how many non-baseline configurations are significantly faster than the
    baseline (verdict "faster"), out of how many, as a percentage (None when there are none).

    The honest form of TR111's "optimization success rate": a configuration counts only when the
    difference passes the comparison test, not whenever its mean happens to be higher.
    """
    others = [r for r in rows if not r.is_baseline]
    beat = sum(1 for r in others if r.verdict == "faster")
    return beat, len(others), (beat / len(others) * 100 if others else None)


@dataclass(frozen=True)
class HeatMap:
    """A metric over two options: ``cells[y][x]`` is the mean over the matching configurations, or None."""

    x_option: str
    y_option: str
    metric: str
    x_values: list[Any]
    y_values: list[Any]
    cells: list[list[float | None]]
    #: how many configurations each cell averages (more than 1 when an option outside x, y, fixed varies)
    counts: list[list[int]]
    fixed: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        fixed = ", ".join(f"{k}={format_value(v)}" for k, v in self.fixed.items())
        return f"{self.metric} by {self.y_option} × {self.x_option}" + (f" ({fixed})" if fixed else "")


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, int | float):
        return (1, value)
    return (2, str(value))


def heatmap(
    rows: Sequence[RankRow],
    x_option: str,
    y_option: str,
    metric: str = "server_decode_rate",
    fixed: Mapping[str, Any] | None = None,
) -> HeatMap:
    """The mean of ``metric`` for each (y, x) pair of option values over the non-baseline rows whose
    options match ``fixed`` (e.g. num_gpu × num_ctx with ``fixed={"temperature": 0.6}``)."""
    fixed = dict(fixed or {})
    chosen = [
        r
        for r in rows
        if not r.is_baseline
        and x_option in r.options
        and y_option in r.options
        and all(r.options.get(k) == v for k, v in fixed.items())
    ]
    xs = sorted({_freeze(r.options[x_option]) for r in chosen}, key=_sort_key)
    ys = sorted({_freeze(r.options[y_option]) for r in chosen}, key=_sort_key)
    sums = [[0.0] * len(xs) for _ in ys]
    counts = [[0] * len(xs) for _ in ys]
    for r in chosen:
        summary = r.aggregates.get(metric) or (r.summary if metric == r.metric else None)
        if metric == "ttft_ms" and summary is None:
            summary = r.ttft
        if summary is None or summary.mean is None:
            continue
        yi, xi = ys.index(_freeze(r.options[y_option])), xs.index(_freeze(r.options[x_option]))
        sums[yi][xi] += summary.mean
        counts[yi][xi] += 1
    cells: list[list[float | None]] = [
        [sums[y][x] / counts[y][x] if counts[y][x] else None for x in range(len(xs))] for y in range(len(ys))
    ]
    return HeatMap(
        x_option, y_option, metric, [_thaw(v) for v in xs], [_thaw(v) for v in ys], cells, counts, fixed
    )


def heatmaps_by(rows: Sequence[RankRow], x: str, y: str, metric: str = "server_decode_rate") -> list[HeatMap]:
    """Heat maps of ``metric`` over options ``x`` and ``y``: one per value of the other option that varies
    (e.g. one per temperature); a single map (cells averaged) when none or several others vary."""
    others: dict[str, set[Any]] = {}
    for row in rows:
        if row.is_baseline:
            continue
        for key, value in row.options.items():
            if key not in (x, y):
                others.setdefault(key, set()).add(_freeze(value))
    varying = {k: sorted(v, key=_sort_key) for k, v in others.items() if len(v) > 1}
    if len(varying) != 1:
        return [heatmap(rows, x, y, metric)]
    ((name, values),) = varying.items()
    return [heatmap(rows, x, y, metric, {name: _thaw(v)}) for v in values]


def smallest_p_value(runs: int) -> float:
    """The smallest two-sided p the exact permutation test can give for ``runs`` vs ``runs`` values
    (2 / C(2n, n); 1.0 under 2 runs): with 3 runs it is 0.1, so nothing can be significant at 0.05."""
    if runs < 2:
        return 1.0
    return min(1.0, 2 / math.comb(2 * runs, runs))


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _thaw(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def best_profile(
    rows: Sequence[RankRow], name: str, description: str | None = None, significant_only: bool = False
) -> Profile:
    """The top-ranked configuration's options as an unsaved user profile (ProfileStore.save_user).

    With ``significant_only``, the top configuration whose verdict is "faster" than the baseline;
    SweepError when there is none.
    """
    candidates = [r for r in rows if r.mean is not None]
    if significant_only:
        candidates = [r for r in candidates if r.verdict == "faster"]
    if not candidates:
        what = "significantly faster than the baseline" if significant_only else "with measured runs"
        raise SweepError(f"no configuration {what}: no best profile")
    best = min(candidates, key=lambda r: r.rank)
    if description is None:
        spec = _metric_spec(best.metric)
        text = f"best of a sweep: {best.key}, {best.mean:.2f} {spec.unit or best.metric}".rstrip()
        if best.delta_pct is not None:
            text += f", {best.delta_pct:+.2f}% vs baseline ({best.verdict})"
        description = text
    try:
        return Profile(name, description, dict(best.options))
    except ProfileError as exc:
        raise SweepError(str(exc)) from None
