"""Which profile options an Ollama server will ignore, judged from its version before the run.

Ollama drops unknown and removed option keys with only a server-log warning (``api/types.go``
``FromMap``), so a profile that sets ``mirostat`` measures the default sampler while saying it did
not. The removed options and their versions live in core/store/profiles.py (OPTION_REMOVED_IN);
OpenAI-compatible servers have their own mapping (core/backends/openai.py ``map_options``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chimera_tui.core.store.profiles import OPTION_REMOVED_IN

__all__ = ["IgnoredOption", "ignored_ollama_options", "ignored_options_warning", "parse_version"]

_VERSION = re.compile(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str | None) -> tuple[int, int, int] | None:
    """``"0.12.3"`` / ``"v0.30.1-rc0"`` → ``(0, 12, 3)``; None when the text is not a version."""
    match = _VERSION.match(text or "")
    if match is None:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


@dataclass(frozen=True, slots=True)
class IgnoredOption:
    """One option the server ignores (``certain``) or may ignore (its version is unknown)."""

    name: str
    removed_in: str
    certain: bool

    def describe(self) -> str:
        verb = "ignored" if self.certain else "may be ignored"
        return f"{self.name} ({verb}: removed in Ollama {self.removed_in})"


def ignored_ollama_options(options: Mapping[str, Any], version: str | None) -> list[IgnoredOption]:
    """The options of ``options`` an Ollama server of ``version`` ignores, in the profile's order.

    A server older than the removal still applies the option; an unknown version may ignore it.
    """
    found = parse_version(version)
    ignored: list[IgnoredOption] = []
    for name in options:
        removed_in = OPTION_REMOVED_IN.get(name)
        if removed_in is None:
            continue
        removed = parse_version(removed_in)
        if found is None:
            ignored.append(IgnoredOption(name, removed_in, certain=False))
        elif removed is not None and found >= removed:
            ignored.append(IgnoredOption(name, removed_in, certain=True))
    return ignored


def ignored_options_warning(ignored: list[IgnoredOption], url: str) -> str | None:
    """One line for the console / live screen before the run, or None when nothing is ignored."""
    if not ignored:
        return None
    items = ", ".join(option.describe() for option in ignored)
    return f"warning: {url} does not apply profile option(s) {items}; the run measures without them"
