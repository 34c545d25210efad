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
#: the research's contention (TR110/TR113/TR114): a "TTFT anomaly", TTFT more than this above solo
RESEARCH_TTFT_INCREASE_MS = 3000.0
#: a round's time is blamed on slot waiting when the summed queue gap exceeds this share of busy time
WAIT_SHARE_PCT = 20.0
#: the headline without a solo baseline: capacity is not replaced by another figure
CAPACITY_UNKNOWN = "capacity unknown (no solo baseline)"


@dataclass(frozen=True, slots=True)
class AgentCall:
    """What a round needs to know about one agent's call (perf_counter_ns() times)."""

    agent: int
    ok: bool
    t_send_ns: int | None
    t_end_ns: int | None
    metrics: CallMetrics
    #: arrival of the first text chunk (thinking or content), None when nothing arrived
    t_first_ns: int | None = None


@dataclass(frozen=True, slots=True)
class SoloBaseline:
    """An agent's figures when it ran alone (means over the solo runs the round is compared with)."""

    decode_rate: float | None
    ttft_ms: float | None
    e2e_ms: float | None


@dataclass(slots=True)
class RoundMetrics:
    """One concurrent round. The three efficiencies (docs/metrics.md, "Concurrent runs"):

    - capacity = Σ solo end-to-end (same call, agent alone) / makespan / N: the headline;
    - research = Σ the agents' own end-to-end times (waiting included) / makespan / N (TR110/113/114);
    - overlap = Σ served time (end-to-end − server wait) / makespan / N.

    `timeline` keeps each agent's send / first-token / end times relative to the round's release and
    the inputs of every figure, so a round can be recomputed from metrics.json alone.
    """

    round: int
    warmup: bool
    agents: int
    status: str  # "ok" | "partial" (an agent failed) | "failed" (all failed) | "cancelled"
    makespan_ms: float | None = None
    sum_busy_ms: float | None = None
    sum_e2e_ms: float | None = None
    sum_solo_ms: float | None = None
    capacity_speedup: float | None = None
    capacity_efficiency_pct: float | None = None
    research_speedup: float | None = None
    research_efficiency_pct: float | None = None
    overlap_speedup: float | None = None
    overlap_efficiency_pct: float | None = None
    aggregate_tok_s: float | None = None
    start_skew_ms: float | None = None
    queue_wait_ms: float | None = None
    wait_share_pct: float | None = None
    contended: bool | None = None
    research_contended: bool | None = None
    cause: str | None = None
    slowdowns: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    #: what this round cannot show (a round saved by an older version; no solo baseline), in words
    missing: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoundMetrics:
        """A round as stored in metrics.json (older rounds upgraded by round_view); a missing or
        mistyped field is None (or its default)."""
        data = round_view(data)

        def num(key: str) -> float | None:
            v = data.get(key)
            return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

        def whole(key: str, default: int) -> int:
            v = data.get(key)
            return v if isinstance(v, int) and not isinstance(v, bool) else default

        def dicts(key: str) -> list[dict[str, Any]]:
            v = data.get(key)
            return [d for d in v if isinstance(d, dict)] if isinstance(v, list) else []

        def flag(key: str) -> bool | None:
            v = data.get(key)
            return v if isinstance(v, bool) else None

        cause, missing = data.get("cause"), data.get("missing")
        return cls(
            round=whole("round", 0),
            warmup=data.get("warmup") is True,
            agents=whole("agents", 0),
            status=str(data.get("status") or "failed"),
            contended=flag("contended"),
            research_contended=flag("research_contended"),
            cause=cause if isinstance(cause, str) else None,
            slowdowns=dicts("slowdowns"),
            timeline=dicts("timeline"),
            missing=[m for m in missing if isinstance(m, str)] if isinstance(missing, list) else [],
            **{key: num(key) for key in _FLOAT_FIELDS},
        )


