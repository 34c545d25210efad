"""JSON exports: one session in full (with its Chimeraforge metrics.json form), or a comparison.

Every document is JSON-safe as built: non-finite floats become null, TOML dates become ISO strings,
so `json.dumps(doc, allow_nan=False)` never fails.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

from chimera_tui.core.measure.compare import Comparison, comparison_to_dict, session_labels
from chimera_tui.core.store.chimeraforge import to_chimeraforge
from chimera_tui.core.store.numbering import run_label
from chimera_tui.core.store.sessions import SCHEMA_VERSION, Session

#: the shape of the export documents; bumped when a field changes meaning or disappears
EXPORT_SCHEMA = "chimera-tui/export/1"


def json_safe(value: Any) -> Any:
    """`value` with non-finite floats as None, dates as ISO text, tuples as lists, keys as text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    return str(value)


def _session_part(session: Session, label: str | None = None) -> dict[str, Any]:
    part: dict[str, Any] = {"id": session.id}
    if label is not None:
        part["label"] = label
    part.update(
        {
            "status": session.status,
            "counts": session.counts,
            "manifest": session.manifest.to_toml_dict(),
            # each run with its label in the one numbering (core/store/numbering.py)
            "runs": [{"run": run_label(r), **r.to_dict()} for r in session.runs],
            "aggregates": {k: v.to_dict() for k, v in session.aggregates.items()},
        }
    )
    if session.rounds:  # multi-agent: the three efficiencies (older sessions: what they support)
        from chimera_tui.core.measure.concurrency import headline, result_view, round_views

        result = result_view(session.manifest.result_or_empty, session.rounds)
        part["concurrency"] = {
            "headline": headline(result),
            "result": result,
            "rounds": round_views(session.rounds),
        }
    return part


def session_json_doc(session: Session) -> dict[str, Any]:
    """One session: manifest, every run with every field, aggregates, and `chimeraforge` (metrics.json)."""
    doc = {
        "schema_version": SCHEMA_VERSION,
        "export_schema": EXPORT_SCHEMA,
        "kind": "session",
        "session": _session_part(session),
        "chimeraforge": to_chimeraforge(session),
    }
    return json_safe(doc)


def comparison_json_doc(sessions: Sequence[Session], comparison: Comparison) -> dict[str, Any]:
    """Every compared session in full (baseline first) and the comparison itself."""
    labels = comparison.labels if len(comparison.labels) == len(sessions) else session_labels(sessions)
    doc = {
        "schema_version": SCHEMA_VERSION,
        "export_schema": EXPORT_SCHEMA,
        "kind": "comparison",
        "sessions": [_session_part(s, label) for s, label in zip(sessions, labels, strict=True)],
        "comparison": comparison_to_dict(comparison),
    }
    return json_safe(doc)
