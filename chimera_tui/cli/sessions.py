"""`chimera-tui sessions`, `compare` and `export`: read saved sessions (and Chimeraforge metrics.json)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from chimera_tui.cli.common import EXIT_OK, UserError, add_sessions_dir, sessions_root

SESSION_REF_HELP = "session id, id prefix, folder, or metrics.json"


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("sessions", help="list saved sessions")
    s.add_argument("--json", action="store_true")
    add_sessions_dir(s)

    ex = sub.add_parser(
        "export", help="export sessions as a report (one session, or a comparison of several)"
    )
    ex.add_argument("sessions", nargs="+", metavar="SESSION", help=SESSION_REF_HELP)
    ex.add_argument("--format", "-f", choices=("md", "json", "csv", "html"), default="md")
    ex.add_argument("-o", "--output", type=Path, default=None, help="file to write (default: stdout)")
    add_sessions_dir(ex)

    cp = sub.add_parser("compare", help="compare sessions (the first is the baseline)")
    cp.add_argument("sessions", nargs="+", metavar="SESSION", help=SESSION_REF_HELP)
    cp.add_argument("--json", action="store_true")
    add_sessions_dir(cp)


def run_sessions(args: argparse.Namespace) -> int:
    from chimera_tui.cli.output import sessions_json, sessions_table
    from chimera_tui.core.store.sessions import SessionStore

    store = SessionStore(sessions_root(args))
    sessions, broken = store.summaries()
    if args.json:
        import json

        print(json.dumps(sessions_json(sessions, broken), indent=2))
    else:
        print(sessions_table(sessions, broken, store.root))
    return EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    from chimera_tui.core.reports import export_sessions, write_export

    text = export_sessions(_load_refs(args), args.format)
    if args.output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return EXIT_OK
    try:
        write_export(text, args.output)
    except OSError as exc:
        raise UserError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    print(f"exported: {args.output}", file=sys.stderr)
    return EXIT_OK


def run_compare(args: argparse.Namespace) -> int:
    from chimera_tui.core.measure.compare import compare_sessions, comparison_to_dict

    sessions = _load_refs(args)
    if len(sessions) < 2:
        raise UserError("compare needs at least two sessions (the first is the baseline)")
    if all(s.manifest.kind == "capacity" for s in sessions):  # load curves: each one's table and answer
        from chimera_tui.core.reports.capacity import capacity_json

        if args.json:
            import json

            print(json.dumps(capacity_json(sessions), indent=2, allow_nan=False))
        else:
            from chimera_tui.cli.output import capacity_text

            print("\n\n".join(capacity_text(s) for s in sessions))
        return EXIT_OK
    comparison = compare_sessions(sessions)
    if args.json:
        import json

        print(json.dumps(comparison_to_dict(comparison), indent=2))
    else:
        from chimera_tui.cli.output import comparison_table

        print(comparison_table(comparison))
    return EXIT_OK


def _load_refs(args: argparse.Namespace) -> list[Any]:
    """Sessions by id/prefix/folder; a `.json` file is read as a Chimeraforge metrics.json (read-only)."""
    from chimera_tui.core.store.chimeraforge import import_chimeraforge_all
    from chimera_tui.core.store.sessions import SessionStore

    store = SessionStore(sessions_root(args))
    sessions: list[Any] = []
    for ref in args.sessions:
        path = Path(ref)
        if path.suffix == ".json" and path.is_file():
            sessions.extend(import_chimeraforge_all(path))
        else:
            sessions.append(store.load(ref))
    return sessions
