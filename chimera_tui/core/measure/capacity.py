"""Capacity: per-level statistics of a load curve, the stopping rules, and the answer in words.

A capacity run measures one endpoint at increasing load: closed-loop concurrency levels (N streams,
each sending its next request as soon as the last ends) or open-loop arrival rates (Poisson arrivals
at λ requests/s, whatever the server does). Per level, `level_stats` gives the aggregate output
throughput (token arrivals over the level's window, with a batch-means CI), the per-stream decode
rate, TTFT p50/p95/p99, the queue wait (the server's queue gap), e2e and the errors. `stop_rule`
says after each level whether to go on; `verdict` turns the curve and the server's state into the
answer and its cause. Pure: the runner gathers the inputs (docs/metrics.md "Capacity").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from chimera_tui.core.measure.metrics import CallMetrics
from chimera_tui.core.measure.stats import Summary, summarize

Loop = Literal["closed", "open"]
LOOPS: tuple[str, ...] = ("closed", "open")
#: the default closed-loop levels (concurrent streams)
DEFAULT_LEVELS: tuple[int, ...] = (1, 2, 4, 8, 16)
#: the aggregate throughput must grow by more than this (and beyond its CI) to count as growing
MIN_GAIN_PCT = 10.0
#: sub-windows of a level whose token-arrival rates give the throughput's batch-means CI
THROUGHPUT_BINS = 5
#: a stream this much slower than at the lowest level is "slower" (compute shared)
SLOWER_PCT = 20.0
#: queue wait above this share of the e2e time means requests queue
QUEUE_SHARE_PCT = 20.0

StopRule = Literal["plateau", "slo", "errors", "levels_done", "cancelled", "failed"]
STOP_TEXT: dict[str, str] = {
    "plateau": "aggregate throughput stopped growing (within noise)",
    "slo": "the SLO was broken",
    "errors": "requests failed",
    "levels_done": "every level was measured",
    "cancelled": "cancelled",
    "failed": "the run failed",
}
Cause = Literal["queueing", "compute", "queue_compute", "errors", "unsaturated", "slo", "unknown"]


@dataclass(slots=True)
class LevelCall:
    """One measured call of a level: what the statistics need from its record."""

    level: int
    ok: bool
    #: when it was sent, ms after the level started (the reader's stamp)
    t_send_ms: float | None
    metrics: CallMetrics
    token_offsets_ms: list[float] = field(default_factory=list)
    error: str | None = None


def level_calls(runs: Iterable[Any]) -> list[LevelCall]:
    """The measured calls of a capacity session's run records (warm-up and unfinished ones left out)."""
    out = []
    for run in runs:
        level = getattr(run, "level", None)
        if level is None or run.warmup or run.status not in ("ok", "failed"):
            continue
        out.append(
            LevelCall(level, run.status == "ok", run.t_send_ms, run.metrics, run.token_offsets_ms, run.error)
        )
    return out


@dataclass(slots=True)
class Slo:
    """What "sustains" means: TTFT p95 at most this, each stream at least this fast (None: no bound)."""

    ttft_p95_ms: float | None = None
    min_stream_tps: float | None = None
    max_error_pct: float = 0.0


@dataclass(slots=True)
class LevelStats:
    """One level of the curve: its load, what was sent, and every statistic (None when unknown)."""

    index: int
    #: concurrent streams (closed loop) or offered requests/s (open loop)
    load: float
    sent: int
    ok: int
    failed: int
    #: first send to last end, seconds
    window_s: float | None
    #: aggregate output tokens/s over the window; its Summary is over THROUGHPUT_BINS sub-windows
    throughput_tps: float | None
    throughput: Summary
    #: completed requests/s over the window
    request_rate: float | None
    stream_tps: Summary
    ttft_ms: Summary
    #: a distribution-free 95% CI of the TTFT p95 (order statistics), None with too few calls
    ttft_p95_ci: tuple[float | None, float | None]
    queue_ms: Summary
    e2e_ms: Summary
    errors: list[str]
    #: verdicts after the level: the SLO met (None without an SLO), throughput still growing
    meets_slo: bool | None = None
    grew: bool | None = None

    @property
    def error_pct(self) -> float | None:
        return self.failed / self.sent * 100 if self.sent else None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["error_pct"] = self.error_pct
        return out


