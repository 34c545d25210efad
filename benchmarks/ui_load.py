"""3. UI under load: the real TUI, in a pseudo-terminal, rendering 2,000 and 5,000 tok/s streams.

The app's 20 ms heartbeat (CHIMERA_TUI_BENCH_TRACE) measures how late the UI's event loop runs
while tokens stream (from the first token to the run's row being shown). "No backlog": the time from
the request to the run's row appearing on screen, over the server's own duration of the call
(`total_duration` of its final line), must stay within 5%.
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import Result, check, info
from benchmarks.tui_pty import tui_session

NAME = "ui_load"


def figures(rate: float, tokens: int) -> list[Result]:
    run = tui_session(rate, tokens)
    label = f"{rate:,.0f} tok/s"
    if not run.ok or not run.trace:
        return [Result(NAME, f"{label}: TUI run", None, "", "completes", False, run.output_tail[-200:])]
    trace = run.trace
    tokens_ns = np.asarray(trace["token_ns"], dtype=np.int64)
    shown_ns = np.asarray(trace["shown_ns"], dtype=np.int64)
    beats = np.asarray(trace["beat_ns"], dtype=np.int64)
    lateness = np.asarray(trace["lateness_ns"], dtype=np.int64) / 1e6
    runs = [r for r in trace["runs"] if not r["warmup"]]
    window = (beats >= tokens_ns[0]) & (beats <= max(r["shown_ns"] for r in runs))
    late = lateness[window]
    ratios = [(r["shown_ns"] - r["t_send_ns"]) / 1e6 / r["metrics"]["total_ms"] for r in runs]
    served = runs[0]["metrics"]["server_decode_rate"]
    lag = (shown_ns - tokens_ns) / 1e6
    return [
        check(
            NAME,
            f"{label}: heartbeat lateness p99",
            float(np.percentile(late, 99)),
            "ms",
            "<",
            50.0,
            f"{len(late)} beats while streaming; max {late.max():.1f} ms",
        ),
        check(
            NAME,
            f"{label}: run shown / server duration",
            max(ratios),
            "x",
            "<=",
            1.05,
            f"server streamed {tokens:,} tokens at {served:,.0f} tok/s",
        ),
        info(NAME, f"{label}: token display lag p99", float(np.percentile(lag, 99)), "ms"),
    ]


def run(quick: bool = False) -> list[Result]:
    seconds = 4 if quick else 10  # shorter runs would measure mostly the first second's set-up
    return figures(2000.0, 2000 * seconds) + figures(5000.0, 4000 * seconds)
