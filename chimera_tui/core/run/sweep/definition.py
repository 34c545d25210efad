"""Sweep definitions: the validated SweepDefinition, its TOML form, and the built-in sweeps."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import tomli_w

from chimera_tui.core.errors import ChimeraError, ProfileError
from chimera_tui.core.run.prompts import PRESETS
from chimera_tui.core.store.bundled import bundled_dir
from chimera_tui.core.store.profiles import (
    BASELINE_PROFILE,
    NAME_PATTERN,
    OPTION_SPECS,
    format_value,
    validate_options,
)

Order = Literal["sequential", "shuffled", "interleaved"]
ORDERS: tuple[str, ...] = get_args(Order)

#: the key of the base profile's own configuration
BASELINE_KEY = "baseline"
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
