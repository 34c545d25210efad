"""Start the TUI from the command line: endpoints, demo simulator, logging to file only."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from chimera_tui.cli.common import sessions_root, start_demo_simulators


def run_tui(args: argparse.Namespace) -> int:
    from chimera_tui.cli.signals import AppStopSignals
    from chimera_tui.core.backends.ollama import DEFAULT_URL
    from chimera_tui.places import exports_dir
    from chimera_tui.ui import live_gc
    from chimera_tui.ui.app import ChimeraApp
    from chimera_tui.ui.config import AppConfig

    live_gc.enable()  # live screens drive garbage collection while they stream (ui/live_gc.py)

    # demo: two simulators, so dual mode works; each has one parallel slot (Ollama's default),
    # so shared mode shows the serialization the research measured
    sims = start_demo_simulators("dual", 2, args.tui_sim_mode) if args.demo else []
    try:
        endpoints = [sim.url for sim in sims] if sims else (args.endpoint or [DEFAULT_URL])
        config = AppConfig(
            endpoints=endpoints,
            sessions_root=sessions_root(args),
            exports_dir=exports_dir(),
            demo=bool(sims),
            engine_process=os.environ.get("CHIMERA_TUI_ENGINE", "process") != "thread",
            idle_baseline_s=args.tui_idle_baseline,
            cool_to_c=args.tui_cool_to,
        )
        if sims:  # the demo shows a simulated GPU, labelled "simulated" wherever it appears
            from chimera_tui.core.system.simulated_gpu import DEMO_IDLE_BASELINE_S, simulated_nvml

            config.nvml_module = simulated_nvml()
            if config.idle_baseline_s is None:
                config.idle_baseline_s = DEMO_IDLE_BASELINE_S
            # the panel and the runner must see the same simulated GPU (its power follows the calls
            # the runner reports), so the demo measures in this process
            config.engine_process = False
        if config.engine_process:
            from chimera_tui.core.run.process import prepare

            prepare()  # before Textual captures stderr
        app = ChimeraApp(config)
        # SIGTERM, SIGHUP (the terminal went away): exit as ctrl+q does, the run in flight cancelled
        with AppStopSignals(app) as stop:
            app.run()
    finally:
        for sim in sims:
            sim.stop()
    if stop.received is not None:
        with contextlib.suppress(OSError, ValueError):  # no terminal left to tell
            print(f"chimera-tui: stopped by {stop.received.name}", file=sys.stderr, flush=True)
    return stop.exit_code
