"""`chimera-tui profiles`: list and show profiles; new, copy, edit (in $EDITOR), diff and delete them.

Built-in profiles are read-only: copy one to change it. Every profile written is validated first.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from chimera_tui.cli.common import EXIT_ERROR, EXIT_OK, UsageError, UserError, confirm

#: the actions; any other first word is a profile to show (`profiles NAME`, as before)
ACTIONS = ("list", "show", "new", "copy", "edit", "diff", "delete")
USAGE = (
    "chimera-tui profiles [--json]                     list built-in and user profiles\n"
    "chimera-tui profiles [show] NAME [--json]         one profile as TOML\n"
    "chimera-tui profiles new NAME [--from BASE] [--description TEXT] [--set KEY=VALUE ...]\n"
    "chimera-tui profiles copy SOURCE NAME             a user copy (of a built-in too)\n"
    "chimera-tui profiles edit NAME                    open it in $VISUAL / $EDITOR; saved only if valid\n"
    "chimera-tui profiles diff A B [--json]            the options that differ\n"
    "chimera-tui profiles delete NAME [--yes]          user profiles only; asks first"
)


def add_parser(sub: Any) -> None:
    pr = sub.add_parser(
        "profiles",
        help="list, show, new, copy, edit, diff, delete profiles",
        usage=USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pr.add_argument(
        "words", nargs="*", metavar="ACTION/NAME", help=f"an action ({', '.join(ACTIONS)}) and names"
    )
    pr.add_argument("--json", action="store_true")
    pr.add_argument("--from", dest="base", default=None, metavar="BASE", help="new: start from this profile")
    pr.add_argument("--description", default=None, help="new: the description")
    pr.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="new: set an option"
    )
    pr.add_argument("--yes", "-y", action="store_true", help="delete: do not ask")


def _as_dict(profile: Any) -> dict[str, Any]:
    return {
        "name": profile.name,
        "description": profile.description,
        "builtin": profile.builtin,
        "options": profile.options,
    }


def _need(words: list[str], n: int, action: str) -> list[str]:
    if len(words) != n:
        raise UsageError(
            f"profiles {action} takes {n} name{'s' if n > 1 else ''} (usage: chimera-tui profiles -h)"
        )
    return words


def run(args: argparse.Namespace) -> int:
    from chimera_tui.core.store.profiles import ProfileStore

    store = ProfileStore()
    words = list(args.words)
    action = words.pop(0) if words and words[0] in ACTIONS else ("show" if words else "list")
    handler = {
        "list": _list,
        "show": _show,
        "new": _new,
        "copy": _copy,
        "edit": _edit,
        "diff": _diff,
        "delete": _delete,
    }[action]
    return handler(store, words, args)


def _list(store: Any, words: list[str], args: argparse.Namespace) -> int:
    import json

    _need(words, 0, "list")
    profiles = store.list()
    if args.json:
        print(json.dumps([_as_dict(p) for p in profiles], indent=2))
    else:
        width = max(len(p.name) for p in profiles) if profiles else 10
        for p in profiles:
            kind = "built-in" if p.builtin else "user"
            opts = ", ".join(f"{k}={v}" for k, v in p.options.items()) or "(Ollama defaults)"
            print(f"{p.name:<{width}}  {kind:<8}  {opts}")
    for path, reason in store.errors:
        print(f"chimera-tui: skipped invalid profile {path}: {reason}", file=sys.stderr)
    return EXIT_OK


def _show(store: Any, words: list[str], args: argparse.Namespace) -> int:
    import json

    (name,) = _need(words, 1, "show")
    profile = store.get(name)
    if args.json:
        print(json.dumps(_as_dict(profile), indent=2))
    else:
        print(profile.to_toml(), end="")
    return EXIT_OK


def _refuse_existing(store: Any, name: str) -> None:
    if any(p.name == name for p in store.list()):
        raise UserError(f"a profile '{name}' exists already; choose another name (or edit it)")


def _new(store: Any, words: list[str], args: argparse.Namespace) -> int:
    import dataclasses
    import tomllib

    from chimera_tui.core.store.profiles import Profile

    (name,) = _need(words, 1, "new")
    _refuse_existing(store, name)
    base = store.get(args.base) if args.base else None
    options = dict(base.options) if base is not None else {}
    for item in args.sets:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item}: give KEY=VALUE (e.g. --set num_ctx=4096)")
        try:  # a TOML value: 4096, 0.6, true, "text"; anything else is taken as text
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        options[key.strip()] = value
    description = args.description if args.description is not None else (base.description if base else "")
    think = base.think if base is not None else None
    profile = Profile(name, description, options, think=think)  # validated here (ProfileError)
    path = store.save_user(dataclasses.replace(profile))
    print(f"profile {name} saved: {path}")
    return EXIT_OK


def _copy(store: Any, words: list[str], args: argparse.Namespace) -> int:
    import dataclasses

    source, name = _need(words, 2, "copy")
    profile = store.get(source)
    _refuse_existing(store, name)
    path = store.save_user(dataclasses.replace(profile, name=name, path=None, builtin=False))
    print(f"profile {name} saved (a copy of {profile.name}): {path}")
    return EXIT_OK


def _edit(store: Any, words: list[str], args: argparse.Namespace) -> int:
    """Edit a copy in $VISUAL / $EDITOR; validate it; replace the profile only when it is valid.
    An invalid edit is kept (its path and the reason are printed) and the profile stays as it was."""
    import shlex
    import subprocess
    import tempfile
    from pathlib import Path

    from chimera_tui.core.errors import ProfileError
    from chimera_tui.core.store.profiles import load_profile
    from chimera_tui.core.store.safe_read import MAX_MANIFEST_BYTES, read_text

    (name,) = _need(words, 1, "edit")
    profile = store.get(name)
    if profile.builtin:
        raise UserError(
            f"profile '{name}' is built-in and read-only; copy it first: profiles copy {name} NEW"
        )
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    original = profile.to_toml()
    fd, tmp = tempfile.mkstemp(prefix=f"chimera-profile-{name}-", suffix=".toml")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(original)
    draft = Path(tmp)
    try:
        done = subprocess.run([*shlex.split(editor), str(draft)], check=False)
    except OSError as exc:
        draft.unlink(missing_ok=True)
        raise UserError(f"cannot start the editor '{editor}': {exc.strerror or exc} (set $EDITOR)") from None
    if done.returncode != 0:
        print(
            f"chimera-tui: the editor exited with {done.returncode}; your edit is kept in {draft}",
            file=sys.stderr,
        )
        return EXIT_ERROR
    try:
        unchanged = read_text(draft, MAX_MANIFEST_BYTES) == original
    except (OSError, ValueError):  # gone, special or not UTF-8: load_profile below says which
        unchanged = False
    if unchanged:
        draft.unlink(missing_ok=True)
        print(f"profile {name}: no changes")
        return EXIT_OK
    try:
        edited = load_profile(draft)
        if edited.name != name:
            raise ProfileError(f"{draft}: the name must stay '{name}' (use profiles copy for a new name)")
    except ProfileError as exc:
        print(f"chimera-tui: error: not saved, the edit is invalid: {exc}", file=sys.stderr)
        print(f"chimera-tui: your edit is kept in {draft}; profile {name} is unchanged", file=sys.stderr)
        return EXIT_ERROR
    path = store.save_user(edited)
    draft.unlink(missing_ok=True)
    print(f"profile {name} saved: {path}")
    return EXIT_OK


def _diff(store: Any, words: list[str], args: argparse.Namespace) -> int:
    import json

    from chimera_tui.core.store.profiles import diff_options

    a_name, b_name = _need(words, 2, "diff")
    a, b = store.get(a_name), store.get(b_name)
    changes = diff_options(a.options, b.options)
    think = None if a.think == b.think else (a.think, b.think)
    if args.json:
        doc = {
            "from": a.name,
            "to": b.name,
            "options": [
                {"name": c.name, "kind": c.kind, "old": c.old, "new": c.new, "load_time": c.load_time}
                for c in changes
            ],
            "think": None if think is None else {"old": think[0], "new": think[1]},
        }
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    print(f"{a.name} → {b.name}")
    for change in changes:
        print(f"  {change.text()}")
    if think is not None:
        print(f"  think {think[0]} → {think[1]}")
    if not changes and think is None:
        print("  (the same options)")
    return EXIT_OK


def _delete(store: Any, words: list[str], args: argparse.Namespace) -> int:
    (name,) = _need(words, 1, "delete")
    profile = store.get(name)
    if profile.builtin:
        raise UserError(f"profile '{name}' is built-in and read-only")
    if not confirm(f"delete profile {name} ({profile.path})?", args.yes):
        print("not deleted")
        return EXIT_OK
    store.delete_user(name)
    print(f"profile {name} deleted")
    return EXIT_OK
