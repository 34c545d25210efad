"""OpenAIClient against a real llama-server (llama.cpp, 1 thread, 1 slot) serving the tiny GGUF model."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from chimera_tui.core.backends.ollama import CallOutcome, Timeouts
from chimera_tui.core.backends.openai import OpenAIClient, detect_kind
from chimera_tui.core.backends.stream import TokenEvent
from chimera_tui.core.errors import EndpointUnreachable, StreamError
from chimera_tui.core.measure.metrics import CallTrace, compute_call_metrics
from tests import real_engine
from tests.real_engine import SETUP_TIMEOUT_S, LlamaServer, running_server
from tools.make_gguf_model import DEFAULT_WORDS, chain_text, expected_answer, write_model

pytestmark = [pytest.mark.slow, pytest.mark.anyio, pytest.mark.timeout(SETUP_TIMEOUT_S)]

# the session fixtures (the installed llama-server, the tiny model)
llama_server_bin = real_engine.llama_server_bin
gguf_model = real_engine.gguf_model

TIMEOUTS = Timeouts(connect_s=5, first_byte_s=30, idle_s=10)


def chat(n: int, prompt: str = "hello") -> dict:
    return {
        "model": "m",
        "messages": [{"role": "user", "content": prompt}],
        "options": {"num_predict": n, "temperature": 0.0, "seed": 1, "num_ctx": 2048},
        "keep_alive": "30m",
    }


@pytest.fixture(scope="module")
def server(llama_server_bin: Path, gguf_model: Path) -> Iterator[LlamaServer]:
    with running_server(llama_server_bin, gguf_model, threads=1, slots=1) as s:
        yield s


@pytest.fixture(scope="module")
def endless_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model that never emits end-of-sequence, big enough (~50 MB, a few hundred tok/s on one thread)
    that a long answer takes seconds: a server that kept generating after a cancel would be seen."""
    return write_model(tmp_path_factory.mktemp("gguf") / "endless.gguf", width=512, layers=4, eos_after=0)


async def test_probe_tags_show_and_detect_kind(server: LlamaServer) -> None:
    async with OpenAIClient(server.url + "/v1", TIMEOUTS) as client:
        info = await client.probe()
        assert client.server == "llama.cpp" and info.version and info.url == server.url
        models = await client.tags()
        assert len(models) == 1 and models[0].name
        show = await client.show(models[0].name)
        assert show["capabilities"] == ["completion"] and show["total_slots"] == 1
    assert await detect_kind(server.url, TIMEOUTS) == "openai"


async def test_chat_stream_matches_the_server_figures(server: LlamaServer) -> None:
    async with OpenAIClient(server.url, TIMEOUTS) as client:
        await client.probe()
        await client.stream_call("chat", chat(8, "warm-up"))  # the first call after start-up is slow
        out = await client.stream_call("chat", chat(32))
    assert out.error is None, out.error
    assert out.text.strip() == chain_text(32).strip()
    final = out.trace.final
    assert final is not None and final["done_reason"] == "length"
    timings, usage = final["openai"]["timings"], final["openai"]["usage"]
    assert out.trace.content_tokens == timings["predicted_n"] == usage["completion_tokens"] == 32
    assert final["eval_count"] == 32 and final["eval_duration"] == round(timings["predicted_ms"] * 1e6)
    assert final["prompt_eval_count"] == usage["prompt_tokens"]
    assert any("not applied" in n and "num_ctx" in n and "keep_alive" in n for n in out.notes)
    m = compute_call_metrics(out.trace)
    assert m.ttft_ms is not None and m.ttft_ms > 0 and m.e2e_ms is not None and m.e2e_ms >= m.ttft_ms
    # the engine's own figure: predicted_per_second = (predicted_n - 1) / predicted_ms
    engine_rate = (timings["predicted_n"] - 1) / (timings["predicted_ms"] / 1000)
    assert timings["predicted_per_second"] == pytest.approx(engine_rate, rel=1e-3)
    assert m.server_decode_rate == pytest.approx(timings["predicted_per_second"], rel=1e-9)
    # cache-honest prefill: processed tokens only, as the engine's prompt_per_second
    assert m.prompt_cached_count == timings["cache_n"] and m.prompt_processed_count == timings["prompt_n"]
    assert m.prefill_rate == pytest.approx(timings["prompt_per_second"], rel=1e-3)
    assert "prefill_may_include_cached" not in m.flags
    assert m.client_decode_rate is not None
    assert m.client_decode_rate > 0
    assert (m.token_count - 1) / m.client_decode_rate * 1000 <= m.e2e_ms