_FLOAT_FIELDS = (
    "makespan_ms",
    "sum_busy_ms",
    "sum_e2e_ms",
    "sum_solo_ms",
    "capacity_speedup",
    "capacity_efficiency_pct",
    "research_speedup",
    "research_efficiency_pct",
    "overlap_speedup",
    "overlap_efficiency_pct",
    "aggregate_tok_s",
    "start_skew_ms",
    "queue_wait_ms",
    "wait_share_pct",
)

#: a round as the runner's events carry it (a dict) or as a loaded session holds it (RoundMetrics)
RoundLike = RoundMetrics | Mapping[str, Any]


def _get(r: RoundLike, key: str) -> Any:
    return r.get(key) if isinstance(r, Mapping) else getattr(r, key, None)


#: round metrics that are aggregated over runs, in display order: (key, label, unit)
ROUND_STATS: tuple[tuple[str, str, str], ...] = tuple(
    (m.key, m.label, m.unit) for m in select(ROUND_STAT_KEYS)
)

#: the new concurrency figures as the metric catalogue should list them (core/measure/catalogue.py):
#: key -> (label, unit, better, verdict words, measured by, definition). Verdict words "level" mean
#: higher / lower (better / worse), never faster / slower.
ROUND_METRIC_INFO: dict[str, tuple[str, str, str, str, str, str]] = {
    "capacity_efficiency_pct": (
        "capacity efficiency",
        "%",
        "higher",
        "level",
        "client",
        "Σ each agent's solo end-to-end (same call) / makespan / N × 100%; None without a solo baseline",
    ),
    "capacity_speedup": (
        "capacity speedup",
        "x",
        "higher",
        "level",
        "client",
        "Σ solo end-to-end / makespan",
    ),
    "research_efficiency_pct": (
        "research efficiency (TR110/TR113/TR114)",
        "%",
        "higher",
        "level",
        "client",
        "Σ the agents' own end-to-end times, waiting included / makespan / N × 100%",
    ),
    "research_speedup": ("research speedup", "x", "higher", "level", "client", "Σ end-to-end / makespan"),
    "overlap_efficiency_pct": (
        "overlap efficiency",
        "%",
        "higher",
        "level",
        "client + server",
        "Σ (end-to-end − server wait) / makespan / N × 100%",
    ),
    "overlap_speedup": (
        "overlap speedup",
        "x",
        "higher",
        "level",
        "client + server",
        "Σ (end-to-end − server wait) / makespan",
    ),
    "contention_rate_pct": (
        "contention rate",
        "%",
        "lower",
        "level",
        "client + server",
        "share of complete measured rounds where a decode rate fell > 10% or a TTFT grew > 50% vs solo",
    ),
    "research_contention_rate_pct": (
        "research contention rate (TR110/TR114)",
        "%",
        "lower",
        "level",
        "client",
        "share of complete measured rounds where an agent's TTFT was more than 3 s above its solo TTFT",
    ),
}


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


def _rel_ms(t_ns: int | None, origin_ns: int) -> float | None:
    return None if t_ns is None else (t_ns - origin_ns) / 1e6


def efficiency(
    total_ms: float | None, makespan_ms: float | None, n: int
) -> tuple[float | None, float | None]:
    """(speedup, efficiency %) of `total_ms` of work done in `makespan_ms` by `n` agents."""
    if total_ms is None or makespan_ms is None or makespan_ms <= 0 or n <= 0:
        return None, None
    speedup = total_ms / makespan_ms
    return speedup, speedup / n * 100.0


