"""Per-call metrics, computed from a stamped stream (client side) and the final chunk (server side).

Every field is either the number its definition in docs/metrics.md gives, or None when the data
for it is missing. Nothing is ever 0 for "unknown", and nothing divides by zero.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


@dataclass(slots=True)
class CallTrace:
    """What the reader recorded for one call. All times are perf_counter_ns() on this machine."""

    t_send_ns: int
    #: arrival time of every chunk that carried text (thinking or content), in order
    token_times_ns: list[int] = field(default_factory=list)
    #: arrival time of the first content (not thinking) chunk
    t_first_content_ns: int | None = None
    t_end_ns: int | None = None
    content_tokens: int = 0
    thinking_tokens: int = 0
    #: every field of the final `done` line as the server sent it (durations in ns)
    final: dict[str, Any] | None = None

    def add_token(self, t_ns: int, kind: str) -> None:
        self.token_times_ns.append(t_ns)
        if kind == "content":
            self.content_tokens += 1
            if self.t_first_content_ns is None:
                self.t_first_content_ns = t_ns
        else:
            self.thinking_tokens += 1


@dataclass(slots=True)
class CallMetrics:
    """The metrics of one call. See docs/metrics.md for each definition and its side (client/server)."""

    # client-measured
    ttft_ms: float | None = None
    ttft_content_ms: float | None = None
    e2e_ms: float | None = None
    client_decode_rate: float | None = None
    token_count: int | None = None
    thinking_token_count: int | None = None
    itl_p50_ms: float | None = None
    itl_p95_ms: float | None = None
    itl_p99_ms: float | None = None
    itl_max_ms: float | None = None
    # server-measured (from the final chunk)
    server_decode_rate: float | None = None
    prompt_eval_rate: float | None = None
    load_ms: float | None = None
    prompt_eval_ms: float | None = None
    eval_ms: float | None = None
    total_ms: float | None = None
    queue_gap_ms: float | None = None
    eval_count: int | None = None
    prompt_eval_count: int | None = None
    done_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallMetrics:
        """From a saved record; a value of the wrong type (a hand-edited or foreign file) is None."""
        out = cls()
        for f in fields(cls):
            value = data.get(f.name)
            if f.name == "done_reason":
                out.done_reason = value if isinstance(value, str) else None
            elif _finite_number(value):
                setattr(out, f.name, value)
        return out


def _finite_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


#: metrics that are aggregated across runs (numeric fields of CallMetrics)
NUMERIC_METRICS: tuple[str, ...] = tuple(f.name for f in fields(CallMetrics) if f.name != "done_reason")

#: which side measured each metric, its label, unit and direction: core/measure/catalogue.py


#: Plausibility (docs/metrics.md): no real call reports a duration over a day, more than 10^9 tokens or
#: a server rate over 10^6 tok/s. Such a value is treated as missing and noted; the raw value stays in
#: the run's `server_final`.
MAX_PLAUSIBLE_DURATION_NS = 86_400 * NS_PER_S
MAX_PLAUSIBLE_COUNT = 1_000_000_000
MAX_PLAUSIBLE_RATE = 1_000_000.0
DURATION_FIELDS = ("load_duration", "prompt_eval_duration", "eval_duration", "total_duration")
COUNT_FIELDS = ("eval_count", "prompt_eval_count")


def _server_value(final: dict[str, Any] | None, key: str) -> tuple[int | None, str | None]:
    """A duration/count from the final chunk, or None and why (None, None when simply absent)."""
    if final is None or key not in final:
        return None, None
    value = final[key]
    if not _finite_number(value):
        return None, f"server field {key} is not a number ({str(value)[:40]!r})"
    if value < 0:
        return None, f"server field {key} is negative ({value:g})"
    limit = MAX_PLAUSIBLE_DURATION_NS if key in DURATION_FIELDS else MAX_PLAUSIBLE_COUNT
    if value > limit:
        return None, f"server field {key} = {value:g} is implausible (> {limit:g})"
    return int(value), None


def _server_values(final: dict[str, Any] | None) -> tuple[dict[str, int | None], dict[str, str]]:
    """Every duration and count of the final chunk, and why each unusable one was refused."""
    values: dict[str, int | None] = {}
    problems: dict[str, str] = {}
    for key in (*DURATION_FIELDS, *COUNT_FIELDS):
        values[key], problem = _server_value(final, key)
        if problem:
            problems[key] = problem
    return values, problems


def _server_ns(final: dict[str, Any] | None, key: str) -> int | None:
    """A duration/count from the final chunk: None when absent, not a number, negative or implausible."""
    return _server_value(final, key)[0]


def _plausible_rate(rate: float | None) -> float | None:
    return None if rate is None or rate > MAX_PLAUSIBLE_RATE else rate


def server_final_notes(final: dict[str, Any] | None) -> list[str]:
    """One sentence per server figure that was unusable and is therefore missing from the metrics."""
    if final is None:
        return []
    v, problems = _server_values(final)
    notes = [f"{problem}: treated as missing" for problem in problems.values()]
    for label, count_key, duration_key in (
        ("server decode rate", "eval_count", "eval_duration"),
        ("prompt-eval rate", "prompt_eval_count", "prompt_eval_duration"),
    ):
        rate = _rate(v[count_key], v[duration_key])
        if rate is not None and rate > MAX_PLAUSIBLE_RATE:
            limit = f"{MAX_PLAUSIBLE_RATE:g} tok/s"
            notes.append(f"{label} {rate:.3g} tok/s is implausible (> {limit}): treated as missing")
    eval_count = v["eval_count"]
    if eval_count is not None and eval_count > 1 and "eval_duration" not in final:
        notes.append("the server sent eval_count without eval_duration: no server decode rate")
    return notes


def _ms(ns: int | None) -> float | None:
    return None if ns is None else ns / NS_PER_MS


def _rate(count: int | None, duration_ns: int | None) -> float | None:
    if count is None or duration_ns is None or duration_ns <= 0:
        return None
    return count / (duration_ns / NS_PER_S)


def compute_call_metrics(trace: CallTrace) -> CallMetrics:
    """Derive every per-call metric from a trace. Partial traces (failed runs) give partial metrics."""
    m = CallMetrics()
    times = trace.token_times_ns
    if times:
        m.ttft_ms = (times[0] - trace.t_send_ns) / NS_PER_MS
    if trace.t_first_content_ns is not None:
        m.ttft_content_ms = (trace.t_first_content_ns - trace.t_send_ns) / NS_PER_MS
    if trace.t_end_ns is not None and trace.final is not None:
        m.e2e_ms = (trace.t_end_ns - trace.t_send_ns) / NS_PER_MS
    m.token_count = trace.content_tokens + trace.thinking_tokens
    m.thinking_token_count = trace.thinking_tokens
    if len(times) >= 2:
        span = times[-1] - times[0]
        if span > 0:
            m.client_decode_rate = (len(times) - 1) / (span / NS_PER_S)
        gaps = np.diff(np.asarray(times, dtype=np.int64)) / NS_PER_MS
        p50, p95, p99 = np.percentile(gaps, [50, 95, 99])
        m.itl_p50_ms, m.itl_p95_ms, m.itl_p99_ms = float(p50), float(p95), float(p99)
        m.itl_max_ms = float(gaps.max())

    final = trace.final
    v, problems = _server_values(final)
    load, prompt_eval = v["load_duration"], v["prompt_eval_duration"]
    eval_, total = v["eval_duration"], v["total_duration"]
    m.eval_count, m.prompt_eval_count = v["eval_count"], v["prompt_eval_count"]
    m.load_ms, m.prompt_eval_ms, m.eval_ms, m.total_ms = _ms(load), _ms(prompt_eval), _ms(eval_), _ms(total)
    m.server_decode_rate = _plausible_rate(_rate(m.eval_count, eval_))
    m.prompt_eval_rate = _plausible_rate(_rate(m.prompt_eval_count, prompt_eval))
    if final is not None and total is not None and not problems.keys() & set(DURATION_FIELDS):
        # A duration missing from the final chunk was zero (omitempty), so it counts as 0 here; the
        # gap is only reported when the total is known and no component was present but unusable.
        gap = total - (load or 0) - (prompt_eval or 0) - (eval_ or 0)
        m.queue_gap_ms = gap / NS_PER_MS if gap >= 0 else None
    if final is not None and isinstance(final.get("done_reason"), str):
        m.done_reason = final["done_reason"]
    return m
