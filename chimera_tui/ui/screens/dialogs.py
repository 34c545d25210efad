"""Small modal dialogs: ask for text, confirm, export."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
from chimera_tui.core.store.sessions import Session


class TextPrompt(ModalScreen[str | None]):
    """Ask for one line of text; None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    HELP_NAME = "dialogs"

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
    HELP_NAME = "dialogs"

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


class ReportDialog(ModalScreen[Path | None]):
    """Pick a format and a path, then write the text ``render(format)`` returns (atomically)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    HELP_NAME = "dialogs"

    def __init__(
        self,
        title: str,
        directory: Path,
        filename: Callable[[str], str],
        render: Callable[[str], str],
        formats: Sequence[str] = FORMATS,
        default: str = "html",
    ) -> None:
        super().__init__()
        self._title = title
        self.directory = directory
        self._filename = filename
        self._render_report = render
        self.formats = tuple(formats)
        self._default = default if default in self.formats else self.formats[0]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(escape(self._title), classes="dialog-title")
            with RadioSet(id="format"):
                for fmt in self.formats:
                    yield RadioButton(fmt, value=fmt == self._default, name=fmt)
            yield Input(str(self.directory / self._filename(self._default)), id="export-path")
            yield Static("", id="export-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", variant="primary", id="do-export")
                yield Button("Cancel", id="cancel")

    @property
    def fmt(self) -> str:
        pressed = self.query_one(RadioSet).pressed_button
        return pressed.name if pressed is not None and pressed.name else self._default

    @on(RadioSet.Changed)
    def _format_changed(self) -> None:
        self.query_one("#export-path", Input).value = str(self.directory / self._filename(self.fmt))

    @on(Input.Submitted)
    @on(Button.Pressed, "#do-export")
    def _export(self) -> None:
        path = Path(self.query_one("#export-path", Input).value).expanduser()
        try:
            write_export(self._render_report(self.fmt), path)
        except (OSError, ValueError, ChimeraError) as exc:
            self.query_one("#export-error", Static).update(f"[b red]✗[/] {escape(str(exc))}")
            return
        self.dismiss(path)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ExportDialog(ReportDialog):
    """Export one session (a session report) or several (a comparison against the first)."""

    def __init__(self, sessions: list[Session], directory: Path) -> None:
        what = "session" if len(sessions) == 1 else f"comparison of {len(sessions)} sessions"
        super().__init__(
            f"Export {what}",
            directory,
            lambda fmt: default_filename(sessions, fmt),
            lambda fmt: export_sessions(sessions, fmt),
        )
        self.sessions = sessions
