"""The help screen (`?`): the keys of the screen it was opened on, then the global ones. Both lists
are read from the bindings (ui/keys.py), so the help always matches what the keys do."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from chimera_tui.ui.keys import Key, global_keys, screen_keys

NOTES = (
    "Numbers: TTFT and the live tok/s are measured by the reader from arrival stamps, never by the UI; "
    "after each call the server's own figures (eval rate, prompt-eval rate, load time) show beside "
    "them. Definitions: docs/metrics.md.\n\n"
    "Saving: every finished run is written to the session folder before the next one starts."
)


def _table(keys: list[tuple[str, str]]) -> Table:
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0), expand=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, action in keys:
        table.add_row(key, action)
    return table


def _pairs(keys: list[Key]) -> list[tuple[str, str]]:
    return [(" / ".join(key.keys), key.description) for key in keys if key.description]


def screen_title(screen: Screen[Any]) -> str:
    """A screen's name for people: its HELP_NAME, else its sub-title, else its class name."""
    name = getattr(screen, "HELP_NAME", None)
    return str(name or screen.sub_title or type(screen).__name__)


def help_sections(screen: Screen[Any] | None, app: Any) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(heading, note, keys) for the screen `?` was pressed on, then for everywhere."""
    sections = []
    if screen is not None:
        doc = " ".join((type(screen).__doc__ or "").strip().split("\n\n")[0].split())
        extra = list(getattr(screen, "HELP_KEYS", ()))
        sections.append(
            (f"This screen: {screen_title(screen)}", doc, _pairs(screen_keys(screen, app)) + extra)
        )
    sections.append(
        ("Everywhere", "tab / shift+tab move between fields; the mouse works too.", _pairs(global_keys(app)))
    )
    return sections


def help_renderable(screen: Screen[Any] | None, app: Any) -> Group:
    parts: list[Any] = [Text("Chimera TUI — keys", style="bold")]
    for heading, note, keys in help_sections(screen, app):
        parts += [Text(""), Text(heading, style="bold underline")]
        if note:
            parts.append(Text(note, style="italic"))
        parts.append(_table(keys))
    parts += [Text(""), Text(NOTES)]
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    """What the keys do on the screen `?` was pressed on, and everywhere."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]
    HELP_NAME = "help"

    def __init__(self, under: Screen[Any] | None = None) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static(help_renderable(self.under, self.app), id="help-text")

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(result)
