"""7 (cont.). The sessions browser lists 1,000 sessions in under 1 s.

Reuses benchmarks/bench_sessions_listing.py: 1,000 generated sessions (5 runs x 500 tokens each) in a
temporary folder; the listing (`SessionStore.summaries()`, what `chimera-tui sessions` and the browser
read) best of 3, and the TUI's sessions browser (headless Textual) from F2 until every row is shown.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import anyio

from benchmarks.bench_sessions_listing import make_sessions, tui_open_s
from benchmarks.common import Result, check, info
from chimera_tui.core.store.session_store import SessionStore

NAME = "sessions"


def run(quick: bool = False) -> list[Result]:
    count = 200 if quick else 1000
    with tempfile.TemporaryDirectory(prefix="chimera-bench-") as name:
        root = Path(name)
        make_sessions(root, count, 5, 500)
        store = SessionStore(root)
        listings = []
        for _ in range(3):
            start = time.perf_counter()
            listed, _broken = store.summaries()
            listings.append(time.perf_counter() - start)
        browser = anyio.run(tui_open_s, root, len(listed))
    return [
        info(NAME, f"listing {count:,} sessions (SessionStore.summaries)", min(listings), "s", "best of 3"),
        check(NAME, f"TUI sessions browser, F2 to {count:,} rows", browser, "s", "<", 1.0),
    ]
