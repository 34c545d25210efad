"""/api/generate and /api/chat: request checks, load/unload, paced token emission, final metrics."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio

from chimera_tui.sim import prompt_cache, text
from chimera_tui.sim.asgi_io import NDJSONStream, Send, send_error, send_json
from chimera_tui.sim.config import SimModel
from chimera_tui.sim.protocol import (
    RequestError,
    check_options,
    go_json_error,
    load_options,
    parse_keep_alive,
    rfc3339,
)

if TYPE_CHECKING:
    from chimera_tui.sim.simulator import OllamaSimulator

Kind = Literal["generate", "chat"]
BUSY = "server busy, please try again.  maximum pending requests exceeded"
RUNNER_ERROR = "an error was encountered while running the model"
_THINK_LEVELS = ("low", "medium", "high", "max")


@dataclass
class Completion:
    """A checked generate/chat request."""

    kind: Kind
    name: str  # as the client spelled it; echoed in every chunk
    model: SimModel
    stream: bool
    keep_alive: object
    options: Any  # unchecked: options are checked after a possible unload, like Ollama
    think: bool
    empty: bool  # empty prompt / no messages: load (or unload) only
    prompt_tokens: int
    raw: bool
    body: dict[str, Any]
    #: the prompt as the prompt cache sees it (sim/prompt_cache.py)
    pieces: list[str] = field(default_factory=list)


def parse_request(kind: Kind, body: bytes, sim: OllamaSimulator) -> Completion:
    """Decode and check a request in Ollama's order: 400 body, 404 model, 400 think, 500 options."""
    if not body.strip():
        raise RequestError(400, "missing request body")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise RequestError(400, go_json_error(exc)) from None
    if not isinstance(data, dict):
        raise RequestError(400, "json: cannot unmarshal into Go value of type api.Request")
    keep_alive = parse_keep_alive(data.get("keep_alive"))
    think_raw = data.get("think")
    if think_raw is not None and not isinstance(think_raw, bool) and think_raw not in _THINK_LEVELS:
        raise RequestError(
            400,
            f'invalid think value: {json.dumps(think_raw)} (must be "high", "medium", "low", true, or false)',
        )
    name = data.get("model")
    if not isinstance(name, str) or not name:
        raise RequestError(400, "model is required")
    model = sim.config.find_model(name)
    if model is None:
        raise RequestError(404, f"model '{name}' not found")
    if kind == "generate":
        prompt = data.get("prompt") or ""
        if not isinstance(prompt, str):
            raise RequestError(
                400, "json: cannot unmarshal into Go struct field GenerateRequest.prompt of type string"
            )
        empty = prompt == ""
        system = data.get("system") or ""
        prompt_tokens = text.count_tokens(f"{system} {prompt}")
        pieces = prompt_cache.generate_pieces(str(system), prompt, bool(data.get("raw")))
    else:
        messages = data.get("messages") or []
        if not isinstance(messages, list):
            raise RequestError(
                400, "json: cannot unmarshal into Go struct field ChatRequest.messages of type []api.Message"
            )
        empty = not messages
        prompt_tokens = text.count_chat_tokens(messages)
        pieces = prompt_cache.chat_pieces(messages)
    if think_raw not in (None, False) and not model.thinking and not (empty and keep_alive == 0):
        raise RequestError(400, f'"{name}" does not support thinking')
    return Completion(
        kind=kind,
        name=name,
        model=model,
        stream=data.get("stream") is not False,
        keep_alive=keep_alive,
        options=data.get("options"),
        think=model.thinking and think_raw is not False,
        empty=empty,
        prompt_tokens=prompt_tokens,
        raw=bool(data.get("raw")),
        body=data,
        pieces=pieces,
    )


def _chunk(req: Completion, content: str, thinking: str, done: bool) -> dict[str, Any]:
    """The common head of every line: model, created_at, the text, done."""
    out: dict[str, Any] = {"model": req.name, "created_at": rfc3339()}
    if req.kind == "generate":
        out["response"] = content
        if thinking:
            out["thinking"] = thinking
    else:
        message = {"role": "assistant", "content": content}
        if thinking:
            message["thinking"] = thinking
        out["message"] = message
    out["done"] = done
    return out


