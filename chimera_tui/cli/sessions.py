"""`chimera-tui sessions`, `compare` and `export`: read saved sessions (and Chimeraforge metrics.json)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from chimera_tui.cli.common import (
    EXIT_OK,
    UsageError,
    add_sessions_dir,
    confirm,
    sessions_root,
    write_output_file,
)

SESSION_REF_HELP = "session id, id prefix, folder, or metrics.json"


def add_parsers(sub: Any) -> None:
    s = sub.add_parser(
        "sessions", help="list saved sessions; rename, delete or import them (sessions ACTION -h)"
    )
    s.add_argument("--json", action="store_true")
    add_sessions_dir(s)
    ssub = s.add_subparsers(dest="sessions_command", metavar="ACTION")
    ls = ssub.add_parser("list", help="list saved sessions (the default)")
    # SUPPRESS: `sessions --json list` keeps the --json given before the action
    ls.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    add_sessions_dir(ls)
    rn = ssub.add_parser("rename", help="set a session's label (what reports and charts are headed by)")
    rn.add_argument("session", metavar="SESSION", help="session id, id prefix or folder")
    rn.add_argument("label", help="the new label (an empty one restores the default model · profile · mode)")
    add_sessions_dir(rn)
    dl = ssub.add_parser("delete", help="delete a session folder (asks first)")
    dl.add_argument("sessions", nargs="+", metavar="SESSION", help="session id, id prefix or folder")
    dl.add_argument("--yes", "-y", action="store_true", help="do not ask (needed when not on a terminal)")
    add_sessions_dir(dl)
    im = ssub.add_parser("import", help="save a Chimeraforge metrics.json as sessions (one per agent)")
    im.add_argument("path", type=Path, metavar="PATH", help="a Chimeraforge metrics.json")
    im.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    add_sessions_dir(im)

    ex = sub.add_parser(
        "export", help="export sessions as a report (one session, or a comparison of several)"
    )
    ex.add_argument("sessions", nargs="+", metavar="SESSION", help=SESSION_REF_HELP)
    ex.add_argument("--format", "-f", choices=("md", "json", "csv", "html"), default="md")
    ex.add_argument("--json", action="store_true", help="the same as --format json")
    ex.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="file to write (default stdout); its folder must exist",
    )
    add_sessions_dir(ex)

    cp = sub.add_parser("compare", help="compare sessions (the first is the baseline)")
    cp.add_argument("sessions", nargs="+", metavar="SESSION", help=SESSION_REF_HELP)
    cp.add_argument("--json", action="store_true")
    add_sessions_dir(cp)


def run_sessions(args: argparse.Namespace) -> int:
    from chimera_tui.cli.output import sessions_json, sessions_table
    from chimera_tui.core.store.session_store import SessionStore

    store = SessionStore(sessions_root(args))
    action = getattr(args, "sessions_command", None) or "list"
    if action == "rename":
        return _rename(store, args)
    if action == "delete":
        return _delete(store, args)
    if action == "import":
        return _import(store, args)
    sessions, broken = store.summaries()
    if args.json:
        import json

        print(json.dumps(sessions_json(sessions, broken), indent=2))
    else:
        print(sessions_table(sessions, broken, store.root))
    return EXIT_OK


def _rename(store: Any, args: argparse.Namespace) -> int:
    from chimera_tui.core.store.labels import display_label
    from chimera_tui.core.store.sessions import read_manifest

    folder = store.resolve(args.session)
    store.set_label(folder, args.label)
    label = display_label(read_manifest(folder))
    print(f"{folder.name}: label {label!r}")
    return EXIT_OK


def _delete(store: Any, args: argparse.Namespace) -> int:
    from chimera_tui.core.errors import SessionError
    from chimera_tui.core.store.labels import display_label
    from chimera_tui.core.store.sessions import read_manifest

    folders = [store.resolve(ref) for ref in args.sessions]
    names = []
    for folder in folders:
        try:
            names.append(f"{folder.name} ({display_label(read_manifest(folder))})")
        except SessionError:  # an unreadable session can be deleted all the same
            names.append(folder.name)
    question = "delete " + (
        "session " + names[0] if len(names) == 1 else f"{len(names)} sessions: " + ", ".join(names)
    )
    if not confirm(question + "?", args.yes):
        print("not deleted")
        return EXIT_OK
    for folder in folders:
        store.delete(folder)
        print(f"deleted: {folder.name}")
    return EXIT_OK


def _import(store: Any, args: argparse.Namespace) -> int:
    from chimera_tui.core.store.chimeraforge import import_into
    from chimera_tui.core.store.labels import display_label

    saved, skipped = import_into(args.path, store.root)
    if args.json:
        import json

        doc = {
            "imported": [
                {"id": s.id, "path": str(s.path), "label": display_label(s.manifest)} for s in saved
            ],
            "skipped": skipped,
        }
        print(json.dumps(doc, indent=2))
    else:
        for s in saved:
            print(f"imported: {s.id} ({display_label(s.manifest)}, {len(s.runs)} calls)")
        for note in skipped:
            print(f"skipped: {note}")
    return EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    from chimera_tui.core.reports import export_sessions

    text = export_sessions(_load_refs(args), "json" if args.json else args.format)
    if args.output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return EXIT_OK
    write_output_file(text, args.output)
    return EXIT_OK


def run_compare(args: argparse.Namespace) -> int:
    from chimera_tui.core.measure.compare import compare_sessions, comparison_to_dict

    if len(args.sessions) < 2 and not args.sessions[0].endswith(".json"):  # a metrics.json may hold two
        raise UsageError("compare needs at least two sessions (the first is the baseline)")
    sessions = _load_refs(args)
    if len(sessions) < 2:
        raise UsageError("compare needs at least two sessions (the first is the baseline)")
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
    from chimera_tui.core.store.session_store import SessionStore

    store = SessionStore(sessions_root(args))
    sessions: list[Any] = []
    for ref in args.sessions:
        path = Path(ref)
        if path.suffix == ".json" and path.is_file():
            sessions.extend(import_chimeraforge_all(path))
        else:
            sessions.append(store.load(ref))
    return sessions
