"""A footer that fits: at any width it keeps the keys to leave, cancel, get help and quit, then the
navigation keys (F2 / F3 / F4), then the screen's own actions in order, and drops what does not fit
(every key stays listed in `?` and in the command palette)."""

from __future__ import annotations

from collections import defaultdict

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from chimera_tui.ui.keys import ESSENTIAL_ACTIONS, NAVIGATION_ACTIONS

#: at this width and above the footer uses Textual's roomy style
ROOMY_WIDTH = 120
#: the space the command-palette key takes at the right end (with its separator)
PALETTE_WIDTH = 12


def _rank(binding: Binding, index: int, screen_actions: set[str]) -> tuple[int, int]:
    """Lower keeps first: essential, the screen's first two actions, navigation, the rest, theme."""
    action = binding.action
    if action in ESSENTIAL_ACTIONS:
        return (0, index)
    if action in screen_actions and index < 2:
        return (1, index)
    if action in NAVIGATION_ACTIONS:
        return (2, index)
    if action == "toggle_theme":
        return (5, index)
    return (3 if action in screen_actions else 4, index)


class FittingFooter(Footer):
    """Footer whose keys are chosen by priority for the width it has."""

    def __init__(self) -> None:
        super().__init__(compact=True)
        #: the width the keys were last chosen for
        self._width = 0

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._width:
            self._width = event.size.width
            self.compact = self._width < ROOMY_WIDTH
            self.call_after_refresh(self.recompose)

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        width = self._width = self._width or self.app.size.width
        self.compact = width < ROOMY_WIDTH
        active = self.screen.active_bindings
        per_action: defaultdict[str, list[tuple[Binding, bool, str]]] = defaultdict(list)
        for _, binding, enabled, tooltip in active.values():
            if binding.show:
                per_action[binding.action].append((binding, enabled, tooltip))
        screen_actions = {b.action for bs in self.screen._bindings.key_to_bindings.values() for b in bs}
        entries = [group[0] for group in per_action.values()]
        pad = 1 if self.compact else 3
        cost = [len(self.app.get_key_display(b)) + len(b.description) + 1 + pad for b, _, _ in entries]
        order = sorted(range(len(entries)), key=lambda i: _rank(entries[i][0], i, screen_actions))
        room = width - 1
        chosen: set[int] = set()
        for i in order:
            if cost[i] <= room:
                chosen.add(i)
                room -= cost[i]
            elif _rank(entries[i][0], i, screen_actions)[0] > 0:
                break  # nothing of lower priority is shown in place of what did not fit
        palette = room >= PALETTE_WIDTH
        for i, (binding, enabled, tooltip) in enumerate(entries):
            if i in chosen:
                yield FooterKey(
                    binding.key,
                    self.app.get_key_display(binding),
                    binding.description,
                    binding.action,
                    disabled=not enabled,
                    tooltip=tooltip,
                    classes="-compact" if self.compact else "",  # styled so from the first frame
                ).data_bind(compact=Footer.compact)
        if palette and self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            try:
                _node, binding, enabled, tooltip = active[self.app.COMMAND_PALETTE_BINDING]
            except KeyError:
                return
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                classes="-command-palette",
                disabled=not enabled,
                tooltip=binding.tooltip or binding.description,
            )
