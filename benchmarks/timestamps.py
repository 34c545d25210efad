"""2. Timestamp truth: the client's stamps against the simulator's own record of when it wrote each line.

The simulator runs in its own process (`chimera-tui sim --emit-times PATH`) and records
`perf_counter_ns()` just before writing each token's line; the client stamps each read with
`perf_counter_ns()`. On Linux both are `clock_gettime(CLOCK_MONOTONIC)`: one clock for every process
on the machine, so the two can be subtracted directly (checked below, and reported if not).

Per token: error = client stamp - server emit time (what the reader adds: the server's JSON encoding
and write, the loopback, waiting to run, parsing up to the stamp). TTFT error is the first token's;
the inter-token-gap error is the difference of consecutive gaps.

- headless: the engine as `chimera-tui bench` runs it (BenchRunner, in this process), 2,000 tok/s;
- TUI: the real TUI in a pty rendering a 2,000 tok/s stream (benchmarks/tui_pty.py).
"""

from __future__ import annotations

import itertools
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from benchmarks.common import PYTHON, Result, check, info, read_json, simulator
from benchmarks.tui_pty import MODEL, tui_session
from chimera_tui.core.run.events import RunEvent, TokenBatch
from chimera_tui.core.run.single import BenchRunner, BenchSpec
from chimera_tui.core.store.profiles import ProfileStore

NAME = "timestamps"
RATE = 2000.0


def same_clock() -> tuple[bool, str]:
    """Whether another process's perf_counter_ns() lies between two of ours (one shared clock)."""
    impl = time.get_clock_info("perf_counter").implementation
    before = time.perf_counter_ns()
    out = subprocess.run(
        [PYTHON, "-c", "import time; print(time.perf_counter_ns())"],
        capture_output=True,
        text=True,
        check=True,
    )
    after = time.perf_counter_ns()
    child = int(out.stdout)
    return before < child < after, impl


def errors_ms(client_ns: list[int], emit_ns: list[int]) -> np.ndarray:
    if len(client_ns) != len(emit_ns):
        raise RuntimeError(f"{len(client_ns)} client stamps but {len(emit_ns)} server emits")
    return (np.asarray(client_ns, dtype=np.int64) - np.asarray(emit_ns, dtype=np.int64)) / 1e6


def summarize(label: str, err: np.ndarray, runs_first: list[int], limit_ms: float) -> list[Result]:
    """p50/p99/max of the per-token error, TTFT error and inter-token-gap error."""
    ttft = err[runs_first]
    gaps = np.abs(np.diff(err))
    detail = f"{len(err):,} tokens; p50 {np.percentile(err, 50):.2f} ms, max {err.max():.2f} ms"
    return [
        check(NAME, f"{label}: stamp error p99", float(np.percentile(err, 99)), "ms", "<", limit_ms, detail),
        info(NAME, f"{label}: TTFT error (max over runs)", float(ttft.max()), "ms"),
        info(NAME, f"{label}: inter-token gap error p99", float(np.percentile(gaps, 99)), "ms"),
    ]


async def _headless(url: str, sessions: Path, runs: int, tokens: int) -> tuple[list[int], list[int]]:
    stamps: list[int] = []
    firsts: list[int] = []
    seen: set[int] = set()

    def emit(event: RunEvent) -> None:
        if isinstance(event, TokenBatch):
            if event.index not in seen:
                seen.add(event.index)
                firsts.append(len(stamps))
            stamps.extend(token.t_ns for token in event.tokens)

    spec = BenchSpec(
        model=MODEL,
        profile=ProfileStore().get("baseline_default"),
        prompt="Say hello.",
        endpoint=url,
        runs=runs,
        warmup=1,
        num_predict=tokens,
    )
    session = await BenchRunner(spec, sessions, emit=emit).run()
    if session.counts["ok"] != runs:
        raise RuntimeError(f"headless session: {session.counts}")
    return stamps, firsts


def headless(runs: int, tokens: int) -> tuple[np.ndarray, list[int], list[int]]:
    with tempfile.TemporaryDirectory(prefix="chimera-bench-") as tmp:
        emit_path = Path(tmp) / "emit.json"
        with simulator(RATE, emit_times=emit_path) as url:
            stamps, firsts = anyio.run(_headless, url, Path(tmp) / "sessions", runs, tokens)
        emits: list[int] = read_json(emit_path)
    return errors_ms(stamps, emits), firsts, emits


def pacing(emits: list[int], firsts: list[int]) -> Result:
    """The simulator keeps its schedule: each run's mean emit gap against 1 / rate (absolute deadlines,
    so late wake-ups do not add up). Was a unit test's 10 % bound; a figure of the machine's load."""
    bounds = [*firsts, len(emits)]
    off = [
        abs((emits[b - 1] - emits[a]) / (b - a - 1) / 1e9 * RATE - 1.0) * 100.0
        for a, b in itertools.pairwise(bounds)
        if b - a > 1
    ]
    return check(NAME, "simulator: mean emit gap off schedule (worst run)", max(off), "%", "<", 10.0)


def tui(tokens: int) -> tuple[np.ndarray, list[int], dict[str, Any]]:
    run = tui_session(RATE, tokens)
    if not run.ok or not run.trace:
        raise RuntimeError(f"TUI run failed (exit {run.returncode}): {run.output_tail[-300:]!r}")
    trace = run.trace
    firsts = [0]
    return errors_ms(trace["token_ns"], run.emit_ns), firsts, trace


def run(quick: bool = False) -> list[Result]:
    shared, impl = same_clock()
    results = [
        Result(
            NAME,
            "one monotonic clock across processes",
            1.0 if shared else 0.0,
            "",
            "= 1",
            shared,
            f"perf_counter is {impl}",
        )
    ]
    runs, tokens = (2, 1000) if quick else (3, 4000)
    err, firsts, emits = headless(runs, tokens)
    results += summarize(f"headless {RATE:,.0f} tok/s", err, firsts, 2.0)
    results.append(pacing(emits, firsts))
    err, firsts, _ = tui(8000 if quick else 20_000)  # the same session as ui_load's 2,000 tok/s one
    results += summarize(f"TUI {RATE:,.0f} tok/s", err, firsts, 5.0)
    return results
