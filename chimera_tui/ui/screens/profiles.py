"""The profiles screen: built-in and user profiles; new, duplicate, edit, delete and diff.

Built-ins are read-only (duplicate one to change it). Files that do not validate are listed in the
status line with the reason and never break the listing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Header, Label, Select, Static

from chimera_tui.core.errors import ProfileError
from chimera_tui.core.store.profiles import (
    BASELINE_PROFILE,
    Profile,
    ProfileStore,
    diff_options,
    format_value,
)
from chimera_tui.core.store.profiles import reload_warning as reload_warning_text
from chimera_tui.safe_text import sanitize_line
from chimera_tui.ui.screens.dialogs import Confirm
from chimera_tui.ui.screens.profile_editor import ProfileEditorScreen
from chimera_tui.ui.widgets.footer import FittingFooter

if TYPE_CHECKING:
    from chimera_tui.ui.app import ChimeraApp

COLUMNS = ("name", "kind", "options")


def options_summary(profile: Profile) -> str:
    """``num_ctx=2048, temperature=0.6`` (one line, sanitized), or Ollama's defaults."""
    text = ", ".join(f"{k}={v}" for k, v, _ in profile.option_lines())
    return sanitize_line(text) if text else "(none: Ollama's defaults)"


def free_name(base: str, taken: set[str]) -> str:
    """``base_copy``, ``base_copy2``, … the first one not in ``taken`` (cut to fit 64 characters)."""
    stem = base[:58]
    for i in range(1, 1000):
        name = f"{stem}_copy" + ("" if i == 1 else str(i))
        if name not in taken:
            return name
    return f"{stem}_new"


class ProfileDiffScreen(ModalScreen[None]):
    """One profile against another picked with a Select: added, removed and changed options."""

    BINDINGS = [Binding("escape", "close", "Close")]
    HELP_NAME = "profile diff"

    def __init__(self, profile: Profile, others: list[Profile]) -> None:
        super().__init__()
        self.profile = profile
        self.others = {p.name: p for p in others if p.name != profile.name}

    def compose(self) -> ComposeResult:
        names = list(self.others)
        default = BASELINE_PROFILE if BASELINE_PROFILE in self.others else (names[0] if names else None)
        with Vertical(classes="dialog", id="diff-dialog"):
            yield Label(f"Diff: A = {escape(self.profile.name)}", classes="dialog-title")
            if default is None:
                yield Select[str]([], id="diff-other", prompt="(no other profile)")
            else:
                yield Select[str]([(n, n) for n in names], id="diff-other", value=default, allow_blank=False)
            table: DataTable[str | Text] = DataTable(id="diff-table", cursor_type="row", zebra_stripes=True)
            yield table
            yield Static("", id="diff-summary")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", id="close")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("option", "A", "B", "change", "load-time")
        self.show_diff()

    @on(Select.Changed, "#diff-other")
    def show_diff(self) -> None:
        value = self.query_one("#diff-other", Select).value
        other = self.others.get(str(value))
        table = self.query_one(DataTable)
        table.clear()
        summary = self.query_one("#diff-summary", Static)
        if other is None:
            summary.update("no other profile to compare with")
            return
        changes = diff_options(self.profile.options, other.options)
        words = {"added": "only in B", "removed": "only in A", "changed": "changed"}
        for c in changes:
            table.add_row(
                c.name,
                Text("—" if c.old is None else sanitize_line(format_value(c.old))),
                Text("—" if c.new is None else sanitize_line(format_value(c.new))),
                words[c.kind],
                Text("⟳ reload", style="bold") if c.load_time else "",
            )
        counts = {k: sum(1 for c in changes if c.kind == k) for k in words}
        head = (
            f"B = {escape(other.name)}: {counts['changed']} changed, {counts['added']} only in B, "
            f"{counts['removed']} only in A"
            if changes
            else f"B = {escape(other.name)}: the same options"
        )
        warning = reload_warning_text(self.profile, other)
        tail = f"⚠ switching A → B: {escape(warning)}" if warning else "no load-time difference: no reload"
        summary.update(f"{head}\n{tail}")

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)


