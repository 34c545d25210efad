"""The sessions browser: sort, filter, open, rename, delete, mark for comparison, export, import.

The listing reads only each session's manifest (fast for thousands); a session's metrics are loaded
when it is opened, compared or exported. Unreadable folders are listed with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from chimera_tui.core.errors import ChimeraError
from chimera_tui.core.store.chimeraforge import import_chimeraforge_all
from chimera_tui.core.store.sessions import BrokenSession, Session, SessionStore, SessionSummary, load_session
from chimera_tui.safe_text import sanitize_line
from chimera_tui.ui.screens.dialogs import Confirm, ExportDialog, TextPrompt

if TYPE_CHECKING:
    from chimera_tui.ui.app import ChimeraApp

COLUMNS = ("✓", "created", "label", "model", "profile", "mode", "runs", "tok/s", "TTFT ms", "CV%", "status")


def _n(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


@dataclass(slots=True)
class Row:
    """One listed entry: a saved session, an imported (read-only) one, or an unreadable folder."""

    key: str
    summary: SessionSummary | None = None
    imported: Session | None = None
    broken: BrokenSession | None = None

    def cells(self, marked: bool) -> tuple[str, ...]:
        mark = "✓" if marked else ""
        if self.broken is not None:
            return (
                mark,
                "",
                sanitize_line(self.broken.reason)[:60],
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "unreadable",
            )
        if self.imported is not None:
            s = self.imported
            agg = s.aggregates
            tok, ttft = agg.get("server_decode_rate"), agg.get("ttft_ms")
            return (
                mark,
                "",
                sanitize_line(s.manifest.label if s.manifest.label is not None else s.id),
                sanitize_line(s.manifest.model_name or "?"),
                sanitize_line(s.manifest.profile_name or "?"),
                "import",
                str(s.counts["ok"]),
                _n(tok.mean if tok else None),
                _n(ttft.mean if ttft else None),
                _n(tok.cv_pct if tok else None),
                "imported",
            )
        assert self.summary is not None
        s2 = self.summary
        runs = (
            "—" if s2.runs_ok is None else f"{s2.runs_ok}" + (f"+{s2.runs_failed}✗" if s2.runs_failed else "")
        )
        return (
            mark,
            s2.created_at[:19].replace("T", " "),
            sanitize_line(s2.label),
            sanitize_line(s2.model),
            sanitize_line(s2.profile),
            s2.mode,
            runs,
            _n(s2.mean_tok_s),
            _n(s2.mean_ttft_ms),
            _n(s2.cv_tok_s_pct),
            s2.status,
        )

    def text(self) -> str:
        return " ".join(self.cells(False)).lower() + " " + self.key.lower()


class SessionsScreen(Screen[None]):
    BINDINGS = [
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare marked"),
        Binding("e", "export", "Export"),
        Binding("r", "rename", "Rename"),
        Binding("d", "delete", "Delete"),
        Binding("i", "import", "Import metrics.json"),
        Binding("slash", "filter", "Filter"),
        Binding("escape", "back", "Back"),
    ]

    app: ChimeraApp

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[Row] = []
        self.marked: list[str] = []
        self.sort_column = 1
        self.sort_reverse = True

    @property
    def store(self) -> SessionStore:
        return SessionStore(self.app.config.sessions_root)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter: model, profile, label, status…  (/)", id="filter")
        table: DataTable[str | Text] = DataTable(id="sessions-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="sessions-status")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"sessions in {self.store.root}"
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.reload()
        self.query_one(DataTable).focus()

    # -- data ---------------------------------------------------------------------------------------
    def reload(self) -> None:
        summaries, broken = self.store.summaries()
        rows = [Row(str(s.path), summary=s) for s in summaries]
        rows += [Row(f"import:{s.id}", imported=s) for s in self.app.imported_sessions]
        rows += [Row(str(b.path), broken=b) for b in broken]
        self.rows = rows
        self.marked = [k for k in self.marked if any(r.key == k for r in rows)]
        self.refresh_table()

    def visible_rows(self) -> list[Row]:
        needle = self.query_one("#filter", Input).value.strip().lower()
        rows = [r for r in self.rows if not needle or all(word in r.text() for word in needle.split())]
        column = self.sort_column

        def key(row: Row) -> tuple[int, float | str]:
            cell = row.cells(False)[column]
            try:
                return (0, float(cell.rstrip("✗").split("+")[0]))
            except ValueError:
                return (1, cell)

        return sorted(rows, key=key, reverse=self.sort_reverse)

    def refresh_table(self) -> None:
        table = self.query_one(DataTable)
        cursor_key = self.current_key()
        table.clear()
        for row in self.visible_rows():
            # plain Text cells: names and reasons come from files and servers, never markup
            table.add_row(*(Text(cell) for cell in row.cells(row.key in self.marked)), key=row.key)
        if cursor_key is not None and cursor_key in table.rows:
            table.move_cursor(row=table.get_row_index(cursor_key))
        broken = sum(1 for r in self.rows if r.broken)
        self.query_one("#sessions-status", Static).update(
            f"{table.row_count} shown of {len(self.rows)} · {len(self.marked)} marked"
            + (f" · {broken} unreadable (reason in the label column)" if broken else "")
            + " · space mark · c compare · enter open"
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
        if row.imported is not None:
            return row.imported
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
        if event.column_index == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = event.column_index, False
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
        if row is None or row.imported is not None:
            self.notify("imported sessions are read-only", severity="warning")
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
        def done(text: str | None) -> None:
            if not text:
                return
            try:
                sessions = import_chimeraforge_all(Path(text).expanduser())
            except ChimeraError as exc:
                self.notify(sanitize_line(str(exc)), severity="error", title="Import failed")
                return
            known = {s.id for s in self.app.imported_sessions}
            self.app.imported_sessions.extend(s for s in sessions if s.id not in known)
            self.notify(f"imported {len(sessions)} read-only session(s)")
            self.reload()

        self.app.push_screen(
            TextPrompt("Chimeraforge metrics.json to import", placeholder="path/to/metrics.json"), done
        )