def _first(values: Iterable[float | None]) -> float | None:
    return next((v for v in values if v is not None), None)


def level_stats(index: int, load: float, calls: Sequence[LevelCall]) -> LevelStats:
    """The statistics of one level from its calls (each with its send time and token offsets)."""
    ok = [c for c in calls if c.ok]
    sends = [c.t_send_ms for c in calls if c.t_send_ms is not None]
    ends = [
        c.t_send_ms + c.metrics.e2e_ms
        for c in calls
        if c.t_send_ms is not None and c.metrics.e2e_ms is not None
    ]
    start = min(sends) if sends else None
    end = max(ends) if ends else None
    window_ms = end - start if start is not None and end is not None and end > start else None
    arrivals = [
        c.t_send_ms + off for c in ok if c.t_send_ms is not None for off in c.token_offsets_ms
    ]  # every token chunk of the level, on the level's clock
    throughput_tps = throughput = None
    if window_ms is not None and start is not None:
        throughput_tps = len(arrivals) / (window_ms / 1000)
        width = window_ms / THROUGHPUT_BINS
        counts = [0] * THROUGHPUT_BINS
        for t in arrivals:
            counts[min(THROUGHPUT_BINS - 1, max(0, int((t - start) / width)))] += 1
        throughput = summarize(n / (width / 1000) for n in counts)
    return LevelStats(
        index=index,
        load=load,
        sent=len(calls),
        ok=len(ok),
        failed=len(calls) - len(ok),
        window_s=window_ms / 1000 if window_ms is not None else None,
        throughput_tps=throughput_tps,
        throughput=throughput or Summary(n=0),
        request_rate=len(ok) / (window_ms / 1000) if window_ms else None,
        stream_tps=summarize(c.metrics.client_decode_rate for c in ok),
        ttft_ms=summarize(c.metrics.ttft_ms for c in ok),
        ttft_p95_ci=quantile_ci([c.metrics.ttft_ms for c in ok if c.metrics.ttft_ms is not None], 0.95),
        queue_ms=summarize(c.metrics.queue_gap_ms for c in ok),
        e2e_ms=summarize(c.metrics.e2e_ms for c in ok),
        errors=[c.error or "failed" for c in calls if not c.ok],
    )


def quantile_ci(values: Sequence[float], q: float) -> tuple[float | None, float | None]:
    """A distribution-free 95% CI of the q-quantile: the order statistics at ranks n·q ∓ 1.96·√(n·q·(1−q))
    (normal approximation of the binomial). An end beyond the sample is None (unbounded there)."""
    n = len(values)
    if n < 2:
        return None, None
    ordered = sorted(values)
    half = 1.959963984540054 * math.sqrt(n * q * (1 - q))
    lo, hi = math.floor(n * q - half), math.ceil(n * q + half)
    return (ordered[lo - 1] if lo >= 1 else None), (ordered[hi - 1] if hi <= n else None)


def meets_slo(level: LevelStats, slo: Slo) -> bool | None:
    """Whether the level keeps the SLO (None when no bound was set); errors above the limit break it."""
    if slo.ttft_p95_ms is None and slo.min_stream_tps is None:
        return None
    if (level.error_pct or 0.0) > slo.max_error_pct:
        return False
    if slo.ttft_p95_ms is not None and (level.ttft_ms.p95 is None or level.ttft_ms.p95 > slo.ttft_p95_ms):
        return False
    return not (
        slo.min_stream_tps is not None
        and (level.stream_tps.median is None or level.stream_tps.median < slo.min_stream_tps)
    )


