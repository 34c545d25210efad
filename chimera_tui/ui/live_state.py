"""Live figures of the call in progress, folded from the reader's stamped tokens (no Textual here).

All times come from the reader's `perf_counter_ns()` stamps carried by the events, never from the UI
clock, so a slow repaint cannot change a number; the UI only decides how often it looks.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from chimera_tui.core.run.events import TokenBatch

#: width of one sparkline bucket of the live rate
BUCKET_NS = 250_000_000
SPARK_POINTS = 120


@dataclass(slots=True)
class LiveCall:
    """Running figures of one call: TTFT, tokens, client decode rate, a rate history for a sparkline."""

    index: int
    t_send_ns: int | None = None
    t_first_ns: int | None = None
    t_last_ns: int | None = None
    tokens: int = 0
    thinking_tokens: int = 0
    #: tokens per bucket of BUCKET_NS since the first token, for the sparkline (bounded)
    buckets: deque[int] = field(default_factory=lambda: deque(maxlen=SPARK_POINTS))
    _bucket_start_ns: int | None = None

    def add(self, batch: TokenBatch) -> None:
        if self.t_send_ns is None:
            self.t_send_ns = batch.t_send_ns
        for token in batch.tokens:
            t = token.t_ns
            if self.t_first_ns is None:
                self.t_first_ns = t
                self._bucket_start_ns = t
                self.buckets.append(0)
            assert self._bucket_start_ns is not None
            while t >= self._bucket_start_ns + BUCKET_NS:
                self._bucket_start_ns += BUCKET_NS
                self.buckets.append(0)
            self.buckets[-1] += 1
            self.t_last_ns = t
            self.tokens += 1
            if token.kind == "thinking":
                self.thinking_tokens += 1

    @property
    def ttft_ms(self) -> float | None:
        if self.t_first_ns is None or self.t_send_ns is None:
            return None
        return (self.t_first_ns - self.t_send_ns) / 1e6

    @property
    def rate(self) -> float | None:
        """Client decode rate so far: (n - 1) / (t_last - t_first), as in docs/metrics.md."""
        if self.t_first_ns is None or self.t_last_ns is None or self.tokens < 2:
            return None
        span = self.t_last_ns - self.t_first_ns
        return (self.tokens - 1) / (span / 1e9) if span > 0 else None

    def rate_history(self) -> list[float]:
        """Tokens/s per bucket; the last (partial) bucket is left out so the line does not dip."""
        full = list(self.buckets)[:-1]
        return [n * 1e9 / BUCKET_NS for n in full]
