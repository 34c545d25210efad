"""5. Memory: peak RSS of a headless 10-run bench, and of the TUI after a 100,000-token session.

Peak RSS is the kernel's high-water mark of the child's own memory (`VmHWM`, read every 10 ms
until it exits; see common.PeakRss), imports included.

- headless: `chimera-tui bench --endpoint SIM --runs 10 --warmup 1` against a simulator in its own
  process (the research's Rust agent used about 75 MB, its Python agent about 250 MB);
- `chimera-tui bench --demo --runs 10` embeds the simulator (uvicorn, a second event loop): shown for
  reference only;
- the TUI in a pty, one 100,000-token run at up to 10,000 tok/s (no bench trace: autostart only).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from benchmarks.common import PYTHON, PeakRss, Result, check, child_env, info, peak_rss_mb, simulator
from benchmarks.tui_pty import tui_session

NAME = "memory"


def bench_rss(args: list[str], tmp: Path) -> float:
    proc = subprocess.Popen(
        [PYTHON, "-m", "chimera_tui", "bench", *args, "--sessions-dir", str(tmp / "sessions")],
        env=child_env(CHIMERA_TUI_LOG=str(tmp / "log")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    code, rss = peak_rss_mb(proc, PeakRss(proc.pid))
    if code != 0:
        raise RuntimeError(f"chimera-tui bench {' '.join(args)} exited {code}")
    return rss


def run(quick: bool = False) -> list[Result]:
    runs = "3" if quick else "10"
    with tempfile.TemporaryDirectory(prefix="chimera-bench-") as name:
        tmp = Path(name)
        with simulator(2000.0) as url:
            headless = bench_rss(["--endpoint", url, "--runs", runs, "--warmup", "1"], tmp)
        demo = bench_rss(["--demo", "--runs", runs, "--warmup", "1"], tmp)
    tokens = 20_000 if quick else 100_000
    tui = tui_session(10_000.0, tokens, traced=False, timeout=180)
    return [
        check(
            NAME, f"headless bench, {runs} runs: peak RSS", headless, "MB", "<", 75.0, "external simulator"
        ),
        info(NAME, f"bench --demo, {runs} runs: peak RSS", demo, "MB", "embedded uvicorn simulator"),
        check(
            NAME,
            f"TUI after a {tokens:,}-token session: peak RSS",
            tui.peak_rss_mb if tui.ok else None,
            "MB",
            "<",
            150.0,
            "" if tui.ok else f"TUI run failed: exit {tui.returncode}",
        ),
    ]
