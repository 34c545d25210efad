"""4. Start-up: `--help`, launch to the first painted TUI frame, `bench --demo` to the first token.

Each is a fresh process, timed from this process (perf_counter before the launch):
- `chimera-tui --help`: until the process exits;
- the TUI, in a pseudo-terminal: until the setup screen's "Endpoint" section title has been
  written to the terminal (endpoint 127.0.0.1:9, nothing listens: the probe fails at once);
- `chimera-tui bench --demo` in a pseudo-terminal: until its progress line shows the first token
  (" 1 tokens"; on a terminal the counter is updated per read). That includes starting the embedded
  simulator and the warm-mode preload, whose simulated model load is `DEMO_LOAD_S`, and not the GPU
  idle baseline (`--idle-baseline 0`: a deliberate wait, not start-up).
Median of several launches.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import PYTHON, Result, check, child_env, info, median, run_in_pty

NAME = "startup"
SCRIPT = Path(PYTHON).with_name("chimera-tui")


def command() -> list[str]:
    """The console script users run, else `python -m chimera_tui`."""
    return [str(SCRIPT)] if SCRIPT.exists() else [PYTHON, "-m", "chimera_tui"]


def help_s() -> float:
    start = time.perf_counter()
    subprocess.run([*command(), "--help"], env=child_env(), stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def first_frame_s(tmp: Path) -> float | None:
    env = child_env(TERM="xterm-256color", CHIMERA_TUI_LOG=str(tmp / "log"))
    argv = [*command(), "--endpoint", "http://127.0.0.1:9", "--sessions-dir", str(tmp / "sessions")]
    run = run_in_pty(argv, env, wait_for=b"Endpoint", stop_when_seen=True, timeout=30)
    return None if run.t_seen is None else run.t_seen - run.t_launch


def demo_first_token_s(tmp: Path) -> float | None:
    env = child_env(TERM="xterm-256color", CHIMERA_TUI_LOG=str(tmp / "log"))
    # --idle-baseline 0: the GPU idle baseline is a deliberate wait (0.5 s on the demo's simulated GPU)
    argv = [
        *command(),
        "bench",
        "--demo",
        "--runs",
        "1",
        "--idle-baseline",
        "0",
        "--sessions-dir",
        str(tmp / "sessions"),
    ]
    run = run_in_pty(argv, env, wait_for=b" 1 tokens", stop_when_seen=True, timeout=30)
    return None if run.t_seen is None else run.t_seen - run.t_launch


def _median(values: list[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return median(got) if len(got) == len(values) else None


def run(quick: bool = False) -> list[Result]:
    n = 3 if quick else 7
    with tempfile.TemporaryDirectory(prefix="chimera-bench-") as name:
        tmp = Path(name)
        help_s()  # warm the page cache and the bytecode caches
        helps = [help_s() for _ in range(n)]
        frames = [first_frame_s(tmp) for _ in range(n)]
        demos = [demo_first_token_s(tmp) for _ in range(max(3, n // 2))]
    detail = f"median of {n}"
    demo = _median(demos)
    return [
        check(NAME, "chimera-tui --help", median(helps), "s", "<", 0.3, detail),
        check(NAME, "launch to first TUI frame", _median(frames), "s", "<", 1.5, detail),
        check(NAME, "bench --demo to first token", demo, "s", "<", 1.0, f"median of {len(demos)}"),
        info(
            NAME,
            "import chimera_tui.core.run.single (for reference)",
            _import_s("chimera_tui.core.run.single"),
            "s",
        ),
    ]


def _import_s(module: str) -> float:
    out = subprocess.run(
        [
            PYTHON,
            "-c",
            f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)",
        ],
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout)
