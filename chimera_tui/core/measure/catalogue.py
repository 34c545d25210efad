"""The one metric catalogue: how every metric is named, shown and judged, and which faces show which.

Each metric is one `Metric` entry (key, labels, unit, digits, direction, who measured it). The CLI
summary, the TUI, comparisons, reports and sweeps pick their rows through the named selections below
(key lists over `CATALOGUE`), so adding a metric means one entry here, its computation in
`measure/metrics.py` (or `measure/concurrency.py` for a round metric) and its definition in
docs/metrics.md. Pure data: no Textual, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from chimera_tui.core.measure.metrics import NUMERIC_METRICS

MeasuredBy = Literal["client", "server"]
DASH = "—"


def fmt(value: float | None, digits: int = 1) -> str:
    """A number with `digits` decimals, or an em dash for a missing one."""
    return DASH if value is None else f"{value:.{digits}f}"


def fmt_signed(value: float | None, digits: int = 1, suffix: str = "") -> str:
    """The one signed formatter (CLI, TUI, reports): the sign is the value's own, never the rounded
    text's, so a delta and its percentage always agree (−0.0 (−0.2%), never +0.0 (−0.2%)); ±0.0 for
    exactly zero; a true minus sign; an em dash when missing or not finite."""
    if (
        value is None
        or isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
    ):
        return DASH
    sign = "−" if value < 0 else "+" if value > 0 else "±"
    return f"{sign}{abs(value):.{digits}f}{suffix}"


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric as every face shows it."""

    key: str
    #: the full label (CLI summary, reports, session detail)
    label: str
    #: the compact label (comparisons, sweep rankings, charts)
    short: str
    #: "" for counts (the label says what is counted)
    unit: str
    #: decimals shown
    digits: int
    #: True: higher is better (rates); False: lower is better (latencies); None: no direction (counts)
    higher_is_better: bool | None
    #: who took the number: our reader's stamps ("client") or the server's own report ("server")
    measured_by: MeasuredBy
    #: the unit beside the short label, where it differs from `unit` (counts: "tok")
    short_unit: str | None = None

    @property
    def title(self) -> str:
        """`label (unit)`, or the label alone for a count."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    @property
    def short_title(self) -> str:
        unit = self.unit if self.short_unit is None else self.short_unit
        return f"{self.short} ({unit})" if unit else self.short

    @property
    def better(self) -> Literal["higher", "lower", "neutral"]:
        """The direction in words, as comparisons and exports write it."""
        if self.higher_is_better is None:
            return "neutral"
        return "higher" if self.higher_is_better else "lower"

    def format(self, value: float | None) -> str:
        return fmt(value, self.digits)


def _m(
    key: str,
    label: str,
    unit: str,
    digits: int,
    higher: bool | None,
    by: MeasuredBy,
    short: str | None = None,
    short_unit: str | None = None,
) -> Metric:
    return Metric(key, label, short or label, unit, digits, higher, by, short_unit)


#: every metric, per call (CallMetrics fields) then per concurrent round (RoundMetrics fields)
CATALOGUE: tuple[Metric, ...] = (
    # -- per call ----------------------------------------------------------------------------------
    _m("server_decode_rate", "decode rate (server)", "tok/s", 2, True, "server"),
    _m("client_decode_rate", "decode rate (client)", "tok/s", 2, True, "client"),
    _m("ttft_ms", "TTFT (any token)", "ms", 1, False, "client", short="TTFT"),
    _m("ttft_content_ms", "TTFT (content)", "ms", 1, False, "client"),
    _m("e2e_ms", "end-to-end", "ms", 1, False, "client"),
    _m("prefill_rate", "prefill rate (processed tokens)", "tok/s", 1, True, "server"),
    _m(
        "prompt_eval_rate",
        "prompt eval rate (count / duration)",
        "tok/s",
        1,
        True,
        "server",
        short="prompt-eval rate (count / duration)",
    ),
    _m(
        "answer_decode_rate",
        "answer decode rate (client)",
        "tok/s",
        2,
        True,
        "client",
        short="answer decode rate",
    ),
    _m("tpot_ms", "TPOT", "ms", 2, False, "client"),
    _m("load_ms", "load", "ms", 1, False, "server"),
    _m("prompt_eval_ms", "prompt eval", "ms", 1, False, "server"),
    _m("eval_ms", "eval", "ms", 1, False, "server"),
    _m("total_ms", "total (server)", "ms", 1, False, "server"),
    _m("queue_gap_ms", "server queue gap", "ms", 2, False, "server"),
    _m("token_count", "tokens", "", 0, None, "client", short="tokens", short_unit="tok"),
    _m("chunk_count", "chunks (client)", "", 0, None, "client"),
    _m("answer_token_count", "answer tokens (client)", "", 0, None, "client"),
    _m("thinking_token_count", "thinking tokens (client)", "", 0, None, "client"),
    _m("eval_count", "eval_count (server)", "", 0, None, "server"),
    _m("prompt_eval_count", "prompt_eval_count (server)", "", 0, None, "server"),
    _m(
        "prompt_cached_count",
        "cached prompt tokens (server)",
        "",
        0,
        None,
        "server",
        short="cached prompt tokens",
        short_unit="tok",
    ),
    _m("prompt_processed_count", "processed prompt tokens (server)", "", 0, None, "server"),
    _m(
        "itl_p50_ms",
        "inter-token p50 (per call)",
        "ms",
        2,
        False,
        "client",
        short="inter-token gap p50, per call",
    ),
    _m(
        "itl_p95_ms",
        "inter-token p95 (per call)",
        "ms",
        2,
        False,
        "client",
        short="inter-token gap p95, per call",
    ),
    _m(
        "itl_p99_ms",
        "inter-token p99 (per call)",
        "ms",
        2,
        False,
        "client",
        short="inter-token gap p99, per call",
    ),
    _m(
        "itl_max_ms",
        "inter-token max (per call)",
        "ms",
        2,
        False,
        "client",
        short="inter-token gap max, per call",
    ),
    # -- per concurrent round (multi-agent modes; from the agents' client stamps) ---------------------
    # the three efficiencies (docs/metrics.md, "Concurrent runs"): capacity leads
    _m("capacity_efficiency_pct", "capacity efficiency", "%", 2, True, "client"),
    _m("research_efficiency_pct", "research efficiency (TR110/113/114)", "%", 2, True, "client"),
    _m("overlap_efficiency_pct", "overlap efficiency", "%", 2, True, "client"),
    _m("capacity_speedup", "capacity speedup", "x", 2, True, "client"),
    _m("research_speedup", "research speedup", "x", 2, True, "client"),
    _m("overlap_speedup", "overlap speedup", "x", 2, True, "client"),
    _m("makespan_ms", "makespan", "ms", 2, False, "client"),
    _m("aggregate_tok_s", "aggregate throughput", "tok/s", 2, True, "client"),
    _m("start_skew_ms", "start skew", "ms", 2, False, "client"),
    _m("wait_share_pct", "slot wait share", "%", 2, False, "client"),
)

METRICS: dict[str, Metric] = {m.key: m for m in CATALOGUE}

# -- the selections each face shows, in display order ---------------------------------------------------
#: the CLI summary table and the session detail's aggregates
SUMMARY_KEYS: tuple[str, ...] = (
    "server_decode_rate",
    "client_decode_rate",
    "ttft_ms",
    "ttft_content_ms",
    "e2e_ms",
    "prefill_rate",
    "prompt_eval_rate",
    "prompt_cached_count",
    "answer_decode_rate",
    "tpot_ms",
    "load_ms",
    "prompt_eval_ms",
    "eval_ms",
    "queue_gap_ms",
    "token_count",
    "chunk_count",
    "thinking_token_count",
    "eval_count",
    "itl_p50_ms",
    "itl_p99_ms",
)
#: reports (Markdown, HTML, CSV): every per-call metric, in catalogue order
REPORT_KEYS: tuple[str, ...] = tuple(m.key for m in CATALOGUE if m.key in NUMERIC_METRICS)
#: comparisons of sessions (and sweep rankings)
COMPARE_KEYS: tuple[str, ...] = (
    "server_decode_rate",
    "client_decode_rate",
    "ttft_ms",
    "ttft_content_ms",
    "e2e_ms",
    "prefill_rate",
    "prompt_eval_rate",
    "answer_decode_rate",
    "tpot_ms",
    "load_ms",
    "eval_ms",
    "queue_gap_ms",
    "itl_p50_ms",
    "itl_p99_ms",
    "token_count",
    "prompt_cached_count",
)
#: round metrics compared when any compared session has rounds (shared vs dual)
ROUND_COMPARE_KEYS: tuple[str, ...] = (
    "capacity_efficiency_pct",
    "research_efficiency_pct",
    "overlap_efficiency_pct",
    "capacity_speedup",
    "aggregate_tok_s",
    "makespan_ms",
    "start_skew_ms",
)
#: round metrics aggregated over a session's rounds (CLI, reports, session detail)
ROUND_STAT_KEYS: tuple[str, ...] = (
    "capacity_efficiency_pct",
    "research_efficiency_pct",
    "overlap_efficiency_pct",
    "capacity_speedup",
    "research_speedup",
    "overlap_speedup",
    "makespan_ms",
    "aggregate_tok_s",
    "start_skew_ms",
    "wait_share_pct",
)
#: the agent workflow's per-stage columns (session detail)
STAGE_KEYS: tuple[str, ...] = ("e2e_ms", "ttft_ms", "server_decode_rate", "eval_count")
#: the sweep results' heat maps
MAP_KEYS: tuple[str, ...] = ("server_decode_rate", "ttft_ms")


def metric(key: str) -> Metric:
    """The catalogue entry of `key`; KeyError for a metric the catalogue does not know."""
    return METRICS[key]


def select(keys: Iterable[str]) -> tuple[Metric, ...]:
    """The entries of `keys`, in that order."""
    return tuple(METRICS[k] for k in keys)


assert set(NUMERIC_METRICS) <= set(METRICS), "every CallMetrics number needs a catalogue entry"
assert all(
    k in METRICS
    for keys in (SUMMARY_KEYS, COMPARE_KEYS, ROUND_COMPARE_KEYS, ROUND_STAT_KEYS, STAGE_KEYS, MAP_KEYS)
    for k in keys
), "a selection names a metric the catalogue does not have"
