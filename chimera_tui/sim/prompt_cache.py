"""The simulator's prompt cache (issue 14): llama-server keeps the last prompt of a loaded model and
re-evaluates only what differs, and Ollama since PR #17943 reports how much was reused
(`prompt_eval_cached_count`; `prompt_eval_duration` then covers only the processed tokens).

A prompt is a list of pieces: the template's tokens (a BOS for generate, 4 per chat message, before
that message's words) and its words. The cached count is the common prefix of this prompt's pieces and
the previous prompt's on the same loaded runner (a reload empties it), in tokens (a word is 1.3 tokens,
as `text.count_tokens`), and always leaves at least one token to evaluate, as llama-server does. One
cache per model: with several parallel slots real servers keep one per slot, which this ignores.
"""

from __future__ import annotations

from typing import Any

#: what a template token looks like in the piece list (never equal to a word)
_TEMPLATE = "\x00tpl"


def generate_pieces(system: str, prompt: str, raw: bool) -> list[str]:
    """A generate prompt's pieces: a BOS/template token unless raw, then the words."""
    words = f"{system} {prompt}".split()
    return words if raw else [_TEMPLATE, *words]


def chat_pieces(messages: list[Any]) -> list[str]:
    """A chat prompt's pieces: 4 template tokens before each message's words."""
    out: list[str] = []
    for m in messages:
        if isinstance(m, dict):
            out += [_TEMPLATE] * 4 + str(m.get("content") or "").split()
    return out


def _tokens(pieces: list[str]) -> int:
    words = sum(1 for p in pieces if p != _TEMPLATE)
    return round(words * 1.3) + (len(pieces) - words)


class PromptCaches:
    """The last prompt per model, tied to the runner (load) that evaluated it."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[object, list[str]]] = {}

    def lookup(self, model: str, runner: object, pieces: list[str], prompt_tokens: int) -> int:
        """Cached tokens for this prompt (0 on a fresh load or a different start); remembers it."""
        previous = self._last.get(model)
        self._last[model] = (runner, pieces)
        if previous is None or previous[0] is not runner:
            return 0
        common = 0
        for a, b in zip(previous[1], pieces, strict=False):
            if a != b:
                break
            common += 1
        return max(0, min(_tokens(pieces[:common]), prompt_tokens - 1))

    def clear(self) -> None:
        self._last.clear()


def reports_cached_count(version: str, since: str) -> bool:
    """Whether an Ollama of `version` sends `prompt_eval_cached_count` (added in `since`)."""
    return _version(version) >= _version(since)


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.strip().lstrip("v").split("-")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)
