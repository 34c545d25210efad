"""Chimera TUI: live, interactive benchmarking of local LLM servers."""

__version__ = "0.1.0"
