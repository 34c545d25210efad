"""6. Concurrency ceiling: `--mode dual` against two ideal simulators, each in its own process.

Ideal: no jitter, no load time, one slot each, the same speed; any loss of parallel efficiency is
then ours (the barrier, the two requests' start skew, one event loop reading both streams). The
figures are the session's own round metrics (docs/metrics.md), from `chimera-tui bench --json`:
mean parallel efficiency over the measured rounds and the median start skew. Then `--mode shared`
with two agents on one simulator with one slot: the slot serializes them, about 50 %.

These figures were unit-test assertions once (dual >= 99 %, shared 45-55 %); they depend on how busy
the machine is, so the tests check the structure (calls overlap / wait) and the figures live here.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
from pathlib import Path

from benchmarks.common import PYTHON, Result, check, child_env, info, median, simulator

NAME = "concurrency"
RATE = 256.0


def _shared(runs: int, tokens: int) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="chimera-bench-") as name, simulator(RATE) as url:
        argv = [PYTHON, "-m", "chimera_tui", "bench", "--mode", "shared", "--json", "--endpoint", url]
        argv += ["--runs", str(runs), "--warmup", "1", "--num-predict", str(tokens)]
        argv += ["--sessions-dir", str(Path(name) / "sessions")]
        out = subprocess.run(
            argv, env=child_env(CHIMERA_TUI_LOG=str(Path(name) / "log")), capture_output=True, text=True
        )
    if out.returncode != 0:
        return [Result(NAME, "shared session", None, "", "completes", False, out.stderr.strip()[-300:])]
    rounds = [r for r in json.loads(out.stdout)["rounds"] if not r.get("warmup") and r.get("status") == "ok"]
    efficiency = [r["efficiency_pct"] for r in rounds]
    mean = sum(efficiency) / len(efficiency)
    detail = f"{len(rounds)} rounds, 2 agents, one slot"
    return [
        check(NAME, "shared, one slot: mean parallel efficiency", mean, "%", ">=", 45.0, detail),
        check(NAME, "shared, one slot: mean parallel efficiency (serialized)", mean, "%", "<=", 55.0, detail),
    ]


def run(quick: bool = False) -> list[Result]:
    runs, tokens = (3, 128) if quick else (10, 256)
    return [*_dual(runs, tokens), *_shared(runs, tokens)]


def _dual(runs: int, tokens: int) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="chimera-bench-") as name, contextlib.ExitStack() as stack:
        urls = [stack.enter_context(simulator(RATE)) for _ in range(2)]
        argv = [PYTHON, "-m", "chimera_tui", "bench", "--mode", "dual", "--json"]
        argv += [arg for url in urls for arg in ("--endpoint", url)]
        argv += ["--runs", str(runs), "--warmup", "1", "--num-predict", str(tokens)]
        argv += ["--sessions-dir", str(Path(name) / "sessions")]
        out = subprocess.run(
            argv, env=child_env(CHIMERA_TUI_LOG=str(Path(name) / "log")), capture_output=True, text=True
        )
    if out.returncode != 0:
        return [Result(NAME, "dual session", None, "", "completes", False, out.stderr.strip()[-300:])]
    doc = json.loads(out.stdout)
    rounds = [r for r in doc["rounds"] if not r.get("warmup") and r.get("status") == "ok"]
    efficiency = [r["efficiency_pct"] for r in rounds]
    skew = [r["start_skew_ms"] for r in rounds]
    detail = f"{len(rounds)} rounds of {tokens} tokens at {RATE:g} tok/s per agent"
    return [
        check(
            NAME, "dual: mean parallel efficiency", sum(efficiency) / len(efficiency), "%", ">=", 99.5, detail
        ),
        check(NAME, "dual: median start skew", median(skew), "ms", "<", 1.0, f"max {max(skew):.3f} ms"),
        info(NAME, "dual: lowest round efficiency", min(efficiency), "%"),
    ]
