"""Every call of one or more sessions as CSV: one row per run, warm-ups and failures included."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from chimera_tui.core.measure.compare import session_labels
from chimera_tui.core.measure.concurrency import round_view
from chimera_tui.core.measure.metrics import CallMetrics
from chimera_tui.core.reports import _common as c
from chimera_tui.core.store.numbering import run_label
from chimera_tui.core.store.sessions import Session
from chimera_tui.safe_text import sanitize

METRIC_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(CallMetrics))
CSV_COLUMNS: tuple[str, ...] = (
    "session_id",
    "label",
    "model",
    "profile",
    "mode",
    "endpoint",
    "run_index",
    # the one run numbering (core/store/numbering.py): w1, 3, A1-3, analysis 2 ...
    "run",
    "warmup",
    "status",
    "error_kind",
    "error",
    *METRIC_FIELDS,
    "started_at",
    # multi-agent sessions: whose call, which round, solo-baseline call, and its round's efficiencies
    "agent",
    "round",
    "solo",
    "round_capacity_efficiency_pct",
    "round_research_efficiency_pct",
    "round_overlap_efficiency_pct",
)
_ROUND_KEYS = ("capacity_efficiency_pct", "research_efficiency_pct", "overlap_efficiency_pct")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: Any) -> str:
    """Untrusted text for a spreadsheet cell: sanitized, and never read as a formula (leading `'`)."""
    if value is None:
        return ""
    text = sanitize(str(value))
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_number(value: Any) -> str:
    """A number at full precision (repr), "" when missing or not finite."""
    number = c.finite(value)
    if number is None:
        return ""
    return str(int(value)) if isinstance(value, int) else repr(number)


def calls_csv(sessions: Sequence[Session]) -> str:
    """One row per call of every session; empty cells for missing metrics (CSV_COLUMNS order)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for label, session in zip(session_labels(sessions), sessions, strict=True):
        head = [
            csv_text(session.id),
            csv_text(label),
            csv_text(c.model_name(session)),
            csv_text(c.profile_name(session)),
            csv_text(session.manifest.mode),
            csv_text(c.endpoint_url(session)),
        ]
        rounds = {v.get("round"): v for v in map(round_view, session.rounds)}
        for run in session.runs:
            metrics = run.metrics.to_dict()
            writer.writerow(
                [
                    *head,
                    str(run.index),
                    csv_text(run_label(run)),
                    "true" if run.warmup else "false",
                    csv_text(run.status),
                    csv_text(run.error_kind),
                    csv_text(run.error),
                    *(
                        csv_text(metrics[name]) if name == "done_reason" else csv_number(metrics[name])
                        for name in METRIC_FIELDS
                    ),
                    csv_text(run.started_at),
                    str(run.agent + 1),
                    "" if run.round is None else str(run.round),
                    "true" if run.solo else "false",
                    *(csv_number(rounds.get(run.round, {}).get(key)) for key in _ROUND_KEYS),
                ]
            )
    return buf.getvalue()
