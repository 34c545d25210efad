"""`chimera-tui load`: a load run on Locust, saved as one normal session (mode "load").

This process never imports Locust (it monkey-patches with gevent): it probes the endpoints with the
core, prepares the manifest and the plan, then starts the Locust master (`chimera_tui.load.master`)
and workers (`chimera_tui.load.worker`) as subprocesses, prints the master's snapshots as progress
lines and, at the end, the session like `bench` does. `--worker --master-host H` only starts workers
for a master on another host; `--master` starts a master that waits for such workers.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from chimera_tui.cli import args as args_
from chimera_tui.cli.common import (
    EXIT_CANCELLED,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_RUNS_FAILED,
    UsageError,
    UserError,
    add_request_options,
    add_sessions_dir,
    add_timeouts,
    default_endpoint,
    first_model,
    keep_alive_value,
    read_prompt,
    sessions_root,
    timeouts,
)

#: the Locust master's default port (Locust's own)
MASTER_PORT = 5557


def add_parser(sub: Any) -> None:
    p = sub.add_parser("load", help="a load test on Locust (many users, many processes), saved as a session")
    s = p.add_argument_group("schedule")
    s.add_argument(
        "--users", type=args_.count(1, 100_000), default=None, help="closed loop: concurrent users"
    )
    s.add_argument(
        "--spawn-rate",
        type=args_.number(0, 1e6, low_open=True),
        default=None,
        help="users started per second",
    )
    s.add_argument(
        "--rate",
        type=args_.number(0, 1e6, low_open=True),
        default=None,
        help="open loop: arrivals per second",
    )
    s.add_argument("--duration", type=args_.seconds, default=None, help="stop starting calls after S seconds")
    s.add_argument("--requests", type=args_.count(1, 10_000_000), default=None, help="stop after N calls")
    s.add_argument(
        "--grace",
        type=args_.seconds,
        default=30.0,
        help="how long calls in flight may finish at the end (30)",
    )
    w = p.add_argument_group("processes")
    w.add_argument(
        "--processes", type=args_.count(1, 512), default=1, help="worker processes on this host (1)"
    )
    w.add_argument(
        "--master", action="store_true", help="start only the master; workers connect from other hosts"
    )
    w.add_argument(
        "--expect-workers", type=args_.count(1, 4096), default=1, help="--master: workers to wait for"
    )
    w.add_argument("--worker", action="store_true", help="start --processes workers for a master elsewhere")
    w.add_argument("--master-host", default="127.0.0.1", help="--worker: the master's host")
    w.add_argument("--master-port", type=args_.port, default=None, help="the master's port (default 5557)")
    w.add_argument("--master-bind-host", default=None, help="--master: address to listen on (default *)")
    _add_request_args(p)
    r = p.add_argument_group("demo")
    r.add_argument(
        "--demo", dest="load_demo", action="store_true", help="against built-in simulator processes"
    )
    r.add_argument("--demo-sims", type=args_.count(1, 64), default=None, help="--demo: simulator processes")
    p.add_argument("--label", default=None, help="the session's label")
    r.add_argument("--snapshot-socket", default=None, help=argparse.SUPPRESS)  # the TUI follows the run
    p.add_argument(
        "--json", action="store_true", help="print the result as JSON on stdout (progress on stderr)"
    )
    add_sessions_dir(p)
    add_timeouts(p)
    e = sub.add_parser("export-locust", help="write a self-contained locustfile for your own Locust setup")
    e.add_argument("-o", "--output", type=Path, default=None, help="where to write it (default: stdout)")
    _add_request_args(e)
    add_timeouts(e)


def _add_request_args(p: argparse.ArgumentParser) -> None:
    """The request options, as bench has them (shared by load and export-locust)."""
    r = add_request_options(p, "request (as bench)")
    r.add_argument(
        "--endpoint",
        dest="load_endpoint",
        type=args_.endpoint,
        action="append",
        default=None,
        metavar="URL",
        help="server endpoint; repeat for a farm (users take them in turn; repeat one to weight it)",
    )


def run(args: argparse.Namespace) -> int:
    from chimera_tui.load import INSTALL_HINT, locust_available

    if not locust_available():
        print(f"chimera-tui: {INSTALL_HINT}", file=sys.stderr)
        return EXIT_ERROR
    port = args.master_port or MASTER_PORT
    if args.worker:
        workers = [_spawn_worker(args.master_host, port) for _ in range(args.processes)]
        return _wait_all(workers)
    plan, label = _plan(args)
    sims: list[subprocess.Popen[bytes]] = []
    try:
        if args.demo or args.load_demo:
            sims, urls = _start_sims(args.demo_sims or args.processes, plan.users or 64)
            plan.endpoints = urls
        manifest = _probe(args, plan, label)
        return _run_master(args, plan, manifest, port)
    finally:
        for sim in sims:
            _end(sim)


# -- the plan ---------------------------------------------------------------------------------------------
def _plan(args: argparse.Namespace) -> tuple[Any, str]:
    plan, label = _request_plan(args)
    if args.rate is not None and args.users is not None:
        raise UsageError("--users (closed loop) and --rate (open loop) exclude each other")
    if args.duration is None and args.requests is None:
        raise UsageError("say when to stop: --duration S and/or --requests N")
    if args.rate is None and args.users is None:
        raise UsageError("give --users N (closed loop) or --rate R (open loop)")
    plan.users, plan.rate = args.users, args.rate
    plan.spawn_rate = args.spawn_rate if args.spawn_rate is not None else (args.users and float(args.users))
    plan.duration_s, plan.requests, plan.grace_s = args.duration, args.requests, args.grace
    plan.workers = args.expect_workers if args.master else args.processes
    return plan, label


def _request_plan(args: argparse.Namespace) -> tuple[Any, str]:
    """The request part of the plan, from the options bench shares."""
    from chimera_tui.core.store.profiles import parse_think
    from chimera_tui.load.plan import LoadPlan

    label, prompt = read_prompt(args)
    t = timeouts(args)
    return LoadPlan(
        endpoints=list(args.load_endpoint or args.endpoint or []),
        backend=args.backend,
        server="",
        model=args.model or "",
        prompt=prompt,
        api=args.api,
        unique_prompt=not args.same_prompt,
        keep_alive=keep_alive_value(args.keep_alive),
        think=parse_think(args.think) if args.think is not None else None,
        api_key_env=args.api_key_env,
        connect_s=t.connect_s,
        first_byte_s=t.first_byte_s,
        idle_s=t.idle_s,
        call_s=t.call_s,
        max_call_bytes=t.max_call_bytes,
    ), label


def _probe(args: argparse.Namespace, plan: Any, label: str) -> dict[str, Any]:
    """Check every endpoint with the core's clients (as bench does) and return the manifest."""
    import anyio

    from chimera_tui import __version__
    from chimera_tui.core.backends import open_client
    from chimera_tui.core.run.single import check_remote, endpoint_record, find_model, workload_record
    from chimera_tui.core.store.manifest import Manifest, ToolInfo, model_record, profile_record
    from chimera_tui.core.store.profiles import ProfileStore
    from chimera_tui.core.system.environment import collect_environment

    if not plan.endpoints:
        plan.endpoints = [default_endpoint()]
    profile = ProfileStore().get(args.profile or "baseline_default")
    options = dict(profile.options)
    if args.num_predict is not None:
        options["num_predict"] = args.num_predict
    plan.options = options
    if plan.think is None:
        plan.think = profile.think
    t = timeouts(args)
    if not plan.model:
        plan.model = first_model(plan.endpoints[0], t, args.backend, args.api_key_env)

    async def probe() -> Manifest:
        records, model_rec, kinds = [], None, set()
        for url in dict.fromkeys(plan.endpoints):  # a repeated endpoint (a weight) is probed once
            client = await open_client(url, args.backend, t, None, args.api_key_env)
            try:
                info = await client.probe()
                model = await find_model(client, plan.model)
                check_remote(model.name, False)
                if model_rec is None:
                    show = await client.show(model.name)
                    caps = [c for c in show.get("capabilities", []) if isinstance(c, str)]
                    model_rec = model_record(model, caps)
                    plan.model, plan.backend, plan.server = model.name, client.backend, client.server
                    if plan.think is None and "thinking" in caps:
                        plan.think = True
                kinds.add(client.backend)
                records.append(endpoint_record(client, info, options))
            finally:
                await client.aclose()
        if len(kinds) > 1:
            raise UserError(
                "the endpoints are of different kinds (Ollama and OpenAI-compatible); use one kind"
            )
        workload = workload_record(_SpecView(plan, label), options)
        workload.runs = workload.warmup = workload.cold = None
        from chimera_tui.core.run.single import timeouts_record

        return Manifest(
            tool=ToolInfo(name="chimera-tui", version=__version__),
            mode="load",
            label=getattr(args, "label", None),
            model=model_rec,
            profile=profile_record(profile),
            endpoints=records,
            workload=workload,
            timeouts=timeouts_record(t),
            environment=collect_environment(),
        )

    manifest = anyio.run(probe)
    return manifest.to_toml_dict()


