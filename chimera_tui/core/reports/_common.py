"""What every report format shares: metric labels, number formatting, and the rows of each table.

Rows are plain (unescaped) text; each renderer escapes them for its own format. Nothing here depends on
the clock or the machine, so the same session always gives the same report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from chimera_tui.core.measure.catalogue import METRICS, REPORT_KEYS, Metric, fmt_signed, select
from chimera_tui.core.measure.metrics import FLAG_LABELS
from chimera_tui.core.measure.stats import Summary
from chimera_tui.core.store.labels import display_label
from chimera_tui.core.store.manifest import EndpointRecord, ModelRecord
from chimera_tui.core.store.numbering import round_labels, run_kind, run_label
from chimera_tui.core.store.sessions import RunRecord, Session, flag_counts, measured_ok, pooled_itl
from chimera_tui.safe_text import sanitize_line

#: how a report shows one metric: the catalogue's entry (core/measure/catalogue.py)
MetricInfo = Metric
#: every numeric metric, in report order (labels as the CLI summary shows them)
REPORT_METRICS: tuple[Metric, ...] = select(REPORT_KEYS)
#: every metric the catalogue knows, per call and per round
METRIC_INFO: dict[str, Metric] = METRICS

DASH = "—"

RESULT_HEADERS: tuple[str, ...] = ("metric", "mean", "stddev", "CV%", "min", "max", "95% CI", "n")


def result_headers(session: Session) -> tuple[str, ...]:
    """RESULT_HEADERS; a multi-agent session's table pools its agents and says so."""
    return ("metric (all agents)", *RESULT_HEADERS[1:]) if session.rounds else RESULT_HEADERS


RUN_HEADERS: tuple[str, ...] = (
    "run",
    "warm-up",
    "status",
    "server tok/s",
    "client tok/s",
    "TTFT ms",
    "tokens",
    "load ms",
    "e2e ms",
    "done_reason",
    "flags",
    "error",
)
#: how much of an error message the per-run table shows (the failed-runs list shows all of it)
ERROR_CELL_CHARS = 120

METHODOLOGY: tuple[str, ...] = (
    "Statistics are computed over successful, measured runs only: warm-up runs, failed, cancelled "
    "and incomplete runs are listed but never enter the statistics. n counts the runs where a metric "
    "is present; a missing value is left out, never counted as 0.",
    "Client-side metrics (TTFT, end-to-end, client decode rate, token counts, inter-token gaps) are "
    "timed by Chimera TUI from the arrival of each streamed chunk; server-side metrics (server decode "
    "rate = eval_count / eval_duration, prompt eval, load, total, queue gap) are the durations Ollama "
    "reports in its final chunk.",
    "stddev is the sample standard deviation (ddof = 1), CV% = stddev / |mean| × 100, and the 95% CI "
    "is mean ± t(0.975, n−1) × stddev / √n (Student t). Every definition is in docs/metrics.md.",
)