def round_metrics(
    round_index: int,
    warmup: bool,
    calls: Sequence[AgentCall],
    solo: dict[int, SoloBaseline] | None = None,
    rate_drop_pct: float = RATE_DROP_PCT,
    ttft_growth_pct: float = TTFT_GROWTH_PCT,
    release_ns: int | None = None,
    research_ttft_increase_ms: float = RESEARCH_TTFT_INCREASE_MS,
) -> RoundMetrics:
    """Everything about one concurrent round. Figures need every agent to have finished: a round
    where one failed is `partial` and has no efficiencies (its calls are still kept in the session).
    `release_ns` is when the round's barrier opened (the origin of the timeline; the earliest send
    when not given)."""
    n = len(calls)
    solo = solo or {}
    sends = [c.t_send_ns for c in calls if c.t_send_ns is not None]
    origin = release_ns if release_ns is not None else (min(sends) if sends else 0)
    timeline = []
    for c in calls:
        own_ms = (
            (c.t_end_ns - c.t_send_ns) / 1e6
            if c.ok and c.t_send_ns is not None and c.t_end_ns is not None
            else None
        )
        base = solo.get(c.agent)
        timeline.append(
            {
                "agent": c.agent,
                "ok": c.ok,
                "send_ms": _rel_ms(c.t_send_ns, origin),
                "first_token_ms": _rel_ms(c.t_first_ns, origin),
                "end_ms": _rel_ms(c.t_end_ns, origin),
                "server_wait_ms": None if own_ms is None else _wait_ms(c.metrics, own_ms),
                "tokens": c.metrics.eval_count if c.metrics.eval_count is not None else c.metrics.token_count,
                "ttft_ms": c.metrics.ttft_ms,
                "decode_rate": c.metrics.server_decode_rate,
                "solo_e2e_ms": base.e2e_ms if base else None,
                "solo_ttft_ms": base.ttft_ms if base else None,
                "solo_decode_rate": base.decode_rate if base else None,
            }
        )
    ok = [c for c in calls if c.ok and c.t_send_ns is not None and c.t_end_ns is not None]
    if not ok:
        return RoundMetrics(round_index, warmup, n, "failed", timeline=timeline)
    status = "ok" if len(ok) == n else "partial"
    out = RoundMetrics(round_index, warmup, n, status, timeline=timeline)
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
    out.research_speedup, out.research_efficiency_pct = efficiency(out.sum_e2e_ms, makespan_ms, n)
    out.overlap_speedup, out.overlap_efficiency_pct = efficiency(out.sum_busy_ms, makespan_ms, n)
    if makespan_ms > 0:
        tokens = [
            c.metrics.eval_count if c.metrics.eval_count is not None else c.metrics.token_count for c in ok
        ]
        if all(t is not None for t in tokens):
            out.aggregate_tok_s = sum(t for t in tokens if t is not None) / (makespan_ms / 1000.0)
    solo_e2e = [solo[c.agent].e2e_ms if c.agent in solo else None for c in ok]
    if all(d is not None for d in solo_e2e):
        out.sum_solo_ms = sum(d for d in solo_e2e if d is not None)
        out.capacity_speedup, out.capacity_efficiency_pct = efficiency(out.sum_solo_ms, makespan_ms, n)
    contended: bool | None = None
    research: bool | None = None
    for c in ok:
        base = solo.get(c.agent)
        if base is None:
            continue
        rate_change = _pct_change(c.metrics.server_decode_rate, base.decode_rate)
        ttft_change = _pct_change(c.metrics.ttft_ms, base.ttft_ms)
        ttft_increase = (
            c.metrics.ttft_ms - base.ttft_ms
            if c.metrics.ttft_ms is not None and base.ttft_ms is not None
            else None
        )
        slowed = (rate_change is not None and -rate_change > rate_drop_pct) or (
            ttft_change is not None and ttft_change > ttft_growth_pct
        )
        anomaly = ttft_increase is not None and ttft_increase > research_ttft_increase_ms
        out.slowdowns.append(
            {
                "agent": c.agent,
                "decode_rate_change_pct": rate_change,
                "ttft_change_pct": ttft_change,
                "ttft_increase_ms": ttft_increase,
                "contended": slowed,
                "research_contended": anomaly if ttft_increase is not None else None,
            }
        )
        contended = bool(contended) or slowed
        if ttft_increase is not None:
            research = bool(research) or anomaly
    out.contended = contended
    out.research_contended = research
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
    if r.capacity_efficiency_pct is not None:
        if r.capacity_efficiency_pct >= 95:
            return "none: agents ran in parallel"
        return "unattributed (client or network overhead)"
    if r.overlap_efficiency_pct is not None and r.overlap_efficiency_pct >= 95:
        return "calls overlapped; capacity unknown (no solo baseline)"
    return "unattributed (client or network overhead)"


