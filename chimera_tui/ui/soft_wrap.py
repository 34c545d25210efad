"""Incremental word wrap for streamed text: Log does not wrap, and re-wrapping the whole text per
flush would cost O(total) each time. This costs O(chunk) and keeps the column between calls."""

from __future__ import annotations

import re

_PIECES = re.compile(r"(\n| )")


def soft_wrap(text: str, column: int, width: int) -> tuple[str, int]:
    """Insert line breaks into `text` (continuing at `column`) so no line exceeds `width`.

    Returns the text to write and the column after it. Breaks fall between words when possible;
    a word longer than the width is split.
    """
    if width < 4:
        return text, column
    out: list[str] = []
    for part in _PIECES.split(text):
        if not part:
            continue
        if part == "\n":
            out.append("\n")
            column = 0
        elif part == " ":
            if column >= width:
                out.append("\n")
                column = 0
            else:
                out.append(" ")
                column += 1
        else:
            if column and column + len(part) > width:
                out.append("\n")
                column = 0
            while len(part) > width:
                out.append(part[:width] + "\n")
                part = part[width:]
            out.append(part)
            column += len(part)
    return "".join(out), column
