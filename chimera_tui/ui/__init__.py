"""The Textual face of Chimera TUI. Everything here sits on top of `chimera_tui.core`."""