def grew(level: LevelStats, best: LevelStats | None, min_gain_pct: float = MIN_GAIN_PCT) -> bool | None:
    """Aggregate throughput above the best lower level by more than `min_gain_pct` and beyond noise
    (the level's CI lies above that best's mean). None for the first level or without figures."""
    if best is None or best.throughput_tps is None or level.throughput_tps is None:
        return None
    if level.throughput_tps <= best.throughput_tps * (1 + min_gain_pct / 100):
        return False
    low = level.throughput.ci95_low
    return low is None or low > best.throughput_tps


def best_level(levels: Sequence[LevelStats]) -> LevelStats | None:
    """The level with the highest aggregate throughput (the lowest load on a tie)."""
    known = [lv for lv in levels if lv.throughput_tps is not None]
    return max(known, key=lambda lv: (lv.throughput_tps, -lv.load)) if known else None


def knee(levels: Sequence[LevelStats], min_gain_pct: float = MIN_GAIN_PCT) -> LevelStats | None:
    """The lowest load whose throughput is within `min_gain_pct` of the peak: where the curve goes flat."""
    best = best_level(levels)
    if best is None or best.throughput_tps is None:
        return None
    floor = best.throughput_tps / (1 + min_gain_pct / 100)
    return next(lv for lv in levels if lv.throughput_tps is not None and lv.throughput_tps >= floor)


def stop_rule(levels: list[LevelStats], slo: Slo, min_gain_pct: float = MIN_GAIN_PCT) -> StopRule | None:
    """After the last level: mark it (SLO met, throughput grown) and say which rule stops the run."""
    level = levels[-1]
    level.meets_slo = meets_slo(level, slo)
    level.grew = grew(level, best_level(levels[:-1]), min_gain_pct)
    if level.failed and (level.error_pct or 0.0) > slo.max_error_pct:
        return "errors"
    if level.meets_slo is False:
        return "slo"
    if level.grew is False:
        return "plateau"
    return None


@dataclass(slots=True)
class ServerHints:
    """What the server says about its parallelism (None when unknown)."""

    kind: str | None = None
    #: llama.cpp /props total_slots
    slots: int | None = None
    #: OLLAMA_NUM_PARALLEL as seen in this environment (a local server), when set
    ollama_num_parallel: int | None = None
    #: Ollama's /api/ps: models loaded (name), and the loaded model's context
    loaded: list[str] = field(default_factory=list)
    context_length: int | None = None


@dataclass(slots=True)
class Verdict:
    loop: str
    stop_rule: str
    stop_load: float | None
    #: the highest load that kept the SLO (or, without one, that had no errors)
    sustained: float | None
    #: the load from which throughput is flat (the best level when it stopped growing)
    plateau_from: float | None
    peak_tps: float | None
    cause: str
    #: streams the server actually runs at once: aggregate throughput / per-stream rate
    parallel: float | None
    text: str
    stop_text: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _n(load: float, loop: str) -> str:
    if loop == "open":
        return f"{load:g} req/s"
    streams = int(load)
    return f"{streams} concurrent stream{'s' if streams != 1 else ''}"


def _fmt(value: float | None, digits: int = 0) -> str:
    return "?" if value is None else f"{value:.{digits}f}"


def _sustain_text(level: LevelStats | None, slo: Slo, loop: str) -> str:
    has_slo = slo.ttft_p95_ms is not None or slo.min_stream_tps is not None
    if level is None:
        return "sustains no level within the SLO" if has_slo else "no level ran without errors"
    parts = []
    if slo.ttft_p95_ms is not None:
        parts.append(f"TTFT p95 ≤ {slo.ttft_p95_ms:g} ms ({_fmt(level.ttft_ms.p95)} ms)")
    else:
        parts.append(f"TTFT p95 {_fmt(level.ttft_ms.p95)} ms")
    if slo.min_stream_tps is not None:
        parts.append(f"≥ {slo.min_stream_tps:g} tok/s each ({_fmt(level.stream_tps.median, 1)})")
    else:
        parts.append(f"{_fmt(level.stream_tps.median, 1)} tok/s each")
    parts.append(f"{_fmt(level.throughput_tps)} tok/s in all")
    lead = "sustains" if has_slo else "throughput peaks at"
    return f"{lead} {_n(level.load, loop)} (" + ", ".join(parts) + ")"


