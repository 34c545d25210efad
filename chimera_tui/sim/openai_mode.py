"""The simulator's OpenAI-compatible mode (issue 14): a llama.cpp `llama-server` look-alike.

`OllamaSimulator(SimConfig(api="openai"))` serves `/v1/models`, `/v1/chat/completions`,
`/v1/completions` (SSE), `/props` and `/health`; the `/api/*` routes are 404, as on llama-server. A
request is translated to the Ollama-style one the simulator already serves (same pacing, loads,
prompt cache, faults), and each Ollama chunk goes out as an SSE frame. The last frames carry the
`finish_reason`, llama.cpp's `timings` (`prompt_n` = processed prompt tokens, `cache_n` = cached ones,
`prompt_ms`, `predicted_n`, `predicted_ms`, `predicted_per_second` = (predicted_n − 1) / predicted_ms,
`prompt_per_second`; milliseconds) and, when asked with `stream_options.include_usage`, `usage` with
`prompt_tokens_details.cached_tokens`; then `data: [DONE]`.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from chimera_tui.sim import completion
from chimera_tui.sim.asgi_io import Receive, Scope, Send, cancel_on_disconnect, read_body, send_json
from chimera_tui.sim.protocol import dumps

if TYPE_CHECKING:
    from chimera_tui.sim.simulator import OllamaSimulator

SSE_TYPE = b"text/event-stream"
_ROUTES = {
    "/health": "GET",
    "/props": "GET",
    "/v1/models": "GET",
    "/v1/chat/completions": "POST",
    "/v1/completions": "POST",
}
_OPTION_NAMES = {"max_tokens": "num_predict", "n_predict": "num_predict", "temperature": "temperature"}
_OPTION_NAMES |= {"top_p": "top_p", "top_k": "top_k", "seed": "seed", "min_p": "min_p"}


def ollama_body(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI request → the Ollama-style body the simulator serves (streaming always)."""
    out: dict[str, Any] = {"model": body.get("model"), "stream": True}
    if kind == "chat":
        out["messages"] = body.get("messages") or []
    else:
        out["prompt"] = body.get("prompt") or ""
        out["raw"] = True  # /v1/completions takes the prompt as is: no template, no BOS piece
    options = {ours: body[theirs] for theirs, ours in _OPTION_NAMES.items() if theirs in body}
    if options:
        out["options"] = options
    return out


class SSESink:
    """The simulator's Ollama chunks as OpenAI SSE frames (the `_Sink` protocol of completion.py)."""

    def __init__(self, send: Send, kind: str, include_usage: bool) -> None:
        self._send = send
        self._kind = kind
        self._usage = include_usage
        self._started = False
        self._id = f"chatcmpl-sim{time.perf_counter_ns() % 10**9}"

    async def _frame(self, obj: Any) -> None:
        if not self._started:
            self._started = True
            headers = [(b"content-type", SSE_TYPE), (b"cache-control", b"no-cache")]
            await self._send({"type": "http.response.start", "status": 200, "headers": headers})
        data = obj.encode() if isinstance(obj, str) else dumps(obj)
        await self._send(
            {"type": "http.response.body", "body": b"data: " + data + b"\n\n", "more_body": True}
        )

    def _choice(self, content: str, thinking: str, finish: str | None) -> dict[str, Any]:
        if self._kind == "chat":
            delta: dict[str, Any] = {}
            if content:
                delta["content"] = content
            if thinking:
                delta["reasoning_content"] = thinking
            return {"index": 0, "delta": delta, "finish_reason": finish}
        return {"index": 0, "text": content, "finish_reason": finish}

    def _chunk(self, model: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        kind = "chat.completion.chunk" if self._kind == "chat" else "text_completion"
        return {
            "id": self._id,
            "object": kind,
            "created": int(time.time()),
            "model": model,
            "choices": choices,
        }

    async def send(self, chunk: dict[str, Any]) -> None:
        part = chunk.get("message", chunk)
        content = part.get("content", part.get("response", "")) or ""
        thinking = part.get("thinking", "") or ""
        model = str(chunk.get("model", ""))
        if content or thinking:
            await self._frame(self._chunk(model, [self._choice(content, thinking, None)]))
        if not chunk["done"]:
            return
        reason = "length" if chunk.get("done_reason") == "length" else "stop"
        final = self._chunk(model, [self._choice("", "", reason)])
        final["timings"] = timings(chunk)
        await self._frame(final)
        if self._usage:
            await self._frame({**self._chunk(model, []), "usage": usage(chunk)})
        await self._frame("[DONE]")
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})

    async def fail(self, message: str) -> None:
        if not self._started:
            await send_json(
                self._send, 500, {"error": {"code": 500, "message": message, "type": "server_error"}}
            )
            return
        await self._frame({"error": {"code": 500, "message": message, "type": "server_error"}})
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})

    async def cut(self) -> None:
        if not self._started:
            await self._send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", SSE_TYPE)]}
            )
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})


