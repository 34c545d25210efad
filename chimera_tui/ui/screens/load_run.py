"""The load-test screen: starts `chimera-tui load` as a subprocess and follows its master's snapshots.

Locust monkey-patches with gevent, so it never enters this process: the run is a subprocess (the
CLI, which starts the Locust master and workers), and the master sends its JSON-line snapshots to a
Unix socket this screen listens on. A thread reads the socket and hands each snapshot to the UI.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Header, Input, Label, Log, Static

from chimera_tui.load import INSTALL_HINT, locust_available
from chimera_tui.load.tally import load_summary, progress_line
from chimera_tui.safe_text import sanitize_line
from chimera_tui.ui.widgets.footer import FittingFooter

#: how long to wait for the master to connect to the snapshot socket
CONNECT_WAIT_S = 120.0


class LoadScreen(Screen[None]):
    """A form (users, duration, worker processes), then one progress line a second."""

    BINDINGS = [
        Binding("f5", "start", "Start"),
        Binding("ctrl+x", "cancel", "Stop run"),
        Binding("o", "open_session", "Open session"),
        Binding("escape", "back", "Back"),
    ]
    HELP_NAME = "load test"

    def __init__(self) -> None:
        super().__init__()
        self.proc: subprocess.Popen[bytes] | None = None
        self.session_path: Path | None = None
        self._tmp: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="load-form"):
            with Horizontal(classes="row"):
                for ident, label, value in (
                    ("load-users", "users", "32"),
                    ("load-duration", "duration s", "20"),
                    ("load-processes", "worker processes", "1"),
                ):
                    with Vertical(classes="field"):
                        yield Label(label)
                        yield Input(value, id=ident, type="integer")
                yield Button("Start (F5)", id="load-start", variant="primary")
            yield Static(self._target(), id="load-target")
        yield Static("not started", id="load-figures")
        yield Log(id="load-log", max_lines=2000)
        yield FittingFooter()

    def on_mount(self) -> None:
        self.sub_title = "load test"

    def _target(self) -> str:
        config = self.app.config  # type: ignore[attr-defined]
        where = "the built-in simulator processes" if config.demo else config.endpoints[0]
        return f"closed loop against {where}; saved as a session (F2 lists it)"

    # -- actions ------------------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "load-start":
            self.action_start()

    def action_start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.notify("a load run is already running", severity="warning")
            return
        if not locust_available():
            self.notify(INSTALL_HINT, severity="error")
            return
        try:
            users, duration, processes = (
                int(self.query_one(f"#load-{name}", Input).value)
                for name in ("users", "duration", "processes")
            )
        except ValueError:
            self.notify("users, duration and processes must be whole numbers", severity="error")
            return
        if min(users, duration, processes) < 1:
            self.notify("users, duration and processes must be at least 1", severity="error")
            return
        self._tmp = tempfile.mkdtemp(prefix="chimera-load-tui-")
        path = str(Path(self._tmp) / "snapshots.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        self.proc = subprocess.Popen(
            self._argv(users, duration, processes, path),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.session_path = None
        self.query_one("#load-figures", Static).update(f"starting {users} users, {processes} worker(s)…")
        self.run_worker(lambda: self._follow(listener), thread=True, exclusive=True)

    def _argv(self, users: int, duration: int, processes: int, sock: str) -> list[str]:
        config = self.app.config  # type: ignore[attr-defined]
        argv = [sys.executable, "-m", "chimera_tui", "--sessions-dir", str(config.sessions_root), "load"]
        argv += ["--users", str(users), "--duration", str(duration), "--processes", str(processes)]
        argv += ["--snapshot-socket", sock]
        argv += ["--demo"] if config.demo else ["--endpoint", config.endpoints[0]]
        return argv

    def action_cancel(self) -> None:
        """Ctrl-C for the run: calls in flight get 2 s, then are recorded incomplete."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.query_one("#load-log", Log).write_line("stopping: calls in flight get 2 s…")

    def action_open_session(self) -> None:
        if self.session_path is None:
            self.notify("no session yet", severity="warning")
            return
        from chimera_tui.core.store.sessions import load_session

        try:
            session = load_session(self.session_path)
        except Exception as exc:  # a broken folder: said, not raised
            self.notify(sanitize_line(str(exc)), severity="error")
            return
        self.app.open_session(session)  # type: ignore[attr-defined]

    def action_back(self) -> None:
        self.action_cancel()
        self.app.pop_screen()

    def on_unmount(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    # -- following the run (a thread) -------------------------------------------------------------------
    def _follow(self, listener: socket.socket) -> None:
        listener.settimeout(1.0)
        conn = None
        waited = 0.0
        with contextlib.closing(listener):
            while conn is None and waited < CONNECT_WAIT_S:
                if self.proc is None or self.proc.poll() is not None:
                    break
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    waited += 1.0
        if conn is None:
            code = self.proc.poll() if self.proc is not None else None
            self.app.call_from_thread(self._show, {"type": "failed", "code": code})
            return
        with contextlib.closing(conn), conn.makefile("rb") as lines:
            conn.settimeout(None)
            for raw in lines:
                with contextlib.suppress(ValueError, UnicodeDecodeError):
                    doc = json.loads(raw)
                    if isinstance(doc, dict):
                        self.app.call_from_thread(self._show, doc)

    def _show(self, doc: dict[str, Any]) -> None:
        log = self.query_one("#load-log", Log)
        kind = doc.get("type")
        if kind == "snapshot":
            line = progress_line(doc)
            self.query_one("#load-figures", Static).update(line)
            log.write_line(line)
        elif kind == "started":
            self.session_path = Path(str(doc.get("session")))
            log.write_line(f"session {self.session_path}")
        elif kind == "finished":
            self.session_path = Path(str(doc.get("session")))
            status = sanitize_line(str(doc.get("status")))
            for line in load_summary(doc.get("load") or {}).splitlines():
                log.write_line(sanitize_line(line))
            log.write_line(f"{status}: press o to open the session")
            self.query_one("#load-figures", Static).update(f"{status} — {self.session_path.name}")
        elif kind == "failed":
            message = f"the load run ended before it started (exit code {doc.get('code')}); see the log file"
            self.query_one("#load-figures", Static).update(message)
            self.notify(message, severity="error")
