"""Prompt-cache cohorts (issue 14): the same prompt cache-cold and cache-warm, side by side.

A `--cache-cohorts` session runs each measured run twice: a cache-cold call whose fresh marker is the
first token the server sees after BOS (raw prompt), then the very same prompt again, cache-warm. This
module summarises each cohort's TTFT and prefill separately (pooling them would make one bimodal
distribution) and the warm/cold TTFT ratio. docs/metrics.md "Prompt-cache cohorts" defines them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chimera_tui.core.measure.metrics import CallMetrics
from chimera_tui.core.measure.stats import Summary, summarize

#: the figures each cohort reports, with how they read (docs/metrics.md)
COHORT_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("ttft_ms", "TTFT", "ms"),
    ("prefill_rate", "prefill rate", "tok/s"),
    ("prompt_processed_count", "prompt tokens processed", "tok"),
    ("prompt_cached_count", "prompt tokens cached", "tok"),
    ("prompt_eval_ms", "prompt eval time", "ms"),
)
COHORT_LABELS = {"cache_cold": "cache-cold", "cache_warm": "cache-warm"}


@dataclass(slots=True)
class CohortSummary:
    """One cohort's figures over its successful measured calls."""

    cohort: str
    figures: dict[str, Summary]

    @property
    def n(self) -> int:
        return self.figures["ttft_ms"].n + self.figures["ttft_ms"].missing


def cohort_summaries(calls: Sequence[tuple[str | None, CallMetrics]]) -> list[CohortSummary]:
    """Per cohort (cold first), the COHORT_FIGURES over `calls` ((cohort, metrics) pairs of the
    successful measured runs). Empty when no call belongs to a cohort (an ordinary session)."""
    out = []
    for cohort in COHORT_LABELS:
        members = [m for c, m in calls if c == cohort]
        if members:
            figures = {name: summarize(getattr(m, name) for m in members) for name, _, _ in COHORT_FIGURES}
            out.append(CohortSummary(cohort, figures))
    return out


def warm_cold_ttft_ratio(summaries: Sequence[CohortSummary]) -> float | None:
    """Mean cache-warm TTFT over mean cache-cold TTFT (below 1: the cache saves time); None if
    either cohort has no TTFT."""
    means = {s.cohort: s.figures["ttft_ms"].mean for s in summaries}
    cold, warm = means.get("cache_cold"), means.get("cache_warm")
    if cold is None or warm is None or cold <= 0:
        return None
    return warm / cold


def cohort_lines(summaries: Sequence[CohortSummary], digits: int = 1) -> list[str]:
    """The cohorts as plain text lines (CLI summary, session detail, markdown report)."""
    if not summaries:
        return []
    lines = ["Prompt-cache cohorts (same prompt, cache-cold then cache-warm):"]
    for s in summaries:
        parts = []
        for name, label, unit in COHORT_FIGURES:
            summary = s.figures[name]
            if summary.mean is None:
                parts.append(f"{label} —")
                continue
            sd = f" ± {summary.stddev:.{digits}f}" if summary.stddev is not None else ""
            parts.append(f"{label} {summary.mean:.{digits}f}{sd} {unit}")
        lines.append(f"  {COHORT_LABELS[s.cohort]:<10} n={s.figures['ttft_ms'].n}  " + ", ".join(parts))
    ratio = warm_cold_ttft_ratio(summaries)
    if ratio is not None:
        lines.append(f"  warm/cold TTFT ratio {ratio:.2f}")
    return lines
