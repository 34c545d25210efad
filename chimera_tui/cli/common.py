"""What every command shares: exit codes, the one-line user error, the shared arguments
(``--sessions-dir``, the timeouts), where sessions go, the demo simulators and endpoint defaults.

Imports stay light here: the engine is imported inside the functions that need it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chimera_tui.cli import args as args_

if TYPE_CHECKING:
    from chimera_tui.core.backends.ollama import Timeouts
    from chimera_tui.sim import RunningSimulator

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_RUNS_FAILED, EXIT_CANCELLED = 0, 1, 2, 3, 130
#: output to a closed pipe: what a shell reports for a process ended by SIGPIPE
EXIT_BROKEN_PIPE = 141


class UserError(Exception):
    """A problem with what the user asked for: printed as one line, exit code 1."""


class UsageError(UserError):
    """The command line itself is wrong (a combination of options argparse cannot check, an output
    folder that does not exist): printed as one line, exit code 2 like argparse's own errors."""


def confirm(question: str, yes: bool) -> bool:
    """Ask `question [y/N]` on the terminal; `yes` (--yes) answers for the user. Without a terminal to
    ask on, and without --yes, refuse (a usage error): a script never deletes by accident."""
    import sys

    if yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError("not a terminal, so nothing can be confirmed: pass --yes to go ahead")
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def write_output_file(text: str, path: Path) -> None:
    """Write a command's output to `-o PATH` (atomically; never creating folders: a missing one is a
    usage error) and say so on stderr."""
    import sys

    from chimera_tui.core.reports import write_export
    from chimera_tui.core.store.atomic import MissingFolder

    try:
        write_export(text, path, create_folders=False)
    except MissingFolder as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(f"exported: {path}", file=sys.stderr)


# -- shared arguments -------------------------------------------------------------------------------
def add_sessions_dir(parser: argparse.ArgumentParser, *, top_level: bool = False) -> None:
    """The one ``--sessions-dir`` option. Given before or after the command, it lands in
    ``args.sessions_dir``: sub-commands suppress their default so they never reset the top-level value."""
    parser.add_argument(
        "--sessions-dir",
        dest="sessions_dir",
        type=Path,
        default=None if top_level else argparse.SUPPRESS,
        metavar="DIR",
        help="where sessions and sweeps are saved (default: $CHIMERA_TUI_SESSIONS, else ./sessions "
        "in a Chimera project, else the user data folder)",
    )


def sessions_root(args: argparse.Namespace) -> Path:
    """``--sessions-dir``, else the default place (:func:`chimera_tui.places.sessions_dir`)."""
    from chimera_tui.places import sessions_dir

    value = getattr(args, "sessions_dir", None)
    return Path(value) if value is not None else sessions_dir()


