"""Metrics of concurrent rounds (shared / dual / multi modes): makespan, speedup, parallel efficiency,
start skew, contention against a solo baseline, and where the time went.

Pure functions over per-agent call records; definitions in docs/metrics.md ("Concurrent runs").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from chimera_tui.core.measure.catalogue import ROUND_STAT_KEYS, select
from chimera_tui.core.measure.metrics import CallMetrics
from chimera_tui.core.measure.stats import Summary, summarize

#: default contention thresholds: an agent is slowed when its decode rate drops by more than this
RATE_DROP_PCT = 10.0
#: ... or its TTFT grows by more than this, versus its solo baseline
TTFT_GROWTH_PCT = 50.0
#: a round's time is blamed on slot waiting when the summed queue gap exceeds this share of busy time
WAIT_SHARE_PCT = 20.0


@dataclass(frozen=True, slots=True)
class AgentCall:
    """What a round needs to know about one agent's call."""

    agent: int
    ok: bool
    t_send_ns: int | None
    t_end_ns: int | None
    metrics: CallMetrics


@dataclass(frozen=True, slots=True)
class SoloBaseline:
    """An agent's figures when it ran alone (means over its solo runs)."""

    decode_rate: float | None
    ttft_ms: float | None
    e2e_ms: float | None


@dataclass(slots=True)
class RoundMetrics:
    round: int
    warmup: bool
    agents: int
    status: str  # "ok" | "partial" (an agent failed) | "failed" (all failed) | "cancelled"
    makespan_ms: float | None = None
    sum_busy_ms: float | None = None
    sum_e2e_ms: float | None = None
    speedup: float | None = None
    efficiency_pct: float | None = None
    aggregate_tok_s: float | None = None
    start_skew_ms: float | None = None
    queue_wait_ms: float | None = None
    wait_share_pct: float | None = None
    speedup_vs_solo: float | None = None
    efficiency_vs_solo_pct: float | None = None
    contended: bool | None = None
    cause: str | None = None
    slowdowns: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoundMetrics:
        """A round as stored in metrics.json; a missing or mistyped field is None (or its default)."""

        def num(key: str) -> float | None:
            v = data.get(key)
            return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

        def whole(key: str, default: int) -> int:
            v = data.get(key)
            return v if isinstance(v, int) and not isinstance(v, bool) else default

        contended, cause, slowdowns = data.get("contended"), data.get("cause"), data.get("slowdowns")
        return cls(
            round=whole("round", 0),
            warmup=data.get("warmup") is True,
            agents=whole("agents", 0),
            status=str(data.get("status") or "failed"),
            contended=contended if isinstance(contended, bool) else None,
            cause=cause if isinstance(cause, str) else None,
            slowdowns=[d for d in slowdowns if isinstance(d, dict)] if isinstance(slowdowns, list) else [],
            **{key: num(key) for key in _FLOAT_FIELDS},
        )


_FLOAT_FIELDS = (
    "makespan_ms",
    "sum_busy_ms",
    "sum_e2e_ms",
    "speedup",
    "efficiency_pct",
    "aggregate_tok_s",
    "start_skew_ms",
    "queue_wait_ms",
    "wait_share_pct",
    "speedup_vs_solo",
    "efficiency_vs_solo_pct",
)

#: a round as the runner's events carry it (a dict) or as a loaded session holds it (RoundMetrics)
RoundLike = RoundMetrics | Mapping[str, Any]


def _get(r: RoundLike, key: str) -> Any:
    return r.get(key) if isinstance(r, Mapping) else getattr(r, key, None)


#: round metrics that are aggregated over runs, in display order: (key, label, unit)
ROUND_STATS: tuple[tuple[str, str, str], ...] = tuple(
    (m.key, m.label, m.unit) for m in select(ROUND_STAT_KEYS)
)


def _wait_ms(m: CallMetrics, e2e_ms: float) -> float:
    """Time the call spent waiting rather than being served: the server's queue gap (Ollama); for
    servers that report prompt and decode times but no total (OpenAI-compatible, e.g. llama.cpp),
    end-to-end minus those times; 0 when the server says nothing."""
    if m.queue_gap_ms is not None:
        return m.queue_gap_ms
    if m.prompt_eval_ms is not None and m.eval_ms is not None:
        return max(e2e_ms - (m.load_ms or 0.0) - m.prompt_eval_ms - m.eval_ms, 0.0)
    return 0.0


