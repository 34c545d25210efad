"""Comparing two or more sessions, metric by metric, against the first (the baseline).

A difference is called only when the two 95% confidence intervals do not overlap **and** a two-sided
permutation test on the difference of means gives p < alpha: conservative on purpose, since sessions
usually hold 3-10 runs. The rules are documented in docs/metrics.md, "Comparing sessions".
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from chimera_tui.core.errors import SessionError
from chimera_tui.core.measure import catalogue
from chimera_tui.core.measure.stats import Summary, summarize
from chimera_tui.core.store.labels import distinct_labels
from chimera_tui.core.store.manifest import Manifest
from chimera_tui.core.store.sessions import Session, measured_ok

Better = Literal["higher", "lower", "neutral"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """A compared metric: its key, compact label, unit, and which direction is better."""

    key: str
    label: str
    unit: str
    better: Better
    #: verdict words: "speed" = faster / slower (rates, latencies); "level" = higher / lower, with
    #: (better) / (worse) when a direction is better (efficiencies, speedups, round figures)
    words: Literal["speed", "level"] = "speed"
    #: multi-agent comparisons: the agent whose calls are compared (None: every call of the session)
    agent: int | None = None

    @classmethod
    def of(cls, key: str) -> MetricSpec:
        """The catalogue's entry of `key` as a comparison shows it (core/measure/catalogue.py)."""
        m = catalogue.metric(key)
        return cls(m.key, m.short, m.unit if m.short_unit is None else m.short_unit, m.better)


#: the metrics a comparison covers, in display order
COMPARE_METRICS: tuple[MetricSpec, ...] = tuple(MetricSpec.of(k) for k in catalogue.COMPARE_KEYS)

#: round metrics of multi-agent sessions (compared when any session has rounds: shared vs dual)
#: (verdict words higher / lower with better / worse: never faster / slower for an efficiency)
ROUND_COMPARE_METRICS: tuple[MetricSpec, ...] = tuple(
    replace(spec, label=f"{spec.label} (rounds)", words="level")
    for spec in (MetricSpec.of(k) for k in catalogue.ROUND_COMPARE_KEYS)
)

#: what a comparison involving a multi-agent session compares, in words
PER_AGENT_NOTE = (
    "multi-agent sessions: per-call metrics are compared agent by agent (agent i with agent i; a "
    "single-agent session's calls are its agent 1), round figures with round figures; nothing pools agents"
)


@dataclass(frozen=True, slots=True)
class SessionColumn:
    """One session's value of one metric, and how it compares with the baseline's (None for the baseline)."""

    summary: Summary
    delta: float | None
    delta_pct: float | None
    p_value: float | None
    verdict: str


@dataclass(frozen=True, slots=True)
class MetricComparison:
    """One metric across sessions: one column per session, baseline first."""

    spec: MetricSpec
    columns: list[SessionColumn]


@dataclass(frozen=True, slots=True)
class Comparison:
    """The result of compare_sessions()."""

    #: a short label per session (its label, else model · profile · mode), unique within the comparison
    labels: list[str]
    session_ids: list[str]
    metrics: list[MetricComparison]
    #: reasons the sessions may not be comparable, one sentence each
    warnings: list[str]
    #: how differences were tested, in words
    method: str
    #: what was compared with what (multi-agent sessions: per agent, rounds with rounds)
    notes: list[str] = field(default_factory=list)

    def metric(self, key: str, agent: int | None = None) -> MetricComparison:
        """The comparison of metric `key` (of `agent`, in multi-agent comparisons: the first agent's
        when not given); KeyError when it is not compared."""
        for mc in self.metrics:
            if mc.spec.key == key and (agent is None or mc.spec.agent == agent):
                return mc
        raise KeyError(key)


def _present(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
    )


_ROUND_KEYS = frozenset(spec.key for spec in ROUND_COMPARE_METRICS)


def _raw_values(session: Session, key: str, agent: int | None = None) -> list[Any]:
    """Per-call values over measured successful calls (of `agent` only, when given); round metrics
    over complete measured rounds (older rounds read through round_view)."""
    if key in _ROUND_KEYS:
        return [getattr(r, key, None) for r in session.rounds if not r.warmup and r.status == "ok"]
    runs = measured_ok(session.runs)
    if agent is not None:
        runs = [run for run in runs if run.agent == agent]
    return [getattr(run.metrics, key, None) for run in runs]


def values_for(session: Session, key: str, agent: int | None = None) -> list[float]:
    """The metric's values over the measured successful runs, missing (None/NaN) ones dropped."""
    return [float(v) for v in _raw_values(session, key, agent) if _present(v)]