class ProfilesScreen(Screen[None]):
    """Every profile, built-in and user, with its options; keys to manage the user ones."""

    BINDINGS = [
        Binding("n", "new", "New"),
        Binding("c", "duplicate", "Duplicate"),
        Binding("d", "duplicate", "Duplicate", show=False),
        Binding("e", "edit", "Edit"),
        Binding("delete", "delete", "Delete"),
        Binding("x", "delete", "Delete", show=False),
        Binding("f", "diff", "Diff"),
        Binding("escape", "back", "Back"),
    ]
    HELP_NAME = "profiles"

    app: ChimeraApp

    def __init__(self) -> None:
        super().__init__()
        self.profiles: dict[str, Profile] = {}

    @property
    def store(self) -> ProfileStore:
        config = self.app.config
        return ProfileStore(config.profiles_builtin_dir, config.profiles_user_dir)

    def compose(self) -> ComposeResult:
        yield Header()
        table: DataTable[str | Text] = DataTable(id="profiles-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="profile-detail")
        yield Static("", id="profiles-status")
        yield FittingFooter()

    def on_mount(self) -> None:
        self.sub_title = f"profiles · user profiles in {self.store.user_dir}"
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.reload()
        self.query_one(DataTable).focus()

    def reload(self, select: str | None = None) -> None:
        """Re-read the store and redraw; keep the cursor on ``select`` (or the current row)."""
        store = self.store
        keep = select or self.current_name()
        self.profiles = {p.name: p for p in store.list()}
        table = self.query_one(DataTable)
        table.clear()
        for p in self.profiles.values():
            kind = "built-in" if p.builtin else "user"
            if not p.builtin and (store.builtin_dir / f"{p.name}.toml").is_file():
                kind = "user (shadows built-in)"
            table.add_row(Text(p.name), kind, Text(options_summary(p)), key=p.name)
        if keep is not None and keep in table.rows:
            table.move_cursor(row=table.get_row_index(keep))
        errors = store.errors
        users = sum(1 for p in self.profiles.values() if not p.builtin)
        text = f"{len(self.profiles)} profiles ({users} user)"
        if errors:
            text += f" · {len(errors)} invalid file(s) skipped: " + "; ".join(
                sanitize_line(f"{path.name}: {message}")[:120] for path, message in errors[:3]
            )
        self.query_one("#profiles-status", Static).update(Text(text))
        self._show_detail()

    def current_name(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:
            return None

    def current(self) -> Profile | None:
        name = self.current_name()
        return self.profiles.get(name) if name is not None else None

    @on(DataTable.RowHighlighted)
    def _show_detail(self) -> None:
        p = self.current()
        detail = self.query_one("#profile-detail", Static)
        if p is None:
            detail.update("")
            return
        description = f" — {escape(sanitize_line(p.description))}" if p.description else ""
        lines = [f"[b]{escape(p.name)}[/b]{description}"]
        for name, value, load_time in p.option_lines():
            marker = " [i](load-time)[/i]" if load_time else ""
            lines.append(f"  {name} = {escape(sanitize_line(value))}{marker}")
        if p.builtin:
            lines.append("[i]built-in: read-only (c duplicates it to edit)[/i]")
        detail.update("\n".join(lines))

    # -- actions ------------------------------------------------------------------------------------
    def _open_editor(self, source: Profile | None, name: str = "", editing: bool = False) -> None:
        def done(saved: Profile | None) -> None:
            if saved is not None:
                self.reload(select=saved.name)

        self.app.push_screen(ProfileEditorScreen(self.store, source, name=name, editing=editing), done)

    def action_new(self) -> None:
        self._open_editor(None)

    def action_duplicate(self) -> None:
        p = self.current()
        if p is None:
            return
        self._open_editor(p, name=free_name(p.name, set(self.profiles)))

    @on(DataTable.RowSelected)
    def action_edit(self) -> None:
        p = self.current()
        if p is None:
            return
        if p.builtin:
            self.notify(f"{p.name} is built-in and read-only: duplicate it (c) to edit", severity="warning")
            return
        self._open_editor(p, editing=True)

    def action_delete(self) -> None:
        p = self.current()
        if p is None:
            return
        if p.builtin:
            self.notify(f"{p.name} is built-in and read-only: it cannot be deleted", severity="warning")
            return

        def done(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.store.delete_user(p.name)
            except ProfileError as exc:
                self.notify(str(exc), severity="error")
                return
            self.notify(f"deleted profile {p.name}")
            self.reload()

        self.app.push_screen(Confirm(f"Delete the user profile {p.name}?", "Delete"), done)

    def action_diff(self) -> None:
        p = self.current()
        if p is not None:
            self.app.push_screen(ProfileDiffScreen(p, list(self.profiles.values())))

    def action_back(self) -> None:
        self.dismiss()