# -- numbers -----------------------------------------------------------------------------------------
def finite(value: Any) -> float | None:
    """`value` as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def fmt(value: Any, digits: int = 1) -> str:
    """Fixed-point with `digits` decimals; "—" for None or a non-finite value; never "-0.0"."""
    number = finite(value)
    if number is None:
        return DASH
    text = f"{number:.{digits}f}"
    return text[1:] if re.fullmatch(r"-0\.?0*", text) else text


def fmt_delta(delta: Any, delta_pct: Any, digits: int = 1, unit: str = "") -> str:
    """A change and its percentage with one sign rule: `+1.23 tok/s (+2.1%)`; "—" without a delta."""
    text = fmt_signed(delta, digits, f" {unit}" if unit else "")
    if text != DASH and finite(delta_pct) is not None:
        text += f" ({fmt_signed(delta_pct, 1, '%')})"
    return text


def fmt_p(p: Any) -> str:
    """A p-value: `p < 0.001` or `p = 0.012`; "" when there is none."""
    value = finite(p)
    if value is None:
        return ""
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def fmt_mean_sd_cv(s: Summary | None, digits: int) -> str:
    """`mean ± sd (CV x.x%)`, shortened when parts are missing; "—" without data."""
    if s is None or s.n == 0 or finite(s.mean) is None:
        return DASH
    out = fmt(s.mean, digits)
    if finite(s.stddev) is not None:
        out += f" ± {fmt(s.stddev, digits)}"
    if finite(s.cv_pct) is not None:
        out += f" ({fmt(s.cv_pct, 1)}%)"
    return out


#: the one size unit of every report and the CLI (the TUI shows the same)
GIB = 2**30


def fmt_gib(n_bytes: Any, digits: int = 1) -> str:
    """A size in GiB (2^30 bytes), the one size unit everywhere; "—" when missing."""
    value = finite(n_bytes)
    return DASH if value is None else f"{value / GIB:.{digits}f} GiB"


# -- manifest access -----------------------------------------------------------------------------------
def value_text(value: Any) -> str:
    """Any manifest value as plain text (tables as `k=v, ...`, lists comma-separated)."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}={value_text(v)}" for k, v in value.items()) or "(none)"
    if isinstance(value, list | tuple):
        return ", ".join(value_text(v) for v in value) or "(none)"
    return str(value)


def model_name(session: Session) -> str:
    return value_text(session.manifest.model_name or "?")


def profile_name(session: Session) -> str:
    return value_text(session.manifest.profile_name or "?")


def endpoints(session: Session) -> list[EndpointRecord]:
    return session.manifest.endpoint_list


def endpoint_url(session: Session) -> str:
    """Every endpoint URL of the session, comma-separated ("" when none is recorded)."""
    return ", ".join(value_text(e.url) for e in endpoints(session))


def prompt_text(session: Session) -> str | None:
    return session.manifest.workload_or_empty.prompt


def session_title(session: Session) -> str:
    """What heads a session's report and charts: its label, else `model · profile · mode`."""
    return display_label(session.manifest)


# -- table rows (plain text) ---------------------------------------------------------------------------
Row = tuple[str, str]


def _add(rows: list[Row], label: str, value: Any) -> None:
    if value is not None and value != "":
        rows.append((label, value_text(value)))


def config_rows(session: Session) -> list[Row]:
    """(setting, value) for what was run: session, model, profile and each option, server, workload."""
    m = session.manifest
    rows: list[Row] = [("session id", session.id)]
    _add(rows, "label", m.label)
    _add(rows, "created", m.created_at)
    _add(rows, "finished", m.result_or_empty.finished_at)
    rows.append(("status", session.status))
    tool = m.tool.name if m.tool else None
    if tool is not None:
        version = m.tool.version if m.tool else None
        rows.append(("tool", f"{value_text(tool)} {value_text(version or '')}".strip()))
    rows.append(("model", model_name(session)))
    model = m.model or ModelRecord()
    _add(rows, "model digest", model.digest)
    _add(rows, "quantization", model.quantization)
    _add(rows, "parameter size", model.parameter_size)
    _add(rows, "model family", model.family)
    if finite(model.size_bytes) is not None:
        rows.append(("model size", fmt_gib(model.size_bytes)))
    _add(rows, "capabilities", model.capabilities)
    rows.append(("profile", profile_name(session)))
    _add(rows, "profile description", m.profile.description if m.profile else None)
    options = m.profile_options
    rows.append(("profile options", f"{len(options)} set" if options else "none set: Ollama defaults"))
    rows += [(f"option {k}", value_text(v)) for k, v in options.items()]
    _add(rows, "mode", m.mode)
    eps = endpoints(session)
    for i, ep in enumerate(eps, start=1):
        suffix = f" {i}" if len(eps) > 1 else ""
        rows.append((f"endpoint{suffix}", value_text(ep.url)))
        rows.append((f"Ollama version{suffix}", value_text(ep.version or "unknown")))
        if isinstance(ep.state, dict):
            rows += [(f"server {k}{suffix}", value_text(v)) for k, v in ep.state.items() if k != "version"]
    w = m.workload_or_empty
    _add(rows, "prompt preset", w.prompt_label)
    _add(rows, "API", w.api)
    _add(rows, "runs", w.runs)
    _add(rows, "warm-up runs", w.warmup)
    _add(rows, "cold", w.cold)
    _add(rows, "unique prompt prefix", w.unique_prompt)
    _add(rows, "num_predict", w.num_predict)
    _add(rows, "keep_alive", w.keep_alive)
    _add(rows, "think", w.think)
    _add(rows, "options sent", w.options_sent)
    t = m.timeouts
    if t is not None:
        parts = [
            f"{name} {value_text(value)} s"
            for value, name in ((t.connect_s, "connect"), (t.first_byte_s, "first byte"), (t.idle_s, "idle"))
            if value is not None
        ]
        _add(rows, "timeouts", ", ".join(parts))
        if t.call_rule or t.call_s is not None or t.max_call_mib is not None:
            deadline = f"{value_text(t.call_s)} s" if t.call_s is not None else "derived"
            bounds = f"deadline {deadline}, at most {value_text(t.max_call_mib)} MiB; {t.call_rule or ''}"
            _add(rows, "call bounds", bounds.rstrip("; "))
    return rows


