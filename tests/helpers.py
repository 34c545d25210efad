"""Test helpers: fast simulators and benchmark specs."""

from __future__ import annotations

from typing import Any

from chimera_tui.core.backends.ollama import Timeouts
from chimera_tui.core.run.single import BenchSpec
from chimera_tui.core.store.profiles import Profile
from chimera_tui.sim import OllamaSimulator, SimConfig, SimFaults

FAST = {"tokens_per_s": 2000.0, "prompt_tokens_per_s": 50_000.0, "load_s": 0.05, "jitter": 0.0}


def fast_sim(faults: SimFaults | None = None, **overrides: Any) -> OllamaSimulator:
    return OllamaSimulator(SimConfig(**{**FAST, **overrides}, faults=faults or SimFaults()))


def spec(**overrides: Any) -> BenchSpec:
    base: dict[str, Any] = {
        "model": "gemma3:latest",
        "profile": Profile("baseline_default", "", {}, None, True),
        "prompt": "Say hello.",
        "endpoint": "http://sim",
        "runs": 2,
        "warmup": 1,
        "num_predict": 20,
        "timeouts": Timeouts(connect_s=2, first_byte_s=10, idle_s=5),
        "ps_wait_s": 5.0,
    }
    base.update(overrides)
    return BenchSpec(**base)
