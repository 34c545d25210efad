"""Typed stream events, and the NDJSON line splitter that stamps each line on arrival.

The reader (`backends/ollama.py`) takes `time.perf_counter_ns()` the moment a read returns bytes and
before anything is parsed; every complete line in that read carries that stamp. A line split across
reads is stamped by the read that completed it, which is when it became usable.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from chimera_tui.core.errors import StreamError
from chimera_tui.safe_text import sanitize_line

#: A single NDJSON line longer than this is refused (a runaway or hostile server), not buffered forever.
MAX_LINE_BYTES = 16 * 1024 * 1024

TokenKind = Literal["content", "thinking"]


@dataclass(frozen=True, slots=True)
class StampedLine:
    """One complete line and the perf_counter_ns() of the read that completed it."""

    t_ns: int
    raw: bytes


@dataclass(frozen=True, slots=True)
class TokenEvent:
    """A chunk that carried text: one token for Ollama (the server emits a line per token)."""

    t_ns: int
    text: str
    kind: TokenKind


@dataclass(frozen=True, slots=True)
class DoneEvent:
    """The final `done: true` line. `final` keeps every field the server sent (durations in ns)."""

    t_ns: int
    final: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """A mid-stream `{"error": ...}` line: the HTTP status was already 200."""

    t_ns: int
    message: str


StreamEvent = TokenEvent | DoneEvent | ErrorEvent


class LineSplitter:
    """Splits a byte stream into `\\n`-terminated lines, stamping each with the completing read."""

    __slots__ = ("_buffer", "_max")

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_line_bytes

    def feed(self, t_ns: int, data: bytes) -> list[StampedLine]:
        """Add one read's bytes; return the lines it completed, all stamped `t_ns`.

        The outcome never depends on how the stream was cut into reads: the same lines come out,
        and a line longer than the limit always raises StreamError (complete or still buffered).
        """
        return [StampedLine(t_ns, line) for line in self.lines(data)]

    def lines(self, data: bytes) -> list[bytes]:
        """`feed` without the stamps: the complete, non-blank lines of one read (the reader's hot
        path, where every line of a read shares the read's stamp anyway)."""
        buffer = self._buffer
        if buffer:
            buffer += data
            if b"\n" not in data:
                self._check(len(buffer))
                return []
            complete = bytes(buffer).split(b"\n")
            size = len(buffer)
        else:  # the usual case: the previous read ended with its line
            complete = data.split(b"\n")
            size = len(data)
        rest = complete.pop()
        if rest or buffer:
            self._buffer = bytearray(rest)
        if size > self._max:  # only then can a line, or what is left, be over the limit
            for line in complete:
                self._check(len(line))
            self._check(len(rest))
        return [line for line in complete if line and not line.isspace()]

    def flush(self, t_ns: int) -> list[StampedLine]:
        """End of stream: a last line without a trailing newline still counts."""
        return [StampedLine(t_ns, line) for line in self.flush_lines()]

    def flush_lines(self) -> list[bytes]:
        """`flush` without the stamp."""
        rest, self._buffer = bytes(self._buffer), bytearray()
        return [rest] if rest.strip() else []

    def _check(self, size: int) -> None:
        if size > self._max:
            self._buffer = bytearray()
            limit = f"{self._max / (1024 * 1024):g} MiB" if self._max >= 1024 * 1024 else f"{self._max} bytes"
            raise StreamError(f"a stream line exceeded {limit} ({size} bytes); is this an Ollama server?")


def _keep_text(literal: str) -> Any:
    """A number JSON can write but a float cannot hold (1e400), or NaN/Infinity: kept as its text."""
    value = float(literal)
    return value if math.isfinite(value) else literal


#: one decoder, made once: the reader parses a line per token
_DECODER = json.JSONDecoder(parse_float=_keep_text, parse_constant=_keep_text)


#: the C scanner `raw_decode` wraps (one Python frame less per token)
_scan_once: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
#: what JSON itself counts as whitespace around a value (str.strip would take more)
_JSON_SPACE = " \t\n\r"


def parse_json_line(line: StampedLine) -> dict[str, Any]:
    """Decode one line as a JSON object, or raise StreamError saying what was wrong with it."""
    return parse_json(line.raw)


def parse_json(raw: bytes) -> dict[str, Any]:
    """`parse_json_line` for the bytes of a line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StreamError(f"stream line is not valid UTF-8 (byte {exc.start})") from None
    try:
        if text[:1] in _JSON_SPACE:  # empty, or leading whitespace: the full decoder skips it
            obj = _DECODER.decode(text)
        else:  # the usual line: the C scanner directly, then only trailing whitespace may follow
            try:
                obj, end = _scan_once(text, 0)
            except StopIteration as err:  # what raw_decode turns it into
                raise json.JSONDecodeError("Expecting value", text, err.value) from None
            if end != len(text) and text[end:].strip(_JSON_SPACE):
                raise json.JSONDecodeError("Extra data", text, end)
    except json.JSONDecodeError as exc:
        raise StreamError(f"stream line is not JSON ({exc.msg}): {_preview(text)}") from None
    except (ValueError, RecursionError) as exc:  # an integer of > 4300 digits, nesting too deep
        raise StreamError(f"stream line is not usable JSON ({_one_line(exc)}): {_preview(text)}") from None
    if type(obj) is not dict:
        raise StreamError(f"stream line is JSON but not an object: {type(obj).__name__}")
    return obj


def _preview(text: str) -> str:
    return repr(sanitize_line(text[:60]))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:120] or type(exc).__name__


def ollama_events(line: StampedLine) -> list[StreamEvent]:
    """Turn one Ollama NDJSON line (generate or chat) into events, in stream order.

    Thinking comes before content within a line. The final line may still carry text, which comes
    before its DoneEvent. Fields missing because they were zero are simply absent.
    """
    return ollama_line_events(line.t_ns, line.raw)


_NOT_FINAL = frozenset(("response", "message", "thinking", "context"))


def ollama_line_events(t_ns: int, raw: bytes) -> list[StreamEvent]:
    """`ollama_events` for a line's bytes and stamp (the reader's hot path: one call per token)."""
    obj = parse_json(raw)
    if "error" in obj:
        err = obj["error"]
        return [ErrorEvent(t_ns, err if isinstance(err, str) else json.dumps(err))]
    message = obj.get("message")
    if isinstance(message, dict):
        thinking, content = message.get("thinking"), message.get("content")
    else:
        thinking, content = obj.get("thinking"), obj.get("response")
    events: list[StreamEvent] = []
    if thinking and isinstance(thinking, str):
        events.append(TokenEvent(t_ns, thinking, "thinking"))
    if content and isinstance(content, str):
        events.append(TokenEvent(t_ns, content, "content"))
    if obj.get("done") is True:
        events.append(DoneEvent(t_ns, {k: v for k, v in obj.items() if k not in _NOT_FINAL}))
    return events
