"""Issue 19, point 5: `chimera-tui load` with a master and 2 worker processes driving 256 concurrent
streams against simulator processes; every request accounted for; the stamp error under that load.

Not in the suite (it takes about a minute): `.venv/bin/python -m benchmarks.load_proof [--users N]`.

Three `chimera-tui sim` processes: A and B (independent slots) take 255 users between them; P serves
one user alone and records when it wrote each token line (`--emit-times`). The endpoints are given
as [P, A x 128, B x 128]: users take them in turn, so user 0 (on worker 0) is the only one on P.
That worker writes the absolute stamps of its calls to P (CHIMERA_LOAD_TRACE, a benchmark hook),
and stamp error = client stamp - emit time, per token, both `perf_counter_ns()` (CLOCK_MONOTONIC,
one clock for every process of the machine), while the same worker process serves 127 other streams.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import PYTHON, ROOT, child_env, simulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load_proof")
    parser.add_argument("--users", type=int, default=256)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--tokens-per-s", type=float, default=20.0)
    parser.add_argument("--num-predict", type=int, default=64)
    args = parser.parse_args(argv)
    half = args.users // 2
    with tempfile.TemporaryDirectory() as tmp_name, contextlib.ExitStack() as stack:
        tmp = Path(tmp_name)
        emits = tmp / "emits.json"
        slots = ["--sim-mode", "independent", "--num-parallel", str(half)]
        a = stack.enter_context(simulator(args.tokens_per_s, extra=slots))
        b = stack.enter_context(simulator(args.tokens_per_s, extra=slots))
        probe_cm = simulator(args.tokens_per_s, emit_times=emits)
        p = probe_cm.__enter__()
        endpoints = [p] + [a] * half + [b] * half
        cmd = [PYTHON, "-m", "chimera_tui", "--sessions-dir", str(tmp / "s"), "load", "--processes", "2"]
        cmd += ["--users", str(args.users), "--spawn-rate", str(args.users), "--duration", str(args.duration)]
        cmd += ["--num-predict", str(args.num_predict), "--json", "--grace", "30"]
        for url in endpoints:
            cmd += ["--endpoint", url]
        env = {**child_env(), "CHIMERA_LOAD_TRACE": str(tmp / "trace"), "CHIMERA_LOAD_TRACE_URL": p}
        started = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        wall = time.monotonic() - started
        probe_cm.__exit__(None, None, None)  # SIGINT: the probe simulator writes its emit times
        if proc.returncode != 0:
            print(proc.stderr[-3000:])
            return 1
        doc = json.loads(proc.stdout)
        load = doc["load"]
        peak_in_flight = max(_in_flight(proc.stderr), default=None)
        traces = [t for f in tmp.glob("trace.*.json") for t in json.loads(f.read_text())]
        emit_ns = json.loads(emits.read_text())
        client_ns = [t for call in traces for t in call]
        print(f"load: {json.dumps(load)}")
        print(f"wall {wall:.1f} s; progress lines max in flight: {peak_in_flight}")
        accounted = load["requests_ok"] + load["requests_failed"] + load["requests_incomplete"]
        print(
            f"accounted: {accounted} of {load['requests_started']} started; unaccounted "
            f"{load['requests_unaccounted']}"
        )
        if len(client_ns) != len(emit_ns):
            print(f"stamp error: {len(client_ns)} client stamps vs {len(emit_ns)} emits: not comparable")
            return 1
        err = (np.asarray(client_ns, dtype=np.int64) - np.asarray(emit_ns, dtype=np.int64)) / 1e6
        firsts = np.cumsum([0] + [len(c) for c in traces[:-1]])
        gaps = np.abs(np.diff(err))
        print(f"stamp error over {len(err)} tokens of {len(traces)} probe calls:")
        p50, p99, top = np.percentile(err, 50), np.percentile(err, 99), err.max()
        print(f"  p50 {p50:.3f} ms, p99 {p99:.3f} ms, max {top:.3f} ms")
        ttft, gap99 = err[firsts].max(), np.percentile(gaps, 99)
        print(f"  TTFT error max {ttft:.3f} ms; inter-token gap error p99 {gap99:.3f} ms")
        for f in sorted(tmp.glob("trace.*.lag")):
            lags = np.asarray(json.loads(f.read_text()))
            if lags.size:
                p50, p99, top = np.percentile(lags, 50), np.percentile(lags, 99), lags.max()
                print(f"worker event-loop lag (10 ms sleeps): p50 {p50:.2f}, p99 {p99:.2f}, max {top:.2f} ms")
    return 0


def _in_flight(stderr: str) -> list[int]:
    """The calls in flight of each progress line."""
    out = []
    for line in stderr.splitlines():
        with contextlib.suppress(ValueError, IndexError):
            out.append(int(line.split("in flight")[1].split()[0]))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
