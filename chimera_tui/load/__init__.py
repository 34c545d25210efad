"""`chimera-tui load`: load runs on Locust, saved as normal Chimera sessions.

Locust monkey-patches the standard library with gevent when it is imported, so it lives only in
the processes this package starts: `master.py` (collects the records, writes the session) and
`worker.py` (the users, each sending exactly the request a `bench` run sends). `plan.py`, `call.py`
and `tally.py` are plain Python and never import Locust; the CLI (`cli/load.py`) imports only
`plan.py` and starts the others as subprocesses. Import-linter keeps core, ui and cli free of
Locust and gevent.
"""

from __future__ import annotations

import importlib.util

INSTALL_HINT = "chimera-tui load needs Locust: pip install 'chimera-tui[load]'"


def locust_available() -> bool:
    """Whether Locust can be imported (without importing it: that would monkey-patch this process)."""
    return importlib.util.find_spec("locust") is not None
