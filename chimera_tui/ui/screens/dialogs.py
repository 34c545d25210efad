"""Small modal dialogs: ask for text, confirm, export."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static

from chimera_tui.core.errors import ChimeraError
from chimera_tui.core.reports import FORMATS, default_filename, export_sessions, write_export
from chimera_tui.core.sessions import Session


class TextPrompt(ModalScreen[str | None]):
    """Ask for one line of text; None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self._title, self._value, self._placeholder = title, value, placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(escape(self._title), classes="dialog-title")
            yield Input(self._value, placeholder=self._placeholder, id="prompt-input")
            with Horizontal(classes="dialog-buttons"):
                yield Button("OK", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        self.dismiss(self.query_one(Input).value)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class Confirm(ModalScreen[bool]):
    """Yes or no; escape means no."""

    BINDINGS = [Binding("escape", "no", "No"), Binding("y", "yes", "Yes")]

    def __init__(self, question: str, yes: str = "Yes") -> None:
        super().__init__()
        self._question, self._yes = question, yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(escape(self._question), classes="dialog-title")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self._yes, variant="error", id="yes")
                yield Button("Cancel", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed, "#yes")
    def action_yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def action_no(self) -> None:
        self.dismiss(False)


class ExportDialog(ModalScreen[Path | None]):
    """Pick a format and a path, then write the report (one session or a comparison)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, sessions: list[Session], directory: Path) -> None:
        super().__init__()
        self.sessions = sessions
        self.directory = directory

    def compose(self) -> ComposeResult:
        what = "session" if len(self.sessions) == 1 else f"comparison of {len(self.sessions)} sessions"
        with Vertical(classes="dialog"):
            yield Label(f"Export {what}", classes="dialog-title")
            with RadioSet(id="format"):
                for fmt in FORMATS:
                    yield RadioButton(fmt, value=fmt == "html", name=fmt)
            yield Input(str(self.directory / default_filename(self.sessions, "html")), id="export-path")
            yield Static("", id="export-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", variant="primary", id="do-export")
                yield Button("Cancel", id="cancel")

    @property
    def fmt(self) -> str:
        pressed = self.query_one(RadioSet).pressed_button
        return pressed.name if pressed is not None and pressed.name else "html"

    @on(RadioSet.Changed)
    def _format_changed(self) -> None:
        self.query_one("#export-path", Input).value = str(
            self.directory / default_filename(self.sessions, self.fmt)
        )

    @on(Input.Submitted)
    @on(Button.Pressed, "#do-export")
    def _export(self) -> None:
        path = Path(self.query_one("#export-path", Input).value).expanduser()
        try:
            write_export(export_sessions(self.sessions, self.fmt), path)
        except (OSError, ChimeraError) as exc:
            self.query_one("#export-error", Static).update(f"[b red]✗[/] {escape(str(exc))}")
            return
        self.dismiss(path)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
