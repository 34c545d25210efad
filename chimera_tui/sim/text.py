"""Deterministic text: prompt token counts, pseudo-word tokens, and the generate `context` list."""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from typing import Any

_WORDS = (
    "the model data token signal answer system light river stone quiet bright simple measure "
    "window garden engine number pattern result method value memory layer stream vector cloud "
    "north ocean paper metal orbit echo field prism rapid gentle hollow amber cedar delta ember "
    "falcon granite harbor island jungle kernel lantern meadow nickel onyx pepper quartz raven "
    "saddle timber umbra velvet willow xenon yonder zephyr and of to in is that for with as on"
)
_VOCAB = tuple(_WORDS.split())


def count_tokens(text: str) -> int:
    """About 1.3 tokens per whitespace-separated word, at least 1."""
    return max(1, round(len(text.split()) * 1.3))


def count_chat_tokens(messages: list[Any]) -> int:
    """Message contents plus 4 template tokens per message."""
    words = " ".join(str(m.get("content") or "") for m in messages if isinstance(m, dict))
    return count_tokens(words) + 4 * len(messages)


def tokens(seed: int) -> Iterator[str]:
    """An endless stream of pseudo-word tokens; most start with a space, some are punctuation."""
    rng = random.Random(seed)
    capital = True
    first = True
    while True:
        roll = rng.random()
        if not first and roll < 0.08:
            capital = True
            yield "."
            continue
        if not first and roll < 0.14:
            yield ","
            continue
        word = rng.choice(_VOCAB)
        if capital:
            word, capital = word.capitalize(), False
        yield word if first else f" {word}"
        first = False


def context_ids(seed: int, count: int, limit: int = 32) -> list[int]:
    """A short, stable stand-in for the token ids /api/generate returns as `context`."""
    return [zlib.crc32(f"{seed}:{i}".encode()) % 150_000 for i in range(min(count, limit))]
