"""`chimera-tui bench`: run a benchmark headless (single, shared, dual, multi, workflow) and save it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from chimera_tui.cli import args as args_
from chimera_tui.cli.common import (
    EXIT_CANCELLED,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_RUNS_FAILED,
    UsageError,
    add_gpu_options,
    add_sessions_dir,
    add_timeouts,
    default_endpoint,
    first_model,
    gpu_options,
    keep_alive_value,
    read_prompt,
    sessions_root,
    start_demo_simulators,
    timeouts,
)


def add_parser(sub: Any) -> None:
    b = sub.add_parser("bench", help="run a benchmark headless and save it as a session")
    b.add_argument(
        "--model",
        "-m",
        action="append",
        default=None,
        help="model name (default: the first model the server lists); repeat to give each agent its own",
    )
    b.add_argument(
        "--profile",
        "-p",
        action="append",
        default=None,
        help="profile name or .toml path (default baseline_default); repeat to give each agent its own",
    )
    b.add_argument(
        "--mode",
        choices=("single", "shared", "dual", "multi"),
        default="single",
        help="single: one agent; shared: N agents on one endpoint; dual/multi: one endpoint per agent",
    )
    b.add_argument(
        "--agents", type=args_.count(0, 256), default=None, help="number of agents (shared: default 2)"
    )
    b.add_argument(
        "--workload",
        choices=("prompt", "workflow"),
        default="prompt",
        help="prompt: one prompt per run; workflow: the two-stage agent (ingest, analysis, report)",
    )
    b.add_argument(
        "--data",
        type=Path,
        default=None,
        help="workflow: directory of CSV/JSON/Markdown files (default: the bundled sample data)",
    )
    b.add_argument(
        "--solo-baseline",
        dest="solo_baseline",
        action="store_true",
        default=True,
        help="each agent alone once before every measured round: capacity efficiency, contention (default)",
    )
    b.add_argument(
        "--no-solo-baseline",
        dest="solo_baseline",
        action="store_false",
        help="no solo calls: capacity efficiency and contention are then unknown",
    )
    b.add_argument(
        "--contention-rate-drop",
        type=args_.number(0, 1e6),
        default=10.0,
        metavar="PCT",
        help="contended when an agent's decode rate drops more than this vs solo (default 10)",
    )
    b.add_argument(
        "--contention-ttft-growth",
        type=args_.number(0, 1e6),
        default=50.0,
        metavar="PCT",
        help="contended when an agent's TTFT grows more than this vs solo (default 50)",
    )
    b.add_argument(
        "--runs", "-n", type=args_.count(1, args_.MAX_RUNS), default=3, help="measured runs (default 3)"
    )
    b.add_argument(
        "--warmup",
        "-w",
        type=args_.count(0, args_.MAX_RUNS),
        default=1,
        help="warm-up runs, excluded from statistics (default 1)",
    )
    b.add_argument("--cold", action="store_true", help="unload the model before every run (cold starts)")
    g = b.add_mutually_exclusive_group()
    g.add_argument("--prompt", help="prompt text")
    g.add_argument("--prompt-file", type=Path, help="read the prompt from a file")
    g.add_argument("--preset", default=None, help="prompt preset: short, medium, tr_report (default short)")
    b.add_argument(
        "--max-prompt-mib",
        type=args_.number(0, 1024, low_open=True),
        default=1.0,
        help="refuse a larger prompt (default 1 MiB, about 250k tokens)",
    )
    b.add_argument(
        "--num-predict",
        type=args_.num_predict,
        default=None,
        help="cap on generated tokens (overrides the profile)",
    )
    b.add_argument(
        "--api", choices=("generate", "chat"), default="generate", help="Ollama API (default generate)"
    )
    b.add_argument("--keep-alive", default="30m", help="keep_alive sent with every request (default 30m)")
    b.add_argument(
        "--same-prompt", action="store_true", help="do not prefix a unique marker (allows prompt cache hits)"
    )
    b.add_argument(
        "--think",
        choices=("on", "off", "true", "false", "low", "medium", "high", "max"),
        default=None,
        help="thinking: on/true, off/false, or a level low/medium/high/max (overrides the profile's think)",
    )
    b.add_argument(
        "--allow-remote",
        action="store_true",
        help="measure a remote / cloud model (refused by default; its runs are flagged 'remote model')",
    )
    b.add_argument(
        "--cache-cohorts",
        action="store_true",
        help="prompt-cache workload: each run is the prompt cache-cold (fresh marker first, raw) then "
        "the same prompt cache-warm; TTFT and prefill reported per cohort (single mode, warm mode)",
    )
    b.add_argument(
        "--label",
        default=None,
        help="the session's label, heading its reports and charts (default: model · profile · mode)",
    )
    b.add_argument(
        "--json", action="store_true", help="print the result as JSON on stdout (progress on stderr)"
    )
    b.add_argument(
        "--no-timings",
        dest="timings",
        action="store_false",
        help="no timing block after each run (total, load, prompt eval, eval; like ollama run --verbose)",
    )
    b.add_argument(
        "--backend",
        choices=("auto", "ollama", "openai"),
        default="auto",
        help="server kind: Ollama's native API, an OpenAI-compatible server (llama.cpp, vLLM, LM Studio), "
        "or auto-detect (default)",
    )
    b.add_argument(
        "--api-key-env",
        metavar="VAR",
        default=None,
        help="OpenAI-compatible servers: environment variable holding the API key (never saved)",
    )
    b.add_argument(
        "--endpoint",
        dest="bench_endpoint",
        type=args_.endpoint,
        action="append",
        default=None,
        metavar="URL",
        help="Ollama endpoint; repeat for dual/multi (default :11434 and :11435)",
    )
    b.add_argument("--demo", dest="bench_demo", action="store_true", help="use the embedded simulator")
    b.add_argument(
        "--sim-mode",
        choices=("fifo", "shared-compute", "independent"),
        default=None,
        help="--demo: how the simulator serves concurrent agents (default: shared fifo, dual/multi "
        "independent instances); shared-compute in dual/multi: the instances share one compute budget",
    )
    add_sessions_dir(b)
    add_timeouts(b)
    add_gpu_options(b)


def run(args: argparse.Namespace) -> int:
    import anyio

    from chimera_tui.cli.output import session_json, summary_table
    from chimera_tui.cli.signals import StopSignals
    from chimera_tui.core.store.profiles import ProfileStore

    n = _agent_count(args)
    store = ProfileStore()
    profiles = [store.get(name or "baseline_default") for name in _per_agent(args.profile, n, "--profile")]
    label, prompt = read_prompt(args)

    demo = args.demo or args.bench_demo
    sims = start_demo_simulators(args.mode, n, args.sim_mode) if demo else []
    try:
        endpoints = [s.url for s in sims] if sims else _endpoints(args, n)
        if args.mode == "shared":
            endpoints = [endpoints[0]] * n
        models = [
            name or first_model(endpoint, timeouts(args), args.backend, args.api_key_env)
            for name, endpoint in zip(_per_agent(args.model, n, "--model"), endpoints, strict=True)
        ]
        runner = _make_runner(args, endpoints, models, profiles, label, prompt, gpu_options(args, demo))
        # SIGINT, SIGTERM, SIGHUP: the run in flight recorded cancelled, the session closed
        with StopSignals(runner.cancel) as stop:
            session = anyio.run(runner.run)
    finally:
        for sim in sims:
            sim.stop()
    if args.label is not None:
        _set_label(session, args.label)
    try:
        if args.json:
            import json

            print(json.dumps(session_json(session), indent=2))
        else:
            print(summary_table(session))
            print(f"session saved: {session.path}")
    except OSError:  # stdout gone with the terminal (SIGHUP): the session is saved all the same
        if stop.received is None:
            raise
    if stop.received is not None and session.status == "cancelled":
        stop.report(session.path)
        return stop.exit_code or EXIT_CANCELLED
    return _exit_code(session)


def _set_label(session: Any, label: str) -> None:
    """`--label`: written into the finished session's manifest (its id and folder stay)."""
    from chimera_tui.core.store.labels import clean_label
    from chimera_tui.core.store.session_store import SessionStore

    SessionStore(session.path.parent).set_label(session.path, label)
    session.manifest.label = clean_label(label)


