"""Profiles: named TOML files of Ollama options, validated against what Ollama accepts.

A profile file::

    name = "gpu60_ctx256_temp0p6"
    description = "TR111 sweep: 60 GPU layers, 256 context, temperature 0.6"
    [options]
    num_gpu = 60
    num_ctx = 256
    temperature = 0.6

Built-in profiles live in the repository's top-level ``profiles/`` directory and are read-only;
user profiles live in :func:`user_profiles_dir` and may shadow built-ins of the same name.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import tomli_w

from chimera_tui.core.errors import ProfileError
from chimera_tui.core.store.atomic import atomic_write_text
from chimera_tui.core.store.bundled import bundled_dir
from chimera_tui.core.store.safe_read import MAX_MANIFEST_BYTES, read_bytes

__all__ = [
    "BASELINE_PROFILE",
    "LOAD_TIME_OPTIONS",
    "NAME_PATTERN",
    "OPTION_REMOVED_IN",
    "OPTION_SPECS",
    "REMOVED_OPTION_SPECS",
    "OptionChange",
    "OptionSpec",
    "OptionType",
    "Profile",
    "ProfileStore",
    "builtin_profiles_dir",
    "diff_options",
    "format_value",
    "load_profile",
    "reload_reason",
    "reload_warning",
    "user_profiles_dir",
    "validate_options",
]

#: the built-in profile listed first: no options, Ollama's own defaults
BASELINE_PROFILE = "baseline_default"
#: a profile name, also its file stem
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TOP_LEVEL_KEYS = ("name", "description", "think", "options")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class OptionType(StrEnum):
    """The value type of an Ollama option."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STR = "str"
    STR_LIST = "list[str]"