# -- reading saved rounds (this version's and older ones) ---------------------------------------------
#: what a round saved before the three efficiencies can not show, and why
NO_TIMELINE = "per-agent send / first-token / end times not saved (session older than this version)"
NO_CAPACITY = CAPACITY_UNKNOWN
NO_RESEARCH_CONTENTION = "research contention (TTFT > 3 s above solo) not saved"


def round_view(r: RoundLike) -> dict[str, Any]:
    """A saved round with this version's keys. Rounds saved before the three efficiencies had
    `efficiency_pct` / `speedup` (busy time: the overlap figure) and, with a solo baseline,
    `efficiency_vs_solo_pct` (the capacity figure); the research figure follows from their
    `sum_e2e_ms` and `makespan_ms`. `missing` lists what cannot be shown."""
    if isinstance(r, RoundMetrics):
        r = r.to_dict()
    if "overlap_efficiency_pct" in r:
        out = dict(r)
        missing = list(out.get("missing") or [])
        if out.get("capacity_efficiency_pct") is None and NO_CAPACITY not in missing:
            missing.insert(0, NO_CAPACITY)
        out["missing"] = missing
        return out
    out = dict(r)
    out["overlap_efficiency_pct"] = r.get("efficiency_pct")
    out["overlap_speedup"] = r.get("speedup")
    out["capacity_efficiency_pct"] = r.get("efficiency_vs_solo_pct")
    out["capacity_speedup"] = r.get("speedup_vs_solo")
    agents = r.get("agents")
    n = agents if isinstance(agents, int) else 0
    out["research_speedup"], out["research_efficiency_pct"] = efficiency(
        r.get("sum_e2e_ms"), r.get("makespan_ms"), n
    )
    out.setdefault("timeline", [])
    out.setdefault("research_contended", None)
    missing = [NO_TIMELINE, NO_RESEARCH_CONTENTION]
    if out["capacity_efficiency_pct"] is None:
        missing.insert(0, NO_CAPACITY)
    out["missing"] = missing
    return out


def round_views(rounds: Sequence[RoundLike]) -> list[dict[str, Any]]:
    return [round_view(r) for r in rounds]


def recompute_round(r: RoundLike) -> dict[str, float | None]:
    """A round's figures from its saved timeline alone (an audit of metrics.json): makespan, skew,
    the three speedups and efficiencies. Empty for rounds saved without a timeline."""
    timeline = round_view(r).get("timeline") or []
    if not timeline or not all(a.get("ok") for a in timeline):
        return {}
    n = len(timeline)
    sends = [a["send_ms"] for a in timeline]
    ends = [a["end_ms"] for a in timeline]
    makespan = max(ends) - min(sends)
    e2e = [a["end_ms"] - a["send_ms"] for a in timeline]
    busy = [max(d - (a.get("server_wait_ms") or 0.0), 0.0) for a, d in zip(timeline, e2e, strict=True)]
    solo = [a.get("solo_e2e_ms") for a in timeline]
    out: dict[str, float | None] = {"makespan_ms": makespan, "start_skew_ms": max(sends) - min(sends)}
    out["research_speedup"], out["research_efficiency_pct"] = efficiency(sum(e2e), makespan, n)
    out["overlap_speedup"], out["overlap_efficiency_pct"] = efficiency(sum(busy), makespan, n)
    known = [d for d in solo if d is not None]
    total = sum(known) if len(known) == n else None
    out["capacity_speedup"], out["capacity_efficiency_pct"] = efficiency(total, makespan, n)
    return out


def _measured(rounds: Sequence[RoundLike]) -> list[dict[str, Any]]:
    return [v for v in map(round_view, rounds) if not v.get("warmup") and v.get("status") == "ok"]


def round_aggregates(rounds: Sequence[RoundLike]) -> dict[str, Summary]:
    """Statistics over measured, complete rounds for each ROUND_STATS metric (older rounds read
    through round_view)."""
    measured = _measured(rounds)
    return {key: summarize([r.get(key) for r in measured]) for key, _, _ in ROUND_STATS}