def _per_agent(values: list[str] | None, n: int, what: str) -> list[str | None]:
    """One value for every agent: none given → None each; one → shared; n → one each."""
    if not values:
        return [None] * n
    if len(values) == 1:
        return [values[0]] * n
    if len(values) != n:
        raise UsageError(f"give one {what} for all agents or exactly {n} (got {len(values)})")
    return list(values)


def _agent_count(args: argparse.Namespace) -> int:
    if args.mode == "single":
        return 1
    if args.agents is not None:
        if args.agents < 2:
            raise UsageError("--agents must be at least 2 in a multi-agent mode")
        return int(args.agents)
    if args.mode in ("dual", "multi") and args.bench_endpoint and len(args.bench_endpoint) > 1:
        return len(args.bench_endpoint)
    return 2


def _endpoints(args: argparse.Namespace, n: int) -> list[str]:
    given = list(args.bench_endpoint or args.endpoint or [])
    if args.mode in ("dual", "multi"):
        from chimera_tui.core.run.multi import DUAL_DEFAULT_ENDPOINTS

        if not given:
            if n > len(DUAL_DEFAULT_ENDPOINTS):
                raise UsageError(f"--mode {args.mode} with {n} agents needs {n} --endpoint values")
            return list(DUAL_DEFAULT_ENDPOINTS[:n])
        if len(given) != n:
            raise UsageError(
                f"--mode {args.mode} with {n} agents needs {n} --endpoint values (got {len(given)})"
            )
        return given
    if not given and args.backend == "openai":
        from chimera_tui.core.backends.openai import DEFAULT_OPENAI_URL

        return [DEFAULT_OPENAI_URL]
    return [given[0] if given else default_endpoint()]


