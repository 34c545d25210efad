"""Run the benchmark suite and print every figure with its target and PASS/FAIL.

    .venv/bin/python -m benchmarks                 # everything (a few minutes on 2 cores)
    .venv/bin/python -m benchmarks --quick         # smaller sizes, fewer rounds (about a minute)
    .venv/bin/python -m benchmarks --only pipeline --only startup --json results.json
    .venv/bin/python -m benchmarks --repeat 3      # the suite 3 times: each figure's median

Each benchmark is a module of this package (see BENCHMARKS); docs/performance.md describes each
figure and records a run. The exit status is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
import traceback
from pathlib import Path

from benchmarks import tui_pty
from benchmarks.common import Result, combine

BENCHMARKS = (
    "pipeline",
    "timestamps",
    "ui_load",
    "startup",
    "memory",
    "concurrency",
    "scaling",
    "sessions",
    "real_engine",
    "gpu_sampler",
)


def run_one(name: str, quick: bool) -> list[Result]:
    module = importlib.import_module(f"benchmarks.{name}")
    try:
        return list(module.run(quick))
    except Exception as exc:
        traceback.print_exc()
        return [Result(name, "benchmark crashed", None, "", "runs", False, f"{type(exc).__name__}: {exc}")]


def table(results: list[Result]) -> str:
    rows = [("benchmark", "figure", "value", "target", "result")]
    rows += [(r.bench, r.figure, r.shown(), r.target or "—", r.verdict()) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=BENCHMARKS, help="run only this one (repeatable)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer rounds")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results here")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run the suite N times; report each figure's median",
    )
    args = parser.parse_args(argv)
    names = args.only or list(BENCHMARKS)
    rounds: list[list[Result]] = []
    started = time.perf_counter()
    for k in range(max(1, args.repeat)):
        tui_pty.forget()
        results: list[Result] = []
        for name in names:
            t0 = time.perf_counter()
            print(f"[{name}{f' #{k + 1}' if args.repeat > 1 else ''}] running…", file=sys.stderr, flush=True)
            got = run_one(name, args.quick)
            results += got
            print(f"[{name}] {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
            for r in got:
                print(f"    {r.figure}: {r.shown()} {r.target} {r.verdict()}", file=sys.stderr, flush=True)
        rounds.append(results)
    results = combine(rounds) if len(rounds) > 1 else rounds[0]
    total = time.perf_counter() - started
    print()
    print(table(results))
    failed = [r for r in results if r.passed is False]
    print(
        f"\n{len(results)} figures, {sum(r.passed is True for r in results)} pass, {len(failed)} fail, "
        f"{total:.0f} s; {platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()}, {_cpus()} CPUs{' (quick)' if args.quick else ''}"
        + (f"; medians of {len(rounds)} runs" if len(rounds) > 1 else "")
    )
    if args.json is not None:
        doc = {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": _cpus(),
            "quick": args.quick,
            "repeat": len(rounds),
            "seconds": round(total, 1),
            "results": [r.to_dict() for r in results],
        }
        args.json.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return 1 if failed else 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


if __name__ == "__main__":
    sys.exit(main())