def contention_rate(rounds: Sequence[RoundLike], key: str = "contended") -> float | None:
    """Share of measured complete rounds flagged as contended (None without a solo baseline).
    `key="research_contended"`: the research's definition (a TTFT more than 3 s above solo)."""
    flags = [r.get(key) for r in _measured(rounds)]
    known = [f for f in flags if isinstance(f, bool)]
    return sum(known) / len(known) * 100.0 if known else None


def dominant_cause(rounds: Sequence[RoundLike]) -> str | None:
    causes = [_get(r, "cause") for r in rounds if not _get(r, "warmup") and isinstance(_get(r, "cause"), str)]
    return max(set(causes), key=causes.count) if causes else None


def session_result(rounds: Sequence[RoundLike]) -> dict[str, Any]:
    """The session's concurrency result (manifest["result"]): the three efficiencies' means and 95%
    CIs (capacity first), speedups, skew, both contention rates, the dominant cause."""
    agg = round_aggregates(rounds)
    out: dict[str, Any] = {}
    for kind in ("capacity", "research", "overlap"):
        eff = agg[f"{kind}_efficiency_pct"]
        out[f"mean_{kind}_efficiency_pct"] = eff.mean
        out[f"{kind}_efficiency_ci95_low"] = eff.ci95_low
        out[f"{kind}_efficiency_ci95_high"] = eff.ci95_high
        out[f"mean_{kind}_speedup"] = agg[f"{kind}_speedup"].mean
    out["capacity_note"] = CAPACITY_UNKNOWN if agg["capacity_efficiency_pct"].n == 0 else None
    out["mean_start_skew_ms"] = agg["start_skew_ms"].mean
    out["solo_drift_pct"] = solo_drift(rounds)
    out["contention_rate_pct"] = contention_rate(rounds)
    out["research_contention_rate_pct"] = contention_rate(rounds, "research_contended")
    out["dominant_cause"] = dominant_cause(rounds)
    return out


def solo_drift(rounds: Sequence[RoundLike]) -> dict[str, float] | None:
    """Per agent ("1", "2", ...), how much its solo end-to-end time moved over the session: (last −
    first) / first × 100 over the solo calls of the measured rounds, from the rounds' timelines. A
    check on the drift the interleaved baseline controls for; None without solo calls, an agent with
    fewer than two solo calls left out."""
    series: dict[int, list[float]] = {}
    for r in map(round_view, rounds):
        if r.get("warmup"):
            continue
        for a in r.get("timeline") or []:
            value = a.get("solo_e2e_ms")
            if isinstance(value, int | float) and isinstance(a.get("agent"), int):
                series.setdefault(a["agent"], []).append(float(value))
    if not series:
        return None
    return {
        str(agent + 1): (values[-1] - values[0]) / values[0] * 100
        for agent, values in sorted(series.items())
        if len(values) >= 2 and values[0]
    }


def result_view(result: Any, rounds: Sequence[RoundLike]) -> dict[str, Any]:
    """A saved session's concurrency result with this version's keys: recomputed from its rounds
    (older sessions: through round_view), so every session reads alike; `result` when there are none."""
    if rounds:
        return session_result(rounds)
    if isinstance(result, Mapping):
        return dict(result)
    return dict(result.to_toml_dict()) if hasattr(result, "to_toml_dict") else {}


def pct_text(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}%"


def headline(result: dict[str, Any]) -> str:
    """One line, capacity first: "capacity efficiency 50.2% · research 75.1% · overlap 50.0%"."""
    cap = result.get("mean_capacity_efficiency_pct")
    lead = f"capacity efficiency {pct_text(cap)}" if cap is not None else CAPACITY_UNKNOWN
    return (
        f"{lead} · research efficiency {pct_text(result.get('mean_research_efficiency_pct'))}"
        f" · overlap efficiency {pct_text(result.get('mean_overlap_efficiency_pct'))}"
    )
