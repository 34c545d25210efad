"""Model output and server text are untrusted: strip terminal control sequences and invisible
format characters (bidi overrides, zero-width characters) before display or export."""

from __future__ import annotations

import re

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), other two-byte ESC sequences, and C1 controls.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC (incl. OSC 8 links, OSC 52 clipboard)
    r"|\x1b[P^_X][^\x1b]*(?:\x1b\\)?"  # DCS, PM, APC, SOS
    r"|\x1b[@-Z\\-_]?"  # other escapes
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
    r"|[\x80-\x9f]"  # C1 controls
)
_CONTROLS = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f"
    # invisible format characters that change how the text around them reads: bidi embeddings,
    # overrides and isolates (U+202E turns "exe.txt" into "txt.exe"), marks, zero-width space and
    # word joiners, the BOM, interlinear annotations and the tag block (hidden "ASCII smuggling").
    # ZWJ/ZWNJ (U+200C/U+200D) stay: emoji sequences and Persian script need them.
    "\u061c\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb"
    "\U000e0000-\U000e007f]"
)


#: secrets this process holds (endpoint passwords, API keys): never shown, stored or logged
_SECRETS: set[str] = set()
#: shorter values are not treated as secrets (redacting "a" would mangle every message)
MIN_SECRET_CHARS = 4
REDACTED = "***"


def register_secret(value: str | None) -> None:
    """Redact `value` from every message `sanitize` / `sanitize_line` / `redact` returns from now on."""
    if value and len(value) >= MIN_SECRET_CHARS:
        _SECRETS.add(value)


def redact(text: str) -> str:
    """`text` with every registered secret replaced by `***` (longest first)."""
    if not _SECRETS:
        return text
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def sanitize(text: str) -> str:
    """Remove escape sequences and control characters (bell, backspace, CR...), keep tabs and newlines;
    redact registered secrets."""
    return redact(_CONTROLS.sub("", _ESCAPES.sub("", text)))


def sanitize_line(text: str) -> str:
    """As `sanitize`, and newlines become spaces: for one-line messages."""
    return sanitize(text).replace("\n", " ").replace("\t", " ")


def ellipsize(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"
