"""What the headless CLI prints: live progress (stderr), the summary table, JSON documents."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from chimera_tui.core.measure.catalogue import SUMMARY_KEYS, fmt, fmt_signed, select
from chimera_tui.core.measure.compare import Comparison
from chimera_tui.core.measure.concurrency import (
    CAPACITY_UNKNOWN,
    ROUND_STATS,
    contention_rate,
    headline,
    result_view,
    round_aggregates,
    round_views,
)
from chimera_tui.core.measure.eta import EtaTracker, format_eta
from chimera_tui.core.measure.metrics import CallMetrics
from chimera_tui.core.measure.stats import Summary, aggregate
from chimera_tui.core.run.events import (
    PhaseChanged,
    RoundFinished,
    RoundStarted,
    RunEvent,
    RunFailed,
    RunFinished,
    RunStarted,
    SessionStarted,
    TokenBatch,
)
from chimera_tui.core.run.workflow.events import WorkflowRunStarted
from chimera_tui.core.run.workflow.stages import STAGES
from chimera_tui.core.store.labels import display_label
from chimera_tui.core.store.numbering import is_multi, progress_label, run_label
from chimera_tui.core.store.session_store import SessionSummary
from chimera_tui.core.store.sessions import BrokenSession, RunRecord, Session, measured_ok
from chimera_tui.safe_text import sanitize_line

#: (metric key, label, unit, digits) in the order the summary shows them (from the one catalogue)
SUMMARY_ROWS: tuple[tuple[str, str, str, int], ...] = tuple(
    (m.key, m.label, m.unit, m.digits) for m in select(SUMMARY_KEYS)
)


def flags_text(flags: list[str]) -> str:
    """A run's flags as one short phrase ("" when none)."""
    from chimera_tui.core.measure.metrics import FLAG_LABELS

    return ", ".join(FLAG_LABELS.get(f, f) for f in flags)


def session_extra_lines(session: Session) -> list[str]:
    """Below the summary table: pooled inter-token gaps, flag counts, prompt-cache cohorts."""
    from chimera_tui.core.reports._common import session_notes

    return session_notes(session)


def timing_block(m: CallMetrics, indent: str = "      ") -> list[str]:
    """After each run, like `ollama run --verbose`: total and load, prompt eval (cache-aware: how many
    prompt tokens the cache served and the prefill rate of the rest), eval. Lines whose figures the
    server did not report are left out."""

    def ms(value: float | None) -> str:
        return f"{fmt(value, 1)} ms"

    lines = []
    head = [f"total {ms(m.total_ms)}"] if m.total_ms is not None else []
    head += [f"load {ms(m.load_ms)}"] if m.load_ms is not None else []
    if head:
        lines.append(" · ".join(head))
    if m.prompt_eval_count is not None:
        prompt = f"prompt eval {m.prompt_eval_count} tok"
        if m.prompt_cached_count:
            prompt += f" ({m.prompt_cached_count} cached, {m.prompt_processed_count} processed)"
        if m.prompt_eval_ms is not None:
            prompt += f" in {ms(m.prompt_eval_ms)}"
        if m.prompt_eval_rate is not None:
            prompt += f" · {fmt(m.prompt_eval_rate, 1)} tok/s"
        if m.prefill_rate is not None and m.prompt_cached_count:
            prompt += f" (prefill {fmt(m.prefill_rate, 1)} tok/s)"
        lines.append(prompt)
    if m.eval_count is not None:
        decode = f"eval {m.eval_count} tok"
        if m.eval_ms is not None:
            decode += f" in {ms(m.eval_ms)}"
        if m.server_decode_rate is not None:
            decode += f" · {fmt(m.server_decode_rate, 1)} tok/s"
        lines.append(decode)
    return [indent + line for line in lines]


