"""Finished runs, one row each as they land, and the aggregate line (mean ± sd, CV%) below."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from chimera_tui.core.measure.metrics import FLAG_SHORT
from chimera_tui.core.measure.stats import Summary
from chimera_tui.core.store.numbering import run_label
from chimera_tui.core.store.sessions import RunRecord, compute_aggregates
from chimera_tui.safe_text import sanitize_line

COLUMNS = ("run", "status", "tok/s srv", "tok/s cli", "TTFT ms", "tokens", "load ms", "e2e ms", "done")


def _n(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def _agg(s: Summary | None, digits: int = 1) -> str:
    if s is None or s.n == 0 or s.mean is None:
        return "—"
    text = f"{s.mean:.{digits}f}"
    if s.stddev is not None:
        text += f" ± {s.stddev:.{digits}f}"
    if s.cv_pct is not None:
        text += f" (CV {s.cv_pct:.1f}%)"
    return text


def run_cells(record: RunRecord) -> tuple[str | Text, ...]:
    """The table cells of one run (shared by the live table and the session view). The status cell
    holds server text, so it is a plain Text: never read as markup. The run cell is the one
    numbering (`run_label`: w1, 1…N, analysis 2)."""
    m = record.metrics
    status: str = record.status
    if record.error:
        status = f"{record.status}: {sanitize_line(record.error)[:40]}"
    return (
        run_label(record),
        Text(status),
        _n(m.server_decode_rate),
        _n(m.client_decode_rate),
        _n(m.ttft_ms),
        _n(m.token_count),
        _n(m.load_ms),
        _n(m.e2e_ms, 0),
        (m.done_reason or "—") + "".join(f" !{FLAG_SHORT.get(f, f)}" for f in m.flags),
    )


class RunsTable(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.records: list[RunRecord] = []

    def compose(self) -> ComposeResult:
        table: DataTable[str | Text] = DataTable(id="run-rows", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="aggregate")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)
        self._update_aggregate()

    def clear(self) -> None:
        self.records.clear()
        self.query_one(DataTable).clear()
        self._update_aggregate()

    def add(self, record: RunRecord) -> None:
        self.records.append(record)
        table = self.query_one(DataTable)
        table.add_row(*run_cells(record), key=str(record.index))
        table.move_cursor(row=table.row_count - 1)
        self._update_aggregate()

    def _update_aggregate(self) -> None:
        agg = compute_aggregates(self.records)
        n = agg["server_decode_rate"].n if agg else 0
        self.query_one("#aggregate", Static).update(
            f"n={n}  tok/s (server) {_agg(agg.get('server_decode_rate'), 2)}   "
            f"TTFT {_agg(agg.get('ttft_ms'))} ms   tok/s (client) {_agg(agg.get('client_decode_rate'), 2)}"
        )