def _server_cause(hints: ServerHints, parallel: float | None) -> str:
    """Which server setting explains a parallel limit, where the server says."""
    if hints.slots is not None:
        return f"llama.cpp reports {hints.slots} slot(s) (/props total_slots; set with --parallel)"
    if hints.kind == "ollama":
        if hints.ollama_num_parallel is not None:
            return f"OLLAMA_NUM_PARALLEL={hints.ollama_num_parallel} in this environment"
        return "Ollama's OLLAMA_NUM_PARALLEL or the model's parallel limit"
    return "the server's parallel slots"


def _error_text(level: LevelStats, hints: ServerHints) -> str:
    first = level.errors[0] if level.errors else "failed"
    busy = any("503" in e or "busy" in e.lower() or "maximum pending" in e.lower() for e in level.errors)
    why = (
        "the server's queue is full" + (" (Ollama's OLLAMA_MAX_QUEUE)" if hints.kind == "ollama" else "")
        if busy
        else f"first: {first}"
    )
    return f"{level.failed} of {level.sent} requests failed: {why}"


def verdict(
    levels: Sequence[LevelStats],
    loop: str,
    rule: str,
    slo: Slo,
    hints: ServerHints | None = None,
    min_gain_pct: float = MIN_GAIN_PCT,
) -> Verdict:
    """The answer in words, with its cause, from the curve and what the server says about itself."""
    hints = hints or ServerHints()
    measured = [lv for lv in levels if lv.sent]
    has_slo = slo.ttft_p95_ms is not None or slo.min_stream_tps is not None
    clean = [lv for lv in measured if (lv.error_pct or 0.0) <= slo.max_error_pct and lv.ok > 0]
    if has_slo:
        good = [lv for lv in clean if lv.meets_slo]
        sustained = good[-1] if good else None
    else:  # without an SLO: the lowest load that reaches the peak, errors aside
        sustained = knee(clean, min_gain_pct)
    best = knee(measured, min_gain_pct)
    last = measured[-1] if measured else None
    base = measured[0] if measured else None
    stop_text = STOP_TEXT.get(rule, rule)
    if last is not None and rule in ("plateau", "slo", "errors"):
        stop_text += f" at {_n(last.load, loop)}"
    parallel = None
    if last is not None and last.throughput_tps is not None and last.stream_tps.median:
        parallel = last.throughput_tps / last.stream_tps.median  # under the highest load measured
    plateau_from = best.load if rule == "plateau" and best is not None else None
    cause: str = "unknown"
    if last is None or base is None:
        words = "nothing was measured"
    else:
        sustain = _sustain_text(sustained, slo, loop)
        if rule == "errors":
            cause = "errors"
            beyond = f"errors from {_n(last.load, loop)}: {_error_text(last, hints)}"
        elif rule in ("cancelled", "failed"):
            cause = "unknown"
            beyond = f"the run was {rule} at {_n(last.load, loop)}: nothing is said beyond what was measured"
        elif rule == "levels_done" or (rule == "slo" and (best is last or last.grew is not False)):
            cause = "slo" if rule == "slo" else "unsaturated"
            if rule == "slo":
                beyond = (
                    f"the SLO breaks at {_n(last.load, loop)} (TTFT p95 {_fmt(last.ttft_ms.p95)} ms, "
                    f"{_fmt(last.stream_tps.median, 1)} tok/s each) before throughput saturates"
                )
            else:
                beyond = (
                    f"no saturation up to {_n(last.load, loop)}: aggregate throughput still growing "
                    f"({_fmt(last.throughput_tps)} tok/s); try higher levels"
                )
        else:
            cause, beyond = _saturation_cause(base, last, best, parallel, hints, loop)
        words = f"{sustain}; beyond that {beyond}"
    return Verdict(
        loop=loop,
        stop_rule=rule,
        stop_load=last.load if last is not None and rule in ("plateau", "slo", "errors") else None,
        sustained=sustained.load if sustained is not None else None,
        plateau_from=plateau_from,
        peak_tps=max((lv.throughput_tps for lv in measured if lv.throughput_tps), default=None),
        cause=cause,
        parallel=round(parallel, 1) if parallel is not None else None,
        text=words,
        stop_text=stop_text,
    )


