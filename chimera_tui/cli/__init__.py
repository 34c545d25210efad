"""The `chimera-tui` command: the TUI by default, headless sub-commands for scripts and CI.

Heavy modules (Textual, numpy, the engine) are imported inside the commands, so `--help` is fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chimera_tui import __version__

if TYPE_CHECKING:
    from chimera_tui.core.backends.ollama import Timeouts
    from chimera_tui.sim import RunningSimulator

log = logging.getLogger("chimera_tui.cli")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_RUNS_FAILED, EXIT_CANCELLED = 0, 1, 2, 3, 130


class UserError(Exception):
    """A problem with what the user asked for: printed as one line, exit code 1."""


def _add_timeouts(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("timeouts (seconds)")
    g.add_argument("--connect-timeout", type=float, default=5.0, help="opening the connection (default 5)")
    g.add_argument(
        "--first-byte-timeout",
        type=float,
        default=300.0,
        help="request sent to first bytes back, covers a cold load (default 300)",
    )
    g.add_argument(
        "--idle-timeout", type=float, default=60.0, help="longest gap between stream reads (default 60)"
    )


def _timeouts(args: argparse.Namespace) -> Timeouts:
    from chimera_tui.core.backends.ollama import Timeouts

    return Timeouts(args.connect_timeout, args.first_byte_timeout, args.idle_timeout)


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
        action="append",
        default=None,
        metavar="URL",
        help="Ollama endpoint (repeatable; default http://127.0.0.1:11434)",
    )
    parser.add_argument(
        "--sessions-dir", type=Path, default=None, help="where sessions are saved (default ./sessions)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

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
    b.add_argument("--agents", type=int, default=None, help="number of agents (shared: default 2)")
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
        type=float,
        default=10.0,
        metavar="PCT",
        help="contended when an agent's decode rate drops more than this vs solo (default 10)",
    )
    b.add_argument(
        "--contention-ttft-growth",
        type=float,
        default=50.0,
        metavar="PCT",
        help="contended when an agent's TTFT grows more than this vs solo (default 50)",
    )
    b.add_argument("--runs", "-n", type=int, default=3, help="measured runs (default 3)")
    b.add_argument(
        "--warmup", "-w", type=int, default=1, help="warm-up runs, excluded from statistics (default 1)"
    )
    b.add_argument("--cold", action="store_true", help="unload the model before every run (cold starts)")
    g = b.add_mutually_exclusive_group()
    g.add_argument("--prompt", help="prompt text")
    g.add_argument("--prompt-file", type=Path, help="read the prompt from a file")
    g.add_argument("--preset", default=None, help="prompt preset: short, medium, tr_report (default short)")
    b.add_argument(
        "--num-predict", type=int, default=None, help="cap on generated tokens (overrides the profile)"
    )
    b.add_argument(
        "--api", choices=("generate", "chat"), default="generate", help="Ollama API (default generate)"
    )
    b.add_argument("--keep-alive", default="30m", help="keep_alive sent with every request (default 30m)")
    b.add_argument(
        "--same-prompt", action="store_true", help="do not prefix a unique marker (allows prompt cache hits)"
    )
    b.add_argument(
        "--think", choices=("on", "off"), default=None, help="force thinking on/off (thinking models)"
    )
    b.add_argument(
        "--json", action="store_true", help="print the result as JSON on stdout (progress on stderr)"
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
    b.add_argument("--sessions-dir", dest="bench_sessions_dir", type=Path, default=None, help="where to save")
    _add_timeouts(b)

    s = sub.add_parser("sessions", help="list saved sessions")
    s.add_argument("--json", action="store_true")
    s.add_argument("--sessions-dir", dest="sub_sessions_dir", type=Path, default=None)

    ex = sub.add_parser(
        "export", help="export sessions as a report (one session, or a comparison of several)"
    )
    ex.add_argument(
        "sessions", nargs="+", metavar="SESSION", help="session id, id prefix, folder, or metrics.json"
    )
    ex.add_argument("--format", "-f", choices=("md", "json", "csv", "html"), default="md")
    ex.add_argument("-o", "--output", type=Path, default=None, help="file to write (default: stdout)")
    ex.add_argument("--sessions-dir", dest="sub_sessions_dir", type=Path, default=None)

    cp = sub.add_parser("compare", help="compare sessions (the first is the baseline)")
    cp.add_argument(
        "sessions", nargs="+", metavar="SESSION", help="session id, id prefix, folder, or metrics.json"
    )
    cp.add_argument("--json", action="store_true")
    cp.add_argument("--sessions-dir", dest="sub_sessions_dir", type=Path, default=None)

    pr = sub.add_parser("profiles", help="list profiles (built-in and user)")
    pr.add_argument("--json", action="store_true")
    pr.add_argument("name", nargs="?", help="show one profile's options")

    from chimera_tui.cli.sweep import add_sweep_parser

    add_sweep_parser(sub)

    sm = sub.add_parser("sim", help="serve the Ollama simulator on a port")
    sm.add_argument("--host", default="127.0.0.1")
    sm.add_argument("--port", type=int, default=11434)
    sm.add_argument("--tokens-per-s", type=float, default=120.0)
    sm.add_argument("--prompt-tokens-per-s", type=float, default=2000.0)
    sm.add_argument("--load-s", type=float, default=1.5, help="simulated cold load time")
    sm.add_argument("--jitter", type=float, default=0.05, help="relative jitter of token gaps")
    sm.add_argument(
        "--num-parallel",
        type=int,
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
    sm.add_argument("--fault", choices=("none", "503", "midstream-error", "cut"), default="none")
    # benchmarks/timestamps.py: on exit, write each token line's perf_counter_ns() as JSON to PATH
    sm.add_argument("--emit-times", type=Path, default=None, metavar="PATH", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from chimera_tui.logsetup import setup_logging

    logfile = setup_logging(debug=args.debug, to_stderr=args.command is not None)
    command = args.command
    try:
        if command is None:
            return _cmd_tui(args)
        handler = {
            "bench": _cmd_bench,
            "sessions": _cmd_sessions,
            "profiles": _cmd_profiles,
            "sim": _cmd_sim,
            "export": _cmd_export,
            "compare": _cmd_compare,
            "sweep": _cmd_sweep,
        }[command]
        return handler(args)
    except KeyboardInterrupt:
        print("chimera-tui: interrupted", file=sys.stderr)
        return EXIT_CANCELLED
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
        return EXIT_ERROR


# -- shared helpers ---------------------------------------------------------------------------------
def _sessions_root(args: argparse.Namespace) -> Path:
    from chimera_tui.core.store.sessions import default_sessions_dir

    for name in ("bench_sessions_dir", "sub_sessions_dir", "sessions_dir"):
        value = getattr(args, name, None)
        if value is not None:
            return Path(value)
    return default_sessions_dir()


def start_demo_simulator(num_parallel: int = 1, **settings: Any) -> RunningSimulator:
    """The embedded simulator on a free loopback port, with demo-friendly speeds."""
    from chimera_tui.sim import OllamaSimulator, SimConfig, start_background

    # a 0.3 s model load: visible in the load phase and in cold runs, short enough that the demo's
    # first token comes within a second (docs/performance.md)
    config = SimConfig(load_s=0.3, num_parallel=num_parallel, **settings)
    return start_background(OllamaSimulator(config))


def start_demo_simulators(mode: str, agents: int, sim_mode: str | None = None) -> list[RunningSimulator]:
    """One simulator (single; shared: `sim_mode`, default fifo = one slot, like OLLAMA_NUM_PARALLEL=1),
    or one per agent (dual/multi: independent instances; shared-compute: one compute budget)."""
    from chimera_tui.sim import ComputeBudget, sim_mode_settings

    count = agents if mode in ("dual", "multi") else 1
    if mode == "shared":
        settings = sim_mode_settings(sim_mode or "fifo", agents)
    elif sim_mode == "shared-compute":  # every instance (and slot) draws on one budget
        settings = {"num_parallel": agents, "compute": "shared", "budget": ComputeBudget()}
    elif sim_mode == "independent":
        settings = {"num_parallel": agents}
    else:  # one slot each, Ollama's default
        settings = {"num_parallel": 1}
    sims: list[RunningSimulator] = []
    try:
        for _ in range(count):
            sims.append(start_demo_simulator(**settings))  # type: ignore[arg-type]
    except BaseException:
        for sim in sims:
            sim.stop()
        raise
    return sims


# -- bench ----------------------------------------------------------------------------------------
def _read_prompt(args: argparse.Namespace) -> tuple[str, str]:
    from chimera_tui.core.run.prompts import resolve_prompt

    if args.prompt_file is not None:
        try:
            label, prompt = f"file:{args.prompt_file.name}", args.prompt_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read prompt file {args.prompt_file}: {exc}") from None
    else:
        try:
            label, prompt = resolve_prompt(args.preset, args.prompt)
        except KeyError as exc:
            raise UserError(exc.args[0]) from None
    if not prompt.strip():
        raise UserError("the prompt is empty")
    return label, prompt


def _per_agent(values: list[str] | None, n: int, what: str) -> list[str | None]:
    """One value for every agent: none given → None each; one → shared; n → one each."""
    if not values:
        return [None] * n
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise UserError(f"give one {what} for all agents or exactly {n} (got {len(values)})")
    return list(values)


def _agent_count(args: argparse.Namespace) -> int:
    if args.mode == "single":
        return 1
    if args.agents is not None:
        if args.agents < 2:
            raise UserError("--agents must be at least 2 in a multi-agent mode")
        return int(args.agents)
    if args.mode in ("dual", "multi") and args.bench_endpoint and len(args.bench_endpoint) > 1:
        return len(args.bench_endpoint)
    return 2


def _cmd_bench(args: argparse.Namespace) -> int:
    import signal

    import anyio

    from chimera_tui.cli.output import session_json, summary_table
    from chimera_tui.core.store.profiles import ProfileStore

    if args.runs < 1:
        raise UserError("--runs must be at least 1")
    if args.warmup < 0:
        raise UserError("--warmup cannot be negative")
    n = _agent_count(args)
    store = ProfileStore()
    profiles = [store.get(name or "baseline_default") for name in _per_agent(args.profile, n, "--profile")]
    label, prompt = _read_prompt(args)

    demo = args.demo or args.bench_demo
    sims = start_demo_simulators(args.mode, n, args.sim_mode) if demo else []
    try:
        endpoints = [s.url for s in sims] if sims else _bench_endpoints(args, n)
        if args.mode == "shared":
            endpoints = [endpoints[0]] * n
        models = [
            name or _first_model(endpoint, _timeouts(args), args.backend, args.api_key_env)
            for name, endpoint in zip(_per_agent(args.model, n, "--model"), endpoints, strict=True)
        ]
        runner = _make_runner(args, endpoints, models, profiles, label, prompt)
        previous = signal.signal(signal.SIGINT, lambda *_: runner.cancel())
        try:
            session = anyio.run(runner.run)
        finally:
            signal.signal(signal.SIGINT, previous)
    finally:
        for sim in sims:
            sim.stop()
    if args.json:
        import json

        print(json.dumps(session_json(session), indent=2))
    else:
        print(summary_table(session))
        print(f"session saved: {session.path}")
    return _bench_exit_code(session)


def _bench_endpoints(args: argparse.Namespace, n: int) -> list[str]:
    given = list(args.bench_endpoint or args.endpoint or [])
    if args.mode in ("dual", "multi"):
        from chimera_tui.core.run.multi import DUAL_DEFAULT_ENDPOINTS

        if not given:
            if n > len(DUAL_DEFAULT_ENDPOINTS):
                raise UserError(f"--mode {args.mode} with {n} agents needs {n} --endpoint values")
            return list(DUAL_DEFAULT_ENDPOINTS[:n])
        if len(given) != n:
            raise UserError(
                f"--mode {args.mode} with {n} agents needs {n} --endpoint values (got {len(given)})"
            )
        return given
    if not given and args.backend == "openai":
        from chimera_tui.core.backends.openai import DEFAULT_OPENAI_URL

        return [DEFAULT_OPENAI_URL]
    return [given[0] if given else _default_endpoint()]


def _make_runner(
    args: argparse.Namespace,
    endpoints: list[str],
    models: list[str],
    profiles: list[Any],
    label: str,
    prompt: str,
) -> Any:
    from chimera_tui.cli.output import HeadlessProgress

    common = {
        "prompt": prompt,
        "prompt_label": label,
        "runs": args.runs,
        "warmup": args.warmup,
        "cold": args.cold,
        "api": args.api,
        "unique_prompt": not args.same_prompt,
        "keep_alive": _keep_alive(args.keep_alive),
        "num_predict": args.num_predict,
        "think": None if args.think is None else args.think == "on",
        "timeouts": _timeouts(args),
    }
    progress = HeadlessProgress(sys.stderr)
    if args.workload == "workflow":
        if args.mode != "single":
            raise UserError("--workload workflow runs one agent: use --mode single")
        from chimera_tui.core.run.workflow import WorkflowRunner, sample_data_dir

        return WorkflowRunner(
            endpoints[0],
            models[0],
            profiles[0],
            args.data or sample_data_dir(),
            _sessions_root(args),
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
    common.update(backend=args.backend, api_key_env=args.api_key_env)
    if args.mode == "single":
        from chimera_tui.core.run.single import BenchRunner, BenchSpec

        spec = BenchSpec(model=models[0], profile=profiles[0], endpoint=endpoints[0], **common)
        return BenchRunner(spec, _sessions_root(args), emit=progress)
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
    return MultiRunner(multi, _sessions_root(args), emit=progress)


def _bench_exit_code(session: Any) -> int:
    counts = session.counts
    if session.status == "cancelled":
        return EXIT_CANCELLED
    if session.status == "failed" or counts["ok"] == 0:
        reason = session.manifest.get("result", {}).get("error") or next(
            (r.error for r in reversed(session.runs) if r.error), "no run succeeded"
        )
        print(f"chimera-tui: error: {reason}", file=sys.stderr)
        return EXIT_ERROR
    if counts["failed"]:
        print(f"chimera-tui: {counts['failed']} run(s) failed; see the session for causes", file=sys.stderr)
        return EXIT_RUNS_FAILED
    return EXIT_OK


def _default_endpoint() -> str:
    host = os.environ.get("OLLAMA_HOST")
    if not host:
        return "http://127.0.0.1:11434"
    if host.startswith(":"):
        host = f"127.0.0.1{host}"
    return host if "://" in host else f"http://{host}"


def _keep_alive(value: str) -> str | int:
    """Numbers go as numbers (Ollama rejects numeric strings); durations like '5m' as strings."""
    try:
        return int(value)
    except ValueError:
        return value


def _first_model(
    endpoint: str, timeouts: Timeouts, backend: str = "auto", api_key_env: str | None = None
) -> str:
    import anyio

    from chimera_tui.core.backends import open_client

    async def first() -> str:
        async with await open_client(endpoint, backend, timeouts, None, api_key_env) as client:
            await client.probe()
            models = await client.tags()
        if not models:
            raise UserError(f"{endpoint} has no models; pull one first (ollama pull <model>)")
        return models[0].name

    return anyio.run(first)


# -- sessions / profiles / sim ----------------------------------------------------------------------
def _cmd_sessions(args: argparse.Namespace) -> int:
    from chimera_tui.cli.output import sessions_json, sessions_table
    from chimera_tui.core.store.sessions import SessionStore

    store = SessionStore(_sessions_root(args))
    sessions, broken = store.summaries()
    if args.json:
        import json

        print(json.dumps(sessions_json(sessions, broken), indent=2))
    else:
        print(sessions_table(sessions, broken, store.root))
    return EXIT_OK


def _load_refs(args: argparse.Namespace) -> list[Any]:
    """Sessions by id/prefix/folder; a `.json` file is read as a Chimeraforge metrics.json (read-only)."""
    from chimera_tui.core.store.chimeraforge import import_chimeraforge_all
    from chimera_tui.core.store.sessions import SessionStore

    store = SessionStore(_sessions_root(args))
    sessions = []
    for ref in args.sessions:
        path = Path(ref)
        if path.suffix == ".json" and path.is_file():
            sessions.extend(import_chimeraforge_all(path))
        else:
            sessions.append(store.load(ref))
    return sessions


def _cmd_export(args: argparse.Namespace) -> int:
    from chimera_tui.core.reports import export_sessions, write_export

    text = export_sessions(_load_refs(args), args.format)
    if args.output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return EXIT_OK
    try:
        write_export(text, args.output)
    except OSError as exc:
        raise UserError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    print(f"exported: {args.output}", file=sys.stderr)
    return EXIT_OK


def _cmd_compare(args: argparse.Namespace) -> int:
    from chimera_tui.core.measure.compare import compare_sessions, comparison_to_dict

    sessions = _load_refs(args)
    if len(sessions) < 2:
        raise UserError("compare needs at least two sessions (the first is the baseline)")
    comparison = compare_sessions(sessions)
    if args.json:
        import json

        print(json.dumps(comparison_to_dict(comparison), indent=2))
    else:
        from chimera_tui.cli.output import comparison_table

        print(comparison_table(comparison))
    return EXIT_OK


def _cmd_profiles(args: argparse.Namespace) -> int:
    from chimera_tui.core.store.profiles import ProfileStore

    store = ProfileStore()
    if args.name:
        profile = store.get(args.name)
        if args.json:
            import json

            print(
                json.dumps(
                    {
                        "name": profile.name,
                        "description": profile.description,
                        "builtin": profile.builtin,
                        "options": profile.options,
                    },
                    indent=2,
                )
            )
        else:
            print(profile.to_toml(), end="")
        return EXIT_OK
    profiles = store.list()
    if args.json:
        import json

        print(
            json.dumps(
                [
                    {"name": p.name, "description": p.description, "builtin": p.builtin, "options": p.options}
                    for p in profiles
                ],
                indent=2,
            )
        )
    else:
        width = max(len(p.name) for p in profiles) if profiles else 10
        for p in profiles:
            kind = "built-in" if p.builtin else "user"
            opts = ", ".join(f"{k}={v}" for k, v in p.options.items()) or "(Ollama defaults)"
            print(f"{p.name:<{width}}  {kind:<8}  {opts}")
    for path, reason in store.errors:
        print(f"chimera-tui: skipped invalid profile {path}: {reason}", file=sys.stderr)
    return EXIT_OK


def _cmd_sim(args: argparse.Namespace) -> int:
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
        **settings,
    )
    config.record_emit_times = args.emit_times is not None
    sim = OllamaSimulator(config)
    print(f"Ollama simulator on http://{args.host}:{args.port} (Ctrl-C to stop)", file=sys.stderr)
    try:
        serve(sim, args.host, args.port)
    except OSError as exc:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    finally:
        if args.emit_times is not None:
            args.emit_times.write_text(str(sim.emit_times_ns), encoding="utf-8")
    return EXIT_OK


def _cmd_sweep(args: argparse.Namespace) -> int:
    from chimera_tui.cli.sweep import cmd_sweep
    from chimera_tui.core.backends.ollama import Timeouts

    return cmd_sweep(args, _sessions_root(args), Timeouts())


def _cmd_tui(args: argparse.Namespace) -> int:
    from chimera_tui.cli.launch import run_tui

    return run_tui(args)


def entry(argv: Any = None) -> None:  # pragma: no cover - console-script convenience
    raise SystemExit(main(argv))