def _final(
    req: Completion, content: str, thinking: str, reason: str, metrics: dict[str, int], seed: int
) -> dict:
    out = _chunk(req, content, thinking, True)
    out["done_reason"] = reason
    if req.kind == "generate" and not req.raw and reason not in ("load", "unload"):
        out["context"] = text.context_ids(
            seed, metrics.get("prompt_eval_count", 0) + metrics.get("eval_count", 0)
        )
    out.update({k: v for k, v in metrics.items() if v})  # omitempty
    return out


class _Sink(Protocol):
    async def send(self, chunk: dict[str, Any]) -> None: ...
    async def fail(self, message: str) -> None: ...
    async def cut(self) -> None: ...


class _StreamSink:
    """Streaming: one NDJSON line per chunk."""

    def __init__(self, send: Send) -> None:
        self._out = NDJSONStream(send)

    async def send(self, chunk: dict[str, Any]) -> None:
        await self._out.line(chunk)
        if chunk["done"]:
            await self._out.close()

    async def fail(self, message: str) -> None:
        await self._out.error(message)

    async def cut(self) -> None:
        await self._out.close()


class _WholeSink:
    """stream:false: collect the text, reply once with the final chunk's metrics."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._content: list[str] = []
        self._thinking: list[str] = []

    async def send(self, chunk: dict[str, Any]) -> None:
        part = chunk.get("message", chunk)
        self._content.append(part.get("content", part.get("response", "")))
        self._thinking.append(part.get("thinking", ""))
        if not chunk["done"]:
            return
        whole = dict(chunk)
        content, thinking = "".join(self._content), "".join(self._thinking)
        if "message" in whole:
            whole["message"] = {"role": "assistant", "content": content}
            if thinking:
                whole["message"]["thinking"] = thinking
        else:
            whole["response"] = content
            whole.pop("thinking", None)
            if thinking:
                whole["thinking"] = thinking
        await send_json(self._send, 200, _reorder(whole))

    async def fail(self, message: str) -> None:
        await send_error(self._send, 500, message)

    async def cut(self) -> None:
        await send_error(self._send, 500, RUNNER_ERROR)


_ORDER = ("model", "created_at", "response", "thinking", "message", "done", "done_reason")


def _reorder(obj: dict[str, Any]) -> dict[str, Any]:
    """Go's field order: head fields first, then the rest as they were."""
    head = {k: obj[k] for k in _ORDER if k in obj}
    return {**head, **{k: v for k, v in obj.items() if k not in head}}


async def _sleep_until(deadline_ns: int) -> None:
    """Absolute-deadline sleep; a token already due is written without sleeping."""
    delay = deadline_ns - time.perf_counter_ns()
    if delay > 0:
        await anyio.sleep(delay / 1e9)


async def handle(
    kind: Kind, body: bytes, t0: int, number: int, send: Send, sim: OllamaSimulator, sink: _Sink | None = None
) -> None:
    """Serve generate/chat request number `number`, whose handler started at perf_counter_ns() `t0`.

    `sink`: where the chunks go instead of Ollama's NDJSON (the OpenAI mode's SSE frames)."""
    faults = sim.config.faults
    if faults.status_503:
        await send_error(send, 503, BUSY)
        return
    if faults.fail_status is not None:
        await send_error(send, faults.fail_status, faults.fail_message)
        return
    try:
        req = parse_request(kind, body, sim)
        if req.empty and req.keep_alive == 0:
            sim.scheduler.unload(req.model)
            await send_json(send, 200, _final(req, "", "", "unload", {}, 0))
            return
        options = check_options(req.options)
    except RequestError as exc:
        await send_error(send, exc.status, exc.message)
        return
    sim.last_request = {"kind": kind, **req.body}
    runner = await sim.scheduler.acquire(req.model, load_options(options), req.keep_alive)
    load_ns = time.perf_counter_ns() - t0
    try:
        if req.empty:
            await send_json(send, 200, _final(req, "", "", "load", {}, 0))
            return
        if sink is None:
            sink = _StreamSink(send) if req.stream else _WholeSink(send)
        limit = sim.config.max_queue
        if limit is not None and runner.slots.value == 0 and runner.waiting >= limit:
            await send_error(send, 503, BUSY)  # the queue is full: refused at once, like Ollama
            return
        runner.waiting += 1
        try:
            await runner.slots.acquire()
        finally:
            runner.waiting -= 1
        async with _Held(runner.slots):  # waiting above is in total_duration, not load_duration
            cached = sim.prompt_caches.lookup(req.model.name, runner, req.pieces, req.prompt_tokens)
            cached = cached if sim.config.prompt_cache else 0
            shared = sim.config.compute == "shared"
            if shared:
                sim.config.budget.enter()
            try:
                await _produce(sim, req, options, (t0, load_ns, number), sink, cached)
            finally:
                if shared:
                    sim.config.budget.leave()
    finally:
        sim.scheduler.release(runner)


