"""Per-call metrics, computed from a stamped stream (client side) and the final chunk (server side).

Every field is either the number its definition in docs/metrics.md gives, or None when the data
for it is missing. Nothing is ever 0 for "unknown", and nothing divides by zero.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from itertools import pairwise
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
    #: arrival time of the last content (not thinking) chunk
    t_last_content_ns: int | None = None
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
            self.t_last_content_ns = t_ns
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
    chunk_count: int | None = None
    answer_token_count: int | None = None
    answer_decode_rate: float | None = None
    tpot_ms: float | None = None
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
    prompt_cached_count: int | None = None
    prompt_processed_count: int | None = None
    prefill_rate: float | None = None
    # GPU energy (NVML, on this machine; set by the runner's GPU hook, docs/metrics.md "GPU energy")
    energy_j: float | None = None
    energy_per_token_j: float | None = None
    tokens_per_j: float | None = None
    avg_power_w: float | None = None
    energy_above_idle_j: float | None = None
    energy_per_token_above_idle_j: float | None = None
    tokens_per_j_above_idle: float | None = None
    done_reason: str | None = None
    #: what a careful reader should know about this call (FLAGS; docs/metrics.md "Flags")
    flags: list[str] = field(default_factory=list)

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
            elif f.name == "flags":
                out.flags = [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
            elif _finite_number(value, MAX_METRIC_MAGNITUDE):  # ±1e308 in a saved file: missing
                setattr(out, f.name, value)
        return out


#: no metric (ms, tokens, tok/s) comes near this; a larger saved value is hand-edited or foreign
MAX_METRIC_MAGNITUDE = 1e15


def _finite_number(value: Any, limit: float = math.inf) -> bool:
    """Not a bool, a finite number, at most `limit` in magnitude (a 400-digit integer is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value) and abs(value) <= limit
    except OverflowError:  # an int too large for a float
        return False


#: metrics that are aggregated across runs (numeric fields of CallMetrics)
NUMERIC_METRICS: tuple[str, ...] = tuple(
    f.name for f in fields(CallMetrics) if f.name not in ("done_reason", "flags")
)

#: which side measured each metric, its label, unit and direction: core/measure/catalogue.py


#: Plausibility (docs/metrics.md): no real call reports a duration over a day, more than 10^9 tokens or
#: a server rate over 10^6 tok/s. Such a value is treated as missing and noted; the raw value stays in
#: the run's `server_final`.
MAX_PLAUSIBLE_DURATION_NS = 86_400 * NS_PER_S
MAX_PLAUSIBLE_COUNT = 1_000_000_000
MAX_PLAUSIBLE_RATE = 1_000_000.0
DURATION_FIELDS = ("load_duration", "prompt_eval_duration", "eval_duration", "total_duration")
COUNT_FIELDS = ("eval_count", "prompt_eval_count", "prompt_eval_cached_count")

#: Flags (docs/metrics.md "Flags"): stored in each run's metrics, shown beside its figures.
FLAG_CLIENT_STALL = "client_stall"
FLAG_STOPPED_EARLY = "stopped_early"
FLAG_THINKING_BUDGET = "thinking_used_budget"
FLAG_COLD = "cold_when_warm_expected"
FLAG_REMOTE = "remote_model"
FLAG_PREFILL_CACHED_UNKNOWN = "prefill_may_include_cached"
FLAG_GPU_THROTTLED = "gpu_throttled"  # set by the runner's GPU hook (core/run/gpu.py)
FLAGS: tuple[str, ...] = (
    FLAG_CLIENT_STALL,
    FLAG_STOPPED_EARLY,
    FLAG_THINKING_BUDGET,
    FLAG_COLD,
    FLAG_REMOTE,
    FLAG_PREFILL_CACHED_UNKNOWN,
    FLAG_GPU_THROTTLED,
)
#: how each flag reads in tables and reports
FLAG_LABELS: dict[str, str] = {
    FLAG_CLIENT_STALL: "client stall",
    FLAG_STOPPED_EARLY: "stopped early",
    FLAG_THINKING_BUDGET: "thinking used the budget",
    FLAG_COLD: "cold (warm expected)",
    FLAG_REMOTE: "remote model",
    FLAG_PREFILL_CACHED_UNKNOWN: "prefill may include cached tokens",
    FLAG_GPU_THROTTLED: "GPU throttled",
}
#: a run's flags in a narrow table cell (the TUI's run table: "stop !early")
FLAG_SHORT: dict[str, str] = {
    FLAG_CLIENT_STALL: "stall",
    FLAG_STOPPED_EARLY: "early",
    FLAG_THINKING_BUDGET: "think-budget",
    FLAG_COLD: "cold",
    FLAG_REMOTE: "remote",
    FLAG_PREFILL_CACHED_UNKNOWN: "cache?",
    FLAG_GPU_THROTTLED: "throttled",
}
#: client stall: a read delivering several tokens after a gap above max(this, STALL_FACTOR x median gap)
STALL_MIN_GAP_NS = 50 * NS_PER_MS
STALL_FACTOR = 10.0
#: a warm call whose server load time is above this was (re)loaded: the model was cold
COLD_LOAD_MS = 1000.0


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
    cached, count = v["prompt_eval_cached_count"], v["prompt_eval_count"]
    if cached is not None and count is not None and cached > count:
        notes.append(
            f"server field prompt_eval_cached_count ({cached}) exceeds prompt_eval_count ({count}): "
            "no processed prompt count or prefill rate"
        )
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


