"""The shared panel of a multi-agent run: the last round's capacity efficiency (the headline), the
research's and the overlap figure beside it, makespan, skew and both contention flags, with the running
means. Without a solo baseline the headline says capacity is unknown instead of showing another figure."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Digits, Label, Static

from chimera_tui.core.measure.concurrency import CAPACITY_UNKNOWN, round_aggregates


def _n(value: Any, digits: int = 1) -> str:
    return "—" if not isinstance(value, int | float) else f"{value:.{digits}f}"


def _flag(value: Any) -> str:
    return "—" if value is None else ("yes" if value else "no")


class ConcurrencyPanel(Vertical):
    def compose(self) -> ComposeResult:
        yield Label("capacity efficiency %", id="efficiency-label", classes="readout-label")
        yield Digits("—", id="efficiency")
        # small terminals show this line instead of the label and the big digits (multi.tcss)
        yield Static(CAPACITY_UNKNOWN, id="capacity-line")
        yield Static("", id="round-figures")
        yield Static("", id="round-mean")

    def on_mount(self) -> None:
        self.border_title = "Concurrency"

    def show_round(self, metrics: dict[str, Any], rounds: list[dict[str, Any]]) -> None:
        capacity = metrics.get("capacity_efficiency_pct")
        self.query_one("#efficiency", Digits).update(_n(capacity))
        label = "capacity efficiency %" if capacity is not None or metrics.get("warmup") else CAPACITY_UNKNOWN
        self.query_one("#efficiency-label", Label).update(label)
        self.query_one("#capacity-line", Static).update(
            f"capacity efficiency {_n(capacity)}%" if label != CAPACITY_UNKNOWN else CAPACITY_UNKNOWN
        )
        cause = escape(str(metrics.get("cause") or ""))
        # short lines: the panel is 36 columns wide on an 80-column terminal
        self.query_one("#round-figures", Static).update(
            f"last round: {metrics.get('status')}\n"
            f"research {_n(metrics.get('research_efficiency_pct'))}% · "
            f"overlap {_n(metrics.get('overlap_efficiency_pct'))}%\n"
            f"makespan {_n(metrics.get('makespan_ms'), 0)} ms · "
            f"skew {_n(metrics.get('start_skew_ms'), 2)} ms\n"
            f"slot wait {_n(metrics.get('wait_share_pct'))}% · contended {_flag(metrics.get('contended'))}\n"
            f"TTFT > 3 s above solo: {_flag(metrics.get('research_contended'))}"
            + (f" · {cause}" if cause else "")
        )
        agg = round_aggregates(rounds)
        lines = []
        for key, name in (
            ("capacity_efficiency_pct", "capacity"),
            ("research_efficiency_pct", "research"),
            ("overlap_efficiency_pct", "overlap"),
        ):
            s = agg[key]
            if s.n:
                text = f"{name} {_n(s.mean)}%"
                if s.stddev is not None:
                    text += f" ± {_n(s.stddev)}"
                lines.append(text)
        if lines:
            n = max(agg[k].n for k in ("capacity_efficiency_pct", "overlap_efficiency_pct"))
            self.query_one("#round-mean", Static).update(f"mean of {n} rounds: " + " · ".join(lines))
