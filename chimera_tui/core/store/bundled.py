"""Where the built-in data lives: profiles, sweeps and the workflow's sample data.

A wheel carries ``profiles/`` and ``sweeps/`` inside the package (``chimera_tui/_bundled/``, copied
there by ``setup.py``'s build step from the repository's top-level folders, which stay the source of
truth). A checkout (editable install, tests) reads the top-level folders directly. Both are found
through :mod:`importlib.resources`, so nothing depends on where the package was installed.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

BundledName = Literal["profiles", "sweeps"]


def package_root() -> Path:
    """The installed ``chimera_tui`` package folder."""
    return Path(str(resources.files("chimera_tui")))


def bundled_dir(name: BundledName) -> Path:
    """The folder of built-in ``name`` files: the wheel's packed copy, else the checkout's top level."""
    packed = package_root() / "_bundled" / name
    if packed.is_dir():
        return packed
    return package_root().parent / name


def sample_data_dir() -> Path:
    """The workflow's bundled sample data (package data in both layouts)."""
    return package_root() / "sample_data" / "agent_workflow"
