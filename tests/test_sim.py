"""The Ollama simulator: wire shapes, pacing, load/keep_alive state, faults, and real clients against it."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
import ollama
import pytest

from chimera_tui.sim import OllamaSimulator, SimConfig, SimFaults, SimModel, start_background
from chimera_tui.sim.protocol import (
    RequestError,
    check_options,
    needs_reload,
    parse_go_duration,
    parse_keep_alive,
)

LOAD_S = 0.05
METRICS = (
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def fast(**overrides: Any) -> SimConfig:
    """A quick simulator config for tests."""
    base: dict[str, Any] = {"tokens_per_s": 2000.0, "load_s": LOAD_S, "default_num_predict": 12}
    return SimConfig(**{**base, **overrides})


@asynccontextmanager
async def client_for(sim: OllamaSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as client:
        yield client


async def stream_lines(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    async with client.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        return [json.loads(line) async for line in response.aiter_lines() if line]


def gen(model: str = "gemma3:latest", prompt: str = "why is the sky blue", **extra: Any) -> dict[str, Any]:
    return {"model": model, "prompt": prompt, **extra}


def chat(model: str = "gemma3:latest", content: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


# --- wire helpers -------------------------------------------------------------------------------


def test_go_durations_and_keep_alive() -> None:
    assert parse_go_duration("5m") == 300 * 10**9
    assert parse_go_duration("1h30m") == 5400 * 10**9
    assert parse_go_duration("1.5s") == 1_500_000_000
    assert parse_go_duration("0") == 0
    with pytest.raises(ValueError, match=r'time: missing unit in duration "300"'):
        parse_go_duration("300")
    with pytest.raises(ValueError, match="unknown unit"):
        parse_go_duration("5x")
    assert parse_keep_alive(30) == 30 * 10**9
    assert parse_keep_alive(-1) is None
    assert parse_keep_alive("-1m") is None
    assert parse_keep_alive("0") == 0
    with pytest.raises(RequestError) as info:
        parse_keep_alive("-1")
    assert info.value.status == 400
    with pytest.raises(RequestError):
        parse_keep_alive(True)


def test_options_check_and_reload_rule() -> None:
    assert check_options({"num_ctx": 2048.0, "bogus": "x", "stop": ["a"]}) == {"num_ctx": 2048, "stop": ["a"]}
    for bad, msg in (
        ({"num_ctx": "abc"}, "integer"),
        ({"use_mmap": 1}, "boolean"),
        ({"top_p": "x"}, "float"),
    ):
        with pytest.raises(RequestError, match=msg) as info:
            check_options(bad)
        assert info.value.status == 500
    base = {"num_ctx": None, "num_gpu": 20}
    assert not needs_reload(base, {"num_ctx": None, "num_gpu": -1})
    assert needs_reload(base, {"num_ctx": 4096, "num_gpu": 20})
    assert needs_reload({"num_ctx": None, "num_gpu": -1}, {"num_ctx": None, "num_gpu": 20})


def test_sim_model_defaults() -> None:
    model = SimModel("phi3", "3.8B")
    assert model.name == "phi3:latest"
    assert len(model.digest) == 64 and model.digest == SimModel("phi3:latest").digest
    assert model.parameter_count == 3_800_000_000
    assert model.vram_bytes > model.size_bytes > 0


# --- management endpoints ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_management_shapes() -> None:
    sim = OllamaSimulator(fast())
    async with client_for(sim) as client:
        root = await client.get("/")
        assert (root.status_code, root.text) == (200, "Ollama is running")
        head = await client.head("/")
        assert head.status_code == 200 and head.content == b""
        assert (await client.get("/api/version")).json() == {"version": "0.33.0"}

        tags = (await client.get("/api/tags")).json()["models"]
        assert [m["name"] for m in tags] == ["gemma3:latest", "llama3.2:3b", "qwen3:4b"]
        first = tags[0]
        assert set(first) == {"name", "model", "modified_at", "size", "digest", "details"}
        assert first["details"] == {
            "parent_model": "",
            "format": "gguf",
            "family": "gemma3",
            "families": ["gemma3"],
            "parameter_size": "4.3B",
            "quantization_level": "Q4_K_M",
        }
        datetime.fromisoformat(first["modified_at"])
        assert (await client.get("/api/ps")).json() == {"models": []}

        show = (await client.post("/api/show", json={"model": "qwen3:4b"})).json()
        assert show["capabilities"] == ["completion", "thinking"]
        assert show["model_info"]["general.architecture"] == "qwen3"
        assert show["model_info"]["qwen3.context_length"] == 4096
        assert isinstance(show["parameters"], str) and show["details"]["parameter_size"] == "4.0B"
        plain = (await client.post("/api/show", json={"model": "gemma3"})).json()
        assert plain["capabilities"] == ["completion"]

        missing = await client.post("/api/show", json={"model": "xyz"})
        assert missing.status_code == 404 and missing.json() == {"error": "model 'xyz' not found"}
        unknown = await client.get("/api/nope")
        assert (unknown.status_code, unknown.text) == (404, "404 page not found")
        assert (await client.get("/api/generate")).status_code == 405
    assert sim.requests_seen == 10


# --- generate / chat ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_streaming_shapes_and_metrics() -> None:
    sim = OllamaSimulator(fast())
    async with client_for(sim) as client:
        lines = await stream_lines(client, "/api/generate", gen())
    assert len(lines) == 12  # default_num_predict; the last token rides in the done line
    *middle, done = lines
    for line in middle:
        assert set(line) == {"model", "created_at", "response", "done"}
        assert line["done"] is False and line["response"]
        assert line["created_at"].endswith("Z") and len(line["created_at"]) == 24
    assert done["done"] is True and done["done_reason"] == "stop" and done["response"]
    assert all(isinstance(i, int) for i in done["context"])
    assert list(done)[:6] == ["model", "created_at", "response", "done", "done_reason", "context"]
    assert done["eval_count"] == 12 and done["prompt_eval_count"] == 6  # 5 words * 1.3
    assert done["load_duration"] >= LOAD_S * 1e9  # cold
    parts = done["load_duration"] + done["prompt_eval_duration"] + done["eval_duration"]
    assert done["total_duration"] >= parts
    assert done["eval_duration"] >= 11 / 2000 * 1e9 * 0.9
    assert done["prompt_eval_duration"] >= 6 / 2000 * 1e9 * 0.9

    async with client_for(sim) as client:
        warm = (await stream_lines(client, "/api/generate", gen(options={"num_predict": 3})))[-1]
    assert warm["done_reason"] == "length" and warm["eval_count"] == 3
    assert 0 < warm["load_duration"] < LOAD_S * 1e9 / 5


@pytest.mark.anyio
async def test_zero_metrics_are_omitted() -> None:
    sim = OllamaSimulator(fast())
    async with client_for(sim) as client:
        lines = await stream_lines(client, "/api/chat", chat(options={"num_predict": 1}))
    assert len(lines) == 1
    (done,) = lines
    assert done["eval_count"] == 1 and "eval_duration" not in done
    assert done["message"]["role"] == "assistant" and done["message"]["content"]
    assert "context" not in done  # generate only


@pytest.mark.anyio
async def test_in_process_transport_streams_on_the_schedule() -> None:
    """Every line arrives, in order, and no sooner than the schedule allows. How close to the schedule
    (and to the emit times) they arrive depends on the machine: benchmarks/timestamps.py measures it."""
    sim = OllamaSimulator(fast(tokens_per_s=200.0, record_emit_times=True))
    arrivals: list[int] = []
    async with client_for(sim) as client:
        await client.post("/api/generate", json={"model": "gemma3"})  # preload
        t0 = time.perf_counter_ns()
        async with client.stream("POST", "/api/generate", json=gen(options={"num_predict": 30})) as response:
            async for _line in response.aiter_lines():
                arrivals.append(time.perf_counter_ns())
    assert len(arrivals) == 30 and arrivals == sorted(arrivals)
    emits = sim.emit_times_ns
    assert len(emits) == 30 and emits == sorted(emits) and emits[0] >= t0
    # 29 gaps of 5 ms +-5 % jitter, on deadlines that start after the request: a lower bound in any load
    assert emits[-1] - t0 >= 29 * 0.95 * 1e9 / 200
    assert all(a >= e for a, e in zip(arrivals, emits, strict=True))  # a line arrives after it was written


@pytest.mark.anyio
async def test_token_schedule_uses_absolute_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    """A controlled clock where every sleep wakes 2 ms late: token i is still emitted at its deadline
    (start + i gaps) plus that one lateness, not i latenesses (a relative sleep would drift 2 ms a gap)."""
    from types import SimpleNamespace

    from chimera_tui.sim import completion

    real_sleep = anyio.sleep
    clock = {"now": time.perf_counter_ns()}
    sleeps: list[int] = []

    async def late_sleep(seconds: float) -> None:
        sleeps.append(round(seconds * 1e9))
        clock["now"] += round(seconds * 1e9) + 2_000_000
        await real_sleep(0)

    monkeypatch.setattr(completion, "time", SimpleNamespace(perf_counter_ns=lambda: clock["now"]))
    monkeypatch.setattr(completion, "anyio", SimpleNamespace(sleep=late_sleep))
    sim = OllamaSimulator(fast(tokens_per_s=200.0, jitter=0.0, record_emit_times=True))
    async with client_for(sim) as client:
        lines = await stream_lines(client, "/api/generate", gen(options={"num_predict": 30}))
    assert len(lines) == 30
    gaps = [b - a for a, b in itertools.pairwise(sim.emit_times_ns)]
    assert len(gaps) == 29 and all(abs(g - 5_000_000) <= 2 for g in gaps), gaps
    # each sleep asks only for what is left until the deadline: 5 ms minus the previous 2 ms lateness
    assert all(abs(s - 3_000_000) <= 2 for s in sleeps[1:]), sleeps


@pytest.mark.anyio
async def test_non_streaming_matches_stream_text() -> None:
    sim = OllamaSimulator(fast())
    body = gen(options={"seed": 7, "num_predict": 10})
    async with client_for(sim) as client:
        streamed = await stream_lines(client, "/api/generate", body)
        whole = await client.post("/api/generate", json={**body, "stream": False})
        chat_whole = await client.post("/api/chat", json=chat(options={"seed": 7}, stream=False))
    assert whole.headers["content-type"].startswith("application/json")
    obj = whole.json()
    assert obj["response"] == "".join(line["response"] for line in streamed)
    assert obj["done"] is True and obj["done_reason"] == "length" and obj["eval_count"] == 10
    assert all(k in obj for k in METRICS)
    chat_obj = chat_whole.json()
    assert chat_obj["message"]["content"] and chat_obj["eval_count"] == 12


@pytest.mark.anyio
async def test_thinking_model() -> None:
    sim = OllamaSimulator(fast())
    async with client_for(sim) as client:
        lines = await stream_lines(client, "/api/generate", gen("qwen3:4b", options={"num_predict": 20}))
        thinking = [line for line in lines if line.get("thinking")]
        assert len(thinking) == 4 and lines[:4] == thinking  # first 20%
        assert all(line["response"] == "" for line in thinking)
        assert lines[-1]["eval_count"] == 20

        chats = await stream_lines(client, "/api/chat", chat("qwen3:4b", options={"num_predict": 10}))
        assert [bool(c["message"].get("thinking")) for c in chats[:3]] == [True, True, False]

        off = await stream_lines(client, "/api/chat", chat("qwen3:4b", think=False))
        assert not any(c["message"].get("thinking") for c in off)

        whole = (await client.post("/api/generate", json=gen("qwen3:4b", stream=False))).json()
        assert (
            whole["thinking"] and whole["response"] and list(whole)[2:5] == ["response", "thinking", "done"]
        )

        refused = await client.post("/api/chat", json=chat("gemma3", think=True))
        assert refused.status_code == 400 and "does not support thinking" in refused.json()["error"]


@pytest.mark.anyio
async def test_same_seed_same_text() -> None:
    sim = OllamaSimulator(fast())
    async with client_for(sim) as client:
        texts = [
            (await client.post("/api/generate", json=gen(stream=False, options={"seed": s}))).json()[
                "response"
            ]
            for s in (3, 3, 4)
        ]
    assert texts[0] == texts[1] != texts[2]


# --- load, reload, keep_alive ------------------------------------------------------------------


@pytest.mark.anyio
async def test_keep_alive_load_and_unload() -> None:
    sim = OllamaSimulator(fast())
    async with client_for(sim) as client:
        loaded = await client.post("/api/generate", json={"model": "gemma3", "keep_alive": -1})
        assert loaded.json()["done_reason"] == "load" and loaded.json()["response"] == ""
        (ps,) = (await client.get("/api/ps")).json()["models"]
        assert ps["name"] == "gemma3:latest" and ps["context_length"] == 4096
        assert ps["size"] == ps["size_vram"] > 0
        assert datetime.fromisoformat(ps["expires_at"]).year > datetime.now(UTC).year + 200

        chat_load = (await client.post("/api/chat", json={"model": "llama3.2:3b", "messages": []})).json()
        assert chat_load["done_reason"] == "load" and chat_load["message"] == {
            "role": "assistant",
            "content": "",
        }
        (ps2,) = [m for m in (await client.get("/api/ps")).json()["models"] if m["name"] == "llama3.2:3b"]
        expires = datetime.fromisoformat(ps2["expires_at"])
        assert 290 < (expires - datetime.now(UTC)).total_seconds() <= 300  # default 5m

        unload = (await client.post("/api/generate", json={"model": "gemma3", "keep_alive": 0})).json()
        assert unload["done_reason"] == "unload"
        assert sim.loaded_names() == ["llama3.2:3b"]

        await client.post("/api/chat", json={"model": "llama3.2:3b", "messages": [], "keep_alive": "0"})
        assert (await client.get("/api/ps")).json() == {"models": []}

        await client.post("/api/generate", json=gen(keep_alive=0.05, stream=False))
        assert sim.loaded_names() == ["gemma3:latest"]
        await anyio.sleep(0.08)
        assert sim.loaded_names() == []  # lazy expiry

        await client.post("/api/generate", json=gen(keep_alive=0, stream=False))
        assert sim.loaded_names() == []  # keep_alive 0 unloads right after the request

        bad = await client.post("/api/generate", json={"model": "gemma3", "keep_alive": "300"})
        assert bad.status_code == 400 and bad.json() == {"error": 'time: missing unit in duration "300"'}


@pytest.mark.anyio
async def test_reload_on_load_option_change() -> None:
    sim = OllamaSimulator(fast(load_s=0.1))

    async def load_ns(**options: Any) -> int:
        async with client_for(sim) as client:
            body = gen(stream=False, options={"num_predict": 1, **options})
            return int((await client.post("/api/generate", json=body)).json()["load_duration"])

    # a (re)load sleeps load_s: a lower bound in any load; no reload is told by the load count, not a time
    assert await load_ns(num_ctx=8192) >= 0.1e9 and sim.loads == 1
    await load_ns(num_ctx=8192, num_gpu=-1)
    assert sim.loads == 1  # same load-time options: no reload
    assert sim.loaded_models()[0].context_length == 8192
    assert await load_ns(num_ctx=2048) >= 0.1e9 and sim.loads == 2
    assert sim.loaded_models()[0].context_length == 2048
    assert await load_ns() >= 0.1e9  # omitting num_ctx falls back to the default: reload
    assert await load_ns(num_gpu=0) >= 0.1e9
    (loaded,) = sim.loaded_models()
    assert loaded.size_vram == 0 and loaded.options["num_gpu"] == 0
    assert sim.loads == 4


@pytest.mark.anyio
async def test_parallel_slots_wait_outside_load_duration() -> None:
    sim = OllamaSimulator(fast(tokens_per_s=500.0))
    body = gen(stream=False, options={"num_predict": 20})  # ~40 ms each

    async def run_pair(client: httpx.AsyncClient) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []

        async def one() -> None:
            results.append((await client.post("/api/generate", json=body)).json())

        async with anyio.create_task_group() as group:
            group.start_soon(one)
            group.start_soon(one)
        return sorted(results, key=lambda r: r["total_duration"])

    async with client_for(sim) as client:
        await client.post("/api/generate", json={"model": "gemma3"})
        first, second = await run_pair(client)
        assert sim.loads == 1  # the model stayed loaded: the second call's wait is not a load
        assert second["total_duration"] > 1.8 * first["total_duration"] * 0.9
        gap = second["total_duration"] - second["prompt_eval_duration"] - second["eval_duration"]
        assert gap - second["load_duration"] > 0.03e9  # the queue wait shows up as a gap

        sim.config.num_parallel = 2
        await client.post("/api/generate", json={"model": "gemma3", "keep_alive": 0})
        first, second = await run_pair(client)
        assert second["total_duration"] < 1.5 * first["total_duration"]


# --- errors and faults -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_request_errors() -> None:
    sim = OllamaSimulator(fast())
    async with client_for(sim) as client:
        for path in ("/api/generate", "/api/chat"):
            missing = await client.post(path, json={"model": "xyz", "prompt": "hi", "messages": []})
            assert missing.status_code == 404 and missing.json() == {"error": "model 'xyz' not found"}
            bad = await client.post(path, content=b"{nope")
            assert bad.status_code == 400 and "error" in bad.json()
            empty = await client.post(path, content=b"")
            assert empty.json() == {"error": "missing request body"}
        wrong = await client.post("/api/generate", json=gen(options={"num_ctx": "abc"}))
        assert wrong.status_code == 500 and wrong.json() == {
            "error": 'option "num_ctx" must be of type integer'
        }
    assert sim.loaded_models() == []


@pytest.mark.anyio
async def test_status_faults() -> None:
    faults = SimFaults(status_503=True)
    sim = OllamaSimulator(fast(faults=faults))
    async with client_for(sim) as client:
        busy = await client.post("/api/chat", json=chat())
        assert busy.status_code == 503
        assert busy.json() == {"error": "server busy, please try again.  maximum pending requests exceeded"}
        faults.status_503, faults.fail_status, faults.fail_message = False, 500, "boom"
        failed = await client.post("/api/generate", json=gen())
        assert (failed.status_code, failed.json()) == (500, {"error": "boom"})
        faults.fail_status = None
        assert (await client.post("/api/generate", json=gen())).status_code == 200


@pytest.mark.anyio
async def test_midstream_error_and_cut() -> None:
    faults = SimFaults(midstream_error_after=3)
    sim = OllamaSimulator(fast(faults=faults))
    async with client_for(sim) as client:
        lines = await stream_lines(client, "/api/generate", gen())
        assert [bool(line.get("response")) for line in lines[:3]] == [True, True, True]
        assert lines[3:] == [{"error": "an error was encountered while running the model"}]
        whole = await client.post("/api/generate", json=gen(stream=False))
        assert whole.status_code == 500 and "error" in whole.json()

        faults.midstream_error_after = 0  # before the first byte: a real HTTP 500
        early = await client.post("/api/generate", json=gen())
        assert early.status_code == 500

        faults.midstream_error_after, faults.cut_after = None, 4
        cut = await stream_lines(client, "/api/chat", chat())
        assert len(cut) == 4 and not any(line["done"] for line in cut)
        assert not any("error" in line for line in cut)
    assert sim.loaded_models()[0].in_flight == 0


@pytest.mark.anyio
async def test_closing_response_cancels_generation() -> None:
    sim = OllamaSimulator(fast(tokens_per_s=100.0, record_emit_times=True))
    async with client_for(sim) as client:
        async with client.stream("POST", "/api/generate", json=gen(options={"num_predict": 200})) as response:
            async for _line in response.aiter_lines():
                break
        emitted = len(sim.emit_times_ns)
        await anyio.sleep(0.05)
        assert len(sim.emit_times_ns) == emitted <= 2
        assert sim.loaded_models()[0].in_flight == 0


# --- real port and the official client ----------------------------------------------------------


def test_real_port_and_independent_instances() -> None:
    sim_a = OllamaSimulator(fast())
    sim_b = OllamaSimulator(fast(version="0.9.9"))
    with start_background(sim_a) as a, start_background(sim_b) as b:
        assert a.port != b.port and a.url == f"http://127.0.0.1:{a.port}"
        with httpx.Client(base_url=a.url) as http:
            assert http.get("/").text == "Ollama is running"
            assert http.get("/api/version").json() == {"version": "0.33.0"}
            with http.stream("POST", "/api/generate", json=gen()) as response:
                lines = [json.loads(line) for line in response.iter_lines() if line]
            assert lines[-1]["done"] and len(lines) == 12
            http.post("/api/generate", json=gen(stream=False, options={"num_predict": 1}))
        with httpx.Client(base_url=b.url) as http:
            assert http.get("/api/version").json() == {"version": "0.9.9"}
            assert http.get("/api/ps").json() == {"models": []}
        assert sim_a.loaded_names() == ["gemma3:latest"] and sim_b.requests_seen == 2
    with pytest.raises(httpx.ConnectError):
        httpx.get(a.url, timeout=1)


def test_official_ollama_client() -> None:
    sim = OllamaSimulator(fast())
    with start_background(sim) as running:
        client = ollama.Client(host=running.url, timeout=10)
        assert [m.model for m in client.list().models] == ["gemma3:latest", "llama3.2:3b", "qwen3:4b"]
        assert client.ps().models == []
        shown = client.show("qwen3:4b")
        assert "thinking" in (shown.capabilities or []) and shown.details.family == "qwen3"  # type: ignore[union-attr]

        reply = client.generate("gemma3", "why is the sky blue", options={"num_predict": 5, "num_ctx": 2048})
        assert reply.done and reply.done_reason == "length" and reply.eval_count == 5 and reply.response

        (ps,) = client.ps().models
        assert ps.context_length == 2048 and ps.expires_at is not None

        parts = list(client.generate("gemma3", "hi", stream=True, options={"num_ctx": 2048}))
        assert parts[-1].done and not any(p.done for p in parts[:-1]) and len(parts) == 12

        chunks = list(client.chat("qwen3:4b", [{"role": "user", "content": "hi"}], stream=True))
        assert chunks[0].message.thinking and chunks[-1].message.content and chunks[-1].eval_count == 12

        with pytest.raises(ollama.ResponseError) as missing:
            client.generate("xyz", "hi")
        assert missing.value.status_code == 404 and missing.value.error == "model 'xyz' not found"

        sim.config.faults.midstream_error_after = 2
        with pytest.raises(ollama.ResponseError) as midstream:
            list(client.generate("gemma3", "hi", stream=True))
        assert midstream.value.status_code == -1


@pytest.mark.anyio
async def test_official_async_client_in_process() -> None:
    sim = OllamaSimulator(fast())
    client = ollama.AsyncClient(host="http://sim", transport=sim.transport())
    assert len((await client.list()).models) == 3
    stream = await client.chat(
        "gemma3", [{"role": "user", "content": "x"}], stream=True, options={"num_predict": 3}
    )
    parts = [part async for part in stream]
    assert [p.done for p in parts] == [False, False, True] and parts[-1].eval_count == 3


def test_busy_port_raises_oserror() -> None:
    with start_background(OllamaSimulator(fast())) as running, pytest.raises(OSError):
        start_background(OllamaSimulator(fast()), port=running.port)
