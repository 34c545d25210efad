"""The token stream of the call in progress: content in a Log, thinking in a collapsible Log.

Text is appended in batches by the screen's bounded-rate flush, never per token, and is sanitized
first: model output never reaches the terminal raw. Both logs keep a bounded number of lines; the
full text is in the session on disk.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Collapsible, Log, Static

from chimera_tui.safe_text import sanitize
from chimera_tui.ui.soft_wrap import soft_wrap

MAX_LINES = 2000


class StreamPane(Vertical):
    """Thinking (dim, collapsible) above the answer."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._thinking_tokens = 0
        self._columns = {"thinking-log": 0, "content-log": 0}

    def compose(self) -> ComposeResult:
        yield Static("", id="stream-title")
        with Collapsible(title="Thinking", collapsed=True, id="thinking-box"):
            yield Log(max_lines=MAX_LINES, id="thinking-log", auto_scroll=True)
        yield Log(max_lines=MAX_LINES, id="content-log", auto_scroll=True)

    def on_mount(self) -> None:
        self.query_one("#thinking-box").display = False

    def reset(self, title: str) -> None:
        self._thinking_tokens = 0
        self._columns = {"thinking-log": 0, "content-log": 0}
        self.query_one("#stream-title", Static).update(title)
        self.query_one("#thinking-log", Log).clear()
        self.query_one("#content-log", Log).clear()
        self.query_one("#thinking-box").display = False

    def append(self, content: str, thinking: str, thinking_tokens: int) -> None:
        if thinking:
            box = self.query_one("#thinking-box", Collapsible)
            box.display = True
            self._thinking_tokens += thinking_tokens
            box.title = f"Thinking ({self._thinking_tokens} tokens)"
            self._write("thinking-log", thinking)
        if content:
            self._write("content-log", content)

    def _write(self, log_id: str, text: str) -> None:
        log = self.query_one(f"#{log_id}", Log)
        width = max(log.scrollable_content_region.width - 1, 20)
        wrapped, self._columns[log_id] = soft_wrap(sanitize(text), self._columns[log_id], width)
        log.write(wrapped)

    @property
    def content_text(self) -> str:
        return "\n".join(str(line) for line in self.query_one("#content-log", Log).lines)
