"""What humans read for a session: its label, else a short `model · profile · mode` name.

Reports, charts, comparisons and the CLI head sessions with `display_label`; the session id goes in
a legend beside it (ids are 50+ characters: they identify, they do not read).
"""

from __future__ import annotations

from collections.abc import Sequence

from chimera_tui.core.store.manifest import Manifest

#: the longest model name a default label keeps (a registry path keeps its last part)
MODEL_CHARS = 24
#: what `sessions rename` and the TUI keep of a label
MAX_LABEL_CHARS = 80


def short_model(name: str | None) -> str:
    """`hf.co/org/Model-GGUF:Q4_K_M` → `Model-GGUF:Q4_K_M`, cut to MODEL_CHARS; "?" when unknown."""
    text = (name or "").strip().rsplit("/", 1)[-1] or "?"
    return text if len(text) <= MODEL_CHARS else text[: MODEL_CHARS - 1] + "…"


def default_label(manifest: Manifest) -> str:
    """`model · profile · mode` (mode left out when single), e.g. `gemma3:latest · tier2_balanced`."""
    parts = [short_model(manifest.model_name), manifest.profile_name or "?"]
    mode = manifest.mode or "single"
    if mode != "single":
        parts.append(mode)
    return " · ".join(parts)


def clean_label(text: str) -> str | None:
    """A label as stored: one line, spaces collapsed, at most MAX_LABEL_CHARS; None when empty."""
    clean = " ".join(text.split())[:MAX_LABEL_CHARS]
    return clean or None


def display_label(manifest: Manifest) -> str:
    """The manifest's label, else its default label."""
    return (manifest.label or "").strip() or default_label(manifest)


def distinct_labels(manifests: Sequence[Manifest]) -> list[str]:
    """One display label per session; repeats get " #2", " #3"… so a legend tells them apart."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for m in manifests:
        base = display_label(m)
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base} #{seen[base]}")
    return out
