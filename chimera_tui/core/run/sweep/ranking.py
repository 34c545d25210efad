"""Ranking a sweep's configurations against its baseline, and the share that beat it."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chimera_tui.core.measure.catalogue import METRICS
from chimera_tui.core.measure.compare import (
    MetricSpec,
    permutation_p_value,
    values_for,
    verdict,
)
from chimera_tui.core.measure.stats import Summary, summarize
from chimera_tui.core.run.sweep.definition import BASELINE_KEY
from chimera_tui.core.run.sweep.record import SweepRecord, pool_sessions
from chimera_tui.core.store.sessions import Session


def metric_spec(metric: str) -> MetricSpec:
    if metric in METRICS:
        return MetricSpec.of(metric)  # direction, label and unit from the one catalogue
    return MetricSpec(metric, metric, "", "higher" if metric.endswith("rate") else "lower")


_TTFT = metric_spec("ttft_ms")


@dataclass(frozen=True)
class RankRow:
    """One configuration's results against the baseline."""

    rank: int
    key: str
    options: dict[str, Any] = field(hash=False)
    is_baseline: bool
    #: measured successful runs where the ranking metric is present
    n: int
    #: the ranking metric (server decode rate by default)
    summary: Summary
    ttft: Summary
    delta_pct: float | None
    ttft_delta_pct: float | None
    p_value: float | None
    verdict: str
    ttft_p_value: float | None
    ttft_verdict: str
    metric: str = "server_decode_rate"
    #: every metric's summary over the measured runs
    aggregates: dict[str, Summary] = field(default_factory=dict, hash=False)
    reload_load_ms: float | None = None
    notes: tuple[str, ...] = ()

    @property
    def mean(self) -> float | None:
        return self.summary.mean

    @property
    def sd(self) -> float | None:
        return self.summary.stddev

    @property
    def cv_pct(self) -> float | None:
        return self.summary.cv_pct

    @property
    def mean_ttft_ms(self) -> float | None:
        return self.ttft.mean


def _session_options(session: Session) -> dict[str, Any]:
    return session.manifest.profile_options


def _delta_pct(base: Summary | None, other: Summary) -> float | None:
    if base is None or base.mean is None or other.mean is None or base.mean == 0:
        return None
    return (other.mean - base.mean) / abs(base.mean) * 100


def _notes(record: SweepRecord | None, key: str) -> tuple[tuple[str, ...], float | None]:
    if record is None:
        return (), None
    try:
        crec = record.config(key)
    except KeyError:
        return (), None
    defn = record.definition
    notes: list[str] = []
    if defn.cold:
        notes.append("cold: every call includes a load")
    elif defn.order == "interleaved":
        notes.append("interleaved: every measured call follows a reload")
    elif defn.warmup == 0 and crec.reload_reason:
        notes.append("no warm-up: first call follows a reload")
    if crec.status != "done":
        visits = defn.runs if defn.order == "interleaved" else 1
        notes.append(f"{crec.status}: {crec.visits_done} of {visits} session(s) counted")
    values = [v for v in crec.reload_load_ms if v is not None]
    return tuple(notes), (sum(values) / len(values) if values else None)


def rank(
    sweep_sessions: Mapping[str, Session | Sequence[Session]],
    baseline_key: str | None = BASELINE_KEY,
    metric: str = "server_decode_rate",
    *,
    record: SweepRecord | None = None,
    alpha: float = 0.05,
    resamples: int = 10_000,
    seed: int = 0,
) -> list[RankRow]:
    """Rank configurations by the mean of ``metric`` (best first: highest rate / lowest latency), each
    with its verdict against the baseline (compare.verdict: "faster", "slower", "within noise",
    "too few runs"; "baseline" for the baseline itself, "no baseline" without one).

    ``sweep_sessions`` maps a configuration key to its session (or its visits' sessions, pooled);
    ``record`` adds each configuration's reload time and notes.
    """
    spec = metric_spec(metric)
    pooled = {
        key: value if isinstance(value, Session) else pool_sessions(list(value))
        for key, value in sweep_sessions.items()
    }
    base = pooled.get(baseline_key) if baseline_key is not None else None
    base_values = values_for(base, metric) if base is not None else []
    base_ttft_values = values_for(base, "ttft_ms") if base is not None else []
    base_summary = summarize(base_values) if base is not None else None
    base_ttft = summarize(base_ttft_values) if base is not None else None
    unranked: list[RankRow] = []
    for key, session in pooled.items():
        values = values_for(session, metric)
        ttft_values = values_for(session, "ttft_ms")
        summary, ttft = summarize(values), summarize(ttft_values)
        is_base = base is not None and key == baseline_key
        if is_base:
            p = tp = None
            v = tv = "baseline"
        elif base is None or base_summary is None or base_ttft is None:
            p = tp = None
            v = tv = "no baseline"
        else:
            p = permutation_p_value(base_values, values, resamples, seed)
            tp = permutation_p_value(base_ttft_values, ttft_values, resamples, seed)
            v = verdict(spec, base_summary, summary, p, alpha)
            tv = verdict(_TTFT, base_ttft, ttft, tp, alpha)
        notes, reload_ms = _notes(record, key)
        unranked.append(
            RankRow(
                rank=0,
                key=key,
                options=_session_options(session),
                is_baseline=is_base,
                n=summary.n,
                summary=summary,
                ttft=ttft,
                delta_pct=None if is_base else _delta_pct(base_summary, summary),
                ttft_delta_pct=None if is_base else _delta_pct(base_ttft, ttft),
                p_value=p,
                verdict=v,
                ttft_p_value=tp,
                ttft_verdict=tv,
                metric=metric,
                aggregates=dict(session.aggregates),
                reload_load_ms=reload_ms,
                notes=notes,
            )
        )
    sign = -1.0 if spec.better == "higher" else 1.0
    ordered = sorted(unranked, key=lambda r: (r.mean is None, sign * r.mean if r.mean is not None else 0.0))
    return [dataclasses.replace(r, rank=i + 1) for i, r in enumerate(ordered)]


def success_rate(rows: Sequence[RankRow]) -> tuple[int, int, float | None]:
    """``(beat, total, pct)``: how many non-baseline configurations are significantly faster than the
    baseline (verdict "faster"), out of how many, as a percentage (None when there are none).

    The honest form of TR111's "optimization success rate": a configuration counts only when the
    difference passes the comparison test, not whenever its mean happens to be higher.
    """
    others = [r for r in rows if not r.is_baseline]
    beat = sum(1 for r in others if r.verdict == "faster")
    return beat, len(others), (beat / len(others) * 100 if others else None)


def smallest_p_value(runs: int) -> float:
    """The smallest two-sided p the exact permutation test can give for ``runs`` vs ``runs`` values
    (2 / C(2n, n); 1.0 under 2 runs): with 3 runs it is 0.1, so nothing can be significant at 0.05."""
    if runs < 2:
        return 1.0
    return min(1.0, 2 / math.comb(2 * runs, runs))