def _saturation_cause(
    base: LevelStats,
    last: LevelStats,
    best: LevelStats | None,
    parallel: float | None,
    hints: ServerHints,
    loop: str,
) -> tuple[str, str]:
    """Queueing (each stream as fast, requests wait) versus compute (all run, each slower)."""
    r0, r1 = base.stream_tps.median, last.stream_tps.median
    slower = r0 is not None and r1 is not None and r1 < r0 * (1 - SLOWER_PCT / 100)
    queue, e2e = last.queue_ms.median, last.e2e_ms.median
    queued = queue is not None and e2e is not None and e2e > 0 and queue / e2e * 100 >= QUEUE_SHARE_PCT
    streams = last.load if loop == "closed" else None
    if not queued and parallel is not None and streams is not None:
        queued = parallel < streams * 0.75  # fewer run than were sent: the rest wait somewhere
    flat_from = _n(best.load, loop) if best is not None else "?"
    # a server that answered ran at least one: a ratio under 1 is the window's ramp and TTFTs, not 0
    about = f"about {max(1, round(parallel))} at once" if parallel is not None else "a fixed number at once"
    if queued and not slower:
        return "queueing", (
            f"requests queue — the server runs {about} ({_server_cause(hints, parallel)}); "
            f"queue wait p50 {_fmt(queue)} ms at {_n(last.load, loop)}"
        )
    if slower and not queued:
        return "compute", (
            f"compute-bound: aggregate throughput flat from {flat_from} "
            f"({_fmt(best.throughput_tps if best else None)} tok/s), each stream slower "
            f"({_fmt(r0, 1)} → {_fmt(r1, 1)} tok/s)"
        )
    if slower and queued:
        return "queue_compute", (
            f"requests queue — the server runs {about} ({_server_cause(hints, parallel)}) — and the "
            f"running ones share compute: each stream slower ({_fmt(r0, 1)} → {_fmt(r1, 1)} tok/s)"
        )
    return "unknown", (
        f"aggregate throughput flat from {flat_from} ({_fmt(best.throughput_tps if best else None)} tok/s) "
        "with neither queueing nor slower streams measured"
    )


def levels_from(
    loads: Sequence[float], runs: Iterable[Any], slo: Slo, min_gain_pct: float = MIN_GAIN_PCT
) -> list[LevelStats]:
    """A saved capacity session's levels, recomputed from its run records (only the levels run), each
    marked as the run marked it (SLO met, throughput grown)."""
    calls = level_calls(runs)
    out: list[LevelStats] = []
    for index, load in enumerate(loads):
        mine = [c for c in calls if c.level == index]
        if mine:
            out.append(level_stats(index, load, mine))
            stop_rule(out, slo, min_gain_pct)
    return out


def poisson_gaps(rate: float, count: int, rng: Any) -> list[float]:
    """`count` inter-arrival gaps (seconds) of a Poisson process of `rate` per second."""
    return [-math.log(1.0 - rng.random()) / rate for _ in range(count)]
