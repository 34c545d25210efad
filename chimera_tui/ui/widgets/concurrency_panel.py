"""The shared panel of a multi-agent run: the last round's efficiency, speedup, makespan, skew and
contention, with the running mean of the efficiency."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Digits, Label, Static

from chimera_tui.core.measure.concurrency import round_aggregates


def _n(value: Any, digits: int = 1) -> str:
    return "—" if not isinstance(value, int | float) else f"{value:.{digits}f}"


class ConcurrencyPanel(Vertical):
    def compose(self) -> ComposeResult:
        yield Label("parallel efficiency %", classes="readout-label")
        yield Digits("—", id="efficiency")
        yield Static("", id="round-figures")
        yield Static("", id="round-mean")

    def on_mount(self) -> None:
        self.border_title = "Concurrency"

    def show_round(self, metrics: dict[str, Any], rounds: list[dict[str, Any]]) -> None:
        self.query_one("#efficiency", Digits).update(_n(metrics.get("efficiency_pct")))
        contended = metrics.get("contended")
        flag = "—" if contended is None else ("yes" if contended else "no")
        self.query_one("#round-figures", Static).update(
            f"last round: {metrics.get('status')}\n"
            f"speedup {_n(metrics.get('speedup'), 2)}x · makespan {_n(metrics.get('makespan_ms'), 0)} ms\n"
            f"start skew {_n(metrics.get('start_skew_ms'), 2)} ms · "
            f"slot wait {_n(metrics.get('wait_share_pct'))}%\n"
            f"contended {flag} · {escape(str(metrics.get('cause') or ''))}"
        )
        eff = round_aggregates(rounds)["efficiency_pct"]
        if eff.n:
            text = f"mean over {eff.n} rounds: {_n(eff.mean)}%"
            if eff.stddev is not None:
                text += f" ± {_n(eff.stddev)} (CV {_n(eff.cv_pct)}%)"
            self.query_one("#round-mean", Static).update(text)