def missing_value(label: str) -> str:
    """What a side-by-side table shows for a row one session lacks (an unset option is a default)."""
    return "(default)" if label.startswith("option ") else DASH


def merged_labels(row_lists: Sequence[Sequence[Row]]) -> list[str]:
    """Every label once, each new one placed right after the label that precedes it where it occurs."""
    merged: list[str] = []
    for rows in row_lists:
        previous: str | None = None
        for label, _ in rows:
            if label not in merged:
                merged.insert(merged.index(previous) + 1 if previous is not None else 0, label)
            previous = label
    return merged


def environment_rows(session: Session) -> list[Row]:
    """(item, value) for the machine: OS, Python, CPU, RAM, GPUs and driver (or why there is none)."""
    env = session.manifest.environment
    if env is None:
        return [("environment", "not recorded")]
    rows: list[Row] = []
    _add(rows, "OS", env.get("os"))
    _add(rows, "Python", env.get("python"))
    cpu = env.get("cpu")
    if cpu is not None:
        cores = [
            f"{value_text(env[k])} {name}"
            for k, name in (("cpu_cores_logical", "logical"), ("cpu_cores_physical", "physical"))
            if env.get(k)
        ]
        rows.append(("CPU", value_text(cpu) + (f" ({' / '.join(cores)} cores)" if cores else "")))
    if finite(env.get("ram_total_bytes")) is not None:
        rows.append(("RAM", fmt_gib(env["ram_total_bytes"])))
    gpus = [g for g in env.get("gpus") or [] if isinstance(g, dict)]
    for i, gpu in enumerate(gpus):
        name = value_text(gpu.get("name") or "?")
        mem = gpu.get("memory_total_bytes")
        memory = f" ({fmt_gib(mem)})" if finite(mem) is not None else ""
        rows.append((f"GPU {value_text(gpu.get('index', i))}", name + memory))
    if gpus:
        _add(rows, "GPU driver", env.get("gpu_driver"))
    else:
        rows.append(("GPU", f"none ({value_text(env.get('gpu_status') or 'not recorded')})"))
    return rows


