"""Server-sent events from OpenAI-compatible servers → the same typed events as the Ollama stream.

The reader (`backends/openai.py`) splits the body with `LineSplitter` (each line stamped by the read
that completed it) and feeds each line to an `OpenAIStreamDecoder`. One `data:` line is one frame
(every server we know sends single-line frames; multi-line `data` events are not joined). Comment
lines (`:` ping) and other fields (`event:`, `id:`, `retry:`) are ignored; llama.cpp's non-standard
`error: {...}` line is read as an error frame, like `data: {"error": ...}`.

Server-side figures end up in Ollama's names and units (nanoseconds) so `compute_call_metrics` works
unchanged: llama.cpp `timings` (milliseconds) → durations and counts; otherwise `usage` → counts only.
The raw `usage`/`timings`/`finish_reason` are kept under `final["openai"]`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from chimera_tui.core.backends.stream import (
    DoneEvent,
    ErrorEvent,
    StampedLine,
    StreamEvent,
    TokenEvent,
    parse_json_line,
)
from chimera_tui.core.errors import StreamError

DONE_SENTINEL = "[DONE]"
NS_PER_MS = 1_000_000


def sse_field(raw: bytes) -> tuple[str, bytes] | None:
    """One SSE line as (field, value), or None for a comment or an empty line.

    Per the SSE spec a single space after the colon is dropped; a trailing CR (CRLF framing) too.
    """
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if not raw.strip() or raw.startswith(b":"):
        return None
    name, sep, value = raw.partition(b":")
    if not sep:
        return name.decode("utf-8", "replace").strip(), b""
    if value.startswith(b" "):
        value = value[1:]
    return name.decode("utf-8", "replace").strip(), value


def error_message(error: Any) -> str:
    """The human text of an OpenAI-style error (`{"message": ..., "type": ...}`, a string, or other)."""
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        message = error.get("message")
        kind = error.get("type")
        if isinstance(message, str) and message:
            return f"{message} ({kind})" if isinstance(kind, str) and kind else message
    return json.dumps(error)[:500]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def to_ollama_final(
    finish_reason: str | None,
    usage: dict[str, Any] | None,
    timings: dict[str, Any] | None,
    model: str | None = None,
) -> dict[str, Any]:
    """An Ollama-style final dict (counts, durations in ns) from OpenAI usage and llama.cpp timings.

    timings (llama.cpp): prompt_eval_count = prompt_n + cache_n, prompt_eval_cached_count = cache_n,
    prompt_eval_duration = prompt_ms, eval_count = predicted_n, eval_duration = predicted_ms. Without
    timings, usage gives the counts (prompt_tokens, completion_tokens, and
    prompt_tokens_details.cached_tokens as prompt_eval_cached_count) and no durations. A cached count
    the server does not send stays absent (unknown), never 0. total_duration and load_duration are never
    known, so they stay absent (absent means unknown here, not zero).
    """
    final: dict[str, Any] = {"done": True}
    if model:
        final["model"] = model
    if finish_reason:
        final["done_reason"] = finish_reason
    if usage:
        prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
        if prompt is not None:
            final["prompt_eval_count"] = prompt
        if completion is not None:
            final["eval_count"] = completion
        details = usage.get("prompt_tokens_details")
        cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else None
        if cached is not None:
            final["prompt_eval_cached_count"] = cached
    if timings:
        prompt_n, cache_n = _count(timings.get("prompt_n")), _count(timings.get("cache_n"))
        predicted_n = _count(timings.get("predicted_n"))
        prompt_ms, predicted_ms = _number(timings.get("prompt_ms")), _number(timings.get("predicted_ms"))
        if prompt_n is not None:
            final["prompt_eval_count"] = prompt_n + (cache_n or 0)
        if prompt_n is not None and cache_n is not None:
            final["prompt_eval_cached_count"] = cache_n
        if prompt_ms is not None:
            final["prompt_eval_duration"] = round(prompt_ms * NS_PER_MS)
        if predicted_n is not None:
            final["eval_count"] = predicted_n
        if predicted_ms is not None:
            final["eval_duration"] = round(predicted_ms * NS_PER_MS)
    raw: dict[str, Any] = {"finish_reason": finish_reason}
    if usage is not None:
        raw["usage"] = usage
    if timings is not None:
        raw["timings"] = timings
    final["openai"] = raw
    return final


@dataclass(slots=True)
class OpenAIStreamDecoder:
    """Folds SSE lines of a `/v1/chat/completions` or `/v1/completions` stream into events.

    `feed` yields TokenEvents (thinking before content within a chunk; a role-only or empty delta
    yields nothing), an ErrorEvent for an error frame, and a DoneEvent at `data: [DONE]`. `end` is
    for a stream that closed without [DONE]: it gives the DoneEvent when a finish_reason or usage
    chunk had arrived (stamped by that chunk's read), else None.
    """

    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    timings: dict[str, Any] | None = None
    model: str | None = None
    #: stamp of the read that brought the last JSON chunk
    t_last_chunk_ns: int | None = None
    chunks: int = 0
    done: bool = False
    #: field names of lines that were neither data nor error (event:, id:, retry:, unknown)
    ignored_fields: set[str] = field(default_factory=set)

    def feed(self, line: StampedLine) -> list[StreamEvent]:
        parsed = sse_field(line.raw)
        if parsed is None:
            return []
        name, value = parsed
        if name == "error":  # llama.cpp: `error: {"code": ..., "message": ..., "type": ...}`
            return [ErrorEvent(line.t_ns, self._error_text(line.t_ns, value))]
        if name != "data":
            self.ignored_fields.add(name[:20])
            return []
        if value.strip() == DONE_SENTINEL.encode():
            self.done = True
            return [DoneEvent(line.t_ns, self.final())]
        obj = parse_json_line(StampedLine(line.t_ns, value))
        self.chunks += 1
        self.t_last_chunk_ns = line.t_ns
        if "error" in obj:
            return [ErrorEvent(line.t_ns, error_message(obj["error"]))]
        return self._chunk(line.t_ns, obj)

    def end(self) -> DoneEvent | None:
        """The stream closed: complete if a finish_reason or usage had come, else None."""
        if self.t_last_chunk_ns is None or (self.finish_reason is None and self.usage is None):
            return None
        return DoneEvent(self.t_last_chunk_ns, self.final())

    def final(self) -> dict[str, Any]:
        return to_ollama_final(self.finish_reason, self.usage, self.timings, self.model)

    def _error_text(self, t_ns: int, value: bytes) -> str:
        try:
            obj = parse_json_line(StampedLine(t_ns, value))
        except StreamError:
            return value.decode("utf-8", "replace")
        return error_message(obj.get("error", obj))

    def _chunk(self, t_ns: int, obj: dict[str, Any]) -> list[StreamEvent]:
        if isinstance(obj.get("model"), str):
            self.model = obj["model"]
        if isinstance(obj.get("usage"), dict):
            self.usage = obj["usage"]
        if isinstance(obj.get("timings"), dict):
            self.timings = obj["timings"]
        choices = obj.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return []
        choice = choices[0]  # we never ask for n > 1
        if isinstance(choice.get("finish_reason"), str):
            self.finish_reason = choice["finish_reason"]
        events: list[StreamEvent] = []
        delta = choice.get("delta")
        if isinstance(delta, dict):
            # one of the two names (vLLM sent both, with the same text, while renaming them)
            thinking = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(thinking, str) and thinking:
                events.append(TokenEvent(t_ns, thinking, "thinking"))
            content = delta.get("content")
        else:
            content = choice.get("text")
        if isinstance(content, str) and content:
            events.append(TokenEvent(t_ns, content, "content"))
        return events
