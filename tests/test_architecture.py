"""Invariants of the layering, checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_core_never_imports_textual() -> None:
    mods = _modules_after(
        "import chimera_tui.core.runner, chimera_tui.core.sessions, chimera_tui.core.monitor, "
        "chimera_tui.core.profiles, chimera_tui.core.stats, chimera_tui.sim, chimera_tui.cli_output"
    )
    assert not any(m == "textual" or m.startswith("textual.") for m in mods)


def test_cli_help_path_stays_light() -> None:
    mods = _modules_after("import chimera_tui.cli")
    assert "textual" not in mods and "numpy" not in mods and "httpx" not in mods
