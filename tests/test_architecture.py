"""Invariants of the layering, checked in a fresh interpreter (import-linter checks the static graph)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import chimera_tui.core


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def _core_modules() -> list[str]:
    return [
        m.name for m in pkgutil.walk_packages(chimera_tui.core.__path__, "chimera_tui.core.") if not m.ispkg
    ]


def test_every_core_module_is_checked() -> None:
    assert len(_core_modules()) >= 30


def test_core_never_imports_textual_ui_or_cli() -> None:
    imports = "\n".join(f"import {name}" for name in _core_modules())
    mods = _modules_after(imports + "\nimport chimera_tui.sim, chimera_tui.cli.output")
    bad = sorted(m for m in mods if m.split(".")[0] == "textual" or m.startswith("chimera_tui.ui"))
    assert bad == []


def test_cli_help_path_stays_light() -> None:
    mods = _modules_after("import chimera_tui.cli")
    assert "textual" not in mods and "numpy" not in mods and "httpx" not in mods