async def test_answers_stop_by_themselves_and_completions_continue_text(server: LlamaServer) -> None:
    async with OpenAIClient(server.url, TIMEOUTS) as client:
        await client.probe()
        out = await client.stream_call("chat", chat(100))
        assert out.error is None and out.trace.final is not None
        assert out.trace.final["done_reason"] == "stop" and out.text.strip() == expected_answer().strip()
        assert out.trace.content_tokens == len(DEFAULT_WORDS)
        # the end-of-sequence token is generated (counted by the server) but carries no text
        assert out.trace.final["eval_count"] in (len(DEFAULT_WORDS), len(DEFAULT_WORDS) + 1)
        gen = await client.stream_call(
            "generate", {"model": "m", "prompt": "the quick", "options": {"num_predict": 3}}
        )
    assert gen.error is None and gen.text == chain_text(3, start=2)  # " brown fox jumps"


async def test_cancel_mid_stream_stops_the_server(llama_server_bin: Path, endless_model: Path) -> None:
    with running_server(llama_server_bin, endless_model, threads=1, slots=1) as srv:
        async with OpenAIClient(srv.url, TIMEOUTS) as client:
            await client.probe()
            outcome = CallOutcome(CallTrace(0))
            cancelled_at: list[float] = []
            t_start = time.monotonic()
            with anyio.CancelScope() as scope:

                def on_tokens(batch: list[TokenEvent]) -> None:
                    if outcome.trace.content_tokens >= 5 and not cancelled_at:
                        cancelled_at.append(time.monotonic())
                        scope.cancel()

                await client.stream_call("chat", chat(1500), on_tokens, outcome)
            returned = time.monotonic()
            assert scope.cancelled_caught and cancelled_at
            assert 5 <= outcome.trace.content_tokens < 1500 and outcome.error is None
            assert srv.alive() and srv.healthy()
            # one slot: the next call only runs at once if the cancelled one stopped generating.
            # Bounds relative to this run's own rate (load slows both sides alike), not wall-clock figures:
            # the rest of the 1500 tokens would take (1500 - n) / rate.
            rate = outcome.trace.content_tokens / ((returned - t_start) or 1e-9)
            assert returned - cancelled_at[0] < 0.5 * 1500 / rate, (returned - cancelled_at[0], rate)
            t0 = time.monotonic()
            again = await client.stream_call("chat", chat(8))
            assert again.error is None and again.trace.content_tokens == 8
            waited = time.monotonic() - t0
            assert waited < 0.5 * 1500 / rate, (waited, rate)


async def test_server_killed_mid_stream_is_an_outcome_error(
    llama_server_bin: Path, endless_model: Path
) -> None:
    with running_server(llama_server_bin, endless_model, threads=1, slots=1) as srv:
        async with OpenAIClient(srv.url, TIMEOUTS) as client:
            await client.probe()

            def on_tokens(batch: list[TokenEvent]) -> None:
                if srv.alive():
                    srv.kill()

            out = await client.stream_call("chat", chat(1500), on_tokens)
            assert isinstance(out.error, StreamError | EndpointUnreachable), out.error
            assert out.trace.content_tokens >= 1 and out.trace.final is None
            with pytest.raises(EndpointUnreachable):
                await client.probe()
    with pytest.raises(httpx.ConnectError):
        httpx.get(srv.url + "/health", timeout=1)


async def test_repeated_prompt_hits_the_cache_and_prefill_counts_processed_tokens(
    server: LlamaServer,
) -> None:
    prompt = "the quick brown fox jumps over the lazy dog " * 4
    async with OpenAIClient(server.url, TIMEOUTS) as client:
        await client.probe()
        await client.stream_call("chat", chat(4, prompt))
        out = await client.stream_call("chat", chat(4, prompt))
    assert out.error is None, out.error
    timings = out.trace.final["openai"]["timings"]  # type: ignore[index]
    m = compute_call_metrics(out.trace)
    assert m.prompt_cached_count == timings["cache_n"] > 0
    assert m.prompt_processed_count == timings["prompt_n"] < m.prompt_cached_count
    assert m.prompt_eval_count == timings["prompt_n"] + timings["cache_n"]
    assert m.prefill_rate == pytest.approx(timings["prompt_per_second"], rel=1e-3)