def _llama_cpp_timings(final: dict[str, Any] | None) -> dict[str, Any] | None:
    """llama.cpp's raw `timings` object, as the SSE decoder keeps it (`final["openai"]["timings"]`)."""
    raw = final.get("openai") if final is not None else None
    timings = raw.get("timings") if isinstance(raw, dict) else None
    return timings if isinstance(timings, dict) else None


def engine_decode_rate(timings: dict[str, Any]) -> float | None:
    """llama.cpp's own decode rate: `predicted_per_second` when sent, else (predicted_n − 1) /
    predicted_ms (the first token is sampled at the start of predicted_ms, so n tokens span n − 1
    intervals). None when neither is usable."""
    pps = _as_float(timings.get("predicted_per_second"))
    if pps is not None and pps > 0:
        return pps
    n, ms = _as_float(timings.get("predicted_n")), _as_float(timings.get("predicted_ms"))
    if n is not None and ms is not None and n >= 2 and ms > 0:
        return (n - 1) / (ms / 1000)
    return None


def _as_float(value: Any) -> float | None:
    return float(value) if _finite_number(value) else None


def read_batches(times: list[int]) -> list[tuple[int, int]]:
    """The token stamps grouped by read: (stamp, tokens delivered by that read), in order."""
    out: list[tuple[int, int]] = []
    for t in times:
        if out and out[-1][0] == t:
            out[-1] = (t, out[-1][1] + 1)
        else:
            out.append((t, 1))
    return out


def client_stalls(times: list[int]) -> list[tuple[float, int]]:
    """The reads where the reader fell behind: (gap before the read in ms, tokens it delivered).

    A stall is a read that delivers 2 or more tokens after a gap (from the previous read) longer than
    max(50 ms, 10 x the median gap between the call's reads). Needs at least 3 reads (2 gaps).
    """
    batches = read_batches(times)
    if len(batches) < 3:
        return []
    gaps = [b[0] - a[0] for a, b in pairwise(batches)]
    threshold = max(STALL_MIN_GAP_NS, STALL_FACTOR * float(np.median(gaps)))
    return [
        (gap / NS_PER_MS, batch[1])
        for gap, batch in zip(gaps, batches[1:], strict=True)
        if gap > threshold and batch[1] >= 2
    ]


def is_remote(final: dict[str, Any] | None) -> bool:
    """The server proxied the call to another host (Ollama cloud models: `remote_host`, `remote_model`,
    or a model name ending in `:cloud`)."""
    if final is None:
        return False
    if any(isinstance(final.get(k), str) and final[k] for k in ("remote_host", "remote_model")):
        return True
    model = final.get("model")
    return isinstance(model, str) and is_cloud_name(model)


def is_cloud_name(model: str) -> bool:
    """An Ollama cloud model's name: `gpt-oss:120b-cloud`, `qwen3-coder:480b-cloud`, `x:cloud`."""
    tag = model.rpartition(":")[2] if ":" in model else ""
    return tag == "cloud" or tag.endswith("-cloud")


