"""One agent's column in a multi-agent run: its name, live TTFT / tok/s, and its token stream."""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from chimera_tui.safe_text import sanitize_line
from chimera_tui.ui.live_state import LiveCall
from chimera_tui.ui.widgets.stream_pane import StreamPane


def _n(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


class AgentPane(Vertical):
    def __init__(self, agent: int, title: str) -> None:
        super().__init__(id=f"agent-{agent}", classes="agent-pane")
        self.agent = agent
        self._title = title

    def compose(self) -> ComposeResult:
        yield Static(
            f"[b]agent {self.agent + 1}[/b] · {escape(sanitize_line(self._title))}", classes="agent-title"
        )
        yield Static("waiting…", classes="agent-figures")
        yield StreamPane()

    @property
    def stream(self) -> StreamPane:
        return self.query_one(StreamPane)

    def show(self, call: LiveCall | None, status: str = "") -> None:
        figures = self.query_one(".agent-figures", Static)
        if call is None:
            figures.update(status or "waiting…")
            return
        figures.update(
            f"TTFT {_n(call.ttft_ms, 0)} ms · {_n(call.rate)} tok/s · {call.tokens} tokens"
            + (f" · {status}" if status else "")
        )
