"""Exporting sessions as reports: Markdown, JSON, CSV and self-contained HTML.

One session gives a session report; two or more give a comparison against the first (the baseline).
This module imports only the standard library at load time (the exporters load on first use), so a
command line can list FORMATS or name a file without paying for numpy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from chimera_tui.core.store.atomic import write_output

if TYPE_CHECKING:
    from chimera_tui.core.store.sessions import Session

FORMATS: tuple[str, ...] = ("md", "json", "csv", "html")

#: longest file name default_filename() returns (the extension included)
MAX_FILENAME = 120


def _check(sessions: Sequence[Session], fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format '{fmt}'; available: {', '.join(FORMATS)}")
    if not sessions:
        raise ValueError("nothing to export: no sessions given")


def export_sessions(sessions: Sequence[Session], fmt: str) -> str:
    """The report text of `sessions` in `fmt`: a session report for one, a comparison for more.

    CSV is always one row per call of every session. JSON is indented, ASCII-only and NaN-free.
    """
    _check(sessions, fmt)
    sessions = list(sessions)
    if fmt == "csv":
        from chimera_tui.core.reports.csv_export import calls_csv

        return calls_csv(sessions)
    if len(sessions) == 1:
        session = sessions[0]
        if fmt == "md":
            from chimera_tui.core.reports.markdown import session_markdown

            return session_markdown(session)
        if fmt == "html":
            from chimera_tui.core.reports.html_export import session_html

            return session_html(session)
        from chimera_tui.core.reports.json_export import session_json_doc

        return _dumps(session_json_doc(session))

    from chimera_tui.core.measure.compare import compare_sessions

    comparison = compare_sessions(sessions)
    if fmt == "md":
        from chimera_tui.core.reports.markdown import comparison_markdown

        return comparison_markdown(sessions, comparison)
    if fmt == "html":
        from chimera_tui.core.reports.html_export import comparison_html

        return comparison_html(sessions, comparison)
    from chimera_tui.core.reports.json_export import comparison_json_doc

    return _dumps(comparison_json_doc(sessions, comparison))


def _dumps(doc: dict[str, object]) -> str:
    return json.dumps(doc, indent=2, allow_nan=False, ensure_ascii=True) + "\n"


def _slug(text: str, limit: int) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text)
    slug = re.sub(r"\.{2,}", ".", slug).strip("-.")
    return (slug or "session")[:limit].strip("-.") or "session"


def default_filename(sessions: Sequence[Session], fmt: str) -> str:
    """A safe file name for the export: only [A-Za-z0-9._-], no "..", never a path.

    `<id>.<fmt>` for one session; `compare-<id1>-vs-<id2>....<fmt>` for more, shortened to fit.
    """
    _check(sessions, fmt)
    ids = [s.id for s in sessions]
    room = MAX_FILENAME - len(fmt) - 1
    if len(ids) == 1:
        stem = _slug(ids[0], room)
    else:
        stem = "compare-" + "-vs-".join(_slug(i, 60) for i in ids)
        if len(stem) > room:
            stem = f"compare-{_slug(ids[0], 60)}-and-{len(ids) - 1}-more"
        stem = _slug(stem, room)
    return f"{stem}.{fmt}"


def write_export(text: str, path: Path, create_folders: bool = True) -> Path:
    """Write `text` to `path` through `write_output`: atomically for a regular file or a new one (a
    reader sees the old file or the whole new one), straight through to a device or FIFO, refused
    (`OutputRefused`, an OSError) for a directory, a symbolic link to a file or other special files,
    and (`MissingFolder`) for a missing folder unless `create_folders`."""
    write_output(path, text.encode("utf-8"), create_folders)
    return path


__all__ = ["FORMATS", "default_filename", "export_sessions", "write_export"]
