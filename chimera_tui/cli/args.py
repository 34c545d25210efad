"""Argument types for argparse: each value is checked where it is parsed, so a bad one is a usage
error (exit 2) with one line naming the option and the problem, never an "unexpected" error later.
Numbers must be finite and in range; endpoints parse as Ollama parses OLLAMA_HOST."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

#: a week: no timeout or deadline beyond it means anything but "never"
MAX_SECONDS = 7 * 24 * 3600.0


def endpoint(text: str) -> str:
    """An endpoint URL (core/backends/endpoint.py): user-info is kept in memory only."""
    from chimera_tui.core.backends.endpoint import InvalidEndpoint, parse_endpoint

    try:
        return parse_endpoint(text)
    except InvalidEndpoint as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _short(text: str) -> str:
    from chimera_tui.safe_text import sanitize_line

    text = sanitize_line(text)
    return text if len(text) <= 40 else text[:39] + "…"


def _num(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def number(
    low: float, high: float, *, low_open: bool = False, integer: bool = False
) -> Callable[[str], float]:
    """A finite number in [low, high] (low excluded when `low_open`)."""

    def parse(text: str) -> float:
        try:
            value: float = int(text) if integer else float(text)
        except (ValueError, OverflowError):
            kind = "a whole number" if integer else "a number"
            raise argparse.ArgumentTypeError(f"'{_short(text)}' is not {kind}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"'{_short(text)}' is not a finite number")
        if value < low or value > high or (low_open and value == low):
            lower = f"more than {_num(low)}" if low_open else f"at least {_num(low)}"
            raise argparse.ArgumentTypeError(f"{_short(text)} is out of range: {lower}, at most {_num(high)}")
        return value

    parse.__name__ = "integer" if integer else "number"  # argparse names the type in its messages
    return parse


def count(low: int, high: int) -> Callable[[str], int]:
    """A whole number in [low, high]."""
    parse = number(low, high, integer=True)

    def parse_int(text: str) -> int:
        return int(parse(text))

    parse_int.__name__ = "integer"
    return parse_int


#: runs or warm-up runs of one session: more is a typo, not a benchmark
MAX_RUNS = 100_000
#: Ollama's num_predict: -1 (no limit), -2 (fill the context), or a token count
num_predict = count(-2, 10_000_000)

#: a timeout or deadline in seconds: finite, > 0, at most a week
seconds = number(0.0, MAX_SECONDS, low_open=True)


def port(text: str) -> int:
    """A TCP port to listen on: 0 (any free port) to 65535."""
    return int(number(0, 65535, integer=True)(text))
