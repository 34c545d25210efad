"""Ollama wire rules: Go durations for keep_alive, option type checks, load-time options, timestamps."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, Final


class RequestError(Exception):
    """A request the real server would refuse: HTTP `status` with body `{"error": message}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


#: keep_alive absent or null: keep the runner's current (sticky) value, 5m for a new load.
UNSET: Final = object()
#: keep_alive as nanoseconds; None means forever (any negative value).
KeepAlive = int | None
DEFAULT_KEEP_ALIVE_NS: Final = 5 * 60 * 1_000_000_000

_UNIT_NS: Final = {"ns": 1, "us": 1e3, "µs": 1e3, "μs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}
_NUMBER = re.compile(r"(\d*)(\.\d*)?")
_UNIT = re.compile(r"[^\d.]*")


def parse_go_duration(text: str) -> int:
    """Go's time.ParseDuration, in nanoseconds, with Go's error messages."""
    rest, negative = text, False
    if rest[:1] in ("+", "-"):
        negative, rest = rest[0] == "-", rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f"time: invalid duration {json.dumps(text)}")
    total = 0.0
    while rest:
        number = _NUMBER.match(rest)
        assert number is not None  # the pattern matches the empty string
        whole, frac = number.group(1), number.group(2) or ""
        if not whole and len(frac) <= 1:
            raise ValueError(f"time: invalid duration {json.dumps(text)}")
        rest = rest[number.end() :]
        unit = _UNIT.match(rest).group()  # type: ignore[union-attr]
        if not unit:
            raise ValueError(f"time: missing unit in duration {json.dumps(text)}")
        if unit not in _UNIT_NS:
            raise ValueError(f"time: unknown unit {json.dumps(unit)} in duration {json.dumps(text)}")
        rest = rest[len(unit) :]
        total += float(whole + frac) * _UNIT_NS[unit]
    return -int(total) if negative else int(total)


def parse_keep_alive(value: Any) -> KeepAlive | object:
    """`api.Duration.UnmarshalJSON`: number = seconds, string = Go duration, negative = forever.

    Returns UNSET for absent/null, None for forever, else nanoseconds. Raises RequestError(400).
    """
    if value is None:
        return UNSET
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RequestError(400, f"Unsupported type: '{_go_type(value)}'")
    if isinstance(value, str):
        try:
            ns = parse_go_duration(value)
        except ValueError as exc:
            raise RequestError(400, str(exc)) from None
    else:
        ns = -1 if value < 0 else int(value * 1e9)
    return None if ns < 0 else ns


def _go_type(value: Any) -> str:
    return {bool: "bool", list: "[]interface {}", dict: "map[string]interface {}"}.get(type(value), "string")


_INT_OPTIONS: Final = frozenset(
    [
        "num_ctx",
        "num_batch",
        "num_gpu",
        "main_gpu",
        "num_thread",
        "num_keep",
        "seed",
        "num_predict",
        "top_k",
        "repeat_last_n",
        "draft_num_predict",
    ]
)
_FLOAT_OPTIONS: Final = frozenset(
    ["temperature", "top_p", "min_p", "typical_p", "repeat_penalty", "presence_penalty", "frequency_penalty"]
)
_BOOL_OPTIONS: Final = frozenset({"use_mmap"})
_LIST_OPTIONS: Final = frozenset({"stop"})

#: Load-time (`Runner`) options and their defaults; None = automatic.
LOAD_OPTION_DEFAULTS: Final[dict[str, Any]] = {
    "num_ctx": None,
    "num_batch": 512,
    "num_gpu": -1,
    "main_gpu": 0,
    "num_thread": 0,
    "use_mmap": None,
}


def check_options(options: Any) -> dict[str, Any]:
    """`Options.FromMap`: unknown keys ignored, wrong types -> RequestError(500). Ints are truncated."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise RequestError(400, "json: cannot unmarshal into Go struct field of type map[string]interface {}")
    clean: dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if key in _INT_OPTIONS:
            if not is_number:
                raise RequestError(500, f'option "{key}" must be of type integer')
            clean[key] = int(value)
        elif key in _FLOAT_OPTIONS:
            if not is_number:
                raise RequestError(500, f'option "{key}" must be of type float32')
            clean[key] = float(value)
        elif key in _BOOL_OPTIONS:
            if not isinstance(value, bool):
                raise RequestError(500, f'option "{key}" must be of type boolean')
            clean[key] = value
        elif key in _LIST_OPTIONS:
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                raise RequestError(500, f'option "{key}" must be of type array of strings')
            clean[key] = list(value)
    return clean


def load_options(options: dict[str, Any]) -> dict[str, Any]:
    """The load-time options a request asks for, missing ones at their defaults."""
    return {key: options.get(key, default) for key, default in LOAD_OPTION_DEFAULTS.items()}


def needs_reload(loaded: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """`needsReload`: any load-time difference reloads, except that a wanted num_gpu < 0 matches anything."""
    if (wanted.get("num_gpu") or 0) < 0:
        loaded, wanted = {**loaded, "num_gpu": -1}, {**wanted, "num_gpu": -1}
    return loaded != wanted


def rfc3339(moment: datetime | None = None) -> str:
    """UTC RFC3339 with milliseconds: 2026-03-01T10:00:00.101Z."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def dumps(obj: Any) -> bytes:
    """Compact JSON, as Go's encoder writes it (without the trailing newline)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def go_json_error(exc: json.JSONDecodeError) -> str:
    """Roughly encoding/json's message for a body that does not parse."""
    if exc.pos >= len(exc.doc.rstrip()):
        return "unexpected EOF"
    char = exc.doc[exc.pos]
    return f"invalid character {char!r} looking for beginning of value"