def permutation_p_value(
    a: Sequence[float], b: Sequence[float], resamples: int = 10_000, seed: int = 0
) -> float | None:
    """Two-sided permutation test p-value for the difference of means of `a` and `b`.

    Exact (every split of the pooled values enumerated) when the number of distinct splits
    C(n_a + n_b, n_a) is <= `resamples`, e.g. 3 vs 3 = 20 splits; otherwise Monte Carlo with
    `resamples` random permutations from numpy's Generator(seed), giving (hits + 1) / (resamples + 1).
    None when either side has fewer than 2 values.
    """
    xa = np.asarray([float(v) for v in a], dtype=np.float64)
    xb = np.asarray([float(v) for v in b], dtype=np.float64)
    na, nb = len(xa), len(xb)
    if na < 2 or nb < 2:
        return None
    pooled = np.concatenate([xa, xb])
    n = na + nb
    total = float(pooled.sum())
    observed = abs(float(xa.mean()) - float(xb.mean()))
    # splits whose |difference| equals the observed one count as "as extreme": allow rounding noise
    threshold = observed - 1e-9 * max(1.0, float(np.abs(pooled).max()))

    if math.comb(n, na) <= resamples:
        splits = np.array(list(itertools.combinations(range(n), na)), dtype=np.intp)
        sums = pooled[splits].sum(axis=1)
        diffs = np.abs(sums / na - (total - sums) / nb)
        return float(np.count_nonzero(diffs >= threshold)) / len(diffs)

    rng = np.random.default_rng(seed)
    hits = 0
    batch = max(1, min(resamples, 4_000_000 // n))
    done = 0
    while done < resamples:
        rows = min(batch, resamples - done)
        perms = rng.permuted(np.broadcast_to(pooled, (rows, n)), axis=1)
        sums = perms[:, :na].sum(axis=1)
        diffs = np.abs(sums / na - (total - sums) / nb)
        hits += int(np.count_nonzero(diffs >= threshold))
        done += rows
    return (hits + 1) / (resamples + 1)


def _ci_overlap(x: Summary, y: Summary) -> bool:
    if None in (x.ci95_low, x.ci95_high, y.ci95_low, y.ci95_high):
        return True
    return x.ci95_low <= y.ci95_high and y.ci95_low <= x.ci95_high  # type: ignore[operator]


def verdict(
    spec: MetricSpec, baseline: Summary, other: Summary, p_value: float | None, alpha: float = 0.05
) -> str:
    """ "too few runs", "within noise", or the direction of a significant difference (see module doc).

    Directions: "faster"/"slower" for rates (higher is better) and latencies (lower is better),
    "higher"/"lower" for neutral metrics; level metrics (efficiencies, speedups, round figures)
    "higher (better)", "lower (worse)" and so on, never "faster"/"slower".
    """
    if baseline.n < 2 or other.n < 2 or baseline.mean is None or other.mean is None:
        return "too few runs"
    if _ci_overlap(baseline, other) or p_value is None or p_value >= alpha:
        return "within noise"
    up = other.mean > baseline.mean
    if spec.words == "level":
        word = "higher" if up else "lower"
        if spec.better == "neutral":
            return word
        return f"{word} ({'better' if up == (spec.better == 'higher') else 'worse'})"
    if spec.better == "higher":
        return "faster" if up else "slower"
    if spec.better == "lower":
        return "slower" if up else "faster"
    return "higher" if up else "lower"


def session_labels(sessions: Sequence[Session]) -> list[str]:
    """A short label per session: its label, else `model · profile · mode`; repeats get " #2"..."""
    return distinct_labels([s.manifest for s in sessions])


def compare_sessions(
    sessions: Sequence[Session], alpha: float = 0.05, resamples: int = 10_000, seed: int = 0
) -> Comparison:
    """Compare every session with the first, for every metric of COMPARE_METRICS."""
    if len(sessions) < 2:
        raise SessionError("a comparison needs at least two sessions")
    metrics: list[MetricComparison] = []
    multi = any(s.rounds for s in sessions)
    specs: tuple[MetricSpec, ...] = COMPARE_METRICS
    if multi:  # per agent: agent i with agent i, never the pooled distribution of all agents
        agents = max(_agent_count(s) for s in sessions)
        specs = tuple(
            replace(spec, label=f"{spec.label} · agent {i + 1}", agent=i)
            for spec in COMPARE_METRICS
            for i in range(agents)
        )
        specs += ROUND_COMPARE_METRICS
    for spec in specs:
        base_values = values_for(sessions[0], spec.key, spec.agent)
        base = summarize(_raw_values(sessions[0], spec.key, spec.agent))
        columns = [SessionColumn(base, None, None, None, "baseline")]
        for other_session in sessions[1:]:
            other = summarize(_raw_values(other_session, spec.key, spec.agent))
            delta = delta_pct = None
            if base.mean is not None and other.mean is not None:
                delta = other.mean - base.mean
                if base.mean != 0:
                    delta_pct = delta / abs(base.mean) * 100
            p = permutation_p_value(
                base_values, values_for(other_session, spec.key, spec.agent), resamples, seed
            )
            word = verdict(spec, base, other, p, alpha)
            if spec.agent is not None and spec.agent >= min(
                _agent_count(sessions[0]), _agent_count(other_session)
            ):
                word = f"no agent {spec.agent + 1} on one side"
            columns.append(SessionColumn(other, delta, delta_pct, p, word))
        metrics.append(MetricComparison(spec, columns))
    method = (
        f"two-sided permutation test on the difference of means, {resamples:,} resamples "
        f"(exact when there are fewer distinct splits), seed {seed}; alpha {alpha:g}; "
        "a difference is called only when the 95% CIs also do not overlap"
    )
    return Comparison(
        labels=session_labels(sessions),
        session_ids=[s.id for s in sessions],
        metrics=metrics,
        warnings=comparability_warnings(sessions),
        method=method,
        notes=[PER_AGENT_NOTE] if multi else [],
    )


def _agent_count(session: Session) -> int:
    agents = session.manifest.agent_list
    if agents:
        return len(agents)
    return max((run.agent for run in session.runs), default=0) + 1


# -- comparability ----------------------------------------------------------------------------------

_UNKNOWN = object()


def _short(text: str, limit: int = 32) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _prompts(ma: Manifest, mb: Manifest) -> tuple[Any, Any, tuple[str, str]]:
    """What identifies each side's prompt (the text when both have it, else the label) and its names."""
    wa, wb = ma.workload_or_empty, mb.workload_or_empty
    ta, tb = wa.prompt, wb.prompt
    la, lb = _text(wa.prompt_label), _text(wb.prompt_label)
    if isinstance(ta, str) and isinstance(tb, str):
        x, y = ta, tb
    elif la is not _UNKNOWN and lb is not _UNKNOWN:
        x, y = la, lb
    else:
        return _UNKNOWN, _UNKNOWN, ("", "")
    if la is not _UNKNOWN and lb is not _UNKNOWN and la != lb:
        return x, y, (str(la), str(lb))
    return x, y, (_short(str(x)), _short(str(y)))


def _num_predict(m: Manifest) -> Any:
    workload = m.workload
    sent = workload.options_sent if workload else None
    options = m.profile.options if m.profile else None
    for value in (
        workload.num_predict if workload else None,
        sent.get("num_predict") if sent else None,
        options.get("num_predict") if options else None,
    ):
        if value is not None:
            return value
    known = workload is not None and (workload.num_predict is not None or "num_predict" in workload.extra)
    known = known or sent is not None or options is not None
    return "model default" if known else _UNKNOWN


def _gpus(m: Manifest) -> Any:
    env = m.environment or {}
    gpus = env.get("gpus")
    if not isinstance(gpus, list):
        return _UNKNOWN
    names = sorted(str(g.get("name")) for g in gpus if isinstance(g, dict) and g.get("name"))
    if names:
        return ", ".join(names)
    # an empty list with a recorded reason is known: this machine had no GPU that NVML could see
    return "no GPU" if isinstance(env.get("gpu_status"), str) else _UNKNOWN


def _text(value: Any) -> Any:
    return _UNKNOWN if value is None or value == "" else value


def _cold(m: Manifest) -> Any:
    cold = m.workload_or_empty.cold
    return ("cold" if cold else "warm") if isinstance(cold, bool) else _UNKNOWN


def _version(m: Manifest) -> Any:
    return m.endpoints[0].version if m.endpoints else None


def _host(m: Manifest) -> Any:
    return (m.environment or {}).get("hostname")


def _pair_warnings(base: Manifest, other: Manifest, a: str, b: str) -> list[str]:
    """The differences between two manifests that make their numbers not comparable."""
    out: list[str] = []
    unknown: list[str] = []

    def check(what: str, x: Any, y: Any, show: tuple[str, str] | None = None) -> None:
        if x is _UNKNOWN or y is _UNKNOWN:
            unknown.append(what)
        elif x != y:
            sx, sy = show or (str(x), str(y))
            out.append(f"not comparable: {what} differ ({a}: {sx}, {b}: {sy})")

    x, y, names = _prompts(base, other)
    check("prompts", x, y, names)
    check("num_predict values", _num_predict(base), _num_predict(other))
    check("Ollama versions", _text(_version(base)), _text(_version(other)))
    check("hosts", _text(_host(base)), _text(_host(other)))
    check("APIs", _text(base.workload_or_empty.api), _text(other.workload_or_empty.api))
    check("GPUs", _gpus(base), _gpus(other))
    check("warm/cold modes", _cold(base), _cold(other))
    name = _text(base.model_name)
    if name not in (_UNKNOWN, "unknown") and name == _text(other.model_name):
        da = _text(base.model.digest if base.model else None)
        db = _text(other.model.digest if other.model else None)
        check(f"model digests of {name}", da, db, (str(da)[:12], str(db)[:12]))
    if unknown:
        out.append(f"not checked ({a} vs {b}: unknown on at least one side): {', '.join(unknown)}")
    return out


def comparability_warnings(sessions: Sequence[Session]) -> list[str]:
    """Why the sessions may not be comparable with the first, one sentence each.

    A field missing on either side (imported sessions lack most) is never flagged as a difference;
    such fields are listed in one "not checked" sentence per pair instead.
    """
    if not sessions:
        return []
    labels = session_labels(sessions)
    out: list[str] = []
    for session, label in zip(sessions[1:], labels[1:], strict=True):
        out.extend(_pair_warnings(sessions[0].manifest, session.manifest, labels[0], label))
    out.extend(_length_warnings(sessions, labels))
    out.extend(_drift_warnings(sessions, labels))
    for session, label in zip(sessions, labels, strict=True):
        n = len(measured_ok(session.runs))
        if n < 2:
            plural = "run" if n == 1 else "runs"
            out.append(f"too few runs: {label} has {n} measured {plural} (statistics need at least 2)")
    return out


def _drift_warnings(sessions: Sequence[Session], labels: list[str]) -> list[str]:
    """Server state drift (docs/metrics.md "Server state"): each recorded item that differs from the
    baseline's, endpoint by endpoint; items either side lacks are not compared."""
    from chimera_tui.core.measure.server_state import state_drift

    def states(session: Session) -> list[Any]:
        return [e.state for e in session.manifest.endpoint_list]

    out = []
    base = states(sessions[0])
    for session, label in zip(sessions[1:], labels[1:], strict=True):
        for i, (x, y) in enumerate(zip(base, states(session), strict=False)):
            where = f" (endpoint {i + 1})" if len(base) > 1 else ""
            for what, a, b in state_drift(x, y):
                out.append(f"server drift{where}: {what} differs ({labels[0]}: {a}, {label}: {b})")
    return out


#: output lengths (mean tokens per call) further apart than this share are warned about
LENGTH_TOLERANCE = 0.10


def _mean_length(session: Session) -> float | None:
    """Mean output tokens per measured call: the server's count, else the client's."""
    lengths = [
        r.metrics.eval_count if r.metrics.eval_count is not None else r.metrics.token_count
        for r in measured_ok(session.runs)
    ]
    present = [n for n in lengths if n is not None]
    return sum(present) / len(present) if present else None


def _length_warnings(sessions: Sequence[Session], labels: list[str]) -> list[str]:
    """Decode rates over different output lengths are not like for like (Ollama has no ignore_eos):
    warn when a session's mean output length differs from the baseline's by more than 10%."""
    base = _mean_length(sessions[0])
    out = []
    for session, label in zip(sessions[1:], labels[1:], strict=True):
        other = _mean_length(session)
        if base is None or other is None or base <= 0:
            continue
        if abs(other - base) / base > LENGTH_TOLERANCE:
            out.append(
                f"output lengths differ by more than {LENGTH_TOLERANCE:.0%}: {labels[0]} "
                f"{base:.1f} tokens per call, {label} {other:.1f} (rates over different lengths "
                "are not like for like)"
            )
    return out


# -- JSON -----------------------------------------------------------------------------------------


def _json_num(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def comparison_to_dict(c: Comparison) -> dict[str, Any]:
    """A JSON-ready dict of the comparison (None for anything not computable, never NaN)."""
    return {
        "labels": list(c.labels),
        "session_ids": list(c.session_ids),
        "method": c.method,
        "notes": list(c.notes),
        "warnings": list(c.warnings),
        "metrics": [
            {
                "key": mc.spec.key,
                "label": mc.spec.label,
                "unit": mc.spec.unit,
                "better": mc.spec.better,
                "agent": mc.spec.agent,
                "columns": [
                    {
                        "label": label,
                        "session_id": sid,
                        "summary": {k: _json_num(v) for k, v in col.summary.to_dict().items()},
                        "delta": _json_num(col.delta),
                        "delta_pct": _json_num(col.delta_pct),
                        "p_value": _json_num(col.p_value),
                        "verdict": col.verdict,
                    }
                    for label, sid, col in zip(c.labels, c.session_ids, mc.columns, strict=True)
                ],
            }
            for mc in c.metrics
        ],
    }
