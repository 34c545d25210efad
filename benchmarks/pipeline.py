"""1. Stream pipeline capacity: tokens/s our reader decodes, stamps and turns into events.

Against the firehose (pre-rendered Ollama NDJSON as fast as the socket takes it, its own process),
in the same run and interleaved (the order rotates every round), three clients read the same answer:

- ours: `OllamaClient.stream_call`, exactly what the runner calls (its token sink keeps the events);
- (a) the floor of an httpx client: `aiter_lines()` + `json.loads`, nothing else;
- (b) the official `ollama` Python client's async streaming (`AsyncClient.generate(stream=True)`).

Each client's connection is open before its timed call. Rate = tokens / wall time of the call.
Reported: the median over rounds of each rate and of the per-round ratios.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable

import anyio
import httpx

from benchmarks.common import Result, check, firehose, info, median
from chimera_tui.core.backends.ollama import OllamaClient
from chimera_tui.core.stream import TokenEvent

NAME = "pipeline"
MODEL = "firehose:latest"


def _body(tokens: int) -> dict[str, object]:
    return {"model": MODEL, "prompt": "hi", "options": {"num_predict": tokens}}


async def ours(url: str, tokens: int) -> float:
    events: list[TokenEvent] = []
    async with OllamaClient(url) as client:
        await client.probe()
        start = time.perf_counter()
        outcome = await client.stream_call("generate", _body(tokens), events.extend)
        elapsed = time.perf_counter() - start
    if outcome.error is not None or len(events) != tokens:
        raise RuntimeError(f"our reader: {outcome.error} ({len(events)} of {tokens} tokens)")
    return tokens / elapsed


async def httpx_floor(url: str, tokens: int) -> float:
    count = 0
    async with httpx.AsyncClient(base_url=url) as http:
        await http.get("/")
        start = time.perf_counter()
        async with http.stream("POST", "/api/generate", json={**_body(tokens), "stream": True}) as r:
            async for line in r.aiter_lines():
                if line:
                    json.loads(line)
                    count += 1
        elapsed = time.perf_counter() - start
    if count != tokens:
        raise RuntimeError(f"httpx floor: {count} of {tokens} lines")
    return tokens / elapsed


async def official(url: str, tokens: int) -> float:
    import ollama

    client = ollama.AsyncClient(host=url)
    await client.ps()  # opens the connection
    count = 0
    start = time.perf_counter()
    stream = await client.generate(model=MODEL, prompt="hi", stream=True, options={"num_predict": tokens})
    async for _part in stream:
        count += 1
    elapsed = time.perf_counter() - start
    if count != tokens:
        raise RuntimeError(f"ollama client: {count} of {tokens} chunks")
    return tokens / elapsed


CLIENTS: dict[str, Callable[[str, int], Awaitable[float]]] = {
    "ours": ours,
    "httpx_floor": httpx_floor,
    "ollama_client": official,
}


def measure(url: str, tokens: int, rounds: int) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {name: [] for name in CLIENTS}
    names = list(CLIENTS)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            rates[name].append(anyio.run(CLIENTS[name], url, tokens))
    return rates


def run(quick: bool = False) -> list[Result]:
    tokens, rounds = (20_000, 3) if quick else (100_000, 7)
    with firehose(tokens) as url:
        anyio.run(ours, url, min(tokens, 5_000))  # warm: imports, the server's rendered body
        rates = measure(url, tokens, rounds)
    vs_floor = [o / f for o, f in zip(rates["ours"], rates["httpx_floor"], strict=True)]
    vs_official = [o / b for o, b in zip(rates["ours"], rates["ollama_client"], strict=True)]
    detail = f"{tokens:,} tokens per call, median of {rounds} interleaved rounds"
    return [
        info(NAME, "our reader (stream_call)", median(rates["ours"]), "tok/s", detail),
        info(NAME, "(a) httpx aiter_lines + json.loads", median(rates["httpx_floor"]), "tok/s"),
        info(NAME, "(b) official ollama client", median(rates["ollama_client"]), "tok/s"),
        check(NAME, "ours / (a) httpx floor", median(vs_floor), "x", ">=", 0.85),
        check(NAME, "ours / (b) ollama client", median(vs_official), "x", ">", 1.0),
    ]
