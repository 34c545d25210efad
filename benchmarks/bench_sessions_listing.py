"""Time the sessions listing over 1,000 saved sessions (what the sessions browser and
`chimera-tui sessions` do), against loading every session in full.

    .venv/bin/python benchmarks/bench_sessions_listing.py [--sessions 1000] [--runs 5] [--tokens 500]

Each generated session has a realistic manifest and a metrics.json with `--runs` calls of
`--tokens` token arrival times each. The listing reads manifests only; the full load parses every
metrics.json. Results are printed, best of `--repeat` rounds (the files are in the page cache).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import anyio
import tomli_w

from chimera_tui.core.measure.metrics import CallMetrics
from chimera_tui.core.store.session_store import SessionStore
from chimera_tui.core.store.sessions import METRICS, SCHEMA_VERSION, RunRecord


def make_sessions(root: Path, count: int, runs: int, tokens: int) -> None:
    offsets = [round(20.0 + 8.3 * i, 3) for i in range(tokens)]
    metrics = CallMetrics(ttft_ms=20.0, e2e_ms=offsets[-1], token_count=tokens, server_decode_rate=120.0)
    records = [
        RunRecord(i, False, "ok", "2026-01-01T00:00:00.000Z", metrics, response="tok " * tokens,
                  token_offsets_ms=offsets, server_final={"eval_count": tokens}).to_dict()
        for i in range(runs)
    ]  # fmt: skip
    doc = json.dumps({"schema_version": SCHEMA_VERSION, "status": "complete", "runs": records}, indent=1)
    for i in range(count):
        folder = root / f"20260101-{i:06d}-gemma3-latest-baseline_default-{i:04x}"
        folder.mkdir()
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "id": folder.name,
            "created_at": f"2026-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
            "mode": "single",
            "tool": {"name": "chimera-tui", "version": "0.1.0"},
            "model": {"name": "gemma3:latest", "digest": "0" * 64, "quantization": "Q4_K_M"},
            "profile": {"name": "baseline_default", "description": "", "builtin": True, "options": {}},
            "endpoints": [{"url": "http://127.0.0.1:11434", "kind": "ollama", "version": "0.33.0"}],
            "workload": {"prompt_label": "short", "prompt": "Say hello.", "runs": runs, "warmup": 1},
            "environment": {"hostname": "bench", "os": "Linux", "cpu": "x", "gpus": []},
            "result": {
                "status": "complete",
                "runs_ok": runs,
                "runs_failed": 0,
                "mean_server_decode_rate": 120.0,
            },
        }
        (folder / "session.toml").write_text(tomli_w.dumps(manifest), encoding="utf-8")
        (folder / METRICS).write_text(doc, encoding="utf-8")


async def tui_open_s(root: Path, expected: int) -> float:
    """Seconds from pressing F2 to the sessions browser showing every row (headless Textual)."""
    from textual.widgets import DataTable

    from chimera_tui.ui.app import ChimeraApp
    from chimera_tui.ui.config import AppConfig

    app = ChimeraApp(AppConfig(endpoints=["http://127.0.0.1:9"], sessions_root=root, monitor_interval_s=0))
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause(0.5)
        start = time.perf_counter()
        app.action_sessions()
        while True:
            await pilot.pause(0.01)
            tables = app.screen.query(DataTable)
            if tables and tables.first().row_count >= expected:
                return time.perf_counter() - start


def best_of(repeat: int, action: object) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_sessions(root, args.sessions, args.runs, args.tokens)
        size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / 1e6
        store = SessionStore(root)
        listed = best_of(args.repeat, store.summaries)
        loaded = best_of(1, store.list)
        count = len(store.summaries()[0])
        browser = anyio.run(tui_open_s, root, count)
    print(f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}")
    print(f"{count} sessions ({args.runs} runs x {args.tokens} tokens each, {size:.0f} MB on disk)")
    print(f"listing (SessionStore.summaries, manifests only): {listed * 1000:.0f} ms")
    print(f"loading every session in full (SessionStore.list): {loaded * 1000:.0f} ms")
    print(f"TUI sessions browser, F2 to all {count} rows shown: {browser * 1000:.0f} ms")


if __name__ == "__main__":
    main()
