"""The help screen (`?`): what each screen does and its keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# Chimera TUI — keys

| where | key | action |
|---|---|---|
| everywhere | `?` | this help |
| everywhere | `ctrl+p` | command palette (all actions, theme switch) |
| everywhere | `ctrl+t` | toggle light / dark theme |
| everywhere | `ctrl+q` | quit |
| everywhere | `F2` / `F3` / `F4` | sessions / profiles / sweeps |
| setup | `enter` on Start, or `F5` | start the benchmark |
| setup | `ctrl+r` | re-check the endpoint |
| setup | `F6` | capacity: a load curve with these choices (also in the palette) |
| capacity | `F5` / `c` / `v` / `escape` | run the levels / cancel / open the saved curve / back |
| setup | `tab` / `shift+tab` | move between fields |
| live | `c` | cancel the run in progress (recorded as cancelled) |
| live | `o` | show the saved session's folder |
| live | `escape` | back to setup (cancels first if running) |
| profiles | `n` / `c` / `e` | new / duplicate (built-ins are read-only) / edit a user profile |
| profiles | `delete` / `f` | delete a user profile (asks first) / diff against another profile |
| profile editor | `ctrl+s` / `escape` | save (only when every field is valid) / cancel |
| sweeps | `F5` / `r` / `o` | start / resume the selected sweep / open its results |
| sweep running | `c` / `v` | cancel (what was measured is kept: resume later) / results |
| sweep results | `s` / `e` | save the best configuration as a profile / export (md, csv, json, html) |
| load test (palette) | `F5` / `ctrl+x` / `o` | start / stop (2 s, then incomplete) / open the session |

**Numbers.** TTFT and the live tok/s are measured by the reader from arrival stamps, never by the UI.
After each call the server's own figures (eval rate, prompt-eval rate, load time) show beside them.
Definitions: `docs/metrics.md`.

**Saving.** Every finished run is written to `sessions/<id>/` before the next one starts.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Markdown(HELP)

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(result)
