"""`chimera-tui sweep ...`: run, resume, list and report parameter sweeps headless."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from pathlib import Path
from typing import Any, TextIO

from chimera_tui.cli import args as args_
from chimera_tui.cli.args import endpoint
from chimera_tui.cli.common import (
    EXIT_CANCELLED,
    EXIT_OK,
    UserError,
    add_gpu_options,
    add_sessions_dir,
    add_timeouts,
    first_model,
    gpu_options,
    sessions_root,
    start_demo_simulator,
    timeouts,
    write_output_file,
)


def fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


#: the heat maps of md / html / json reports when --heatmap is not given
DEFAULT_HEATMAP = "num_gpu,num_ctx"


def add_parser(sub: Any) -> None:
    sw = sub.add_parser("sweep", help="parameter sweeps (TR111): run, resume, list, report")
    ssub = sw.add_subparsers(dest="sweep_command", metavar="ACTION", required=True)

    run_p = ssub.add_parser("run", help="run a sweep definition (a built-in name like tr111, or a .toml)")
    run_p.add_argument("definition", nargs="?", default="tr111")
    run_p.add_argument("--model", "-m", default=None, help="model (default: the first the server lists)")
    run_p.add_argument("--endpoint", dest="sweep_endpoint", type=endpoint, default=None, metavar="URL")
    run_p.add_argument("--demo", dest="sweep_demo", action="store_true", help="use the embedded simulator")
    run_p.add_argument(
        "--runs", type=args_.count(1, args_.MAX_RUNS), default=None, help="override runs per configuration"
    )
    run_p.add_argument(
        "--warmup",
        type=args_.count(0, args_.MAX_RUNS),
        default=None,
        help="override warm-up runs per configuration",
    )
    run_p.add_argument("--order", choices=("sequential", "shuffled", "interleaved"), default=None)
    run_p.add_argument(
        "--seed", type=args_.count(-(2**63), 2**63 - 1), default=None, help="seed for shuffled order"
    )
    run_p.add_argument(
        "--cooldown",
        type=args_.number(0, 86400),
        default=None,
        metavar="S",
        help="pause between configurations",
    )
    run_p.add_argument("--num-predict", type=args_.num_predict, default=None)
    run_p.add_argument("--cold", action="store_true", default=None)
    add_timeouts(run_p)
    run_p.add_argument("--json", action="store_true", help="the sweep's outcome as JSON on stdout")
    run_p.add_argument(
        "--label",
        default=None,
        help="head each configuration's session with LABEL · CONFIG (default: the sweep's name · CONFIG)",
    )
    run_p.add_argument(
        "--rank",
        metavar="METRIC",
        default=None,
        help="print the ranking by METRIC when the sweep ends (e.g. tokens_per_j, server_decode_rate)",
    )
    add_gpu_options(run_p, cooldown=False)
    add_sessions_dir(run_p)

    res = ssub.add_parser("resume", help="finish a sweep that was stopped part way")
    res.add_argument("sweep", help="sweep id, id prefix or folder")
    res.add_argument("--endpoint", dest="sweep_endpoint", type=endpoint, default=None, metavar="URL")
    res.add_argument("--demo", dest="sweep_demo", action="store_true")
    res.add_argument("--json", action="store_true", help="the sweep's outcome as JSON on stdout")
    res.add_argument("--label", default=None, help="as for sweep run: LABEL · CONFIG on every session")
    add_gpu_options(res, cooldown=False)
    add_sessions_dir(res)

    ls = ssub.add_parser("list", help="list sweeps")
    ls.add_argument("--json", action="store_true")
    add_sessions_dir(ls)

    rep = ssub.add_parser("report", help="ranking, success rate and heat maps of a sweep")
    rep.add_argument("sweep", help="sweep id, id prefix or folder")
    rep.add_argument("--format", "-f", choices=("text", "md", "csv", "json", "html"), default="text")
    rep.add_argument("-o", "--output", type=Path, default=None)
    rep.add_argument("--metric", default="server_decode_rate", help="ranking metric (default decode rate)")
    rep.add_argument(
        "--heatmap",
        default=None,
        metavar="X,Y",
        help=f"heat maps over options X,Y (md/html/json: default {DEFAULT_HEATMAP}; text: only when given)",
    )
    rep.add_argument("--json", action="store_true", help="the same as --format json")
    rep.add_argument(
        "--save-best", metavar="NAME", default=None, help="save the best configuration as a profile"
    )
    add_sessions_dir(rep)


class SweepProgress:
    """Sweep events as lines on stderr; the per-call lines come from HeadlessProgress."""

    def __init__(self, out: TextIO) -> None:
        from chimera_tui.cli.output import HeadlessProgress

        self.out = out
        self.calls = HeadlessProgress(out)

    def __call__(self, event: Any) -> None:
        from chimera_tui.core.run.events import SessionFinished, SessionStarted
        from chimera_tui.core.run.sweep import ConfigFinished, ConfigStarted, SweepFinished, SweepStarted

        if isinstance(event, SweepStarted):
            self._line(
                f"sweep {event.sweep_id}: {len(event.configs)} configurations × {event.runs_per_config} runs "
                f"({event.order}); {event.pending} to run"
            )
        elif isinstance(event, ConfigStarted):
            visit = f" visit {event.visit}/{event.visits}" if event.visits > 1 else ""
            self._line(f"config {event.index + 1}/{event.total}: {event.key}{visit}")
        elif isinstance(event, ConfigFinished):
            reload = f", reload {fmt(event.reload_load_ms)} ms" if event.reload_load_ms is not None else ""
            self._line(f"  → {event.status}{reload}")
        elif isinstance(event, SweepFinished):
            self._line(f"sweep {event.record.status}: {event.record.path}")
        elif isinstance(event, SessionStarted | SessionFinished):
            return
        else:
            self.calls(event)

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


def run(args: argparse.Namespace) -> int:
    root = sessions_root(args)
    action = args.sweep_command
    if action == "list":
        return _list(root, args.json)
    if action == "report":
        return _report(args, root)
    # a resumed sweep keeps the timeouts and call bounds its record holds
    return _run(args, root, timeouts(args) if action == "run" else None)


def _run(args: argparse.Namespace, sessions_root: Path, timeouts: Any) -> int:
    import signal

    import anyio

    from chimera_tui.core.run.sweep import SweepRunner, find_sweep, resolve_sweep
    from chimera_tui.core.store.lock import folder_lock

    sim = start_demo_simulator() if args.sweep_demo else None
    held = contextlib.ExitStack()
    try:
        endpoint = sim.url if sim else args.sweep_endpoint
        progress = SweepProgress(sys.stderr)
        if args.sweep_command == "resume":
            folder = resolve_sweep(sessions_root, args.sweep)
            # one resume at a time: a second one is refused while the first lives (core/store/lock.py)
            held.enter_context(folder_lock(folder, f"sweep {folder.name}"))
            runner = SweepRunner.from_record(folder, progress, timeouts=timeouts, endpoint=endpoint)
            runner.gpu_options = gpu_options(args, bool(args.sweep_demo))
        else:
            defn = find_sweep(args.definition)
            overrides = {
                k: v
                for k, v in {
                    "runs": args.runs,
                    "warmup": args.warmup,
                    "order": args.order,
                    "seed": args.seed,
                    "cooldown_s": args.cooldown,
                    "num_predict": args.num_predict,
                    "cold": args.cold,
                }.items()
                if v is not None
            }
            defn = dataclasses.replace(defn, **overrides) if overrides else defn
            if defn.runs < 4:
                print(
                    f"chimera-tui: note: with {defn.runs} runs per configuration no difference can reach "
                    "significance (the exact permutation test's smallest p is 0.1); use --runs 4 or more",
                    file=sys.stderr,
                )
            endpoint = endpoint or "http://127.0.0.1:11434"
            model = args.model or first_model(endpoint, timeouts)
            runner = SweepRunner(
                defn,
                sessions_root,
                endpoint,
                model,
                progress,
                timeouts=timeouts,
                gpu=gpu_options(args, bool(args.sweep_demo)),
            )
        previous = signal.signal(signal.SIGINT, lambda *_: runner.cancel())
        try:
            record = anyio.run(runner.run)
        finally:
            signal.signal(signal.SIGINT, previous)
    finally:
        held.close()
        if sim is not None:
            sim.stop()
    if args.label is not None:
        _relabel(record, args.label)
    counts = record.counts()
    if args.json:
        import json

        doc = {"id": record.id, "path": str(record.path), "status": record.status, "counts": counts}
        print(json.dumps(doc, indent=2))
    else:
        print(f"sweep {record.id}: {record.status}; " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        print(f"sweep saved: {record.path}")
        if getattr(args, "rank", None) and record.status == "complete":
            print(_rank_after_run(record, args.rank))
    if record.status == "cancelled":
        return EXIT_CANCELLED
    if record.status != "complete":
        raise UserError(f"sweep {record.status}: resume it with `chimera-tui sweep resume {record.id}`")
    return EXIT_OK


def _relabel(record: Any, label: str) -> None:
    """`--label`: every session of the sweep headed `LABEL · CONFIG` (visits numbered when several)."""
    from chimera_tui.core.errors import SessionError
    from chimera_tui.core.store.session_store import SessionStore

    store = SessionStore(record.sessions_root)
    for config in record.configs:
        ids = [*config.session_ids, *config.discarded_session_ids]
        for i, sid in enumerate(ids, start=1):
            visit = f" (visit {i}/{len(ids)})" if len(ids) > 1 else ""
            with contextlib.suppress(SessionError, OSError):
                store.set_label(record.sessions_root / sid, f"{label} · {config.key}{visit}")


def _list(sessions_root: Path, as_json: bool = False) -> int:
    from chimera_tui.core.run.sweep import list_sweeps

    records, broken = list_sweeps(sessions_root)
    if as_json:
        import json

        doc = {
            "sweeps": [
                {
                    "id": rec.id,
                    "path": str(rec.path),
                    "definition": rec.definition.name,
                    "model": rec.model,
                    "status": rec.status,
                    "counts": rec.counts(),
                }
                for rec in records
            ],
            "unreadable": [{"path": str(path), "reason": reason} for path, reason in broken],
        }
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    if not records and not broken:
        print(f"no sweeps yet (folder: {(sessions_root / 'sweeps').absolute()})")
    for rec in records:
        counts = ", ".join(f"{k} {v}" for k, v in rec.counts().items())
        print(f"{rec.id:<44} {rec.definition.name:<16} {rec.model:<20} {rec.status:<10} {counts}")
    for path, reason in broken:
        print(f"unreadable: {path.name}: {reason}")
    return EXIT_OK


def _report(args: argparse.Namespace, sessions_root: Path) -> int:
    from chimera_tui.core.reports.sweep_report import (
        heatmap_text,
        sweep_csv,
        sweep_html,
        sweep_json,
        sweep_markdown,
    )
    from chimera_tui.core.run.sweep import (
        best_profile,
        load_sweep_record,
        load_sweep_sessions,
        rank,
        resolve_sweep,
        success_rate,
    )
    from chimera_tui.core.store.profiles import ProfileStore

    record = load_sweep_record(resolve_sweep(sessions_root, args.sweep))
    sessions, problems = load_sweep_sessions(record)
    for problem in problems:
        print(f"chimera-tui: note: {problem}", file=sys.stderr)
    if not sessions:
        raise UserError(f"sweep {record.id} has no finished configuration yet")
    rows = rank(sessions, record.baseline_key, args.metric, record=record)
    fmt_name = "json" if args.json else args.format
    spec = args.heatmap if args.heatmap is not None else (None if fmt_name == "text" else DEFAULT_HEATMAP)
    heatmaps = _heatmaps(rows, spec, args.metric) if spec else []
    if args.heatmap is not None and not heatmaps:
        print(
            f"chimera-tui: note: no heat map over {args.heatmap}: give two options the sweep varies (X,Y)",
            file=sys.stderr,
        )
    if fmt_name == "text":
        text = "\n\n".join(
            [_ranking_text(rows, success_rate(rows), args.metric), *(heatmap_text(hm) for hm in heatmaps)]
        )
    elif fmt_name == "md":
        text = sweep_markdown(record, rows, heatmaps)
    elif fmt_name == "csv":
        text = sweep_csv(rows)
    elif fmt_name == "html":
        text = sweep_html(record, rows, heatmaps)
    else:
        import json

        text = json.dumps(sweep_json(record, rows, heatmaps), indent=2, allow_nan=False)
    if args.output is None:
        print(text)
    else:
        write_output_file(text, args.output)
    if args.save_best:
        path = ProfileStore().save_user(best_profile(rows, args.save_best))
        print(f"saved the best configuration as profile {args.save_best}: {path}", file=sys.stderr)
    return EXIT_OK


def _heatmaps(rows: Any, spec: str, metric: str) -> list[Any]:
    """Heat maps over the two options named in ``spec`` ("X,Y"), one per value of another varying option."""
    from chimera_tui.core.run.sweep import heatmaps_by

    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if len(parts) != 2:
        return []
    return heatmaps_by(rows, parts[0], parts[1], metric)


def _rank_after_run(record: Any, metric: str) -> str:
    """`sweep run --rank METRIC`: the finished sweep's ranking by that metric."""
    from chimera_tui.core.measure.catalogue import METRICS
    from chimera_tui.core.run.sweep import load_sweep_sessions, rank, success_rate

    if metric not in METRICS:
        raise UserError(f"--rank {metric}: not a metric (try tokens_per_j or server_decode_rate)")
    sessions, _ = load_sweep_sessions(record)
    rows = rank(sessions, record.baseline_key, metric, record=record)
    return f"ranked by {METRICS[metric].title}:\n" + _ranking_text(rows, success_rate(rows), metric)


def _ranking_text(
    rows: Any, success: tuple[int, int, float | None], metric: str = "server_decode_rate"
) -> str:
    from chimera_tui.core.measure.catalogue import METRICS, fmt_signed

    unit = METRICS[metric].unit if metric in METRICS else metric
    unit = unit if metric != "server_decode_rate" else "tok/s"
    digits = METRICS[metric].digits if metric in METRICS else 2
    lines = [f"{'#':>2}  {'configuration':<44} {unit:>16} {'CV%':>5} {'TTFT ms':>9} {'Δ%':>7}  verdict"]
    for row in rows:
        mean_sd = fmt(row.mean, digits) + (f" ± {fmt(row.sd, digits)}" if row.sd is not None else "")
        delta = fmt_signed(row.delta_pct, 1)
        lines.append(
            f"{row.rank:>2}  {row.key[:44]:<44} {mean_sd:>16} {fmt(row.cv_pct):>5} "
            f"{fmt(row.mean_ttft_ms):>9} {delta:>7}  {row.verdict}"
        )
    faster, total, pct = success
    lines.append(
        f"configurations significantly faster than the baseline: {faster} of {total}"
        + (f" ({pct:.0f}%)" if pct is not None else "")
    )
    return "\n".join(lines)
