"""One agent's column in a multi-agent run: its name, live TTFT / tok/s, and its token stream."""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from chimera_tui.safe_text import sanitize_line
from chimera_tui.ui.live_state import LiveCall
from chimera_tui.ui.widgets.stream_pane import StreamPane

#: what a pane says between its request and its first token (in shared mode: queued for a slot)
WAITING = "waiting for a slot / the first token…"


def _n(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


class AgentPane(Vertical):
    def __init__(self, agent: int, model: str, detail: str = "") -> None:
        super().__init__(id=f"agent-{agent}", classes="agent-pane")
        self.agent = agent
        self._model = model
        self._detail = detail

    def compose(self) -> ComposeResult:
        yield Static(
            f"[b]agent {self.agent + 1}[/b] · {escape(sanitize_line(self._model))}", classes="agent-title"
        )
        yield Static(escape(sanitize_line(self._detail)), classes="agent-detail")
        yield Static("waiting for the round to start…", classes="agent-figures")
        yield StreamPane()

    @property
    def stream(self) -> StreamPane:
        return self.query_one(StreamPane)

    def show(self, call: LiveCall | None, status: str = "") -> None:
        figures = self.query_one(".agent-figures", Static)
        if call is None:
            figures.update(escape(status) or "waiting for the next round…")
            return
        if call.tokens == 0 and call.ttft_ms is None and not status:
            figures.update(WAITING)
            return
        figures.update(
            f"TTFT {_n(call.ttft_ms, 0)} ms · {_n(call.rate)} tok/s · {call.tokens} tok"
            + (f" · {escape(status)}" if status else "")
        )
