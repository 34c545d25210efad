"""1. Stream pipeline capacity: tokens/s our reader decodes, stamps and turns into events.

Against the firehose (pre-rendered Ollama NDJSON as fast as the socket takes it, its own process),
in the same run and interleaved (the order rotates every round), three clients read the same answer:

- ours: `OllamaClient.stream_call`, exactly what the runner calls (its token sink keeps the events);
- (a) the floor of an httpx client: `aiter_lines()` + `json.loads`, nothing else;
- (b) the official `ollama` Python client's async streaming (`AsyncClient.generate(stream=True)`).

Each client's connection is open before its timed call. Capacity = tokens / CPU time of the call
(`time.thread_time()`, user + system: the client is one thread, the server another process), so that
time the machine's other tenants take does not count against whichever client they hit; the
wall-clock ratio is shown too. Reported: the median over rounds of each rate and of the per-round
ratios.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import httpx

from benchmarks.common import Result, check, firehose, info, median
from chimera_tui.core.backends.ollama import OllamaClient
from chimera_tui.core.backends.stream import TokenEvent

NAME = "pipeline"
MODEL = "firehose:latest"


def _body(tokens: int) -> dict[str, object]:
    return {"model": MODEL, "prompt": "hi", "options": {"num_predict": tokens}}


@dataclass(frozen=True, slots=True)
class Rate:
    per_cpu_s: float
    per_wall_s: float


class _Clock:
    """CPU and wall time of the timed call only (not the client's set-up or its probe)."""

    def __enter__(self) -> _Clock:
        self.cpu, self.wall = time.thread_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu, self.wall = time.thread_time() - self.cpu, time.perf_counter() - self.wall

    def rate(self, tokens: int) -> Rate:
        return Rate(tokens / self.cpu, tokens / self.wall)


async def ours(url: str, tokens: int) -> Rate:
    events: list[TokenEvent] = []
    async with OllamaClient(url) as client:
        await client.probe()
        with _Clock() as clock:
            outcome = await client.stream_call("generate", _body(tokens), events.extend)
    if outcome.error is not None or len(events) != tokens:
        raise RuntimeError(f"our reader: {outcome.error} ({len(events)} of {tokens} tokens)")
    return clock.rate(tokens)


async def httpx_floor(url: str, tokens: int) -> Rate:
    count = 0
    async with httpx.AsyncClient(base_url=url) as http:
        await http.get("/")
        with _Clock() as clock:
            async with http.stream("POST", "/api/generate", json={**_body(tokens), "stream": True}) as r:
                async for line in r.aiter_lines():
                    if line:
                        json.loads(line)
                        count += 1
    if count != tokens:
        raise RuntimeError(f"httpx floor: {count} of {tokens} lines")
    return clock.rate(tokens)


async def official(url: str, tokens: int) -> Rate:
    import ollama

    client = ollama.AsyncClient(host=url)
    await client.ps()  # opens the connection
    count = 0
    with _Clock() as clock:
        stream = await client.generate(model=MODEL, prompt="hi", stream=True, options={"num_predict": tokens})
        async for _part in stream:
            count += 1
    if count != tokens:
        raise RuntimeError(f"ollama client: {count} of {tokens} chunks")
    return clock.rate(tokens)


CLIENTS: dict[str, Callable[[str, int], Awaitable[Rate]]] = {
    "ours": ours,
    "httpx_floor": httpx_floor,
    "ollama_client": official,
}


def measure(url: str, tokens: int, rounds: int) -> dict[str, list[Rate]]:
    rates: dict[str, list[Rate]] = {name: [] for name in CLIENTS}
    names = list(CLIENTS)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            rates[name].append(anyio.run(CLIENTS[name], url, tokens))
    return rates


def _ratios(a: list[Rate], b: list[Rate], wall: bool = False) -> float:
    if wall:
        return median([x.per_wall_s / y.per_wall_s for x, y in zip(a, b, strict=True)])
    return median([x.per_cpu_s / y.per_cpu_s for x, y in zip(a, b, strict=True)])


def run(quick: bool = False) -> list[Result]:
    tokens, rounds = (20_000, 3) if quick else (100_000, 7)
    with firehose(tokens) as url:
        anyio.run(ours, url, min(tokens, 5_000))  # warm: imports, the server's rendered body
        rates = measure(url, tokens, rounds)
    ours_, floor, client = rates["ours"], rates["httpx_floor"], rates["ollama_client"]
    detail = f"{tokens:,} tokens per call, median of {rounds} interleaved rounds"
    return [
        info(NAME, "our reader (stream_call)", median([r.per_cpu_s for r in ours_]), "tok/CPU-s", detail),
        info(NAME, "(a) httpx aiter_lines + json.loads", median([r.per_cpu_s for r in floor]), "tok/CPU-s"),
        info(NAME, "(b) official ollama client", median([r.per_cpu_s for r in client]), "tok/CPU-s"),
        check(NAME, "ours / (a) httpx floor", _ratios(ours_, floor), "x", ">=", 0.85, "per CPU-second"),
        check(NAME, "ours / (b) ollama client", _ratios(ours_, client), "x", ">", 1.0, "per CPU-second"),
        info(NAME, "ours / (a), wall clock", _ratios(ours_, floor, wall=True), "x"),
        info(NAME, "ours / (b), wall clock", _ratios(ours_, client, wall=True), "x"),
    ]