def add_timeouts(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("timeouts (seconds)")
    g.add_argument(
        "--connect-timeout", type=args_.seconds, default=5.0, help="opening the connection (default 5)"
    )
    g.add_argument(
        "--first-byte-timeout",
        type=args_.seconds,
        default=300.0,
        help="request sent to first bytes back, covers a cold load (default 300)",
    )
    g.add_argument(
        "--idle-timeout",
        type=args_.seconds,
        default=60.0,
        help="longest gap between stream lines (default 60)",
    )
    g.add_argument(
        "--call-timeout",
        type=args_.seconds,
        default=None,
        help="the whole streamed call, request to done (default: first-byte + idle + 0.5 s per "
        "num_predict token, 32768 tokens when num_predict is unset)",
    )
    g.add_argument(
        "--max-call-mib",
        type=args_.number(0.0, 1024 * 1024, low_open=True),
        default=256.0,
        help="the most MiB one streamed call may send (default 256)",
    )


def add_gpu_options(p: argparse.ArgumentParser, *, cooldown: bool = True, dest_prefix: str = "") -> None:
    """The GPU energy options (docs/metrics.md "GPU energy"): idle baseline and thermal gate.
    `dest_prefix` keeps the top-level (TUI) values apart from a command's own."""
    g = p.add_argument_group("GPU energy and thermal gate")
    g.add_argument(
        "--idle-baseline",
        dest=f"{dest_prefix}idle_baseline",
        type=args_.number(0, 3600),
        default=None,
        metavar="S",
        help="seconds of GPU idle power measured before the session, for the 'above idle' figures "
        "(default 3 when a GPU is present, 0.5 with --demo's simulated GPU; 0 disables)",
    )
    g.add_argument(
        "--cool-to",
        dest=f"{dest_prefix}cool_to",
        type=args_.number(0, 150),
        default=None,
        metavar="C",
        help="thermal gate: before each run (sweeps: each configuration) wait until every GPU is below C °C",
    )
    if cooldown:
        g.add_argument(
            "--cooldown", type=args_.number(0, 86400), default=None, metavar="S", help="pause before each run"
        )


def gpu_options(args: argparse.Namespace, demo: bool) -> Any:
    """GpuOptions from the GPU arguments; `--demo` measures the simulated GPU (labelled so)."""
    from chimera_tui.core.run.gpu import GpuOptions
    from chimera_tui.core.system.simulated_gpu import DEMO_IDLE_BASELINE_S, simulated_nvml

    idle = getattr(args, "idle_baseline", None)
    if demo and idle is None:
        idle = DEMO_IDLE_BASELINE_S
    return GpuOptions(
        nvml_module=simulated_nvml() if demo else None,
        idle_baseline_s=idle,
        cool_to_c=getattr(args, "cool_to", None),
        cooldown_s=getattr(args, "cooldown", None) or 0.0,
    )


def timeouts(args: argparse.Namespace) -> Timeouts:
    from chimera_tui.core.backends.ollama import Timeouts

    return Timeouts(
        args.connect_timeout,
        args.first_byte_timeout,
        args.idle_timeout,
        call_s=args.call_timeout,
        max_call_bytes=int(args.max_call_mib * 1024 * 1024),
    )


# -- the workload options bench and capacity share ----------------------------------------------------
def read_prompt(args: argparse.Namespace) -> tuple[str, str]:
    """(label, prompt) from --prompt-file, --prompt or --preset, within --max-prompt-mib."""
    from chimera_tui.core.run.prompts import resolve_prompt
    from chimera_tui.core.store.safe_read import read_text

    limit = int(args.max_prompt_mib * 1024 * 1024)
    too_big = (
        f"prompts above {args.max_prompt_mib:g} MiB are refused (session.toml keeps the prompt, and "
        "a model's context rarely holds more); raise the limit with --max-prompt-mib"
    )
    if args.prompt_file is not None:
        try:
            size = args.prompt_file.stat().st_size
        except OSError:
            size = 0  # read_text below says what is wrong
        if size > limit:
            raise UserError(f"prompt file {args.prompt_file} is {size:,} bytes: {too_big}")
        try:
            prompt = read_text(args.prompt_file, limit)
            label = f"file:{args.prompt_file.name}"
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read prompt file {args.prompt_file}: {exc}") from None
    else:
        try:
            label, prompt = resolve_prompt(args.preset, args.prompt)
        except KeyError as exc:
            raise UsageError(exc.args[0]) from None
    if len(prompt.encode("utf-8")) > limit:
        raise UserError(f"the prompt is {len(prompt.encode('utf-8')):,} bytes: {too_big}")
    if not prompt.strip():
        raise UserError("the prompt is empty")
    return label, prompt


def add_request_options(p: argparse.ArgumentParser, title: str = "request") -> Any:
    """The request options capacity and load share with bench (model, profile, prompt, API, think,
    backend); returns the argument group, for a command's own additions."""
    r = p.add_argument_group(title)
    r.add_argument(
        "--model", "-m", default=None, help="model name (default: the first model the server lists)"
    )
    r.add_argument(
        "--profile", "-p", default=None, help="profile name or .toml path (default baseline_default)"
    )
    g = r.add_mutually_exclusive_group()
    g.add_argument("--prompt", help="prompt text")
    g.add_argument("--prompt-file", type=Path, help="read the prompt from a file")
    g.add_argument("--preset", default=None, help="prompt preset: short, medium, tr_report (default short)")
    r.add_argument("--max-prompt-mib", type=args_.number(0, 1024, low_open=True), default=1.0)
    r.add_argument("--num-predict", type=args_.num_predict, default=None, help="cap on generated tokens")
    r.add_argument("--api", choices=("generate", "chat"), default="generate")
    r.add_argument("--keep-alive", default="30m", help="keep_alive sent with every request (default 30m)")
    r.add_argument("--same-prompt", action="store_true", help="no unique marker (allows prompt cache hits)")
    r.add_argument("--think", choices=("on", "off", "true", "false", "low", "medium", "high", "max"))
    r.add_argument("--backend", choices=("auto", "ollama", "openai"), default="auto")
    r.add_argument("--api-key-env", metavar="VAR", default=None, help="environment variable with the API key")
    return r


def keep_alive_value(value: str) -> str | int:
    """Numbers go as numbers (Ollama rejects numeric strings); durations like '5m' as strings."""
    try:
        return int(value)
    except ValueError:
        return value


# -- endpoints and demo simulators -------------------------------------------------------------------
def default_endpoint() -> str:
    """``$OLLAMA_HOST`` as Ollama reads it (core/backends/endpoint.py), else 127.0.0.1:11434."""
    from chimera_tui.core.backends.endpoint import InvalidEndpoint, parse_endpoint

    host = os.environ.get("OLLAMA_HOST", "").strip()
    if not host:
        return "http://127.0.0.1:11434"
    try:
        return parse_endpoint(host)
    except InvalidEndpoint as exc:
        raise UserError(f"OLLAMA_HOST: {exc}") from None


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
    settings: dict[str, Any]
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
            sims.append(start_demo_simulator(**settings))
    except BaseException:
        for sim in sims:
            sim.stop()
        raise
    return sims


def first_model(
    endpoint: str, timeouts: Timeouts, backend: str = "auto", api_key_env: str | None = None
) -> str:
    """The first model the server lists (the default when ``--model`` is not given)."""
    import anyio

    from chimera_tui.core.backends import open_client

    async def first() -> str:
        client = await open_client(endpoint, backend, timeouts, None, api_key_env)
        try:
            await client.probe()
            models = await client.tags()
        finally:
            await client.aclose()
        if not models:
            raise UserError(f"{endpoint} has no models; pull one first (ollama pull <model>)")
        return models[0].name

    return anyio.run(first)