@dataclass(frozen=True)
class OptionSpec:
    """One Ollama option: its type, inclusive bounds (None = unbounded) and whether it is load-time."""

    name: str
    type: OptionType
    minimum: float | None = None
    maximum: float | None = None
    load_time: bool = False
    help: str = ""

    def expectation(self) -> str:
        """What a valid value looks like, e.g. ``an integer >= 1`` or ``a number between 0 and 1``."""
        if self.type is OptionType.BOOL:
            return "true or false"
        if self.type is OptionType.STR:
            return "a string"
        if self.type is OptionType.STR_LIST:
            return "a list of strings"
        noun = "an integer" if self.type is OptionType.INT else "a number"
        lo, hi = self.minimum, self.maximum
        if lo is not None and hi is not None:
            return f"{noun} between {lo:g} and {hi:g}"
        if lo is not None:
            return f"{noun} >= {lo:g}"
        if hi is not None:
            return f"{noun} <= {hi:g}"
        return noun

    def coerce(self, value: Any) -> Any:
        """Return the typed value, or raise ValueError (the caller words the message)."""
        if self.type is OptionType.BOOL:
            if not isinstance(value, bool):
                raise ValueError
            return value
        if self.type is OptionType.STR:
            if not isinstance(value, str):
                raise ValueError
            return value
        if self.type is OptionType.STR_LIST:
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise ValueError
            return list(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError
        if self.type is OptionType.INT:
            if not isinstance(value, int) or not INT64_MIN <= value <= INT64_MAX:
                raise ValueError  # Ollama's options are Go int64s
            number: int | float = value
        else:
            try:
                number = float(value)
            except OverflowError:  # an integer too large for a float
                raise ValueError from None
            if not math.isfinite(number):
                raise ValueError
        if (self.minimum is not None and number < self.minimum) or (
            self.maximum is not None and number > self.maximum
        ):
            raise ValueError
        return number


def _spec(
    name: str, type_: OptionType, lo: float | None, hi: float | None, load: bool, help_: str
) -> OptionSpec:
    return OptionSpec(name, type_, lo, hi, load, help_)


_I, _F, _B, _L = OptionType.INT, OptionType.FLOAT, OptionType.BOOL, OptionType.STR_LIST

#: every option current Ollama accepts in a request's ``options``, load-time ones first
OPTION_SPECS: dict[str, OptionSpec] = {
    s.name: s
    for s in (
        _spec("num_ctx", _I, 1, None, True, "context window in tokens"),
        _spec("num_batch", _I, 1, None, True, "prompt-processing batch size"),
        _spec("num_gpu", _I, -1, None, True, "layers offloaded to the GPU (-1 = automatic)"),
        _spec("main_gpu", _I, 0, None, True, "GPU index for small tensors / single-GPU work"),
        _spec("use_mmap", _B, None, None, True, "memory-map the model file"),
        _spec("num_thread", _I, 0, None, True, "CPU threads (0 = let the runtime decide)"),
        _spec("num_predict", _I, -2, None, False, "tokens to generate (-1 = unlimited, -2 = fill context)"),
        _spec("temperature", _F, 0, 5, False, "sampling temperature"),
        _spec("top_p", _F, 0, 1, False, "nucleus sampling probability mass"),
        _spec("top_k", _I, 0, None, False, "sample from the k most likely tokens (0 = off)"),
        _spec("min_p", _F, 0, 1, False, "minimum probability relative to the top token"),
        _spec("typical_p", _F, 0, 1, False, "locally typical sampling"),
        _spec("repeat_last_n", _I, -1, None, False, "tokens looked back for repetition (-1 = num_ctx)"),
        _spec("repeat_penalty", _F, 0, 5, False, "penalty for repeated tokens"),
        _spec("presence_penalty", _F, -2, 2, False, "penalty for tokens already present"),
        _spec("frequency_penalty", _F, -2, 2, False, "penalty scaled by token frequency"),
        _spec("seed", _I, None, None, False, "random seed for reproducible sampling"),
        _spec("num_keep", _I, -1, None, False, "prompt tokens kept when the context shifts"),
        _spec("stop", _L, None, None, False, "stop sequences"),
    )
}

#: options Ollama once accepted and now silently ignores (only a server-log "invalid option"), with
#: the version that dropped each (ollama PRs #10574, #10581 and earlier). A profile may still carry
#: them (old profiles, reproductions); the runner flags them before the run (core/backends/option_support).
REMOVED_OPTION_SPECS: dict[str, OptionSpec] = {
    s.name: s
    for s in (
        _spec("numa", _B, None, None, True, "NUMA-aware loading (ignored since Ollama 0.3.4)"),
        _spec("low_vram", _B, None, None, True, "low-VRAM mode (ignored since Ollama 0.7.0)"),
        _spec("f16_kv", _B, None, None, True, "f16 KV cache (ignored since Ollama 0.7.0)"),
        _spec("use_mlock", _B, None, None, True, "lock the model in RAM (ignored since Ollama 0.7.0)"),
        _spec("logits_all", _B, None, None, False, "return all logits (ignored since Ollama 0.7.0)"),
        _spec("vocab_only", _B, None, None, True, "load the vocabulary only (ignored since Ollama 0.7.0)"),
        _spec("embedding_only", _B, None, None, True, "embeddings only (ignored since Ollama 0.1.28)"),
        _spec("tfs_z", _F, 0, None, False, "tail-free sampling (ignored since Ollama 0.5.2)"),
        _spec("penalize_newline", _B, None, None, False, "penalise newlines (ignored since Ollama 0.5.5)"),
        _spec("mirostat", _I, 0, 2, False, "Mirostat sampling (ignored since Ollama 0.7.0)"),
        _spec("mirostat_eta", _F, 0, None, False, "Mirostat learning rate (ignored since Ollama 0.7.0)"),
        _spec("mirostat_tau", _F, 0, None, False, "Mirostat target entropy (ignored since Ollama 0.7.0)"),
    )
}

#: the Ollama version from which each removed option is ignored
OPTION_REMOVED_IN: dict[str, str] = {
    "embedding_only": "0.1.28",
    "numa": "0.3.4",
    "tfs_z": "0.5.2",
    "penalize_newline": "0.5.5",
    **dict.fromkeys(
        (
            "low_vram",
            "f16_kv",
            "use_mlock",
            "logits_all",
            "vocab_only",
            "mirostat",
            "mirostat_eta",
            "mirostat_tau",
        ),
        "0.7.0",
    ),
}

#: options that make Ollama reload the model when they change
LOAD_TIME_OPTIONS: frozenset[str] = frozenset(n for n, s in OPTION_SPECS.items() if s.load_time)


def _got(value: Any) -> str:
    """The offending value, shortened: a profile may hold a megabyte string or a 5000-digit number."""
    try:
        shown = repr(value)
    except ValueError:  # an int too long to print
        shown = f"<{value.bit_length()}-bit integer>" if isinstance(value, int) else "<unprintable>"
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{shown} ({type(value).__name__})"


def _key(key: Any) -> str:
    """A key as the user would recognise it, on one line: 'num_ctx', or its repr when odd."""
    text = f"'{key}'" if isinstance(key, str) and key.isprintable() else repr(key)
    return text if len(text) <= 60 else text[:57] + "..."


def validate_options(options: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Check and type ``options``; raise ProfileError naming ``source``, the key and the expectation."""
    if not isinstance(options, Mapping):
        raise ProfileError(f"{source}: 'options' must be a table ([options]), got {_got(options)}")
    result: dict[str, Any] = {}
    for key, value in options.items():
        spec = OPTION_SPECS.get(key) or REMOVED_OPTION_SPECS.get(key)
        if spec is None:
            close = difflib.get_close_matches(str(key), OPTION_SPECS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "known: " + ", ".join(OPTION_SPECS)
            raise ProfileError(f"{source}: unknown option {_key(key)} ({hint})")
        try:
            result[key] = spec.coerce(value)
        except ValueError:
            expected = spec.expectation()
            if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
                expected += " that fits in 64 bits"
            message = f"{source}: option {_key(key)} must be {expected}, got {_got(value)}"
            raise ProfileError(message) from None
    return result


def _check_name(name: Any, source: str) -> str:
    if not isinstance(name, str):
        raise ProfileError(f"{source}: 'name' must be a string, got {_got(name)}")
    if not name.strip():
        raise ProfileError(f"{source}: 'name' must not be empty")
    if not NAME_PATTERN.match(name):
        raise ProfileError(
            f"{source}: 'name' {name!r} is not valid: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def format_value(value: Any) -> str:
    """Show an option value as it would appear in TOML (``true``, ``0.6``, ``["a", "b"]``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return tomli_w.dumps({"v": value}).partition("=")[2].strip()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return repr(value)


@dataclass(frozen=True)
class Profile:
    """A named, validated set of Ollama options. Construction validates the name and options."""

    name: str
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    path: Path | None = None
    builtin: bool = False
    #: `think` sent with every request: False, True or "low"/"medium"/"high"/"max"; None = not sent
    think: bool | str | None = None

    def __post_init__(self) -> None:
        source = str(self.path) if self.path is not None else f"profile '{self.name}'"
        _check_name(self.name, source)
        object.__setattr__(self, "think", check_think(self.think, source))
        if not isinstance(self.description, str):
            raise ProfileError(f"{source}: 'description' must be a string, got {_got(self.description)}")
        object.__setattr__(self, "options", validate_options(self.options, source))

    def load_time_options(self) -> dict[str, Any]:
        """The options that make Ollama reload the model when they change."""
        return {k: v for k, v in self.options.items() if k in LOAD_TIME_OPTIONS}

    def to_toml(self) -> str:
        """The profile as TOML text; :func:`load_profile` reads it back unchanged."""
        data: dict[str, Any] = {"name": self.name, "description": self.description}
        if self.think is not None:
            data["think"] = self.think
        return tomli_w.dumps({**data, "options": self.options})

    def with_options(self, **changes: Any) -> Profile:
        """A copy with options changed (``None`` removes one); validated, unsaved (no path, not built-in)."""
        options = {**self.options, **changes}
        options = {k: v for k, v in options.items() if v is not None}
        return dataclasses.replace(self, options=options, path=None, builtin=False)

    def option_lines(self) -> list[tuple[str, str, bool]]:
        """``(name, value text, is_load_time)`` per option, in OPTION_SPECS order, for a preview."""
        order = {name: i for i, name in enumerate(OPTION_SPECS)}
        return [
            (k, format_value(v), k in LOAD_TIME_OPTIONS)
            for k, v in sorted(self.options.items(), key=lambda kv: order.get(kv[0], len(order)))
        ]


def load_profile(path: Path, builtin: bool = False) -> Profile:
    """Read and validate one profile file; every problem raises ProfileError naming the file."""
    path = Path(path)
    try:
        raw = read_bytes(path, MAX_MANIFEST_BYTES)
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read profile: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProfileError(f"{path}: invalid TOML: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: invalid TOML: {exc}") from None
    except (ValueError, RecursionError) as exc:  # a 5000-digit number, arrays nested 5000 deep
        raise ProfileError(f"{path}: invalid TOML: {' '.join(str(exc).split())[:120]}") from None
    for key in data:
        if key in _TOP_LEVEL_KEYS:
            continue
        if key in OPTION_SPECS:
            raise ProfileError(f"{path}: option '{key}' must be under [options], not at the top level")
        allowed = ", ".join(_TOP_LEVEL_KEYS)
        raise ProfileError(f"{path}: unknown top-level key {_key(key)} (allowed: {allowed})")
    if "name" not in data:
        raise ProfileError(f"{path}: missing required key 'name' (a string)")
    name = _check_name(data["name"], str(path))
    options = data.get("options", {})
    if not isinstance(options, dict):
        raise ProfileError(f"{path}: 'options' must be a table ([options]), got {_got(options)}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ProfileError(f"{path}: 'description' must be a string, got {_got(description)}")
    think = check_think(data.get("think"), str(path))
    return Profile(name, description, validate_options(options, str(path)), path, builtin, think)


#: the levels `think` takes besides true/false (Ollama: true means "medium"; "max" since #15787)
THINK_LEVELS = ("low", "medium", "high", "max")


def parse_think(text: str | bool | None) -> bool | str | None:
    """`think` from a CLI or profile value: false/off, true/on, low/medium/high/max; None = unset."""
    if text is None or isinstance(text, bool):
        return text
    value = text.strip().lower()
    if value in ("true", "on", "yes"):
        return True
    if value in ("false", "off", "no"):
        return False
    if value in THINK_LEVELS:
        return value
    raise ValueError(f"think must be false, true, low, medium, high or max, not {text!r}")


def check_think(value: Any, source: str) -> bool | str | None:
    """A profile's `think`: true/false or one of THINK_LEVELS; anything else raises ProfileError."""
    if value is None or isinstance(value, bool) or value in THINK_LEVELS:
        return value
    levels = ", ".join(THINK_LEVELS)
    raise ProfileError(f"{source}: 'think' must be true, false or one of {levels}, got {_got(value)}")


def reload_reason(old: Profile | None, new: Profile) -> list[str]:
    """Load-time options that differ, as ``"num_ctx 2048→512"`` (``default`` where unset).

    ``old=None`` means the model runs with Ollama's defaults. An unset option differs from a set one
    (Ollama falls back to its default), except num_gpu: unset or -1 (automatic) never forces a reload,
    as in Ollama's scheduler.
    """
    before = old.options if old is not None else {}
    reasons: list[str] = []
    for name in OPTION_SPECS:
        if name not in LOAD_TIME_OPTIONS:
            continue
        a, b = before.get(name), new.options.get(name)
        if name == "num_gpu" and (b is None or b < 0):
            continue
        if a != b:
            shown_a = "default" if a is None else format_value(a)
            shown_b = "default" if b is None else format_value(b)
            reasons.append(f"{name} {shown_a}→{shown_b}")
    return reasons


def reload_warning(old: Profile | None, new: Profile) -> str | None:
    """One line such as ``changing num_ctx 2048→512 makes Ollama reload the model``, or None."""
    reasons = reload_reason(old, new)
    return f"changing {', '.join(reasons)} makes Ollama reload the model" if reasons else None


@dataclass(frozen=True, slots=True)
class OptionChange:
    """One option that differs between two option sets: added, removed or changed."""

    name: str
    kind: str
    """ "added", "removed" or "changed"."""
    old: Any
    new: Any
    load_time: bool

    def text(self) -> str:
        """``+ seed = 42``, ``− top_k (was 40)``, ``num_ctx 2048 → 4096``; load-time ones say so."""
        if self.kind == "added":
            text = f"+ {self.name} = {format_value(self.new)}"
        elif self.kind == "removed":
            text = f"− {self.name} (was {format_value(self.old)})"
        else:
            text = f"{self.name} {format_value(self.old)} → {format_value(self.new)}"
        return text + (" (load-time)" if self.load_time else "")


def diff_options(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[OptionChange]:
    """The options that differ from ``old`` to ``new``, in OPTION_SPECS order (unknown keys last)."""
    order = {name: i for i, name in enumerate(OPTION_SPECS)}
    names = sorted(set(old) | set(new), key=lambda n: (order.get(n, len(order)), n))
    changes: list[OptionChange] = []
    for name in names:
        a, b = old.get(name), new.get(name)
        if name in old and name in new and a == b:
            continue
        kind = "added" if name not in old else "removed" if name not in new else "changed"
        changes.append(OptionChange(name, kind, a, b, name in LOAD_TIME_OPTIONS))
    return changes


def builtin_profiles_dir() -> Path:
    """The built-in profiles: packed in the wheel, or the checkout's top-level ``profiles/``."""
    return bundled_dir("profiles")


def user_profiles_dir() -> Path:
    """``$CHIMERA_TUI_PROFILES``, else the user config folder's ``profiles/`` (not created here)."""
    from chimera_tui.places import user_profiles_dir as configured

    return configured()


class ProfileStore:
    """Built-in (read-only) and user profiles; invalid files land in :attr:`errors`, never crash."""

    def __init__(self, builtin_dir: Path | None = None, user_dir: Path | None = None) -> None:
        self.builtin_dir = Path(builtin_dir) if builtin_dir is not None else builtin_profiles_dir()
        self.user_dir = Path(user_dir) if user_dir is not None else user_profiles_dir()
        self._errors: list[tuple[Path, str]] = []

    @property
    def errors(self) -> list[tuple[Path, str]]:
        """``(file, message)`` for each file the last listing could not load."""
        return list(self._errors)

    def _scan_dir(self, directory: Path, builtin: bool, out: dict[str, Profile]) -> None:
        try:
            files = sorted(p for p in directory.glob("*.toml") if p.is_file())
        except OSError:
            return
        for path in files:
            try:
                profile = load_profile(path, builtin=builtin)
            except ProfileError as exc:
                self._errors.append((path, str(exc)))
                continue
            if profile.name != path.stem:
                self._errors.append(
                    (path, f"{path}: name '{profile.name}' must match the file name ('{path.stem}')")
                )
                continue
            out[profile.name] = profile

    def _scan(self) -> dict[str, Profile]:
        self._errors = []
        found: dict[str, Profile] = {}
        self._scan_dir(self.builtin_dir, True, found)
        self._scan_dir(self.user_dir, False, found)  # user profiles shadow built-ins
        return found

    def list(self) -> list[Profile]:
        """All valid profiles: baseline_default first, then by name."""
        return sorted(self._scan().values(), key=lambda p: (p.name != BASELINE_PROFILE, p.name))

    def get(self, name: str) -> Profile:
        """The profile called ``name``, or the file ``name`` if it is a path to a .toml file."""
        found = self._scan()
        if name in found:
            return found[name]
        candidate = Path(name).expanduser()
        if candidate.suffix == ".toml" and candidate.is_file():
            return load_profile(candidate)
        for path, message in self._errors:
            if path.stem == name:
                raise ProfileError(f"profile '{name}' is invalid: {message}")
        available = ", ".join(p.name for p in self.list()) or "none"
        raise ProfileError(f"unknown profile '{name}'; available: {available}")

    def _user_path(self, name: str) -> Path:
        return self.user_dir / f"{_check_name(name, 'profile')}.toml"

    def save_user(self, profile: Profile) -> Path:
        """Write ``profile`` to the user directory atomically (temp file, fsync, rename); return its path."""
        target = self._user_path(profile.name)
        try:
            atomic_write_text(target, profile.to_toml())
        except OSError as exc:
            raise ProfileError(
                f"cannot save profile '{profile.name}' to {target}: {exc.strerror or exc}"
            ) from None
        return target

    def delete_user(self, name: str) -> None:
        """Delete a user profile; built-ins are read-only."""
        target = self._user_path(name)
        if target.is_file():
            try:
                target.unlink()
            except OSError as exc:
                raise ProfileError(
                    f"cannot delete profile '{name}' ({target}): {exc.strerror or exc}"
                ) from None
            return
        if (self.builtin_dir / f"{name}.toml").is_file():
            raise ProfileError(f"profile '{name}' is built-in and read-only; save a copy under another name")
        available = ", ".join(p.name for p in self.list() if not p.builtin) or "none"
        raise ProfileError(f"unknown user profile '{name}'; user profiles: {available}")
