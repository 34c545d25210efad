"""The sessions browser: sort, filter, open, rename, delete, mark for comparison, export, import.

The listing reads only each session's manifest (fast for thousands); a session's metrics are loaded
when it is opened, compared or exported. Unreadable folders are listed with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Static

from chimera_tui.core.errors import ChimeraError
from chimera_tui.core.store.chimeraforge import import_into
from chimera_tui.core.store.session_store import SessionStore, SessionSummary
from chimera_tui.core.store.sessions import BrokenSession, Session, load_session
from chimera_tui.safe_text import ellipsize, sanitize_line
from chimera_tui.ui.screens.dialogs import Confirm, ExportDialog, TextPrompt
from chimera_tui.ui.widgets.footer import FittingFooter

if TYPE_CHECKING:
    from chimera_tui.ui.app import ChimeraApp


@dataclass(frozen=True, slots=True)
class Column:
    """One browser column: its key and header, its width, and its priority (0 always shown; higher
    numbers are dropped first when the terminal is narrow)."""

    key: str
    header: str
    width: int
    priority: int


#: in display order; `label` takes whatever width is left (at least LABEL_MIN)
COLUMNS = (
    Column("mark", "✓", 1, 0),
    Column("created", "created", 11, 1),
    Column("label", "label", 0, 0),
    Column("model", "model", 18, 4),
    Column("profile", "profile", 18, 5),
    Column("mode", "mode", 7, 6),
    Column("runs", "runs", 5, 2),
    Column("tok_s", "tok/s", 7, 0),
    Column("ttft", "TTFT ms", 7, 0),
    Column("cv", "CV%", 5, 0),
    Column("status", "status", 10, 0),
)
LABEL_MIN = 12
#: the most a label column grows to
LABEL_MAX = 48
#: what the table's borders, scrollbar and cell padding take besides the columns' widths
TABLE_CHROME = 3
#: sortable columns in the order `s` steps through them
SORT_KEYS = ("created", "label", "model", "profile", "mode", "runs", "tok_s", "ttft", "cv", "status")


def choose_columns(width: int) -> list[Column]:
    """The columns for a terminal `width`: by priority, the label column taking what is left."""
    room = width - TABLE_CHROME - (LABEL_MIN + 2)
    chosen = {c.key for c in COLUMNS if c.priority == 0 and c.key != "label"}
    room -= sum(c.width + 2 for c in COLUMNS if c.key in chosen)
    for column in sorted((c for c in COLUMNS if c.priority > 0), key=lambda c: c.priority):
        if column.width + 2 <= room:
            chosen.add(column.key)
            room -= column.width + 2
    label = Column("label", "label", min(LABEL_MAX, LABEL_MIN + max(room, 0)), 0)
    return [label if c.key == "label" else c for c in COLUMNS if c.key in chosen or c.key == "label"]


def _n(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def mark_letter(position: int) -> str:
    """The compare screen's name for the n-th marked session: A (the baseline), B, C…"""
    return chr(ord("A") + position) if position < 26 else str(position + 1)


@dataclass(slots=True)
class Row:
    """One listed entry: a saved session or an unreadable folder."""

    key: str
    summary: SessionSummary | None = None
    broken: BrokenSession | None = None

    def values(self) -> dict[str, str]:
        """Every column's text (the mark column is filled by the screen)."""
        if self.broken is not None:
            return {"label": sanitize_line(self.broken.reason)[:60], "status": "unreadable"}
        assert self.summary is not None
        s2 = self.summary
        runs = (
            "—" if s2.runs_ok is None else f"{s2.runs_ok}" + (f"+{s2.runs_failed}✗" if s2.runs_failed else "")
        )
        return {
            "created": s2.created_at[5:16].replace("T", " "),  # MM-DD HH:MM
            "label": sanitize_line(s2.display_label or s2.label),
            "model": sanitize_line(s2.model),
            "profile": sanitize_line(s2.profile),
            "mode": s2.mode,
            "runs": runs,
            "tok_s": _n(s2.mean_tok_s),
            "ttft": _n(s2.mean_ttft_ms),
            "cv": _n(s2.cv_tok_s_pct),
            "status": s2.status,
        }

    def text(self) -> str:
        return " ".join(self.values().values()).lower() + " " + self.key.lower()


