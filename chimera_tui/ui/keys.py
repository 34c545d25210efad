"""The keys of a screen, read from its bindings: the `?` help, the command palette and the footer
all read them here, so what they show is what the code binds (one list, no hand-kept copies)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from textual.app import App
    from textual.dom import DOMNode
    from textual.screen import Screen

#: actions the footer keeps at any width (leaving, cancelling, help, quit)
ESSENTIAL_ACTIONS = frozenset({"back", "cancel", "close", "dismiss", "quit", "help", "start", "save"})
#: the global navigation keys (F2 / F3 / F4)
NAVIGATION_ACTIONS = frozenset({"sessions", "profiles", "sweeps"})
#: app-level keys that are not bindings of any node but belong in the help
EXTRA_GLOBAL_KEYS = (("^p", "command palette: every action of this screen, themes, screenshot"),)


@dataclass(frozen=True, slots=True)
class Key:
    """One bound action: the keys that reach it, what it does, and whether the footer shows it."""

    keys: tuple[str, ...]
    action: str
    description: str
    show: bool


def _display(app: App[Any], binding: Binding) -> str:
    return app.get_key_display(binding)


def own_bindings(node: DOMNode) -> list[Binding]:
    """The bindings this project declares on `node`'s classes (Textual's own, such as tab or copy,
    left out), subclass first."""
    found: list[Binding] = []
    for cls in type(node).__mro__:
        if cls.__module__.startswith("chimera_tui.") and "BINDINGS" in vars(cls):
            for item in vars(cls)["BINDINGS"]:
                found.extend(Binding.make_bindings([item]))
    return found


def node_keys(node: DOMNode, app: App[Any]) -> list[Key]:
    """The actions bound on `node` by this project, one entry per action, in binding order; the
    keys of one action are merged (`delete` / `x`)."""
    merged: dict[str, list[Binding]] = {}
    for binding in own_bindings(node):
        merged.setdefault(binding.action, []).append(binding)
    keys = []
    for action, bindings in merged.items():
        described = next((b for b in bindings if b.description), bindings[0])
        displays = tuple(dict.fromkeys(_display(app, b) for b in bindings))
        keys.append(Key(displays, action, described.description or action, any(b.show for b in bindings)))
    return keys


def screen_keys(screen: DOMNode, app: App[Any]) -> list[Key]:
    """The current screen's own actions (what `?` lists first and the palette offers)."""
    return node_keys(screen, app)


def global_keys(app: App[Any]) -> list[Key]:
    return node_keys(app, app) + [Key((k,), "", d, False) for k, d in EXTRA_GLOBAL_KEYS]


def palette_entries(screen: Screen[Any], app: App[Any]) -> Iterator[tuple[str, str, Any]]:
    """(name, help, callback) for every action of `screen`."""
    for key in screen_keys(screen, app):
        yield (
            key.description,
            f"{' / '.join(key.keys)} · this screen",
            partial(screen.run_action, key.action),  # the palette awaits it (call_later)
        )


class ScreenActions(Provider):
    """The command palette's entries for the screen it was opened on: every action its keys reach."""

    async def discover(self) -> Hits:
        for name, help_text, callback in palette_entries(self.screen, self.app):
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in palette_entries(self.screen, self.app):
            if (score := matcher.match(name)) > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
