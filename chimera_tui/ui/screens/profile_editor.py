"""The profile editor: a name, a description and one field per known Ollama option, validated live.

Only the options of OPTION_SPECS have a field, so an unknown key cannot be written. Every change is
parsed (TOML syntax, as the profile files and the previews show values) and checked with
profiles.validate_options; Save stays disabled while anything is invalid and writes atomically.
"""

from __future__ import annotations

import tomllib
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Header, Input, Label, Static

from chimera_tui.core.errors import ProfileError
from chimera_tui.core.store.profiles import (
    NAME_PATTERN,
    OPTION_SPECS,
    OptionSpec,
    OptionType,
    Profile,
    ProfileStore,
    diff_options,
    format_value,
    validate_options,
)
from chimera_tui.safe_text import sanitize_line
from chimera_tui.ui.second_press import WINDOW_S, SecondPress
from chimera_tui.ui.widgets.footer import FittingFooter

if TYPE_CHECKING:
    from chimera_tui.ui.app import ChimeraApp

LOAD_TIME_NOTE = "(load-time: changing it reloads the model)"


def parse_value(spec: OptionSpec, text: str) -> Any:
    """The typed value of a field's text, e.g. ``80``, ``0.6``, ``true``, ``["\\n", "User:"]``.

    Raises ValueError with one line naming what was expected (validate_options' message)."""
    text = text.strip()
    try:
        doc = tomllib.loads(f"v = {text}")
        if set(doc) != {"v"}:
            raise ValueError
        value = doc["v"]
    except (tomllib.TOMLDecodeError, ValueError, RecursionError):
        if spec.type is not OptionType.STR:
            example = ' e.g. ["\\n", "User:"]' if spec.type is OptionType.STR_LIST else ""
            raise ValueError(f"must be {spec.expectation()}{example}") from None
        value = text
    try:
        return validate_options({spec.name: value}, spec.name)[spec.name]
    except ProfileError as exc:
        raise ValueError(str(exc).removeprefix(f"{spec.name}: ")) from None


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a profile name, or None."""
    if not name:
        return "a name is required"
    if not NAME_PATTERN.match(name):
        return "use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
    return None


class ProfileEditorScreen(Screen[Profile | None]):
    """Create or edit one user profile; dismisses with the saved profile, or None when cancelled."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]
    HELP_NAME = "profile editor"

    app: ChimeraApp

    def __init__(
        self, store: ProfileStore, source: Profile | None = None, *, name: str = "", editing: bool = False
    ) -> None:
        """``source``: the profile to start from (and to diff against); ``editing``: save over it
        (renaming it when the name changes) instead of creating a new one."""
        super().__init__()
        self.store = store
        self.source = source
        self.editing = editing and source is not None and not source.builtin
        self._initial_name = name or (source.name if source is not None else "")
        self.candidate: Profile | None = None
        self.errors: dict[str, str] = {}
        self._press = SecondPress()

    def compose(self) -> ComposeResult:
        src = self.source
        yield Header()
        with VerticalScroll(id="editor-form"):
            with Horizontal(classes="editor-row"):
                yield Label("name", classes="opt-name")
                yield Input(self._initial_name, id="profile-name", placeholder="my_profile", compact=True)
                yield Static("", id="name-note", classes="opt-help")
            yield Static("", id="err-name", classes="opt-error")
            with Horizontal(classes="editor-row"):
                yield Label("description", classes="opt-name")
                yield Input(src.description if src else "", id="profile-description", compact=True)
            yield Label("Options (empty = not set: Ollama's default)", classes="section-title")
            for name, spec in OPTION_SPECS.items():
                value = src.options.get(name) if src is not None else None
                with Horizontal(classes="editor-row"):
                    yield Label(name, classes="opt-name")
                    yield Input(
                        "" if value is None else format_value(value),
                        id=f"opt-{name}",
                        placeholder="not set",
                        classes="opt-input",
                        compact=True,
                    )
                    note = f"{spec.help} · {spec.expectation()}"
                    if spec.load_time:
                        note += f" {LOAD_TIME_NOTE}"
                    yield Static(escape(note), classes="opt-help" + (" -load-time" if spec.load_time else ""))
                yield Static("", id=f"err-{name}", classes="opt-error")
        with Vertical(id="editor-bottom"):
            yield Static("", id="editor-diff")
            yield Static("", id="editor-status")
            with Horizontal(id="editor-buttons"):
                yield Button("Save  (ctrl+s)", id="save", variant="primary")
                yield Button("Cancel  (esc)", id="cancel")
        yield FittingFooter()

    def on_mount(self) -> None:
        if self.editing:
            self.sub_title = f"edit profile {self._initial_name}"
        elif self.source is not None:
            self.sub_title = f"new profile from {self.source.name}"
        else:
            self.sub_title = "new profile"
        self.validate()
        self._initial_values = self._form_values()
        self.query_one("#profile-name", Input).focus()

    def _form_values(self) -> dict[str, str]:
        return {str(field.id): field.value for field in self.query(Input)}

    @property
    def dirty(self) -> bool:
        """Whether a field differs from what the editor opened with."""
        return self._form_values() != getattr(self, "_initial_values", {})

    # -- validation ---------------------------------------------------------------------------------
    @on(Input.Changed)
    def _changed(self) -> None:
        self.validate()

    def _value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value

    def validate(self) -> Profile | None:
        """Parse and check every field; show each problem next to its field; return the profile or None."""
        errors: dict[str, str] = {}
        options: dict[str, Any] = {}
        for name, spec in OPTION_SPECS.items():
            text = self._value(f"opt-{name}")
            if not text.strip():
                continue
            try:
                options[name] = parse_value(spec, text)
            except ValueError as exc:
                errors[name] = str(exc)
        name = self._value("profile-name").strip()
        problem = name_problem(name)
        editing_name = self.source.name if self.editing and self.source else None
        if problem is None and name != editing_name and (self.store.user_dir / f"{name}.toml").is_file():
            problem = f"a user profile named {name} exists: pick another name, or edit that one"
        if problem is not None:
            errors["name"] = problem
        candidate: Profile | None = None
        if not errors:
            try:
                validate_options(options, "profile")
                candidate = Profile(name, self._value("profile-description"), options)
            except ProfileError as exc:
                errors["profile"] = str(exc)
        self.errors, self.candidate = errors, candidate
        self._show(errors, name, options)
        return candidate

    def _show(self, errors: dict[str, str], name: str, options: dict[str, Any]) -> None:
        for key in ("name", *OPTION_SPECS):
            box = self.query_one(f"#err-{key}", Static)
            message = errors.get(key)
            box.update(f"✗ {escape(sanitize_line(message))}" if message else "")
            box.display = message is not None
            field = self.query_one("#profile-name" if key == "name" else f"#opt-{key}", Input)
            field.set_class(message is not None, "-invalid")
        builtin = (self.store.builtin_dir / f"{name}.toml").is_file() if name_problem(name) is None else False
        self.query_one("#name-note", Static).update(
            f"shadows the built-in profile {escape(name)}" if builtin else ""
        )
        status = self.query_one("#editor-status", Static)
        if errors:
            fields = ", ".join(errors)
            status.update(f"[b]✗[/b] {len(errors)} problem(s): {escape(fields)} · fix them to save")
        else:
            status.update(f"✓ valid · {len(options)} option(s) set")
        status.set_class(bool(errors), "-error")
        self.query_one("#save", Button).disabled = bool(errors)
        self.query_one("#editor-diff", Static).update(escape(self._diff_text(name, options)))

    def _diff_text(self, name: str, options: dict[str, Any]) -> str:
        src = self.source
        base = src.options if src is not None else {}
        against = f"vs {src.name}" if src is not None else "vs Ollama's defaults"
        changes = [c.text() for c in diff_options(base, options)]
        if src is not None and name != src.name:
            changes.insert(0, f"name {src.name} → {name or '?'}")
        return f"{against}: " + ("; ".join(changes) if changes else "no changes")

    # -- actions ------------------------------------------------------------------------------------
    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        profile = self.validate()
        if profile is None:
            self.notify("fix the fields marked ✗ first", severity="warning")
            return
        try:
            path = self.store.save_user(profile)
        except ProfileError as exc:
            self.query_one("#editor-status", Static).update(f"[b]✗[/b] {escape(str(exc))}")
            return
        old = self.source.name if self.editing and self.source is not None else None
        if old is not None and old != profile.name:
            try:
                self.store.delete_user(old)
            except ProfileError as exc:
                self.notify(str(exc), severity="warning")
        self.notify(f"saved {path}", title=f"Profile {profile.name}")
        self.dismiss(Profile(profile.name, profile.description, profile.options, path, False))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Leave; with unsaved changes the first press asks and a second one within seconds discards."""
        if self.dirty and not self._press.confirm("cancel"):
            self.notify(
                "unsaved changes: press esc again to discard them (ctrl+s saves)",
                severity="warning",
                title="Confirm",
                timeout=WINDOW_S,
            )
            return
        self.dismiss(None)