class _SpecView:
    """The fields `workload_record` reads, from a plan."""

    def __init__(self, plan: Any, label: str) -> None:
        self.prompt_label, self.prompt, self.api = label, plan.prompt, plan.api
        self.runs = self.warmup = None
        self.cold = False
        self.unique_prompt, self.keep_alive = plan.unique_prompt, plan.keep_alive
        self.num_predict, self.think = plan.options.get("num_predict"), plan.think


# -- processes ----------------------------------------------------------------------------------------
def _python(module: str, *argv: str) -> list[str]:
    return [sys.executable, "-m", module, *argv]


def _spawn_worker(host: str, port: int) -> subprocess.Popen[bytes]:
    # a session of its own: Ctrl-C in the terminal reaches the CLI only, which ends the run in order
    return subprocess.Popen(
        _python("chimera_tui.load.worker", "--master-host", host, "--master-port", str(port)),
        stdout=subprocess.DEVNULL,  # stdout is the CLI's (--json)
        start_new_session=True,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_sims(count: int, users: int) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    """`count` simulator processes (`chimera-tui sim`), each with enough independent slots."""
    slots = str(min(1024, max(1, -(-users // count))))
    sims, urls = [], []
    try:
        for _ in range(count):
            port = _free_port()
            cmd = _python("chimera_tui", "sim", "--port", str(port), "--load-s", "0.3")
            cmd += ["--sim-mode", "independent", "--num-parallel", slots]
            sims.append(
                subprocess.Popen(
                    cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            _wait_port(url)
    except BaseException:
        for sim in sims:
            _end(sim)
        raise
    return sims, urls


def _wait_port(url: str, wait_s: float = 30.0) -> None:
    host, port = url.rsplit("//", 1)[1].rsplit(":", 1)
    end = time.monotonic() + wait_s
    while time.monotonic() < end:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise UserError(f"the demo simulator at {url} did not start")


def _end(proc: subprocess.Popen[Any], wait_s: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_all(procs: list[subprocess.Popen[bytes]]) -> int:
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        for p in procs:
            _end(p)
        return EXIT_CANCELLED
    return EXIT_OK if all(c == 0 for c in codes) else EXIT_ERROR


def _run_master(args: argparse.Namespace, plan: Any, manifest: dict[str, Any], port: int) -> int:
    from chimera_tui.cli.signals import StopSignals
    from chimera_tui.load.plan import MasterConfig
    from chimera_tui.load.tally import progress_line

    local = not args.master
    if local and args.master_port is None:
        port = _free_port()
    bind = args.master_bind_host or ("127.0.0.1" if local else "*")
    config = MasterConfig(plan, str(sessions_root(args).resolve()), manifest, bind, port)
    config.snapshot_socket = args.snapshot_socket
    print(f"load: {plan.describe()} against {', '.join(plan.endpoints)}", file=sys.stderr)
    workers: list[subprocess.Popen[bytes]] = []
    finished: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="chimera-load-") as tmp:
        path = Path(tmp) / "master.json"
        path.write_text(json.dumps(config.to_dict()), encoding="utf-8")
        os.chmod(path, 0o600)
        master = subprocess.Popen(
            _python("chimera_tui.load.master", str(path)), stdout=subprocess.PIPE, start_new_session=True
        )
        with StopSignals(master.terminate) as stop:
            try:
                if local:
                    workers = [_spawn_worker("127.0.0.1", port) for _ in range(args.processes)]
                else:
                    print(
                        f"load: master on port {port}; start workers with: chimera-tui load --worker "
                        f"--master-host THIS_HOST --master-port {port}",
                        file=sys.stderr,
                    )
                assert master.stdout is not None
                for line in master.stdout:
                    doc = _json_line(line)
                    if doc.get("type") == "snapshot":
                        print(progress_line(doc), file=sys.stderr, flush=True)
                    elif doc.get("type") == "started":
                        print(f"load: session {doc.get('session')}", file=sys.stderr)
                    elif doc.get("type") == "finished":
                        finished = doc
                master.wait()
            finally:
                _end(master)
                for w in workers:
                    _end(w, 10.0)
    if finished is None:
        raise UserError("the Locust master ended without saving the session (see the log above)")
    return _report(args, finished, stop.received is not None)


def _json_line(line: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _report(args: argparse.Namespace, finished: dict[str, Any], interrupted: bool) -> int:
    from chimera_tui.cli.output import session_json, summary_table
    from chimera_tui.core.store.sessions import load_session
    from chimera_tui.load.tally import load_summary

    session = load_session(Path(finished["session"]))
    load = finished.get("load") or {}
    if args.json:
        print(json.dumps({**session_json(session), "load": load}, indent=2))
    else:
        print(summary_table(session))
        print(load_summary(load))
        print(f"session saved: {session.path}")
    if interrupted or session.status == "cancelled":
        return EXIT_CANCELLED
    if session.status == "failed" or not load.get("requests_ok"):
        reason = finished.get("error") or "no request succeeded"
        print(f"chimera-tui: error: {reason}", file=sys.stderr)
        return EXIT_ERROR
    if load.get("requests_failed") or load.get("requests_incomplete") or load.get("requests_unaccounted"):
        return EXIT_RUNS_FAILED
    return EXIT_OK


def run_export_locust(args: argparse.Namespace) -> int:
    """`export-locust`: probe like `load`, then write the locustfile (or print it)."""
    from chimera_tui.cli.common import write_output_file
    from chimera_tui.load.call import make_body, wire_request
    from chimera_tui.load.locustfile import render

    plan, label = _request_plan(args)
    _probe(args, plan, label)
    unique, plan.unique_prompt = plan.unique_prompt, False  # the locustfile adds the marker per call
    path, payload, _ = wire_request(plan, make_body(plan))
    name = args.output.name if args.output is not None else "locustfile.py"
    text = render(
        plan.endpoints,
        plan.backend,
        path,
        json.loads(payload),
        plan.api_key_env,
        unique,
        plan.first_byte_s,
        plan.idle_s,
        name,
    )
    if args.output is None:
        sys.stdout.write(text)
    else:
        write_output_file(text, args.output)
    return EXIT_OK
