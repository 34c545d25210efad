"""The real TUI in a pseudo-terminal, driven unattended, against a simulator in its own process.

`chimera-tui --endpoint SIM` runs with CHIMERA_TUI_BENCH_AUTOSTART (start one session, quit when it
ends) and, when traced, CHIMERA_TUI_BENCH_TRACE (heartbeat lateness, token stamps, when rows were
shown; see chimera_tui/ui/bench_trace.py). The simulator writes the perf_counter_ns() of every token
line it sent (`chimera-tui sim --emit-times`). This process reads the pty as a terminal would.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import PYTHON, child_env, read_json, run_in_pty, simulator

MODEL = "gemma3:latest"


@dataclass(slots=True)
class TuiRun:
    returncode: int | None
    timed_out: bool
    peak_rss_mb: float | None
    emit_ns: list[int] = field(default_factory=list)
    trace: dict[str, Any] = field(default_factory=dict)
    output_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


_cache: dict[tuple[Any, ...], TuiRun] = {}


def forget() -> None:
    """Drop the sessions run so far (a repeated suite measures afresh)."""
    _cache.clear()


def tui_session(
    tokens_per_s: float,
    tokens: int,
    *,
    runs: int = 1,
    warmup: int = 0,
    traced: bool = True,
    timeout: float = 120.0,
) -> TuiRun:
    """One unattended TUI session (cached per arguments within this process)."""
    key = (tokens_per_s, tokens, runs, warmup, traced)
    if key not in _cache:
        _cache[key] = _run(tokens_per_s, tokens, runs, warmup, traced, timeout)
    return _cache[key]


def _run(tokens_per_s: float, tokens: int, runs: int, warmup: int, traced: bool, timeout: float) -> TuiRun:
    with tempfile.TemporaryDirectory(prefix="chimera-bench-") as tmp:
        root = Path(tmp)
        emit_path, trace_path = root / "emit.json", root / "trace.json"
        autostart = {"model": MODEL, "runs": runs, "warmup": warmup, "num_predict": tokens}
        env = child_env(
            TERM="xterm-256color",
            COLORTERM="truecolor",
            CHIMERA_TUI_BENCH_AUTOSTART=json.dumps(autostart),
            CHIMERA_TUI_LOG=str(root / "chimera-tui.log"),
            CHIMERA_TUI_PROFILES=str(root / "profiles"),
        )
        if traced:
            env["CHIMERA_TUI_BENCH_TRACE"] = str(trace_path)
        with simulator(tokens_per_s, emit_times=emit_path if traced else None) as url:
            argv = [PYTHON, "-m", "chimera_tui", "--endpoint", url, "--sessions-dir", str(root / "sessions")]
            done = run_in_pty(argv, env, timeout=timeout)
        result = TuiRun(
            done.returncode,
            done.timed_out,
            done.peak_rss_mb,
            output_tail=done.output[-2000:].decode("utf-8", "replace"),
        )
        if traced and emit_path.exists() and trace_path.exists():
            result.emit_ns = read_json(emit_path)
            result.trace = read_json(trace_path)
        return result
