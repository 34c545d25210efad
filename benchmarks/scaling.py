"""7. Scaling: the cost per token must not grow with the length of a call (1,000 to 100,000 tokens).

- engine: one call through `OllamaClient.stream_call` against the firehose (its own process), then
  what the runner does with it: `build_record` (which runs `compute_call_metrics` and builds the
  token offsets) and the record's JSON, as `SessionWriter` writes it. Marginal cost per token:
  (T(n) - T(1)) / (n - 1), so the fixed cost of a call does not flatter the short one;
- stream pane: the live screen's flush (headless Textual) fed 2,000 tok/s worth of token batches,
  67 per flush: LiveCall, sanitizing, soft wrap, the bounded Log (max 2,000 lines) and readouts.

Ratio = cost per token at 100,000 over cost per token at 1,000; flat is 1, the target is <= 1.5.
The sessions listing (1,000 sessions) is benchmarks/sessions.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio

from benchmarks.common import Result, check, firehose, info, median
from chimera_tui.core.backends.ollama import OllamaClient
from chimera_tui.core.backends.stream import TokenEvent
from chimera_tui.core.run.events import RunStarted, TokenBatch
from chimera_tui.core.run.single import build_record
from chimera_tui.core.store.sessions import RunRecord

NAME = "scaling"
MODEL = "firehose:latest"


async def _engine_call(url: str, tokens: int) -> float:
    """Seconds for one call of `tokens` tokens, and its record: what the runner does per call."""
    async with OllamaClient(url) as client:
        await client.probe()
        body = {"model": MODEL, "prompt": "hi", "options": {"num_predict": tokens}}
        count = 0

        def sink(batch: list[TokenEvent]) -> None:  # as the CLI's progress does: counts, keeps nothing
            nonlocal count
            count += len(batch)

        start = time.perf_counter()
        outcome = await client.stream_call("generate", body, sink)
        record = build_record(RunRecord(0, False, "ok", "2026-01-01T00:00:00.000Z"), outcome, None)
        json.dumps({"runs": [record.to_dict()]}, indent=1, allow_nan=False)
        elapsed = time.perf_counter() - start
    if outcome.error is not None or record.metrics.token_count != tokens or count != tokens:
        raise RuntimeError(f"engine call of {tokens} tokens: {outcome.error}")
    return elapsed


def engine(sizes: list[int], repeat: int) -> dict[int, float]:
    """Marginal seconds per token at each size (median over interleaved repeats)."""
    times: dict[int, list[float]] = {n: [] for n in [1, *sizes]}
    with firehose(max(sizes)) as url:
        anyio.run(_engine_call, url, 1000)  # warm
        for _ in range(repeat):
            for n in times:
                times[n].append(anyio.run(_engine_call, url, n))
    base = median(times[1])
    return {n: max(median(times[n]) - base, 0.0) / (n - 1) for n in sizes}


async def _pane_cost(sizes: list[int]) -> dict[int, float]:
    from chimera_tui.core.store.profiles import ProfileStore
    from chimera_tui.ui.app import ChimeraApp
    from chimera_tui.ui.choice import BenchChoice
    from chimera_tui.ui.config import AppConfig
    from chimera_tui.ui.screens.live import LiveScreen

    words = ["the", "model", "token", "stream", "answer", "signal", "river", "stone", "quiet.", "And"]
    app = ChimeraApp(
        AppConfig(endpoints=["http://127.0.0.1:9"], sessions_root=Path("."), monitor_interval_s=0)
    )
    out: dict[int, float] = {}
    async with app.run_test(size=(160, 48)) as pilot:
        profile = ProfileStore().get("baseline_default")
        for n in sizes:
            choice = BenchChoice(
                "http://sim", "gemma3:latest", profile, "single", "short", "hi", 1, 0, False, n
            )
            screen = LiveScreen(choice, autostart=False)
            await app.push_screen(screen)
            await pilot.pause()
            t_send = time.perf_counter_ns()
            screen.feed.push(RunStarted(0, 1, 1, False, t_send))
            screen.flush()
            per_flush = 67  # 2,000 tok/s at 30 flushes a second
            spent = 0.0
            for i in range(0, n, per_flush):
                k = min(per_flush, n - i)
                t = t_send + (i + 1) * 500_000
                tokens = [TokenEvent(t, " " + words[(i + j) % len(words)], "content") for j in range(k)]
                screen.feed.push(TokenBatch(0, tokens, t_send))
                start = time.perf_counter()
                screen.flush()
                spent += time.perf_counter() - start
            out[n] = spent / n
            screen.dismiss()
            await pilot.pause()
    return out


def run(quick: bool = False) -> list[Result]:
    sizes = [1000, 10_000] if quick else [1000, 10_000, 100_000]
    top = sizes[-1]
    eng = engine(sizes, 2 if quick else 3)
    pane = anyio.run(_pane_cost, sizes)
    results = [
        info(NAME, f"engine: per token at {n:,} tokens", eng[n] * 1e6, "µs", "marginal") for n in sizes
    ]
    results.append(
        check(NAME, f"engine: per-token cost {top:,} / 1,000", eng[top] / eng[1000], "x", "<=", 1.5)
    )
    results += [info(NAME, f"stream pane: per token at {n:,} tokens", pane[n] * 1e6, "µs") for n in sizes]
    results.append(
        check(NAME, f"stream pane: per-token cost {top:,} / 1,000", pane[top] / pane[1000], "x", "<=", 1.5)
    )
    return results
