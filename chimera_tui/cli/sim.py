"""`chimera-tui sim`: serve the Ollama simulator on a port."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from chimera_tui.cli import args as args_
from chimera_tui.cli.common import EXIT_OK, UserError


def add_parser(sub: Any) -> None:
    sm = sub.add_parser("sim", help="serve the Ollama simulator on a port")
    sm.add_argument("--host", default="127.0.0.1")
    sm.add_argument("--port", type=args_.port, default=11434)
    sm.add_argument("--tokens-per-s", type=args_.number(0, 1e7, low_open=True), default=120.0)
    sm.add_argument("--prompt-tokens-per-s", type=args_.number(0, 1e8, low_open=True), default=2000.0)
    sm.add_argument("--load-s", type=args_.number(0, 3600), default=1.5, help="simulated cold load time")
    sm.add_argument("--jitter", type=args_.number(0, 10), default=0.05, help="relative jitter of token gaps")
    sm.add_argument(
        "--num-parallel",
        type=args_.count(1, 1024),
        default=None,
        help="slots per loaded model (like OLLAMA_NUM_PARALLEL; default 1, with --sim-mode 2)",
    )
    sm.add_argument(
        "--sim-mode",
        choices=("fifo", "shared-compute", "independent"),
        default=None,
        help="fifo: one slot, first come first served; shared-compute: the slots share one compute "
        "budget (each stream slower); independent: each slot at full speed",
    )
    sm.add_argument(
        "--max-queue",
        type=args_.count(0, 1_000_000),
        default=None,
        help="requests that may wait for a busy slot; one more gets 503 (like OLLAMA_MAX_QUEUE)",
    )
    sm.add_argument("--fault", choices=("none", "503", "midstream-error", "cut"), default="none")
    # benchmarks/timestamps.py: on exit, write each token line's perf_counter_ns() as JSON to PATH
    sm.add_argument("--emit-times", type=Path, default=None, metavar="PATH", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from chimera_tui.sim import OllamaSimulator, SimConfig, SimFaults, serve

    faults = SimFaults(
        status_503=args.fault == "503",
        midstream_error_after=20 if args.fault == "midstream-error" else None,
        cut_after=20 if args.fault == "cut" else None,
    )
    from chimera_tui.sim import sim_mode_settings

    settings: dict[str, Any] = {"num_parallel": args.num_parallel or 1}
    if args.sim_mode is not None:
        settings = sim_mode_settings(args.sim_mode, args.num_parallel or 2)
    config = SimConfig(
        tokens_per_s=args.tokens_per_s,
        prompt_tokens_per_s=args.prompt_tokens_per_s,
        load_s=args.load_s,
        jitter=args.jitter,
        faults=faults,
        max_queue=args.max_queue,
        **settings,
    )
    config.record_emit_times = args.emit_times is not None
    sim = OllamaSimulator(config)
    where = f"[{args.host}]:{args.port}" if ":" in args.host else f"{args.host}:{args.port}"
    print(f"Ollama simulator on http://{where} (Ctrl-C to stop)", file=sys.stderr)
    try:
        serve(sim, args.host, args.port)
    except OSError as exc:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    finally:
        if args.emit_times is not None:
            args.emit_times.write_text(str(sim.emit_times_ns), encoding="utf-8")
    return EXIT_OK