class SessionsScreen(Screen[None]):
    """Saved sessions: sort, filter, open, rename, delete, mark for comparison, export, import.
    Marked sessions are lettered as the comparison names them: A is the baseline."""

    BINDINGS = [
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("e", "export", "Export"),
        Binding("s", "sort", "Sort"),
        Binding("S", "reverse_sort", "Reverse sort", show=False),
        Binding("u", "clear_marks", "Clear marks", show=False),
        Binding("r", "rename", "Rename", show=False),
        Binding("d", "delete", "Delete", show=False),
        Binding("i", "import", "Import metrics.json", show=False),
        Binding("slash", "filter", "Filter", show=False),
        Binding("escape", "back", "Back"),
    ]
    HELP_NAME = "sessions browser"
    HELP_KEYS = (("enter", "open the session under the cursor"), ("click a header", "sort by that column"))

    app: ChimeraApp

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[Row] = []
        self.marked: list[str] = []
        self.sort_column = "created"
        self.sort_reverse = True
        self.columns: list[Column] = []

    @property
    def store(self) -> SessionStore:
        return SessionStore(self.app.config.sessions_root)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter: model, profile, label, status…  (/)", id="filter", compact=True)
        table: DataTable[str | Text] = DataTable(id="sessions-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="sessions-status")
        yield FittingFooter()

    def on_mount(self) -> None:
        root = self.store.root
        self.sub_title = f"saved sessions · {root if root.is_absolute() else f'./{root}'}"
        self.reload()
        self.query_one(DataTable).focus()

    def on_resize(self, event: events.Resize) -> None:
        if self.is_mounted and choose_columns(event.size.width) != self.columns:
            self.refresh_table()

    # -- data ---------------------------------------------------------------------------------------
    def reload(self) -> None:
        summaries, broken = self.store.summaries()
        rows = [Row(str(s.path), summary=s) for s in summaries]
        rows += [Row(str(b.path), broken=b) for b in broken]
        self.rows = rows
        self.marked = [k for k in self.marked if any(r.key == k for r in rows)]
        self.refresh_table()

    def visible_rows(self) -> list[Row]:
        needle = self.query_one("#filter", Input).value.strip().lower()
        rows = [r for r in self.rows if not needle or all(word in r.text() for word in needle.split())]
        column = self.sort_column

        def key(row: Row) -> tuple[int, float | str]:
            cell = row.values().get(column, "")
            try:
                return (0, float(cell.rstrip("✗").split("+")[0]))
            except ValueError:
                return (1, cell)

        return sorted(rows, key=key, reverse=self.sort_reverse)

    def _header(self, column: Column) -> str:
        if column.key != self.sort_column:
            return column.header
        return f"{column.header} {'▼' if self.sort_reverse else '▲'}"

    def refresh_table(self) -> None:
        """Rebuild the table: the columns that fit the width (the sort column marked ▲ / ▼), the rows."""
        table = self.query_one(DataTable)
        cursor_key = self.current_key()
        self.columns = choose_columns(self.size.width or self.app.size.width)
        table.clear(columns=True)
        for column in self.columns:
            table.add_column(self._header(column), width=column.width, key=column.key)
        for row in self.visible_rows():
            values = row.values()
            if row.key in self.marked:
                values["mark"] = mark_letter(self.marked.index(row.key))
            # plain Text cells: names and reasons come from files and servers, never markup
            table.add_row(
                *(Text(ellipsize(values.get(c.key, ""), c.width)) for c in self.columns), key=row.key
            )
        if cursor_key is not None and cursor_key in table.rows:
            table.move_cursor(row=table.get_row_index(cursor_key))
        broken = sum(1 for r in self.rows if r.broken)
        marks = f"{len(self.marked)} marked" + (" (A = baseline)" if self.marked else "")
        self.query_one("#sessions-status", Static).update(
            f"{table.row_count} of {len(self.rows)} · {marks}"
            + (f" · {broken} unreadable (reason as label)" if broken else "")
            + " · enter open · e export · s sort · ? keys"
        )

    def current_key(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:
            return None

    def row(self, key: str | None) -> Row | None:
        return next((r for r in self.rows if r.key == key), None)

    def load(self, row: Row) -> Session | None:
        if row.broken is not None:
            self.notify(sanitize_line(row.broken.reason), severity="error", title="Unreadable session")
            return None
        try:
            return load_session(Path(row.key))
        except ChimeraError as exc:
            self.notify(sanitize_line(str(exc)), severity="error", title="Cannot open session")
            return None

    # -- events / actions ---------------------------------------------------------------------------
    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self.refresh_table()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.query_one(DataTable).focus()

    @on(DataTable.HeaderSelected)
    def _sort(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key not in SORT_KEYS:
            return
        if key == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = key, False
        self.refresh_table()

    def action_sort(self) -> None:
        """Sort by the next visible column (numbers high to low first, text A to Z)."""
        shown = [k for k in SORT_KEYS if any(c.key == k for c in self.columns)]
        i = shown.index(self.sort_column) if self.sort_column in shown else -1
        self.sort_column = shown[(i + 1) % len(shown)]
        self.sort_reverse = self.sort_column in ("created", "runs", "tok_s", "ttft", "cv")
        self.refresh_table()
        self.notify(f"sorted by {self.sort_column.replace('_', '/')} (S reverses)", timeout=2)

    def action_reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self.refresh_table()

    def action_clear_marks(self) -> None:
        self.marked.clear()
        self.refresh_table()

    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        row = self.row(str(event.row_key.value))
        session = self.load(row) if row else None
        if session is not None:
            self.app.open_session(session)

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_back(self) -> None:
        self.dismiss()

    def action_mark(self) -> None:
        key = self.current_key()
        row = self.row(key)
        if key is None or row is None:
            return
        if row.broken is not None:
            self.notify("an unreadable session cannot be compared", severity="warning")
            return
        if key in self.marked:
            self.marked.remove(key)
        else:
            self.marked.append(key)
        self.refresh_table()
        table = self.query_one(DataTable)
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1)

    def _marked_sessions(self) -> list[Session]:
        sessions = []
        for key in self.marked:
            row = self.row(key)
            session = self.load(row) if row else None
            if session is not None:
                sessions.append(session)
        return sessions

    def action_compare(self) -> None:
        if len(self.marked) < 2:
            self.notify("mark two or more sessions with space first (the first marked is the baseline)")
            return
        sessions = self._marked_sessions()
        if len(sessions) >= 2 and all(s.manifest.kind == "capacity" for s in sessions):
            self.app.open_capacity(sessions)  # load curves on one chart
        elif len(sessions) >= 2:
            from chimera_tui.ui.screens.compare import CompareScreen

            self.app.push_screen(CompareScreen(sessions))

    def action_export(self) -> None:
        sessions = self._marked_sessions() if self.marked else []
        if not sessions:
            row = self.row(self.current_key())
            session = self.load(row) if row else None
            sessions = [session] if session else []
        if sessions:
            self.app.push_screen(ExportDialog(sessions, self.app.config.exports_dir), self._exported)

    def _exported(self, path: Path | None) -> None:
        if path is not None:
            self.notify(str(path), title="Exported", timeout=8)

    def action_rename(self) -> None:
        row = self.row(self.current_key())
        if row is None or row.summary is None:
            self.notify("only saved sessions can be renamed", severity="warning")
            return
        summary = row.summary

        def done(label: str | None) -> None:
            if label is None:
                return
            try:
                self.store.set_label(summary.path, label)
            except ChimeraError as exc:
                self.notify(str(exc), severity="error")
                return
            self.reload()

        self.app.push_screen(TextPrompt(f"Label for {summary.id}", summary.label), done)

    def action_delete(self) -> None:
        row = self.row(self.current_key())
        if row is None:
            return
        path = Path(row.key)

        def done(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.store.delete(path)
            except ChimeraError as exc:
                self.notify(str(exc), severity="error")
                return
            self.notify(f"deleted {path.name}")
            self.reload()

        self.app.push_screen(Confirm(f"Delete session {path.name} and all its runs?", "Delete"), done)

    def action_import(self) -> None:
        """Import a Chimeraforge metrics.json into the sessions folder (kept across restarts)."""

        def done(text: str | None) -> None:
            if not text:
                return
            try:
                saved, skipped = import_into(Path(text).expanduser(), self.store.root)
            except ChimeraError as exc:
                self.notify(sanitize_line(str(exc)), severity="error", title="Import failed")
                return
            note = f"; {len(skipped)} already there" if skipped else ""
            self.notify(f"imported {len(saved)} session(s) into {self.store.root}{note}", title="Import")
            self.reload()

        self.app.push_screen(
            TextPrompt("Chimeraforge metrics.json to import", placeholder="path/to/metrics.json"), done
        )
