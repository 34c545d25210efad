"""Simulator settings: the models it pretends to have, its speeds, and the faults it injects."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Literal

#: how concurrent requests are served (`chimera-tui sim --sim-mode`, `bench --demo --sim-mode`):
#: fifo = one slot, requests wait their turn; shared-compute = N slots sharing one compute budget
#: (aggregate token rate constant, each stream slower); independent = N slots at full speed each
#: (like independent instances)
SIM_MODES = ("fifo", "shared-compute", "independent")
Compute = Literal["independent", "shared"]


@dataclass
class SimModel:
    """One model the simulator lists, shows, loads and generates with.

    `context_length` is both the trained context reported by /api/show and the context a load
    gets when the request sets no `num_ctx` (what /api/ps then shows).
    """

    name: str
    parameter_size: str = "4.0B"
    quantization: str = "Q4_K_M"
    family: str = "llama"
    size_bytes: int = 0
    digest: str = ""
    context_length: int = 4096
    thinking: bool = False
    vram_bytes: int = 0
    #: a cloud model's proxy target: responses then carry remote_model / remote_host (Ollama cloud)
    remote_host: str = ""

    def __post_init__(self) -> None:
        if ":" not in self.name:
            self.name = f"{self.name}:latest"
        if not self.digest:
            self.digest = hashlib.sha256(self.name.encode()).hexdigest()
        if self.size_bytes <= 0:
            self.size_bytes = int(self.parameter_count * 0.6)  # ~4.8 bits per weight (Q4_K_M)
        if self.vram_bytes <= 0:
            self.vram_bytes = int(self.size_bytes * 1.25)  # weights + KV cache + compute buffers

    @property
    def parameter_count(self) -> int:
        """`parameter_size` as a number: "4.3B" -> 4_300_000_000."""
        text = self.parameter_size.strip().upper()
        scale = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}.get(text[-1:], 1.0)
        number = text[:-1] if text[-1:] in "KMBT" else text
        try:
            return int(float(number) * scale)
        except ValueError:
            return 0


def default_models() -> list[SimModel]:
    """The three stock models: two plain ones and a thinking one."""
    return [
        SimModel("gemma3:latest", "4.3B", "Q4_K_M", "gemma3", size_bytes=3_338_801_804),
        SimModel("llama3.2:3b", "3.2B", "Q4_K_M", "llama", size_bytes=2_019_393_189),
        SimModel("qwen3:4b", "4.0B", "Q4_K_M", "qwen3", size_bytes=2_497_293_918, thinking=True),
    ]


@dataclass
class SimFaults:
    """Failures to inject into /api/generate and /api/chat. All off by default; may be changed live."""

    status_503: bool = False
    midstream_error_after: int | None = None
    cut_after: int | None = None
    fail_status: int | None = None
    fail_message: str = "simulated failure"


class ComputeBudget:
    """One compute budget: with k streams in it, each prefills and decodes at 1/k of the configured
    rates. May be shared by several simulators (dual instances on one GPU); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = 0

    def enter(self) -> None:
        with self._lock:
            self.active += 1

    def leave(self) -> None:
        with self._lock:
            self.active -= 1


@dataclass
class SimConfig:
    """Speeds, defaults and models. Read on every request, so tests may change fields live."""

    tokens_per_s: float = 120.0
    prompt_tokens_per_s: float = 2000.0
    load_s: float = 1.5
    jitter: float = 0.05
    num_parallel: int = 1
    #: requests that may wait for a busy slot; one more is answered 503 "server busy" (like
    #: OLLAMA_MAX_QUEUE); None: no limit
    max_queue: int | None = None
    version: str = "0.33.0"
    models: list[SimModel] = field(default_factory=default_models)
    default_num_predict: int = 128
    faults: SimFaults = field(default_factory=SimFaults)
    seed: int = 0
    record_emit_times: bool = False
    #: "shared": every stream draws on `budget` (aggregate throughput constant); "independent": each
    #: slot runs at tokens_per_s regardless of the others
    compute: Compute = "independent"
    budget: ComputeBudget = field(default_factory=ComputeBudget)
    #: "ollama" (the Ollama API) or "openai" (a llama.cpp llama-server look-alike: sim/openai_mode.py)
    api: str = "ollama"
    #: reuse the common prefix with the model's previous prompt (sim/prompt_cache.py)
    prompt_cache: bool = True
    #: the version that added `prompt_eval_cached_count` (Ollama PR #17943); an older `version`
    #: omits the field, as older Ollama does
    cached_count_since: str = "0.33.0"
    #: the model ends its answer (done_reason "stop") after this many tokens, even below num_predict
    eos_after: int | None = None
    #: share of the tokens a thinking model spends thinking (1.0: the budget goes to thinking)
    think_share: float = 0.2

    def find_model(self, name: str) -> SimModel | None:
        """The model called `name` (the tag defaults to `latest`), or None."""
        full = name if ":" in name else f"{name}:latest"
        return next((m for m in self.models if m.name == full), None)


def sim_mode_settings(mode: str, agents: int) -> dict[str, object]:
    """SimConfig fields for one server standing for `mode` with `agents` concurrent clients."""
    if mode == "fifo":
        return {"num_parallel": 1, "compute": "independent"}
    if mode == "shared-compute":
        return {"num_parallel": max(agents, 1), "compute": "shared"}
    if mode == "independent":
        return {"num_parallel": max(agents, 1), "compute": "independent"}
    raise ValueError(f"unknown simulator mode {mode!r} (one of {', '.join(SIM_MODES)})")