def timings(final: dict[str, Any]) -> dict[str, Any]:
    """llama.cpp's `timings` from the simulator's Ollama final chunk (ns → ms)."""
    count = int(final.get("prompt_eval_count", 0))
    cached = int(final.get("prompt_eval_cached_count", 0))
    prompt_ms = final.get("prompt_eval_duration", 0) / 1e6
    predicted_n = int(final.get("eval_count", 0))
    predicted_ms = final.get("eval_duration", 0) / 1e6
    out: dict[str, Any] = {
        "cache_n": cached,
        "prompt_n": count - cached,
        "prompt_ms": prompt_ms,
        "prompt_per_token_ms": prompt_ms / max(1, count - cached),
        "prompt_per_second": (count - cached) / prompt_ms * 1e3 if prompt_ms > 0 else 0.0,
        "predicted_n": predicted_n,
        "predicted_ms": predicted_ms,
        "predicted_per_token_ms": predicted_ms / max(1, predicted_n - 1),
    }
    if predicted_n >= 2 and predicted_ms > 0:
        out["predicted_per_second"] = (predicted_n - 1) / predicted_ms * 1e3
    return out


def usage(final: dict[str, Any]) -> dict[str, Any]:
    prompt, completion_tokens = int(final.get("prompt_eval_count", 0)), int(final.get("eval_count", 0))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": int(final.get("prompt_eval_cached_count", 0))},
    }


class OpenAISimApp:
    """ASGI3 callable: the llama-server look-alike over an OllamaSimulator's state."""

    def __init__(self, sim: OllamaSimulator) -> None:
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            from chimera_tui.sim.app import _lifespan

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
        if _ROUTES.get(path) != method:
            await send_json(
                send, 404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}}
            )
            return
        body = await read_body(receive) if method == "POST" else b""
        if path == "/health":
            await send_json(send, 200, {"status": "ok"})
        elif path == "/props":
            await send_json(send, 200, self.props())
        elif path == "/v1/models":
            await send_json(send, 200, self.models())
        else:
            await self._complete(
                "chat" if path == "/v1/chat/completions" else "generate", body, t0, number, send, receive
            )

    def props(self) -> dict[str, Any]:
        """llama.cpp `/props`: build_info (the version), slots, the context size and model path."""
        cfg = self.sim.config
        model = cfg.models[0]
        return {
            "default_generation_settings": {"n_ctx": model.context_length, "params": {"n_predict": -1}},
            "total_slots": max(1, cfg.num_parallel),
            "model_path": f"/models/{model.name.replace(':', '-')}.gguf",
            "chat_template": "{{ messages }}",
            "build_info": f"b{cfg.version}",
        }

    def models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": m.name, "object": "model", "owned_by": "llamacpp", "meta": {"size": m.size_bytes}}
                for m in self.sim.config.models
            ],
        }

    async def _complete(
        self, kind: str, body: bytes, t0: int, number: int, send: Send, receive: Receive
    ) -> None:
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            await send_json(
                send,
                400,
                {"error": {"code": 400, "message": "invalid JSON", "type": "invalid_request_error"}},
            )
            return
        options = data.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        translated = dumps(ollama_body(kind, data))
        sink = SSESink(send, kind, include_usage)
        ollama_kind: completion.Kind = "chat" if kind == "chat" else "generate"
        await cancel_on_disconnect(
            receive,
            lambda: completion.handle(ollama_kind, translated, t0, number, send, self.sim, sink=sink),
        )