class HeadlessProgress:
    """An emit callback: one line per run on stderr (labelled with the one numbering, with an ETA),
    its timing block, and a live token counter on a terminal."""

    def __init__(
        self, out: TextIO, timings: bool = True, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.out = out
        self.tty = out.isatty()
        self.timings = timings
        self._clock = clock
        self._tokens = 0
        self._label = ""
        #: each call's label by run index: the calls of a round finish in any order
        self._labels: dict[int, str] = {}
        self._in_round = False
        self._eta = EtaTracker(0, clock)
        self._stages: list[str] = []

    def __call__(self, event: RunEvent) -> None:
        if isinstance(event, TokenBatch):
            self._tokens += len(event.tokens)
            if self.tty and not self._in_round:
                self.out.write(f"\r{self._label} {self._tokens} tokens")
                self.out.flush()
            return
        if isinstance(event, WorkflowRunStarted):  # its calls are the stages, in order
            self._stages = list(STAGES)
            return
        if isinstance(event, SessionStarted):
            version = sanitize_line(event.server_version or "unknown version")
            self._eta = EtaTracker(event.runs, self._clock)
            self._line(
                f"session {event.session_id}: {sanitize_line(event.model)} / {sanitize_line(event.profile)} "
                f"on {event.endpoint} "
                f"(Ollama {version}); {event.warmup} warm-up + {event.runs} runs"
            )
        elif isinstance(event, PhaseChanged):
            self._line(f"  {sanitize_line(event.message)}")
        elif isinstance(event, RoundStarted):
            kind = "warm-up round" if event.warmup else "round"
            self._line(f"  {kind} {progress_label(event.number, event.total, event.warmup)}:")
            self._in_round = True
        elif isinstance(event, RoundFinished):
            self._in_round = False  # solo calls between rounds get their own (live) lines again
            m = event.metrics
            cap = m.get("capacity_efficiency_pct")
            lead = f"capacity efficiency {fmt(cap)}%" if cap is not None else CAPACITY_UNKNOWN
            self._line(
                f"    → {m['status']}: {lead}, research {fmt(m.get('research_efficiency_pct'))}%, "
                f"overlap {fmt(m.get('overlap_efficiency_pct'))}%, makespan {fmt(m.get('makespan_ms'))} ms, "
                f"start skew {fmt(m.get('start_skew_ms'), 2)} ms; {m.get('cause') or ''}"
            )
        elif isinstance(event, RunStarted):
            self._tokens = 0
            multi = self._in_round or event.solo or event.agent > 0
            if self._in_round and not event.solo:
                self._label = f"    agent {event.agent + 1}:"
            else:
                kind = "solo" if event.solo else ("warm-up" if event.warmup else "run")
                if self._stages:  # a workflow's call: named by its stage, numbered by its workflow
                    kind = f"{kind} {self._stages.pop(0)}"
                agent = event.agent if multi else None
                place = progress_label(event.number, event.total, event.warmup, agent, event.solo)
                self._label = f"  {kind} {place}:"
            self._labels[event.index] = self._label
            if not multi:
                self._eta.started(event.warmup, event.number, event.total)
            if self.tty and not self._in_round:
                self.out.write(self._label)
                self.out.flush()
        elif isinstance(event, RunFinished):
            call = event.record.metrics
            label = self._labels.pop(event.record.index, self._label)
            self._line(
                f"{label} {fmt(call.server_decode_rate, 1)} tok/s (server), "
                f"{fmt(call.client_decode_rate, 1)} tok/s (client), TTFT {fmt(call.ttft_ms)} ms, "
                f"{fmt(call.token_count, 0)} tokens, {sanitize_line(call.done_reason or '?')}"
                + (
                    f", {call.energy_j:.1f} J, {fmt(call.energy_per_token_j, 3)} J/token"
                    if call.energy_j is not None
                    else ""
                )
                + (f" [{flags_text(call.flags)}]" if call.flags else "")
                + self._eta_text(event.record),
                clear=True,
            )
            record = event.record
            if self.timings and not (
                self._in_round or record.solo or record.agent or record.round is not None
            ):
                for line in timing_block(call):
                    self._line(line)
        elif isinstance(event, RunFailed):
            label = self._labels.pop(event.record.index, self._label)
            self._line(
                f"{label} {event.record.status.upper()}: {sanitize_line(event.record.error or '')}"
                + self._eta_text(event.record),
                clear=True,
            )

    def _eta_text(self, record: RunRecord) -> str:
        """`; ETA 1m05s` after an ordinary run (not in multi-agent rounds), "" when unknown or done."""
        if is_multi(record):
            return ""
        left = self._eta.finished()
        return f"; {format_eta(left)}" if left else ""

    def _line(self, text: str, clear: bool = False) -> None:
        prefix = "\r\x1b[K" if (clear and self.tty and not self._in_round) else ""
        self.out.write(f"{prefix}{text}\n")
        self.out.flush()


def summary_table(session: Session) -> str:
    """The aggregate table: mean ± sd, CV, min, max, 95% CI per metric, over successful measured runs."""
    counts = session.counts
    head = (
        f"{sanitize_line(display_label(session.manifest))}: "
        f"{counts['ok']} ok, {counts['failed']} failed, {counts['cancelled']} cancelled "
        f"(+{counts['warmup']} warm-up) — {session.status}"
    )
    cols = ("metric", "mean ± sd", "CV%", "min", "max", "95% CI", "n")
    rows: list[tuple[str, ...]] = []
    if session.rounds:  # multi-agent: this table pools the agents; per-agent figures follow
        cols = ("metric (all agents)", *cols[1:])
    for key, label, unit, digits in SUMMARY_ROWS:
        s: Summary | None = session.aggregates.get(key)
        if s is None or s.n == 0:
            continue
        name = f"{label} ({unit})" if unit else label
        mean_sd = fmt(s.mean, digits) + (f" ± {fmt(s.stddev, digits)}" if s.stddev is not None else "")
        ci = f"{fmt(s.ci95_low, digits)}–{fmt(s.ci95_high, digits)}" if s.ci95_low is not None else "—"
        rows.append((name, mean_sd, fmt(s.cv_pct, 1), fmt(s.min, digits), fmt(s.max, digits), ci, str(s.n)))
    if not rows:
        return head + "\n(no successful measured runs)"
    lines = [head, *_table(cols, rows), *session_extra_lines(session)]
    if session.rounds:  # multi-agent: the efficiencies lead, capacity first
        lines.insert(1, headline(result_view(session.manifest.result_or_empty, session.rounds)))
        lines += ["", *concurrency_lines(session)]
    if session.manifest.mode == "workflow":
        lines += ["", *workflow_lines(session)]
    return "\n".join(lines)


def workflow_lines(session: Session) -> list[str]:
    """Workflow sessions: each stage on its own (the table above pools both), then whole workflows."""
    from chimera_tui.core.run.workflow import load_workflow_runs, stage_summaries

    rows = []
    for stage, agg in stage_summaries(session).items():
        tok, ttft, e2e = agg["server_decode_rate"], agg["ttft_ms"], agg["e2e_ms"]
        rows.append(
            (
                stage,
                fmt(tok.mean, 2) + (f" ± {fmt(tok.stddev, 2)}" if tok.stddev is not None else ""),
                fmt(ttft.mean, 1),
                fmt(e2e.mean, 1),
                str(tok.n),
            )
        )
    lines = [
        "agent workflow: ingest → analysis → report",
        *_table(("stage", "tok/s (server)", "TTFT ms", "end-to-end ms", "n"), rows),
    ]
    runs = [r for r in load_workflow_runs(session.path) if not r.get("warmup") and r.get("status") == "ok"]
    from chimera_tui.core.measure.stats import summarize

    whole = [
        ("ingest (ms)", summarize([r.get("ingest_ms") for r in runs])),
        ("whole workflow (ms)", summarize([r.get("workflow_ms") for r in runs])),
        ("tokens per workflow", summarize([r.get("total_tokens") for r in runs])),
    ]
    lines.append("")
    lines += _table(
        ("workflow metric", "mean ± sd", "n"),
        [
            (name, fmt(s.mean, 1) + (f" ± {fmt(s.stddev, 1)}" if s.stddev is not None else ""), str(s.n))
            for name, s in whole
        ],
    )
    return lines


def _table(cols: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return lines


def concurrency_lines(session: Session) -> list[str]:
    """Multi-agent sessions: the headline (capacity efficiency, the research's and the overlap figure
    beside it), per-agent means, then round statistics."""
    agents = session.manifest.agent_list
    result = result_view(session.manifest.result_or_empty, session.rounds)
    lines = [f"mode {session.manifest.mode}: {len(agents)} agents", headline(result)]
    agent_rows = []
    for agent in agents:
        i = agent.index or 0
        runs = [r for r in measured_ok(session.runs) if r.agent == i]
        agg = aggregate([r.metrics for r in runs])
        tok, ttft, gap = agg["server_decode_rate"], agg["ttft_ms"], agg["queue_gap_ms"]
        agent_rows.append(
            (
                f"agent {i + 1}",
                sanitize_line(agent.endpoint or "?"),
                sanitize_line((agent.model.name if agent.model else None) or "?"),
                fmt(tok.mean, 2) + (f" ± {fmt(tok.stddev, 2)}" if tok.stddev is not None else ""),
                fmt(ttft.mean, 1),
                fmt(gap.mean, 1),
                str(tok.n),
            )
        )
    lines += _table(
        ("agent", "endpoint", "model", "tok/s (server)", "TTFT ms", "queue gap ms", "n"), agent_rows
    )
    agg_rounds = round_aggregates(session.rounds)
    round_rows = []
    for key, label, unit in ROUND_STATS:
        s = agg_rounds[key]
        if s.n == 0:
            continue
        ci = f"{fmt(s.ci95_low, 2)}–{fmt(s.ci95_high, 2)}" if s.ci95_low is not None else "—"
        mean_sd = fmt(s.mean, 2) + (f" ± {fmt(s.stddev, 2)}" if s.stddev is not None else "")
        round_rows.append((f"{label} ({unit})", mean_sd, fmt(s.cv_pct, 1), ci, str(s.n)))
    lines.append("")
    lines += _table(("round metric", "mean ± sd", "CV%", "95% CI", "n"), round_rows)
    statuses = [r.status for r in session.rounds if not r.warmup]
    partial = statuses.count("partial")
    rate = contention_rate(session.rounds)
    research = contention_rate(session.rounds, "research_contended")
    hint = " (no solo baseline: run without --no-solo-baseline)" if rate is None else ""
    lines.append(
        f"rounds: {statuses.count('ok')} complete, {partial} partial; contention rate "
        f"{'—' if rate is None else f'{rate:.0f}%'} (decode rate −10% or TTFT +50% vs solo), research "
        f"contention rate {'—' if research is None else f'{research:.0f}%'} (TTFT > 3 s above solo){hint}; "
        f"where time went: {result.get('dominant_cause') or '—'}"
    )
    missing = sorted(
        {m for r in round_views(session.rounds) for m in r.get("missing", [])} - {CAPACITY_UNKNOWN}
    )
    for note in missing:
        lines.append(f"not available: {note}")
    drift = result.get("solo_drift_pct")
    if drift:
        parts = ", ".join(f"agent {agent} {fmt_signed(d, 1, '%')}" for agent, d in drift.items())
        lines.append(f"solo baseline: each agent alone before every measured round; solo time drift {parts}")
    concurrency = session.manifest.concurrency
    for warning in (concurrency.preflight_warnings if concurrency else None) or []:
        lines.append(f"warning: {sanitize_line(str(warning))}")
    return lines


def session_json(session: Session) -> dict[str, Any]:
    return {
        "path": str(session.path),
        "id": session.id,
        "label": display_label(session.manifest),
        "status": session.status,
        "counts": session.counts,
        "model": session.manifest.model_name,
        "profile": session.manifest.profile_name,
        "endpoints": [e.to_toml_dict() for e in session.manifest.endpoint_list],
        "aggregates": {k: v.to_dict() for k, v in session.aggregates.items()},
        "mode": session.manifest.mode,
        "agents": [a.to_toml_dict() for a in session.manifest.agent_list],
        "rounds": [r.to_dict() for r in session.rounds],
        "round_aggregates": {k: v.to_dict() for k, v in round_aggregates(session.rounds).items()}
        if session.rounds
        else {},
        "result": result_view(session.manifest.result_or_empty, session.rounds)
        if session.rounds
        else session.manifest.result_or_empty.to_toml_dict(),
        "runs": [
            {
                "run": run_label(r),
                "index": r.index,
                "agent": r.agent,
                "round": r.round,
                "solo": r.solo,
                "warmup": r.warmup,
                "status": r.status,
                "error": r.error,
                "error_kind": r.error_kind,
                "metrics": r.metrics.to_dict(),
            }
            for r in session.runs
        ],
    }


def _summary_row(s: SessionSummary) -> dict[str, Any]:
    return {
        "id": s.id,
        "path": str(s.path),
        "created_at": s.created_at,
        "label": s.label or None,
        "display_label": s.display_label,
        "model": s.model,
        "profile": s.profile,
        "mode": s.mode,
        "status": s.status,
        "runs_ok": s.runs_ok,
        "runs_failed": s.runs_failed,
        "mean_tok_s": s.mean_tok_s,
        "mean_ttft_ms": s.mean_ttft_ms,
        "cv_tok_s_pct": s.cv_tok_s_pct,
    }


def sessions_json(sessions: list[SessionSummary], broken: list[BrokenSession]) -> dict[str, Any]:
    return {
        "sessions": [_summary_row(s) for s in sessions],
        "unreadable": [{"path": str(b.path), "reason": b.reason} for b in broken],
    }


def sessions_table(sessions: list[SessionSummary], broken: list[BrokenSession], root: Path) -> str:
    if not sessions and not broken:
        return f"no sessions yet (folder: {root.absolute()})"
    lines = [
        f"{'created':<20} {'label (default: model · profile · mode)':<42} {'ok':>3} {'tok/s':>8} "
        f"{'TTFT ms':>8} {'CV%':>5}  status      id"
    ]
    for s in sessions:
        created = s.created_at[:19].replace("T", " ")
        ok = "—" if s.runs_ok is None else str(s.runs_ok)
        label = sanitize_line(s.display_label)
        label = label if len(label) <= 42 else label[:41] + "…"
        lines.append(
            f"{created:<20} {label:<42} {ok:>3} "
            f"{fmt(s.mean_tok_s, 1):>8} {fmt(s.mean_ttft_ms, 1):>8} {fmt(s.cv_tok_s_pct, 1):>5}  "
            f"{s.status:<11} {s.path.name}" + (" (capacity)" if s.mode == "capacity" else "")
        )
    for b in broken:
        lines.append(f"unreadable: {b.path.name}: {sanitize_line(b.reason)}")
    return "\n".join(lines)


def comparison_table(c: Comparison) -> str:
    """Metric rows, one mean ± sd column per session, then Δ% and the verdict for each non-baseline."""
    full = [sanitize_line(label) for label in c.labels]
    labels = [chr(ord("A") + i) if i < 26 else str(i + 1) for i in range(len(full))]
    head = ["metric", *labels]
    for label in labels[1:]:
        head += [f"Δ% {label}", "verdict"]
    rows: list[list[str]] = []
    for mc in c.metrics:
        spec = mc.spec
        row = [f"{spec.label} ({spec.unit})" if spec.unit else spec.label]
        for col in mc.columns:
            s = col.summary
            row.append(
                fmt(s.mean, 2) + (f" ± {fmt(s.stddev, 2)}" if s.stddev is not None else "") + f" n={s.n}"
            )
        for col in mc.columns[1:]:
            row += [fmt_signed(col.delta_pct, 1, "%"), col.verdict]
        rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    ids = [sanitize_line(i) for i in c.session_ids] if len(c.session_ids) == len(full) else [""] * len(full)
    legend = [f"{name} ({sid})" if sid and sid != name else name for name, sid in zip(full, ids, strict=True)]
    lines = [f"baseline: A = {legend[0]}"]
    lines += [f"          {label} = {name}" for label, name in zip(labels[1:], legend[1:], strict=True)]
    lines += [f"warning: {sanitize_line(w)}" for w in c.warnings]
    lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    lines.append(f"verdicts: {c.method}")
    lines += [f"compared: {note}" for note in c.notes]
    return "\n".join(lines)


def capacity_text(session: Any) -> str:
    """The per-level table, the stopping rule and the answer, for the terminal."""
    from chimera_tui.core.reports.capacity import (
        LEVEL_HEADERS,
        capacity_levels,
        level_rows,
        loop_of,
        loop_text,
        slo_text,
        verdict_of,
    )
    from chimera_tui.safe_text import sanitize_line

    loop = loop_of(session)
    v = verdict_of(session)
    lines = [
        f"Capacity of {sanitize_line(session.manifest.model_name or '?')} — {loop_text(loop)}",
        f"SLO: {slo_text(session)}",
        *_table(LEVEL_HEADERS, level_rows(capacity_levels(session), loop)),
        f"stopped: {sanitize_line(v.get('stop_text') or session.status)}",
        f"answer: {sanitize_line(v.get('text') or 'no verdict')}",
        f"session: {session.path}",
    ]
    return "\n".join(lines)