def _pct_change(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference == 0:
        return None
    return (value - reference) / reference * 100.0


def round_metrics(
    round_index: int,
    warmup: bool,
    calls: Sequence[AgentCall],
    solo: dict[int, SoloBaseline] | None = None,
    rate_drop_pct: float = RATE_DROP_PCT,
    ttft_growth_pct: float = TTFT_GROWTH_PCT,
) -> RoundMetrics:
    """Everything about one concurrent round. Figures need every agent to have finished: a round
    where one failed is `partial` and has no speedup (its calls are still kept in the session)."""
    n = len(calls)
    ok = [c for c in calls if c.ok and c.t_send_ns is not None and c.t_end_ns is not None]
    if not ok:
        return RoundMetrics(round_index, warmup, n, "failed")
    status = "ok" if len(ok) == n else "partial"
    sends = [c.t_send_ns for c in calls if c.t_send_ns is not None]
    out = RoundMetrics(round_index, warmup, n, status)
    out.start_skew_ms = (max(sends) - min(sends)) / 1e6 if len(sends) == n else None
    if status != "ok":
        return out
    start = min(c.t_send_ns for c in ok)  # type: ignore[type-var]
    end = max(c.t_end_ns for c in ok)  # type: ignore[type-var]
    makespan_ms = (end - start) / 1e6  # type: ignore[operator]
    e2e = [(c.t_end_ns - c.t_send_ns) / 1e6 for c in ok]  # type: ignore[operator]
    waits = [_wait_ms(c.metrics, d) for c, d in zip(ok, e2e, strict=True)]
    busy = [max(d - w, 0.0) for d, w in zip(e2e, waits, strict=True)]
    out.makespan_ms = makespan_ms
    out.sum_e2e_ms = sum(e2e)
    out.sum_busy_ms = sum(busy)
    out.queue_wait_ms = sum(waits)
    out.wait_share_pct = out.queue_wait_ms / out.sum_e2e_ms * 100 if out.sum_e2e_ms > 0 else None
    if makespan_ms > 0:
        out.speedup = out.sum_busy_ms / makespan_ms
        out.efficiency_pct = out.speedup / n * 100.0
        tokens = [
            c.metrics.eval_count if c.metrics.eval_count is not None else c.metrics.token_count for c in ok
        ]
        if all(t is not None for t in tokens):
            out.aggregate_tok_s = sum(t for t in tokens if t is not None) / (makespan_ms / 1000.0)
    solo = solo or {}
    if solo and all(c.agent in solo and solo[c.agent].e2e_ms is not None for c in ok) and makespan_ms > 0:
        solo_sum = sum(solo[c.agent].e2e_ms or 0.0 for c in ok)
        out.speedup_vs_solo = solo_sum / makespan_ms
        out.efficiency_vs_solo_pct = out.speedup_vs_solo / n * 100.0
    contended: bool | None = None
    for c in ok:
        base = solo.get(c.agent)
        if base is None:
            continue
        rate_change = _pct_change(c.metrics.server_decode_rate, base.decode_rate)
        ttft_change = _pct_change(c.metrics.ttft_ms, base.ttft_ms)
        slowed = (rate_change is not None and -rate_change > rate_drop_pct) or (
            ttft_change is not None and ttft_change > ttft_growth_pct
        )
        out.slowdowns.append(
            {
                "agent": c.agent,
                "decode_rate_change_pct": rate_change,
                "ttft_change_pct": ttft_change,
                "contended": slowed,
            }
        )
        contended = bool(contended) or slowed
    out.contended = contended
    out.cause = _cause(out, rate_drop_pct)
    return out


def _cause(r: RoundMetrics, rate_drop_pct: float) -> str:
    """Where the lost parallelism went, from the server's own figures."""
    if r.wait_share_pct is not None and r.wait_share_pct > WAIT_SHARE_PCT:
        return "waiting for a slot (server queue gap)"
    slower = [
        s
        for s in r.slowdowns
        if s["decode_rate_change_pct"] is not None and -s["decode_rate_change_pct"] > rate_drop_pct
    ]
    if slower:
        return "slower decoding (decode rate below solo)"
    if r.efficiency_pct is not None and r.efficiency_pct >= 95:
        return "none: agents ran in parallel"
    return "unattributed (client or network overhead)"


def _measured(rounds: Sequence[RoundLike]) -> list[RoundLike]:
    return [r for r in rounds if not _get(r, "warmup") and _get(r, "status") == "ok"]


def round_aggregates(rounds: Sequence[RoundLike]) -> dict[str, Summary]:
    """Statistics over measured, complete rounds for each ROUND_STATS metric."""
    measured = _measured(rounds)
    return {key: summarize([_get(r, key) for r in measured]) for key, _, _ in ROUND_STATS}


def contention_rate(rounds: Sequence[RoundLike]) -> float | None:
    """Share of measured complete rounds flagged as contended (None without a solo baseline)."""
    flags = [_get(r, "contended") for r in _measured(rounds)]
    known = [f for f in flags if isinstance(f, bool)]
    return sum(known) / len(known) * 100.0 if known else None


def dominant_cause(rounds: Sequence[RoundLike]) -> str | None:
    causes = [_get(r, "cause") for r in rounds if not _get(r, "warmup") and isinstance(_get(r, "cause"), str)]
    return max(set(causes), key=causes.count) if causes else None
