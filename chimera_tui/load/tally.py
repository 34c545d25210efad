"""The master's running figures: what the progress lines show, and the run's totals. Plain Python.

Only durations cross machines: a record carries its own metrics (measured on its worker's clock);
the master adds the monotonic time it *received* each record, which is the only clock the rates
below use.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

#: the progress window: requests/s, tok/s and TTFT p95 over the last this many seconds
WINDOW_S = 10.0


def percentile(values: list[float], pct: float) -> float | None:
    """Linear-interpolated percentile, None for no values (numpy's default method)."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _tokens(metrics: dict[str, Any]) -> int:
    """Generated tokens of a call: the server's eval_count, else the chunks the client counted."""
    for key in ("eval_count", "token_count"):
        value = metrics.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return 0


@dataclass(slots=True)
class Tally:
    """Counts by status, plus a sliding window of finished calls for the live figures."""

    ok: int = 0
    failed: int = 0
    incomplete: int = 0
    tokens: int = 0
    ttfts: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    #: (received at, tokens, ttft_ms or None, ok)
    window: deque[tuple[float, int, float | None, bool]] = field(default_factory=deque)
    #: per worker: calls in flight, calls started (from each batch message)
    in_flight: dict[str, int] = field(default_factory=dict)
    started: dict[str, int] = field(default_factory=dict)

    def add(self, record: dict[str, Any], now: float) -> None:
        metrics = record.get("metrics") or {}
        status = record.get("status")
        tokens = _tokens(metrics) if status == "ok" else 0
        ttft = metrics.get("ttft_ms") if status == "ok" else None
        if status == "ok":
            self.ok += 1
            self.tokens += tokens
            if isinstance(ttft, int | float):
                self.ttfts.append(float(ttft))
        elif status == "incomplete":
            self.incomplete += 1
        else:
            self.failed += 1
            kind = str(record.get("error_kind") or "error")
            self.errors[kind] = self.errors.get(kind, 0) + 1
        self.window.append((now, tokens, ttft if isinstance(ttft, int | float) else None, status == "ok"))

    @property
    def finished(self) -> int:
        return self.ok + self.failed + self.incomplete

    def snapshot(self, now: float, elapsed_s: float, users: int) -> dict[str, Any]:
        """The live figures: the last WINDOW_S seconds (or since the start, if shorter)."""
        while self.window and self.window[0][0] < now - WINDOW_S:
            self.window.popleft()
        span = min(WINDOW_S, elapsed_s) or None
        done = list(self.window)
        ttfts = [t for _, _, t, ok in done if ok and t is not None]
        return {
            "type": "snapshot",
            "elapsed_s": round(elapsed_s, 3),
            "users": users,
            "in_flight": sum(self.in_flight.values()),
            "started": sum(self.started.values()),
            "ok": self.ok,
            "failed": self.failed,
            "incomplete": self.incomplete,
            "requests_per_s": len(done) / span if span else None,
            "tokens_per_s": sum(n for _, n, _, _ in done) / span if span else None,
            "ttft_p95_ms": percentile(ttfts, 95),
            "errors": dict(self.errors),
        }

    def totals(self, elapsed_s: float) -> dict[str, Any]:
        """The whole run: what the manifest's load table keeps."""
        return {
            "requests_ok": self.ok,
            "requests_failed": self.failed,
            "requests_incomplete": self.incomplete,
            "requests_started": sum(self.started.values()),
            "duration_s": round(elapsed_s, 3),
            "requests_per_s": self.ok / elapsed_s if elapsed_s > 0 else None,
            "tokens_per_s": self.tokens / elapsed_s if elapsed_s > 0 else None,
            "ttft_p50_ms": percentile(self.ttfts, 50),
            "ttft_p95_ms": percentile(self.ttfts, 95),
            "errors": dict(self.errors) or None,
        }


def progress_line(snap: dict[str, Any]) -> str:
    """One human line from a snapshot (the CLI prints it; the TUI could show the same)."""

    def num(value: Any, fmt: str) -> str:
        return format(value, fmt) if isinstance(value, int | float) else "-"

    errors = snap.get("failed", 0)
    return (
        f"{num(snap.get('elapsed_s'), '6.1f')} s  users {snap.get('users', 0):>4}  "
        f"in flight {snap.get('in_flight', 0):>4}  {num(snap.get('requests_per_s'), '7.1f')} req/s  "
        f"{num(snap.get('tokens_per_s'), '8.0f')} tok/s  TTFT p95 {num(snap.get('ttft_p95_ms'), '7.1f')} ms  "
        f"ok {snap.get('ok', 0)}  errors {errors}"
    )


def load_summary(load: dict[str, Any]) -> str:
    """The load figures in a few lines: accounting, throughput, TTFT."""

    def f(key: str, fmt: str) -> str:
        value = load.get(key)
        return format(value, fmt) if isinstance(value, int | float) else "-"

    lines = [
        f"requests: {load.get('requests_started', 0)} started = {load.get('requests_ok', 0)} ok + "
        f"{load.get('requests_failed', 0)} failed + {load.get('requests_incomplete', 0)} incomplete"
        + (f" (+ {load['requests_unaccounted']} unaccounted)" if load.get("requests_unaccounted") else ""),
        f"throughput: {f('requests_per_s', '.2f')} req/s, {f('tokens_per_s', '.0f')} tok/s aggregate "
        f"over {f('elapsed_s', '.1f')} s",
        f"TTFT: p50 {f('ttft_p50_ms', '.1f')} ms, p95 {f('ttft_p95_ms', '.1f')} ms",
    ]
    if load.get("errors"):
        lines.append("errors: " + ", ".join(f"{k} {v}" for k, v in sorted(load["errors"].items())))
    return "\n".join(lines)
