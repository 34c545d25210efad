"""Build hook: pack the top-level ``profiles/`` and ``sweeps/`` folders (the source of truth) into the
wheel as ``chimera_tui/_bundled/``, where ``chimera_tui.core.store.bundled`` finds them."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BUNDLED = ("profiles", "sweeps")


class BuildPyWithBundledData(build_py):
    def run(self) -> None:
        super().run()
        here = Path(__file__).resolve().parent
        for name in BUNDLED:
            target = Path(self.build_lib) / "chimera_tui" / "_bundled" / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(here / name, target, ignore=shutil.ignore_patterns("*.pyc", "__pycache__"))


setup(cmdclass={"build_py": BuildPyWithBundledData})