def _make_runner(
    args: argparse.Namespace,
    endpoints: list[str],
    models: list[str],
    profiles: list[Any],
    label: str,
    prompt: str,
    gpu: Any = None,
) -> Any:
    from chimera_tui.cli.output import HeadlessProgress
    from chimera_tui.core.store.profiles import parse_think

    common: dict[str, Any] = {
        "prompt": prompt,
        "prompt_label": label,
        "runs": args.runs,
        "warmup": args.warmup,
        "cold": args.cold,
        "api": args.api,
        "unique_prompt": not args.same_prompt,
        "keep_alive": keep_alive_value(args.keep_alive),
        "num_predict": args.num_predict,
        "think": parse_think(args.think) if args.think is not None else profiles[0].think,
        "timeouts": timeouts(args),
    }
    progress = HeadlessProgress(sys.stderr, timings=args.timings)
    root = sessions_root(args)
    if args.cache_cohorts and (args.mode != "single" or args.workload == "workflow"):
        raise UsageError("--cache-cohorts runs one agent's plain benchmark: use --mode single")
    if args.cache_cohorts and args.cold:
        raise UsageError("--cache-cohorts needs warm mode: unloading the model empties the prompt cache")
    if args.workload == "workflow":
        if args.mode != "single":
            raise UsageError("--workload workflow runs one agent: use --mode single")
        from chimera_tui.core.run.workflow import WorkflowRunner, sample_data_dir

        return WorkflowRunner(
            endpoints[0],
            models[0],
            profiles[0],
            args.data or sample_data_dir(),
            root,
            runs=args.runs,
            warmup=args.warmup,
            emit=progress,
            timeouts=common["timeouts"],
            num_predict=args.num_predict,
            api=args.api,
            keep_alive=common["keep_alive"],
            think=common["think"],
            unique_prompt=common["unique_prompt"],
        )
    common.update(backend=args.backend, api_key_env=args.api_key_env, allow_remote=args.allow_remote)
    if args.mode == "single":
        common["cache_cohorts"] = args.cache_cohorts
        from chimera_tui.core.run.single import BenchRunner, BenchSpec

        spec = BenchSpec(model=models[0], profile=profiles[0], endpoint=endpoints[0], **common)
        return BenchRunner(spec, root, emit=progress, gpu=gpu)
    from chimera_tui.core.run.multi import AgentSpec, MultiRunner, MultiSpec

    agents = [AgentSpec(e, m, p) for e, m, p in zip(endpoints, models, profiles, strict=True)]
    multi = MultiSpec(
        mode=args.mode,
        agents=agents,
        solo_baseline=args.solo_baseline,
        rate_drop_pct=args.contention_rate_drop,
        ttft_growth_pct=args.contention_ttft_growth,
        **common,
    )
    return MultiRunner(multi, root, emit=progress, gpu=gpu)


def _exit_code(session: Any) -> int:
    counts = session.counts
    if session.status == "cancelled":
        return EXIT_CANCELLED
    if session.status == "failed" or counts["ok"] == 0:
        reason = session.manifest.result_or_empty.error or next(
            (r.error for r in reversed(session.runs) if r.error), "no run succeeded"
        )
        print(f"chimera-tui: error: {reason}", file=sys.stderr)
        return EXIT_ERROR
    if counts["failed"]:
        print(f"chimera-tui: {counts['failed']} run(s) failed; see the session for causes", file=sys.stderr)
        return EXIT_RUNS_FAILED
    return EXIT_OK
