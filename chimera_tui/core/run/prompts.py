"""Prompt presets. `tr_report` is the research's 800-1000 word technical report task (TR109-TR111)."""

from __future__ import annotations

PRESETS: dict[str, str] = {
    "short": "Explain in two sentences what a GPU does during LLM inference.",
    "medium": (
        "Write a concise explanation (about 200 words) of how the KV cache speeds up autoregressive "
        "decoding in transformer language models, and what limits its size."
    ),
    "tr_report": (
        "You are a performance engineer. Write an 800-1000 word technical report on optimizing local "
        "LLM inference on a single consumer GPU. Structure it with: an executive summary; methodology "
        "(warm vs cold runs, repeated measurements, mean, standard deviation and coefficient of "
        "variation); the effect of GPU layer offload (num_gpu), context size (num_ctx) and sampling "
        "temperature on throughput and time to first token; a results discussion; and concrete "
        "recommendations for production deployment. Use Markdown headings and at least one table."
    ),
}

DEFAULT_PRESET = "short"


def resolve_prompt(preset: str | None, text: str | None) -> tuple[str, str]:
    """Return (label, prompt text): a custom text wins over a preset."""
    if text:
        return "custom", text
    name = preset or DEFAULT_PRESET
    if name not in PRESETS:
        raise KeyError(f"unknown prompt preset '{name}'; available: {', '.join(PRESETS)}")
    return name, PRESETS[name]
