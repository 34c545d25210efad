"""The `chimera-tui` command: the TUI by default, headless sub-commands for scripts and CI.

One module per job: ``main`` (parser and dispatch), ``common`` (shared arguments, exit codes, the
sessions folder, demo simulators), ``bench``, ``sessions`` (sessions, compare, export), ``profiles``,
``sweep``, ``sim``, ``output`` (tables and JSON), ``launch`` (the TUI). Importing this package stays
light: no Textual, numpy or httpx until a command runs.
"""

from __future__ import annotations

from chimera_tui.cli.main import build_parser, entry, main

__all__ = ["build_parser", "entry", "main"]
