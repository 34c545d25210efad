"""`chimera-tui profiles [NAME]`: list the built-in and user profiles, or show one."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from chimera_tui.cli.common import EXIT_OK


def add_parser(sub: Any) -> None:
    pr = sub.add_parser("profiles", help="list profiles (built-in and user)")
    pr.add_argument("--json", action="store_true")
    pr.add_argument("name", nargs="?", help="show one profile's options")


def _as_dict(profile: Any) -> dict[str, Any]:
    return {
        "name": profile.name,
        "description": profile.description,
        "builtin": profile.builtin,
        "options": profile.options,
    }


def run(args: argparse.Namespace) -> int:
    import json

    from chimera_tui.core.store.profiles import ProfileStore

    store = ProfileStore()
    if args.name:
        profile = store.get(args.name)
        if args.json:
            print(json.dumps(_as_dict(profile), indent=2))
        else:
            print(profile.to_toml(), end="")
        return EXIT_OK
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
