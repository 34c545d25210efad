"""The parser and the dispatch: each command module adds its parser and runs its command.

Heavy modules (Textual, numpy, the engine) are imported inside the commands, so `--help` is fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from chimera_tui import __version__
from chimera_tui.cli import args as args_
from chimera_tui.cli import bench, capacity, load, profiles, sessions, sim, sweep
from chimera_tui.cli.common import (
    EXIT_BROKEN_PIPE,
    EXIT_CANCELLED,
    EXIT_ERROR,
    EXIT_USAGE,
    UsageError,
    UserError,
    add_gpu_options,
    add_sessions_dir,
)

log = logging.getLogger("chimera_tui.cli")

Handler = Callable[[argparse.Namespace], int]

#: command name → what runs it (the parsers are added in the same order by build_parser)
COMMANDS: dict[str, Handler] = {
    "bench": bench.run,
    "capacity": capacity.run,
    "sessions": sessions.run_sessions,
    "export": sessions.run_export,
    "compare": sessions.run_compare,
    "profiles": profiles.run,
    "sweep": sweep.run,
    "sim": sim.run,
    "load": load.run,
    "export-locust": load.run_export_locust,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chimera-tui",
        description="Benchmark local LLM servers (Ollama) live in the terminal, or headless.",
    )
    parser.add_argument("--version", action="version", version=f"chimera-tui {__version__}")
    parser.add_argument("--debug", action="store_true", help="print details (tracebacks, requests) to stderr")
    parser.add_argument("--demo", action="store_true", help="run against the embedded Ollama simulator")
    parser.add_argument(
        "--sim-mode",
        dest="tui_sim_mode",
        choices=("fifo", "shared-compute", "independent"),
        default=None,
        help="--demo: how the simulators serve concurrent agents (default fifo: one slot each)",
    )
    parser.add_argument(
        "--endpoint",
        type=args_.endpoint,
        action="append",
        default=None,
        metavar="URL",
        help="Ollama endpoint (repeatable; default http://127.0.0.1:11434)",
    )
    add_gpu_options(parser, cooldown=False, dest_prefix="tui_")  # the TUI's sessions; bench has its own
    add_sessions_dir(parser, top_level=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    bench.add_parser(sub)
    capacity.add_parser(sub)
    sessions.add_parsers(sub)
    profiles.add_parser(sub)
    sweep.add_parser(sub)
    sim.add_parser(sub)
    load.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from chimera_tui.logsetup import setup_logging

    logfile = setup_logging(debug=args.debug, to_stderr=args.command is not None)
    try:
        if args.command is None:
            from chimera_tui.cli.launch import run_tui

            return run_tui(args)
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("chimera-tui: interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:  # `chimera-tui sessions | head -1`: the reader is gone; end quietly
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        from chimera_tui.core.errors import ChimeraError
        from chimera_tui.safe_text import sanitize_line

        # one line, whatever the message holds (server text, newlines, escape sequences)
        if isinstance(exc, ChimeraError | UserError):
            log.info("error: %s", exc, exc_info=True)
            print(f"chimera-tui: error: {sanitize_line(str(exc))}", file=sys.stderr)
        else:
            log.exception("unexpected error")
            where = f" (details in {logfile})" if logfile else ""
            text = sanitize_line(f"{type(exc).__name__}: {exc}")[:500]
            print(f"chimera-tui: error: unexpected {text}{where}", file=sys.stderr)
        if args.debug:
            import traceback

            traceback.print_exc()
        return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_ERROR


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def entry(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - console-script convenience
    raise SystemExit(main(argv))
