"""Per-call metrics, computed from a stamped stream (client side) and the final chunk (server side).

Every field is either the number its definition in docs/metrics.md gives, or None when the data
for it is missing. Nothing is ever 0 for "unknown", and nothing divides by zero.
"""

from __future__ import annotations

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
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


#: metrics that are aggregated across runs (numeric fields of CallMetrics)
NUMERIC_METRICS: tuple[str, ...] = tuple(f.name for f in fields(CallMetrics) if f.name != "done_reason")

#: which side measured each metric
CLIENT_METRICS = frozenset(
    {
        "ttft_ms",
        "ttft_content_ms",
        "e2e_ms",
        "client_decode_rate",
        "token_count",
        "thinking_token_count",
        "itl_p50_ms",
        "itl_p95_ms",
        "itl_p99_ms",
        "itl_max_ms",
    }
)


def _server_ns(final: dict[str, Any] | None, key: str) -> int | None:
    """A duration/count from the final chunk: None when absent, not a number, or negative."""
    if final is None:
        return None
    value = final.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return int(value)


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
    load = _server_ns(final, "load_duration")
    prompt_eval = _server_ns(final, "prompt_eval_duration")
    eval_ = _server_ns(final, "eval_duration")
    total = _server_ns(final, "total_duration")
    m.eval_count = _server_ns(final, "eval_count")
    m.prompt_eval_count = _server_ns(final, "prompt_eval_count")
    m.load_ms, m.prompt_eval_ms, m.eval_ms, m.total_ms = _ms(load), _ms(prompt_eval), _ms(eval_), _ms(total)
    m.server_decode_rate = _rate(m.eval_count, eval_)
    m.prompt_eval_rate = _rate(m.prompt_eval_count, prompt_eval)
    if final is not None and total is not None:
        # A duration missing from the final chunk was zero (omitempty), so it counts as 0 here;
        # the gap itself is only reported when the total is known.
        gap = total - (load or 0) - (prompt_eval or 0) - (eval_ or 0)
        m.queue_gap_ms = gap / NS_PER_MS if gap >= 0 else None
    if final is not None and isinstance(final.get("done_reason"), str):
        m.done_reason = final["done_reason"]
    return m
