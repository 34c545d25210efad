"""`chimera-tui capacity`: one endpoint at increasing load — the load curve and the answer in words."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Literal, TextIO

from chimera_tui.cli import args as args_
from chimera_tui.cli.common import (
    EXIT_CANCELLED,
    EXIT_ERROR,
    EXIT_OK,
    UserError,
    add_request_options,
    add_sessions_dir,
    add_timeouts,
    default_endpoint,
    first_model,
    keep_alive_value,
    read_prompt,
    sessions_root,
    start_demo_simulator,
    timeouts,
)


def _levels(text: str) -> list[float]:
    """A comma-separated list of positive numbers, ascending."""
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not values or any(not (0 < v <= 100_000) for v in values):
        raise argparse.ArgumentTypeError("levels must be positive numbers (at most 100000)")
    if values != sorted(set(values)):
        raise argparse.ArgumentTypeError("levels must be distinct and ascending")
    return values


def add_parser(sub: Any) -> None:
    c = sub.add_parser(
        "capacity",
        help="how many at once before it falls over, and why: a load curve and the answer in words",
    )
    load = c.add_mutually_exclusive_group()
    load.add_argument(
        "--levels",
        type=_levels,
        default=None,
        metavar="N,N,...",
        help="closed loop: concurrent streams per level (default 1,2,4,8,16)",
    )
    load.add_argument(
        "--rates",
        type=_levels,
        default=None,
        metavar="R,R,...",
        help="open loop: Poisson arrival rates in requests/s, one level each",
    )
    size = c.add_mutually_exclusive_group()
    size.add_argument(
        "--requests",
        type=args_.count(1, args_.MAX_RUNS),
        default=None,
        help="requests per level (default: 4 per stream closed loop, 16 open loop)",
    )
    size.add_argument(
        "--duration", type=args_.seconds, default=None, metavar="S", help="seconds per level instead"
    )
    c.add_argument("--slo-ttft-p95-ms", type=args_.number(0, 1e9, low_open=True), default=None, metavar="MS")
    c.add_argument(
        "--min-stream-tps",
        type=args_.number(0, 1e7, low_open=True),
        default=None,
        metavar="TPS",
        help="SLO: each stream at least this fast (median client decode rate)",
    )
    c.add_argument(
        "--max-error-pct",
        type=args_.number(0, 100),
        default=0.0,
        help="errors above this share of a level stop the run (default 0)",
    )
    c.add_argument(
        "--min-gain-pct",
        type=args_.number(0, 1000),
        default=10.0,
        help="throughput must grow more than this (and beyond its CI) to go on (default 10)",
    )
    c.add_argument("--seed", type=args_.count(0, 2**31), default=0, help="open loop: arrivals' seed")
    c.add_argument("--warmup", "-w", type=args_.count(0, 100), default=1, help="warm-up calls (default 1)")
    add_request_options(c)
    c.add_argument(
        "--endpoint", dest="cap_endpoint", type=args_.endpoint, default=None, metavar="URL", help="the server"
    )
    c.add_argument("--json", action="store_true", help="the result as JSON on stdout (progress on stderr)")
    c.add_argument("--demo", dest="cap_demo", action="store_true", help="against the embedded simulator")
    c.add_argument(
        "--sim-mode",
        choices=("fifo", "shared-compute", "independent"),
        default="fifo",
        help="--demo: fifo (one slot: requests queue), shared-compute (slots share one compute budget), "
        "independent (each slot at full speed); default fifo",
    )
    c.add_argument(
        "--sim-slots",
        type=args_.count(1, 1024),
        default=None,
        help="--demo: parallel slots (default: 1 for fifo, else the highest level)",
    )
    c.add_argument(
        "--sim-max-queue",
        type=args_.count(0, 1_000_000),
        default=None,
        help="--demo: requests that may wait for a slot; more get 503 (like OLLAMA_MAX_QUEUE)",
    )
    add_sessions_dir(c)
    add_timeouts(c)


class CapacityProgress:
    """An emit callback: one line per level on stderr (and a live count on a terminal)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()

    def __call__(self, event: Any) -> None:
        from chimera_tui.core.reports.capacity import load_label
        from chimera_tui.core.run.capacity import LevelFinished, LevelProgress, LevelStarted
        from chimera_tui.core.run.events import PhaseChanged, SessionStarted
        from chimera_tui.safe_text import sanitize_line

        if isinstance(event, SessionStarted):
            self._line(f"capacity {event.session_id}: {sanitize_line(event.model)} on {event.endpoint}")
        elif isinstance(event, PhaseChanged):
            self._line(f"  {sanitize_line(event.message)}")
        elif isinstance(event, LevelStarted):
            what = " concurrent" if event.loop == "closed" else ""
            self._line(
                f"  level {event.index + 1}/{event.total_levels}: {load_label(event.load, event.loop)}{what}"
            )
        elif isinstance(event, LevelProgress) and self.tty:
            self.out.write(f"\r    {event.done} done, {event.failed} failed")
            self.out.flush()
        elif isinstance(event, LevelFinished):
            s = event.stats
            from chimera_tui.core.measure.catalogue import fmt

            self._line(
                f"    → {fmt(s.throughput_tps, 1)} tok/s in all, {fmt(s.stream_tps.median, 1)} per stream, "
                f"TTFT p95 {fmt(s.ttft_ms.p95, 0)} ms, {s.failed} failed"
                + (f"; stop: {event.rule}" if event.rule else ""),
                clear=True,
            )

    def _line(self, text: str, clear: bool = False) -> None:
        prefix = "\r\x1b[K" if clear and self.tty else ""
        self.out.write(f"{prefix}{text}\n")
        self.out.flush()


