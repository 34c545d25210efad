"""Server backends, one module per server kind: `ollama` (native API) and `openai` (OpenAI-compatible
servers: llama.cpp's llama-server, vLLM, LM Studio, Ollama's /v1). Both clients have the same shape,
so the runners drive either; `open_client` picks one, detecting the kind when asked to."""

from __future__ import annotations

from typing import Any, Literal, Protocol

import httpx

from chimera_tui.core.backends.ollama import (
    CallOutcome,
    LoadedModel,
    ModelInfo,
    OllamaClient,
    ServerInfo,
    Timeouts,
    TokenSink,
)

BackendKind = Literal["auto", "ollama", "openai"]
BACKEND_KINDS: tuple[str, ...] = ("auto", "ollama", "openai")


class BenchClient(Protocol):
    """What the runners need from a server client."""

    url: str
    timeouts: Timeouts
    backend: str
    server: str
    supports_unload: bool

    async def probe(self) -> ServerInfo: ...
    async def tags(self) -> list[ModelInfo]: ...
    async def ps(self) -> list[LoadedModel]: ...
    async def show(self, model: str) -> dict[str, Any]: ...
    async def load(self, api: str, model: str, options: dict[str, Any], keep_alive: str | int) -> None: ...
    async def is_loaded(self, model: str) -> bool: ...
    async def stream_call(
        self,
        api: str,
        body: dict[str, Any],
        on_tokens: TokenSink | None = None,
        outcome: CallOutcome | None = None,
    ) -> CallOutcome: ...
    async def aclose(self) -> None: ...


async def open_client(
    url: str,
    kind: str = "auto",
    timeouts: Timeouts | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    api_key_env: str | None = None,
) -> BenchClient:
    """A client for `url`: Ollama's native API or an OpenAI-compatible one; `auto` asks the server
    (GET /api/version, then /v1/models). Raises a ChimeraError when it answers as neither."""
    from chimera_tui.core.backends.openai import OpenAIClient, detect_kind
    from chimera_tui.core.errors import ChimeraError

    if kind == "auto":
        try:
            kind = await detect_kind(url, timeouts, transport)
        except ChimeraError:
            # nothing answered as either kind: the Ollama client's probe then says what is wrong,
            # in the words the rest of the tool uses (refused, DNS, TLS, not an Ollama server...)
            kind = "ollama"
    if kind == "openai":
        return OpenAIClient(url, timeouts, transport, api_key_env)
    return OllamaClient(url, timeouts, transport)
