"""The measurement engine. Never imports Textual: the TUI and the headless CLI both drive this code."""
