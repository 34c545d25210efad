"""The keys every live screen shares: cancel the run, go back (cancelling first), view the session."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static


class RunControls:
    """Mixed into a live Screen that has `runner`, `running`, `session` and `_leave_when_done`."""

    runner: Any
    running: bool
    session: Any
    _leave_when_done: bool

    def action_cancel(self) -> None:
        screen: Any = self
        if self.running and self.runner is not None:
            self.runner.cancel()
            screen.query_one("#phase", Static).update("cancelling…")
        else:
            screen.notify("nothing is running")

    def action_back(self) -> None:
        screen: Any = self
        if self.running and self.runner is not None:
            self._leave_when_done = True
            self.runner.cancel()
            screen.notify("cancelling the run in progress; the session is saved before leaving")
            return
        screen.dismiss()

    def action_view_session(self) -> None:
        screen: Any = self
        if self.session is None:
            screen.notify("the session opens here once it has finished")
            return
        screen.app.open_session(self.session)
