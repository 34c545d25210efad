"""Start the TUI from the command line: endpoints, demo simulator, logging to file only."""

from __future__ import annotations

import argparse

from chimera_tui.core.backends.ollama import DEFAULT_URL


def run_tui(args: argparse.Namespace) -> int:
    from chimera_tui.cli import _sessions_root, start_demo_simulator
    from chimera_tui.ui.app import ChimeraApp
    from chimera_tui.ui.config import AppConfig

    sim = start_demo_simulator() if args.demo else None
    try:
        endpoints = [sim.url] if sim else (args.endpoint or [DEFAULT_URL])
        config = AppConfig(endpoints=endpoints, sessions_root=_sessions_root(args), demo=bool(sim))
        ChimeraApp(config).run()
    finally:
        if sim is not None:
            sim.stop()
    return 0