def run(args: argparse.Namespace) -> int:
    import anyio

    from chimera_tui.cli.signals import StopSignals
    from chimera_tui.core.measure.capacity import Slo
    from chimera_tui.core.run.capacity import CapacityRunner, CapacitySpec
    from chimera_tui.core.store.profiles import ProfileStore, parse_think

    loop: Literal["closed", "open"] = "open" if args.rates else "closed"
    levels = args.rates or args.levels or [1.0, 2.0, 4.0, 8.0, 16.0]
    if loop == "closed" and any(v != int(v) for v in levels):
        raise UserError("--levels are whole numbers of concurrent streams")
    profile = ProfileStore().get(args.profile or "baseline_default")
    label, prompt = read_prompt(args)
    demo = args.demo or args.cap_demo
    sim = None
    if demo:
        from chimera_tui.sim import sim_mode_settings

        settings: dict[str, Any] = sim_mode_settings(args.sim_mode, args.sim_slots or int(max(levels)))
        if args.sim_slots:
            settings["num_parallel"] = args.sim_slots
        sim = start_demo_simulator(max_queue=args.sim_max_queue, **settings)
    try:
        endpoint = (
            sim.url if sim else (args.cap_endpoint or (args.endpoint or [None])[0] or default_endpoint())
        )
        model = args.model or first_model(endpoint, timeouts(args), args.backend, args.api_key_env)
        spec = CapacitySpec(
            model=model,
            profile=profile,
            prompt=prompt,
            prompt_label=label,
            endpoint=endpoint,
            loop=loop,
            levels=list(levels),
            requests=args.requests,
            duration_s=args.duration,
            warmup=args.warmup,
            api=args.api,
            unique_prompt=not args.same_prompt,
            keep_alive=keep_alive_value(args.keep_alive),
            num_predict=args.num_predict,
            think=parse_think(args.think) if args.think is not None else profile.think,
            timeouts=timeouts(args),
            backend=args.backend,
            api_key_env=args.api_key_env,
            slo=Slo(args.slo_ttft_p95_ms, args.min_stream_tps, args.max_error_pct),
            min_gain_pct=args.min_gain_pct,
            seed=args.seed,
        )
        runner = CapacityRunner(spec, sessions_root(args), emit=CapacityProgress(sys.stderr))
        with StopSignals(runner.cancel) as stop:
            session = anyio.run(runner.run)
    finally:
        if sim is not None:
            sim.stop()
    from chimera_tui.cli.output import capacity_text

    print(capacity_text(session) if not args.json else _json(session))
    if stop.received is not None and session.status == "cancelled":
        stop.report(session.path)
        return stop.exit_code or EXIT_CANCELLED
    if session.status == "failed":
        print(f"chimera-tui: error: {session.manifest.result_or_empty.error or 'failed'}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def _json(session: Any) -> str:
    import json

    from chimera_tui.core.reports.capacity import capacity_json

    doc = capacity_json([session])["sessions"][0]
    doc["path"] = str(session.path)
    doc["status"] = session.status
    return json.dumps(doc, indent=2, allow_nan=False)
