"""Large-digit readouts of the call in progress and the server's figures of the last call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.widgets import Digits, Label, Sparkline, Static

from chimera_tui.core.measure.metrics import CallMetrics


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


class Readouts(Vertical):
    """TTFT and live tok/s in big digits, a tok/s sparkline, tokens, elapsed, and last-call figures."""

    #: the last call's server and client figures, and (agent workflow) the last workflow run's times
    _last_call: str = ""
    _workflow: str = ""

    def compose(self) -> ComposeResult:
        with Grid(id="digits-grid"):
            with Vertical(classes="readout"):
                yield Label("TTFT ms", classes="readout-label")
                yield Digits("—", id="ttft")
            with Vertical(classes="readout"):
                yield Label("tok/s live", classes="readout-label")
                yield Digits("—", id="rate")
        yield Sparkline([], id="rate-spark")
        # small terminals show this one line instead of the big digits (styles: live.tcss)
        yield Static("TTFT — ms · — tok/s", id="live-line")
        yield Static("", id="progress-line")
        yield Static("", id="last-call")

    def show_live(
        self,
        ttft_ms: float | None,
        rate: float | None,
        history: list[float],
        tokens: int,
        elapsed_s: float | None,
    ) -> None:
        self.query_one("#ttft", Digits).update(_num(ttft_ms, 0))
        self.query_one("#rate", Digits).update(_num(rate, 1))
        self.query_one("#rate-spark", Sparkline).data = history
        elapsed = "—" if elapsed_s is None else f"{elapsed_s:.1f} s"
        # one line in a fixed-width column: no layout pass needed (this runs 30 times a second)
        self.query_one("#progress-line", Static).update(f"tokens {tokens}   elapsed {elapsed}", layout=False)
        self.query_one("#live-line", Static).update(
            f"TTFT {_num(ttft_ms, 0)} ms · {_num(rate, 1)} tok/s", layout=False
        )

    def show_last_call(self, m: CallMetrics) -> None:
        self._last_call = (
            f"last: eval {_num(m.server_decode_rate)} · cli {_num(m.client_decode_rate)} tok/s\n"
            f" prompt eval {_num(m.prompt_eval_rate, 0)} tok/s\n"
            f" load {_num(m.load_ms)} ms · gap {_num(m.queue_gap_ms)} ms"
        )
        self._render_last()

    def show_workflow(self, entry: Mapping[str, Any]) -> None:
        """The last agent-workflow run's figures (its workflow.json entry), kept below the last call."""
        e = entry.get
        self._workflow = (
            f"last workflow run {e('number', '?')} ({e('status', '?')})\n"
            f" ingest {_num(e('ingest_ms'))} ms · analysis {_num(e('analysis_e2e_ms'), 0)} ms\n"
            f" report {_num(e('report_e2e_ms'), 0)} ms · total {_num(e('workflow_ms'), 0)} ms"
        )
        self._render_last()

    def _render_last(self) -> None:
        parts = [p for p in (self._last_call, self._workflow) if p]
        self.query_one("#last-call", Static).update("\n".join(parts))