def compute_call_metrics(
    trace: CallTrace, *, num_predict: int | None = None, expect_warm: bool = False
) -> CallMetrics:
    """Derive every per-call metric from a trace. Partial traces (failed runs) give partial metrics.

    `num_predict` is the request's output limit (for the "stopped early" flag); `expect_warm` says the
    model should have been loaded before the call (warm mode; for the "cold" flag).
    """
    m = CallMetrics()
    times = trace.token_times_ns
    if times:
        m.ttft_ms = (times[0] - trace.t_send_ns) / NS_PER_MS
    if trace.t_first_content_ns is not None:
        m.ttft_content_ms = (trace.t_first_content_ns - trace.t_send_ns) / NS_PER_MS
    if trace.t_end_ns is not None and trace.final is not None:
        m.e2e_ms = (trace.t_end_ns - trace.t_send_ns) / NS_PER_MS
    m.chunk_count = trace.content_tokens + trace.thinking_tokens
    m.token_count = m.chunk_count
    m.thinking_token_count = trace.thinking_tokens
    m.answer_token_count = trace.content_tokens
    if (
        trace.content_tokens >= 2
        and trace.t_first_content_ns is not None
        and trace.t_last_content_ns is not None
        and trace.t_last_content_ns > trace.t_first_content_ns
    ):
        span = trace.t_last_content_ns - trace.t_first_content_ns
        m.answer_decode_rate = (trace.content_tokens - 1) / (span / NS_PER_S)
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
    timings = _llama_cpp_timings(final)
    if timings is not None:
        m.server_decode_rate = _plausible_rate(engine_decode_rate(timings))
    m.prompt_eval_rate = _plausible_rate(_rate(m.prompt_eval_count, prompt_eval))
    cached = v["prompt_eval_cached_count"]
    m.prompt_cached_count = cached
    if m.prompt_eval_count is not None and cached is not None and cached <= m.prompt_eval_count:
        m.prompt_processed_count = m.prompt_eval_count - cached
        m.prefill_rate = _plausible_rate(_rate(m.prompt_processed_count, prompt_eval))
    elif m.prompt_eval_count is not None and cached is None and "prompt_eval_cached_count" not in problems:
        m.prefill_rate = m.prompt_eval_rate
        if m.prefill_rate is not None:
            m.flags.append(FLAG_PREFILL_CACHED_UNKNOWN)
    if isinstance(final, dict) and isinstance(final.get("openai"), dict) and m.eval_count is not None:
        # an OpenAI-compatible chunk may carry several tokens: count the server's tokens
        m.token_count = m.eval_count
    if m.e2e_ms is not None and m.ttft_ms is not None and m.token_count is not None and m.token_count >= 2:
        m.tpot_ms = (m.e2e_ms - m.ttft_ms) / (m.token_count - 1)
    if final is not None and total is not None and not problems.keys() & set(DURATION_FIELDS):
        # A duration missing from the final chunk was zero (omitempty), so it counts as 0 here; the
        # gap is only reported when the total is known and no component was present but unusable.
        gap = total - (load or 0) - (prompt_eval or 0) - (eval_ or 0)
        m.queue_gap_ms = gap / NS_PER_MS if gap >= 0 else None
    if final is not None and isinstance(final.get("done_reason"), str):
        m.done_reason = final["done_reason"]
    _set_flags(m, trace, num_predict, expect_warm)
    return m


def _set_flags(m: CallMetrics, trace: CallTrace, num_predict: int | None, expect_warm: bool) -> None:
    """The run flags of docs/metrics.md "Flags" (FLAG_PREFILL_CACHED_UNKNOWN is set with the rate)."""
    if client_stalls(trace.token_times_ns):
        m.flags.append(FLAG_CLIENT_STALL)
    produced = m.eval_count if m.eval_count is not None else m.token_count
    if (
        m.done_reason == "stop"
        and num_predict is not None
        and num_predict > 0
        and produced is not None
        and produced < num_predict
    ):
        m.flags.append(FLAG_STOPPED_EARLY)
    if m.done_reason == "length" and trace.content_tokens == 0 and trace.thinking_tokens > 0:
        m.flags.append(FLAG_THINKING_BUDGET)
    if expect_warm and m.load_ms is not None and m.load_ms > COLD_LOAD_MS:
        m.flags.append(FLAG_COLD)
    if is_remote(trace.final):
        m.flags.append(FLAG_REMOTE)
    m.flags.sort(key=FLAGS.index)


def flag_notes(trace: CallTrace) -> list[str]:
    """Sentences explaining a run's client stalls (where and how large), for the run's notes."""
    return [
        f"client stall: {tokens} tokens arrived in one read after a {gap:.1f} ms gap"
        for gap, tokens in client_stalls(trace.token_times_ns)
    ]
