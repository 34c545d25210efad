"""OllamaSimulator: the state, the ASGI app over it, and an in-process transport to reach it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from chimera_tui.sim.app import SimApp
from chimera_tui.sim.config import SimConfig
from chimera_tui.sim.prompt_cache import PromptCaches
from chimera_tui.sim.state import LoadedModel, Scheduler
from chimera_tui.sim.transport import SimTransport


class OllamaSimulator:
    """A fake Ollama server. Serve `.asgi` with uvicorn, or reach it in process via `.transport()`.

    Counters for tests: `requests_seen` (all HTTP requests), `paths_seen` ((method, path) list),
    `loads` (model loads and reloads), `last_request` (the last generate/chat JSON body plus "kind"),
    and, with `config.record_emit_times`, `emit_times_ns` (perf_counter_ns() just before each
    token's line is written).
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.scheduler = Scheduler(self.config)
        self.started_at = datetime.now(UTC)
        self.requests_seen = 0
        self.paths_seen: list[tuple[str, str]] = []
        self.last_request: dict[str, Any] | None = None
        self.emit_times_ns: list[int] = []
        self.prompt_caches = PromptCaches()
        self.asgi: Any = SimApp(self)
        if self.config.api == "openai":
            from chimera_tui.sim.openai_mode import OpenAISimApp

            self.asgi = OpenAISimApp(self)

    @property
    def loads(self) -> int:
        return self.scheduler.loads

    def transport(self) -> httpx.AsyncBaseTransport:
        """A streaming, socket-free transport for `httpx.AsyncClient(transport=..., base_url=...)`."""
        return SimTransport(self.asgi)

    def loaded_models(self) -> list[LoadedModel]:
        """The models loaded now (keep_alive expiry applied)."""
        return self.scheduler.snapshot()

    def loaded_names(self) -> list[str]:
        return [m.name for m in self.loaded_models()]
