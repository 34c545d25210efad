"""Grid expansion and ordering: the configurations of a sweep and the order their calls run in."""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chimera_tui.core.errors import ProfileError
from chimera_tui.core.run.sweep.definition import BASELINE_KEY, SweepDefinition, SweepError
from chimera_tui.core.store.profiles import (
    BASELINE_PROFILE,
    NAME_PATTERN,
    Profile,
    ProfileStore,
    format_value,
)


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
class Step:
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


def pending_steps(defn: SweepDefinition, order: Sequence[str], visits_done: Mapping[str, int]) -> list[Step]:
    """The sessions still to run, in order, skipping visits already done."""
    if defn.order == "interleaved":
        return [
            Step(key, v, defn.runs, 1, defn.warmup if v == 1 else 0)
            for v in range(1, defn.runs + 1)
            for key in order
            if visits_done.get(key, 0) < v
        ]
    return [Step(key, 1, 1, defn.runs, defn.warmup) for key in order if visits_done.get(key, 0) < 1]


def plan(defn: SweepDefinition, configs: Sequence[SweepConfig]) -> list[PlannedRun]:
    """Every call of the sweep in order.

    sequential: each configuration's warm-ups then its runs, configuration after configuration.
    shuffled: the same, with the configurations shuffled by ``defn.seed`` (a configuration's calls stay
    together, so its warm-up still precedes its runs). interleaved: round-robin, one measured call per
    configuration per step (warm-ups on the first visit only), so drift spreads evenly; every visit
    switches options, so every visit starts with a reload.
    """
    out: list[PlannedRun] = []
    for step in pending_steps(defn, execution_order(defn, configs), {}):
        for k in range(step.warmup):
            out.append(PlannedRun(step.key, k + 1, len(out), True, step.visit))
        for i in range(step.runs):
            number = step.visit if defn.order == "interleaved" else i + 1
            out.append(PlannedRun(step.key, number, len(out), False, step.visit))
    return out
