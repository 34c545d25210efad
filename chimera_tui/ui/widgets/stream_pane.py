"""The token stream of the call in progress: content in a Log, thinking in a collapsible Log.

Text is appended in batches by the screen's bounded-rate flush, never per token, and is sanitized
first: model output never reaches the terminal raw. Both logs keep a bounded number of lines; the
full text is in the session on disk.
"""

from __future__ import annotations

import time

from rich.style import Style
from textual.app import ComposeResult
from textual.cache import LRUCache
from textual.containers import Vertical
from textual.geometry import Region, Size
from textual.reactive import Reactive
from textual.strip import Strip
from textual.widgets import Collapsible, Log, Static

from chimera_tui.safe_text import sanitize
from chimera_tui.ui.soft_wrap import soft_wrap

MAX_LINES = 2000
#: the sanitized text each log keeps to wrap again when its width changes (the newest part)
REWRAP_CHARS = 200_000
#: lines of a log whose drawing is cached (more than any terminal shows at once)
CACHED_LINES = 256
#: the scrollbars come back once no text has arrived for this long
STREAMING_IDLE_S = 0.5


class StreamLog(Log):
    """A Log that costs less per frame while a stream scrolls it (Textual 8.2.8, pinned exactly).

    Every write scrolls the log, so every visible line is drawn again each frame (30 a second):
    - a drawn line is cached until it changes (`Log` caches lines only while text is selected);
    - the line style is computed once per frame, not once per line;
    - while streaming (class `-streaming`) the scrollbar is hidden: the log follows the stream's
      end anyway, and a scrollbar whose thumb moves every frame is drawn again in full each time;
    - a growing log does not lay out the whole screen again (see `virtual_size`).
    """

    DEFAULT_CSS = """
    StreamLog.-streaming {
        scrollbar-visibility: hidden;
    }
    """

    #: a new line changes the virtual size; for this widget that needs no layout of the screen
    #: (`Widget.virtual_size` asks for one): scrolling reads the size directly, and the layout that
    #: showing the scrollbar again makes brings the rest up to date
    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)

    _frame_style: Style | None = None

    def __init__(self, *, max_lines: int, id: str, auto_scroll: bool = True) -> None:
        super().__init__(max_lines=max_lines, id=id, auto_scroll=auto_scroll)
        # the drawn lines kept: enough for any visible height (Log keeps 1,024, each with its caches)
        self._render_line_cache = LRUCache(CACHED_LINES)

    def render_lines(self, crop: Region) -> list[Strip]:
        self._frame_style = self.rich_style
        try:
            return super().render_lines(crop)
        finally:
            self._frame_style = None

    def _render_line(self, y: int, scroll_x: int, width: int) -> Strip:
        rich_style = self._frame_style if self._frame_style is not None else self.rich_style
        if y >= len(self._lines):
            return Strip.blank(width, rich_style)
        line = self._render_line_strip(y, rich_style)
        line = line.crop_extend(scroll_x, scroll_x + width, rich_style)
        return line.apply_offsets(scroll_x, y)

    def _render_line_strip(self, y: int, rich_style: Style) -> Strip:
        if self.text_selection is not None:
            return super()._render_line_strip(y, rich_style)
        cache = self._render_line_cache
        strip = cache.get(y)
        if strip is None:  # cleared for a line that changes (refresh_lines) and on style updates
            strip = cache[y] = super()._render_line_strip(y, rich_style)
        return strip


