"""The hand-written ASGI3 app: routing and the management endpoints (/, version, tags, ps, show)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from chimera_tui.sim import completion
from chimera_tui.sim.asgi_io import (
    Receive,
    Scope,
    Send,
    cancel_on_disconnect,
    read_body,
    send_error,
    send_json,
    send_text,
)
from chimera_tui.sim.config import SimModel
from chimera_tui.sim.protocol import rfc3339
from chimera_tui.sim.state import expires_text

if TYPE_CHECKING:
    from chimera_tui.sim.simulator import OllamaSimulator

_ROUTES: dict[str, tuple[str, ...]] = {
    "/": ("GET", "HEAD"),
    "/api/version": ("GET", "HEAD"),
    "/api/tags": ("GET", "HEAD"),
    "/api/ps": ("GET",),
    "/api/show": ("POST",),
    "/api/generate": ("POST",),
    "/api/chat": ("POST",),
}


def details(model: SimModel) -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": model.family,
        "families": [model.family],
        "parameter_size": model.parameter_size,
        "quantization_level": model.quantization,
    }


class SimApp:
    """ASGI3 callable serving the Ollama API from an OllamaSimulator's state."""

    def __init__(self, sim: OllamaSimulator) -> None:
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        t0 = time.perf_counter_ns()
        sim = self.sim
        sim.requests_seen += 1
        number = sim.requests_seen
        method, path = scope["method"], scope["path"]
        sim.paths_seen.append((method, path))
        methods = _ROUTES.get(path)
        if methods is None:
            await send_text(send, 404, "404 page not found")
            return
        if method not in methods:
            await send_text(send, 405, "405 method not allowed")
            return
        head = method == "HEAD"
        body = await read_body(receive) if method == "POST" else b""
        if path == "/":
            await send_text(send, 200, "Ollama is running", head)
        elif path == "/api/version":
            await send_json(send, 200, {"version": sim.config.version}, head)
        elif path == "/api/tags":
            await send_json(send, 200, self._tags(), head)
        elif path == "/api/ps":
            await send_json(send, 200, self._ps())
        elif path == "/api/show":
            await self._show(body, send)
        else:
            kind: completion.Kind = "generate" if path == "/api/generate" else "chat"
            await cancel_on_disconnect(receive, lambda: completion.handle(kind, body, t0, number, send, sim))

    def _tags(self) -> dict[str, Any]:
        modified = rfc3339(self.sim.started_at)
        return {
            "models": [
                {
                    "name": m.name,
                    "model": m.name,
                    "modified_at": modified,
                    "size": m.size_bytes,
                    "digest": m.digest,
                    "details": details(m),
                }
                for m in self.sim.config.models
            ]
        }

    def _ps(self) -> dict[str, Any]:
        return {
            "models": [
                {
                    "name": lm.name,
                    "model": lm.name,
                    "size": lm.size,
                    "size_vram": lm.size_vram,
                    "digest": lm.model.digest,
                    "details": details(lm.model),
                    "expires_at": expires_text(lm.expires_at),
                    "context_length": lm.context_length,
                }
                for lm in self.sim.scheduler.snapshot()
            ]
        }

    async def _show(self, body: bytes, send: Send) -> None:
        try:
            data = json.loads(body) if body.strip() else None
        except json.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            await send_error(
                send, 400, "missing request body" if not body.strip() else "invalid request body"
            )
            return
        name = data.get("model") or data.get("name")
        if not isinstance(name, str) or not name:
            await send_error(send, 400, "model is required")
            return
        model = self.sim.config.find_model(name)
        if model is None:
            await send_error(send, 404, f"model '{name}' not found")
            return
        await send_json(send, 200, _show_body(model, rfc3339(self.sim.started_at)))


def _show_body(model: SimModel, modified: str) -> dict[str, Any]:
    arch = model.family
    params = 'temperature 0.8\ntop_k 40\ntop_p 0.9\nstop "<|end|>"'
    template = "{{ .System }}\n{{ .Prompt }}"
    capabilities = ["completion", "thinking"] if model.thinking else ["completion"]
    return {
        "license": "",
        "modelfile": f"# Modelfile generated by the Chimera simulator\nFROM {model.name}\n",
        "parameters": params,
        "template": template,
        "details": details(model),
        "model_info": {
            "general.architecture": arch,
            "general.parameter_count": model.parameter_count,
            "general.quantization_version": 2,
            f"{arch}.context_length": model.context_length,
            f"{arch}.block_count": 28,
            f"{arch}.embedding_length": 3072,
            "tokenizer.ggml.model": "gpt2",
            "tokenizer.ggml.tokens": None,
        },
        "capabilities": capabilities,
        "modified_at": modified,
    }


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