def result_rows(session: Session) -> list[tuple[str, ...]]:
    """One row per metric with data, cells as RESULT_HEADERS."""
    rows: list[tuple[str, ...]] = []
    for info in REPORT_METRICS:
        s = session.aggregates.get(info.key)
        if s is None or s.n == 0:
            continue
        d = info.digits
        ci = DASH
        if finite(s.ci95_low) is not None and finite(s.ci95_high) is not None:
            ci = f"{fmt(s.ci95_low, d)} – {fmt(s.ci95_high, d)}"
        rows.append(
            (
                info.title,
                fmt(s.mean, d),
                fmt(s.stddev, d),
                fmt(s.cv_pct, 1),
                fmt(s.min, d),
                fmt(s.max, d),
                ci,
                str(s.n),
            )
        )
    pooled = pooled_itl(session.runs)
    if pooled.n:
        for name, value in (("p50", pooled.p50), ("p95", pooled.p95), ("p99", pooled.p99)):
            title = f"inter-token {name}, pooled over all gaps (ms)"
            rows.append(
                (
                    title,
                    fmt(value, 2),
                    DASH,
                    DASH,
                    fmt(pooled.min, 2),
                    fmt(pooled.max, 2),
                    DASH,
                    str(pooled.n),
                )
            )
    return rows + cohort_rows(session)


def cohort_rows(session: Session) -> list[tuple[str, ...]]:
    """A `--cache-cohorts` session's figures per cohort (docs/metrics.md "Prompt-cache cohorts")."""
    from chimera_tui.core.measure.cohorts import COHORT_FIGURES, COHORT_LABELS, cohort_summaries

    rows: list[tuple[str, ...]] = []
    for cohort in cohort_summaries([(r.cohort, r.metrics) for r in measured_ok(session.runs)]):
        for key, label, unit in COHORT_FIGURES:
            s = cohort.figures[key]
            if s.n == 0:
                continue
            ci = DASH
            if finite(s.ci95_low) is not None and finite(s.ci95_high) is not None:
                ci = f"{fmt(s.ci95_low, 1)} – {fmt(s.ci95_high, 1)}"
            rows.append(
                (
                    f"{label}, {COHORT_LABELS[cohort.cohort]} ({unit})",
                    fmt(s.mean, 1),
                    fmt(s.stddev, 1),
                    fmt(s.cv_pct, 1),
                    fmt(s.min, 1),
                    fmt(s.max, 1),
                    ci,
                    str(s.n),
                )
            )
    return rows


def flags_cell(flags: list[str]) -> str:
    """A run's flags for a table cell (docs/metrics.md "Flags")."""
    return ", ".join(FLAG_LABELS.get(f, f) for f in flags) or DASH


def flag_lines(session: Session) -> list[str]:
    """One sentence per flag that occurs in the measured, successful runs."""
    ok = len(measured_ok(session.runs))
    return [
        f"{FLAG_LABELS.get(flag, flag)}: {n} of {ok} measured runs"
        for flag, n in flag_counts(session.runs).items()
    ]


def session_notes(session: Session) -> list[str]:
    """Below a session's summary, in every face: the pooled inter-token gaps, how many runs carry
    each flag, and a `--cache-cohorts` session's cohorts."""
    from chimera_tui.core.measure.cohorts import cohort_lines, cohort_summaries

    lines = []
    pooled = pooled_itl(session.runs)
    if pooled.n:
        lines.append(
            f"inter-token gaps, pooled over {pooled.n} gaps (ms): p50 {fmt(pooled.p50, 2)}, "
            f"p95 {fmt(pooled.p95, 2)}, p99 {fmt(pooled.p99, 2)}, max {fmt(pooled.max, 2)}"
        )
    for endpoint in session.manifest.endpoint_list:
        if endpoint.options_not_applied:
            names = ", ".join(sanitize_line(str(n)) for n in endpoint.options_not_applied)
            lines.append(f"options not applied by {sanitize_line(str(endpoint.url))}: {names}")
    ok = len(measured_ok(session.runs))
    for flag, n in flag_counts(session.runs).items():
        lines.append(f"flag: {FLAG_LABELS.get(flag, flag)} in {n} of {ok} runs")
    lines += cohort_lines(cohort_summaries([(r.cohort, r.metrics) for r in measured_ok(session.runs)]))
    return lines + gpu_notes(session)