class _Held:
    """Releases a semaphore already acquired when the block ends."""

    def __init__(self, slots: anyio.Semaphore) -> None:
        self.slots = slots

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        self.slots.release()


def _extra_final(sim: OllamaSimulator, req: Completion, cached: int) -> dict[str, Any]:
    """Final-chunk fields beyond the six figures: the cached count (sent even when 0, by versions
    that have it) and a cloud model's remote_model / remote_host."""
    out: dict[str, Any] = {}
    if prompt_cache.reports_cached_count(sim.config.version, sim.config.cached_count_since):
        out["prompt_eval_cached_count"] = cached
    if req.model.remote_host:
        out["remote_model"] = req.model.name.rsplit(":", 1)[0]
        out["remote_host"] = req.model.remote_host
    return out


async def _produce(
    sim: OllamaSimulator,
    req: Completion,
    options: dict[str, Any],
    clock: tuple[int, int, int],
    sink: _Sink,
    cached: int = 0,
) -> None:
    """Prefill, then tokens on an absolute schedule; the last token rides in the done chunk."""
    cfg, faults = sim.config, sim.config.faults
    t0, load_ns, number = clock
    seed = options["seed"] if options.get("seed", -1) >= 0 else cfg.seed + number
    limit = options.get("num_predict", -1)
    count, reason = (limit, "length") if limit > 0 else (max(0, cfg.default_num_predict), "stop")
    if cfg.eos_after is not None and 0 < cfg.eos_after < count:
        count, reason = cfg.eos_after, "stop"  # end of text before the limit
    n_think = min(count, max(1, round(count * cfg.think_share))) if req.think and count >= 2 else 0
    thoughts, words, jitter = text.tokens(seed ^ 0x7A1C), text.tokens(seed), random.Random(seed ^ 0x5EED)
    gap_ns = 1e9 / cfg.tokens_per_s

    def share() -> int:
        """Streams sharing the compute budget right now (1 with independent slots)."""
        return max(cfg.budget.active, 1) if cfg.compute == "shared" else 1

    t_prefill = time.perf_counter_ns()
    deadline = t_prefill + (req.prompt_tokens - cached) / cfg.prompt_tokens_per_s * 1e9 * share()
    await _sleep_until(int(deadline))
    t_first = time.perf_counter_ns()
    for i in range(max(count, 1)):
        if i:
            deadline += gap_ns * share() * (1.0 + jitter.uniform(-cfg.jitter, cfg.jitter))
            await _sleep_until(int(deadline))
        if faults.midstream_error_after is not None and i >= faults.midstream_error_after:
            await sink.fail(RUNNER_ERROR)
            return
        if faults.cut_after is not None and i >= faults.cut_after:
            await sink.cut()
            return
        if not count:
            content, thinking = "", ""
        elif i < n_think:
            content, thinking = "", next(thoughts)
        else:
            content, thinking = next(words), ""
        now = time.perf_counter_ns()
        if i == 0:
            t_first = now
        if i < count - 1:
            chunk = _chunk(req, content, thinking, False)
        else:
            metrics = {
                "total_duration": now - t0,
                "load_duration": load_ns,
                "prompt_eval_count": req.prompt_tokens,
                "prompt_eval_duration": t_first - t_prefill,
                "eval_count": count,
                "eval_duration": now - t_first,
            }
            chunk = _final(req, content, thinking, reason, metrics, seed)
            chunk.update(_extra_final(sim, req, cached))
        if cfg.record_emit_times and count:
            sim.emit_times_ns.append(time.perf_counter_ns())
        await sink.send(chunk)