class StreamPane(Vertical):
    """Thinking (dim, collapsible) above the answer."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._thinking_tokens = 0
        self._columns = {"thinking-log": 0, "content-log": 0}
        #: each log's text as it came (sanitized, unwrapped) and the width it was wrapped at
        self._raw: dict[str, list[str]] = {"thinking-log": [], "content-log": []}
        self._raw_chars = {"thinking-log": 0, "content-log": 0}
        self._wrapped_at = {"thinking-log": 0, "content-log": 0}
        self._is_streaming = False
        self._last_append = 0.0

    def compose(self) -> ComposeResult:
        yield Static("", id="stream-title")
        with Collapsible(title="Thinking", collapsed=True, id="thinking-box"):
            yield StreamLog(max_lines=MAX_LINES, id="thinking-log", auto_scroll=True)
        yield StreamLog(max_lines=MAX_LINES, id="content-log", auto_scroll=True)

    def on_mount(self) -> None:
        self.query_one("#thinking-box").display = False
        self.set_interval(STREAMING_IDLE_S / 2, self._check_idle)

    def reset(self, title: str) -> None:
        self._thinking_tokens = 0
        self._columns = {"thinking-log": 0, "content-log": 0}
        self._raw = {"thinking-log": [], "content-log": []}
        self._raw_chars = {"thinking-log": 0, "content-log": 0}
        self.query_one("#stream-title", Static).update(title)
        self.query_one("#thinking-log", Log).clear()
        self.query_one("#content-log", Log).clear()
        self.query_one("#thinking-box").display = False

    def _streaming(self, on: bool) -> None:
        """While text streams in, the logs follow its end without a scrollbar (see StreamLog); the
        scrollbar is back once nothing has come for STREAMING_IDLE_S."""
        if on != self._is_streaming:
            self._is_streaming = on
            for log in self.query(StreamLog):
                log.set_class(on, "-streaming")

    def stream_ended(self) -> None:
        """The call has ended: show the scrollbars again now (else after STREAMING_IDLE_S)."""
        self._streaming(False)

    def _check_idle(self) -> None:
        if self._is_streaming and time.monotonic() - self._last_append > STREAMING_IDLE_S:
            self._streaming(False)

    def append(self, content: str, thinking: str, thinking_tokens: int) -> None:
        self._last_append = time.monotonic()
        self._streaming(True)
        if thinking:
            box = self.query_one("#thinking-box", Collapsible)
            box.display = True
            self._thinking_tokens += thinking_tokens
            box.title = f"Thinking ({self._thinking_tokens} tokens)"
            self._write("thinking-log", thinking)
        if content:
            self._write("content-log", content)

    def _width(self, log: Log) -> int:
        return max(log.scrollable_content_region.width - 1, 20)

    def _write(self, log_id: str, text: str) -> None:
        log = self.query_one(f"#{log_id}", Log)
        width = self._width(log)
        if width != self._wrapped_at[log_id]:
            self._rewrap(log_id, log, width)
        clean = sanitize(text)
        self._keep(log_id, clean)
        wrapped, self._columns[log_id] = soft_wrap(clean, self._columns[log_id], width)
        log.write(wrapped)

    def _keep(self, log_id: str, text: str) -> None:
        raw = self._raw[log_id]
        raw.append(text)
        self._raw_chars[log_id] += len(text)
        while self._raw_chars[log_id] > REWRAP_CHARS and len(raw) > 1:
            self._raw_chars[log_id] -= len(raw.pop(0))

    def _rewrap(self, log_id: str, log: Log, width: int) -> None:
        """Write the kept text again, wrapped at `width` (the pane was resized)."""
        self._wrapped_at[log_id] = width
        if not self._raw[log_id]:
            return
        log.clear()
        wrapped, self._columns[log_id] = soft_wrap("".join(self._raw[log_id]), 0, width)
        log.write(wrapped)

    def on_resize(self) -> None:
        self.call_after_refresh(self._rewrap_resized)

    def _rewrap_resized(self) -> None:
        for log_id in ("thinking-log", "content-log"):
            log = self.query_one(f"#{log_id}", Log)
            width = self._width(log)
            if width != self._wrapped_at[log_id]:
                self._rewrap(log_id, log, width)

    @property
    def content_text(self) -> str:
        return "\n".join(str(line) for line in self.query_one("#content-log", Log).lines)