def gpu_notes(session: Session) -> list[str]:
    """The session's GPU lines: simulated or not, how energy was measured, temperatures, clocks,
    throttling, processes (docs/metrics.md "GPU energy"); [] for a session without GPU records."""
    from chimera_tui.core.system.gpu_notes import gpu_lines

    return gpu_lines(session.manifest.gpu, session.runs)


def error_text(run: RunRecord, limit: int | None = None) -> str:
    """`kind: message` of a run's error on one line, cut to `limit` characters; "" when none."""
    parts = [p for p in (run.error_kind, run.error) if p]
    text = sanitize_line(": ".join(str(p) for p in parts)).strip()
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def _int_text(value: Any) -> str:
    number = finite(value)
    return DASH if number is None else str(int(number))


def run_rows(session: Session) -> list[tuple[str, ...]]:
    """One row per call (warm-ups and failures included), cells as RUN_HEADERS."""
    rows: list[tuple[str, ...]] = []
    for run in session.runs:
        m = run.metrics
        rows.append(
            (
                run_label(run),
                "yes" if run.warmup else "no",
                str(run.status),
                fmt(m.server_decode_rate, 2),
                fmt(m.client_decode_rate, 2),
                fmt(m.ttft_ms, 1),
                _int_text(m.token_count),
                fmt(m.load_ms, 1),
                fmt(m.e2e_ms, 1),
                value_text(m.done_reason),
                flags_cell(m.flags),
                error_text(run, ERROR_CELL_CHARS) or DASH,
            )
        )
    return rows


def problem_runs(session: Session) -> list[RunRecord]:
    """The runs that did not succeed (failed, cancelled, incomplete, still in flight)."""
    return [r for r in session.runs if r.status != "ok"]


def problem_text(run: RunRecord) -> str:
    """One line saying which run went wrong and why (plain text, full error message)."""
    cause = error_text(run) or "no error recorded"
    return f"{run_kind(run)} {run_label(run)}: {run.status}: {cause}"


def counts_text(session: Session) -> str:
    c = session.counts
    return (
        f"{c['ok']} ok, {c['failed']} failed, {c['cancelled']} cancelled, {c['incomplete']} incomplete "
        f"(+{c['warmup']} warm-up)"
    )


def headline(session: Session) -> str:
    """One sentence with the key results (server decode rate and TTFT), or why there are none."""
    tok = session.aggregates.get("server_decode_rate")
    ttft = session.aggregates.get("ttft_ms")
    parts = []
    if tok is not None and tok.n:
        parts.append(f"server decode rate {fmt_mean_sd_cv(tok, 2)} tok/s")
    if ttft is not None and ttft.n:
        parts.append(f"TTFT {fmt_mean_sd_cv(ttft, 1)} ms")
    n = len(measured_ok(session.runs))
    lead = ""
    if session.rounds:  # multi-agent: the efficiencies lead, capacity first; per-call figures pooled
        from chimera_tui.core.measure.concurrency import headline as efficiency_headline
        from chimera_tui.core.measure.concurrency import result_view

        result = result_view(session.manifest.result_or_empty, session.rounds)
        lead = f"{efficiency_headline(result)}. All agents pooled: "
    if not parts:
        return f"{lead}No successful measured runs ({counts_text(session)})."
    return f"{lead}Over {n} successful measured run{'s' if n != 1 else ''}: " + "; ".join(parts) + "."


def run_values(session: Session, key: str) -> list[float]:
    """The finite values of one metric over the successful measured runs, in run order."""
    out = []
    for run in measured_ok(session.runs):
        value = finite(getattr(run.metrics, key, None))
        if value is not None:
            out.append(value)
    return out


def run_points(session: Session, key: str) -> list[tuple[str, float]]:
    """(run label, value) of one metric over the successful measured runs, in run order."""
    out = []
    for run in measured_ok(session.runs):
        value = finite(getattr(run.metrics, key, None))
        if value is not None:
            out.append((run_label(run), value))
    return out


def response_runs(session: Session) -> list[RunRecord]:
    """The runs that have any response or thinking text to show."""
    return [r for r in session.runs if r.response or r.thinking]


AGENT_HEADERS = (
    "agent",
    "endpoint",
    "model",
    "profile",
    "decode rate (tok/s)",
    "TTFT (ms)",
    "queue gap (ms)",
    "n",
)
ROUND_STAT_HEADERS = ("round metric", "mean ± sd (CV%)", "95% CI", "n")
ROUND_HEADERS = (
    "round",
    "status",
    "capacity efficiency %",
    "research efficiency %",
    "overlap efficiency %",
    "makespan ms",
    "start skew ms",
    "cause",
)


def concurrency_notes(session: Session) -> list[str]:
    """Multi-agent sessions, in sentences: the headline (capacity efficiency first, the research's
    and the overlap figure beside it), both contention rates, and what an older session cannot show."""
    from chimera_tui.core.measure.concurrency import (
        CAPACITY_UNKNOWN,
        contention_rate,
        headline,
        result_view,
        round_views,
    )

    result = result_view(session.manifest.result_or_empty, session.rounds)
    rate = contention_rate(session.rounds)
    research = contention_rate(session.rounds, "research_contended")
    lines = [
        f"Efficiency (mean over complete measured rounds): {headline(result)}.",
        "Contention rate (decode rate −10% or TTFT +50% vs solo): "
        f"{'—' if rate is None else f'{rate:.0f}%'}; research contention rate (TTFT more than 3 s "
        f"above solo, TR110/TR114): {'—' if research is None else f'{research:.0f}%'}.",
        "Per-call figures are per agent; the results table above pools all agents.",
    ]
    missing = sorted(
        {m for r in round_views(session.rounds) for m in r.get("missing", [])} - {CAPACITY_UNKNOWN}
    )
    lines += [f"Not available: {m}." for m in missing]
    return lines


def concurrency_tables(
    session: Session,
) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]], list[tuple[str, ...]]]:
    """Multi-agent sessions: per-agent results, round statistics, and every round."""
    from chimera_tui.core.measure.concurrency import ROUND_STATS, round_aggregates, round_view
    from chimera_tui.core.measure.stats import aggregate
    from chimera_tui.core.store.sessions import measured_ok

    agents: list[tuple[str, ...]] = []
    for agent in session.manifest.agent_list:
        i = agent.index or 0
        agg = aggregate([r.metrics for r in measured_ok(session.runs) if r.agent == i])
        agents.append(
            (
                f"agent {i + 1}",
                value_text(agent.endpoint),
                value_text(agent.model.name if agent.model else None),
                value_text(agent.profile.name if agent.profile else None),
                fmt_mean_sd_cv(agg["server_decode_rate"], 2),
                fmt_mean_sd_cv(agg["ttft_ms"], 1),
                fmt_mean_sd_cv(agg["queue_gap_ms"], 2),
                str(agg["server_decode_rate"].n),
            )
        )
    stats_rows: list[tuple[str, ...]] = []
    for key, label, unit in ROUND_STATS:
        s = round_aggregates(session.rounds)[key]
        if s.n:
            ci = f"{fmt(s.ci95_low, 2)} – {fmt(s.ci95_high, 2)}" if s.ci95_low is not None else "—"
            stats_rows.append((f"{label} ({unit})", fmt_mean_sd_cv(s, 2), ci, str(s.n)))
    numbers = round_labels(r.warmup for r in session.rounds)
    rounds: list[tuple[str, ...]] = [
        (
            number,
            value_text(r.get("status")),
            fmt(r.get("capacity_efficiency_pct"), 1),
            fmt(r.get("research_efficiency_pct"), 1),
            fmt(r.get("overlap_efficiency_pct"), 1),
            fmt(r.get("makespan_ms"), 0),
            fmt(r.get("start_skew_ms"), 2),
            value_text(r.get("cause") or "—"),
        )
        for number, r in zip(numbers, map(round_view, session.rounds), strict=True)
    ]
    return agents, stats_rows, rounds
