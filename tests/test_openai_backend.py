"""The OpenAI-compatible client against scripted SSE streams: decoding, server figures, errors, options."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping

import anyio
import httpx
import pytest

from chimera_tui.core.backends.ollama import Timeouts
from chimera_tui.core.backends.openai import (
    ColdModeUnsupported,
    NotOpenAICompatible,
    OpenAIClient,
    detect_kind,
    map_options,
    translate_body,
)
from chimera_tui.core.backends.sse import OpenAIStreamDecoder, sse_field, to_ollama_final
from chimera_tui.core.backends.stream import StampedLine
from chimera_tui.core.errors import EndpointUnreachable, NotOllama, ServerError, StreamError
from chimera_tui.core.measure.metrics import compute_call_metrics

pytestmark = pytest.mark.anyio

Handler = Callable[[httpx.Request], httpx.Response]


def sse(*objs: object) -> bytes:
    """SSE frames for each object (a str is sent as is: `[DONE]`)."""
    return b"".join(
        b"data: " + (o.encode() if isinstance(o, str) else json.dumps(o).encode()) + b"\n\n" for o in objs
    )


def chunk(content: str | None = None, finish: str | None = None, **delta: str) -> dict:
    d = dict(delta)
    if content is not None:
        d["content"] = content
    return {
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [{"index": 0, "delta": d, "finish_reason": finish}],
    }


ROLE = chunk(role="assistant")
USAGE = {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}
TIMINGS = {"prompt_n": 5, "prompt_ms": 10.0, "cache_n": 2, "predicted_n": 3, "predicted_ms": 30.0,
           "predicted_per_second": 100.0}  # fmt: skip


def body_stream(chunks: list[bytes], delays: list[float] | None = None) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        for i, c in enumerate(chunks):
            if delays:
                await anyio.sleep(delays[i])
            yield c

    return gen()


def streaming(chunks: list[bytes], seen: list[httpx.Request] | None = None, status: int = 200) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(
            status, content=body_stream(chunks), headers={"content-type": "text/event-stream"}
        )

    return handler


def routes(table: Mapping[str, tuple[int, object]]) -> Handler:
    """GET answers by path; anything else 404 with an OpenAI-shaped error."""

    def handler(request: httpx.Request) -> httpx.Response:
        status, obj = table.get(request.url.path, (404, {"error": {"message": "File Not Found"}}))
        raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        return httpx.Response(status, content=body_stream([raw]))

    return handler


def client_for(handler: Handler, **kwargs: object) -> OpenAIClient:
    return OpenAIClient("http://test/v1/", Timeouts(), transport=httpx.MockTransport(handler), **kwargs)  # type: ignore[arg-type]


CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "options": {"num_predict": 8}}


# -- SSE decoding -------------------------------------------------------------------------------------


def test_sse_field_rules() -> None:
    assert sse_field(b"") is None and sse_field(b": ping") is None and sse_field(b"\r") is None
    assert sse_field(b"data: {}\r") == ("data", b"{}")
    assert sse_field(b"data:{}") == ("data", b"{}")
    assert sse_field(b"event: x") == ("event", b"x")


async def test_split_frames_comments_role_chunk_and_done() -> None:
    raw = b": keep-alive\n\n" + sse(
        ROLE, chunk("He"), chunk("llo"), chunk(""), chunk(finish="stop"), USAGE, "[DONE]"
    )
    pieces = [raw[i : i + 13] for i in range(0, len(raw), 13)]  # frames cut everywhere
    seen: list[httpx.Request] = []
    batches: list[int] = []
    async with client_for(streaming(pieces, seen)) as c:
        out = await c.stream_call("chat", CHAT, lambda b: batches.append(len(b)))
    assert out.error is None, out.error
    assert out.text == "Hello" and out.trace.content_tokens == 2 and sum(batches) == 2
    final = out.trace.final
    assert final is not None and final["done_reason"] == "stop"
    assert final["prompt_eval_count"] == 7 and final["eval_count"] == 3
    assert final["openai"]["usage"]["total_tokens"] == 10
    assert out.trace.t_end_ns is not None and out.trace.t_end_ns >= out.trace.token_times_ns[-1]
    sent = json.loads(seen[0].content)
    assert seen[0].url.path == "/v1/chat/completions"
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["max_tokens"] == 8 and sent["messages"][0]["content"] == "hi"
    m = compute_call_metrics(out.trace)
    # usage says 3 tokens in 2 chunks: the token count is the server's, the chunk count stays
    assert m.token_count == 3 and m.chunk_count == 2 and m.eval_count == 3
    assert m.server_decode_rate is None and m.e2e_ms is not None
    assert any("eval_count without eval_duration" in n for n in out.notes)


async def test_reasoning_content_and_reasoning_are_thinking() -> None:
    raw = sse(
        chunk(reasoning_content="hm"),
        chunk(reasoning="ok"),
        chunk(reasoning_content="x", reasoning="x"),  # both names, same text: one token
        chunk("A"),
        chunk(finish="stop"),
        "[DONE]",
    )
    async with client_for(streaming([raw])) as c:
        out = await c.stream_call("chat", CHAT)
    assert out.error is None
    assert out.thinking == "hmokx" and out.text == "A"
    assert out.trace.thinking_tokens == 3 and out.trace.content_tokens == 1
    assert out.trace.t_first_content_ns == out.trace.token_times_ns[-1]


async def test_llama_cpp_timings_become_ns_fields_and_metrics() -> None:
    raw = sse(
        ROLE,
        chunk("a"),
        chunk("b"),
        chunk("c"),
        chunk(finish="length"),
        {**USAGE, "timings": TIMINGS},
        "[DONE]",
    )
    async with client_for(streaming([raw])) as c:
        out = await c.stream_call("chat", CHAT)
    final = out.trace.final
    assert out.error is None and final is not None
    assert final["prompt_eval_count"] == 7 and final["prompt_eval_duration"] == 10_000_000
    assert final["eval_count"] == 3 and final["eval_duration"] == 30_000_000
    assert "total_duration" not in final and "load_duration" not in final
    assert final["openai"]["timings"] == TIMINGS
    m = compute_call_metrics(out.trace)
    assert m.server_decode_rate == pytest.approx(3 / 0.030)  # predicted_n / predicted_ms
    assert m.prompt_eval_rate == pytest.approx(7 / 0.010)
    assert m.done_reason == "length" and m.queue_gap_ms is None and m.load_ms is None
    assert not out.notes


def test_to_ollama_final_ignores_unusable_values() -> None:
    final = to_ollama_final(None, {"prompt_tokens": "7"}, {"predicted_n": 2, "predicted_ms": "x"})
    assert "prompt_eval_count" not in final and final["eval_count"] == 2 and "eval_duration" not in final


async def test_vllm_usage_and_completions_text() -> None:
    def text_chunk(t: str, finish: str | None = None) -> dict:
        return {"object": "text_completion", "choices": [{"index": 0, "text": t, "finish_reason": finish}]}

    raw = sse(text_chunk("x"), text_chunk("y"), text_chunk("", "length"), USAGE, "[DONE]")
    seen: list[httpx.Request] = []
    async with client_for(streaming([raw], seen)) as c:
        out = await c.stream_call("generate", {"model": "m", "prompt": "p", "options": {}})
    assert out.error is None and out.text == "xy" and out.trace.final is not None
    assert out.trace.final["done_reason"] == "length" and out.trace.final["eval_count"] == 3
    assert seen[0].url.path == "/v1/completions" and json.loads(seen[0].content)["prompt"] == "p"


async def test_mid_stream_error_frames() -> None:
    for frame, said in (
        (sse({"error": {"message": "out of memory", "type": "server_error"}}), "out of memory"),
        (b'error: {"code": 500, "message": "slot died", "type": "server_error"}\n\n', "slot died"),
    ):
        async with client_for(streaming([sse(chunk("a")), frame])) as c:
            out = await c.stream_call("chat", CHAT)
        assert isinstance(out.error, StreamError) and "server error mid-stream" in str(out.error)
        assert said in str(out.error)
        assert out.text == "a" and out.trace.content_tokens == 1
        assert compute_call_metrics(out.trace).e2e_ms is None


async def test_cut_without_done_is_a_stream_error() -> None:
    async with client_for(streaming([sse(ROLE, chunk("a"), chunk("b"))])) as c:
        out = await c.stream_call("chat", CHAT)
    assert isinstance(out.error, StreamError) and "without [DONE]" in str(out.error)
    assert out.trace.content_tokens == 2 and out.trace.final is None


async def test_close_after_finish_and_usage_without_done_is_complete() -> None:
    async with client_for(streaming([sse(chunk("a"), chunk(finish="stop"), USAGE)])) as c:
        out = await c.stream_call("chat", CHAT)
    assert out.error is None and out.trace.final is not None and out.trace.t_end_ns is not None
    assert any("without [DONE]" in n for n in out.notes)


async def test_lines_after_done_are_noted() -> None:
    async with client_for(streaming([sse(chunk("a"), chunk(finish="stop"), "[DONE]", chunk("z"))])) as c:
        out = await c.stream_call("chat", CHAT)
    assert out.error is None and out.text == "a" and out.extra_done_lines == 1


async def test_http_error_bodies_in_openai_shape() -> None:
    for status, body in (
        (404, {"error": {"message": "The model `q` does not exist.", "type": "NotFoundError"}}),
        (400, {"error": {"message": "max_tokens is too large", "type": "invalid_request_error"}}),
    ):
        async with client_for(streaming([json.dumps(body).encode()], status=status)) as c:
            out = await c.stream_call("chat", CHAT)
        assert isinstance(out.error, ServerError) and out.error.status == status
        assert body["error"]["message"] in out.error.message and out.http_status == status


async def test_cancel_scope_closes_the_stream_and_keeps_the_partial_trace() -> None:
    from chimera_tui.core.backends.ollama import CallOutcome
    from chimera_tui.core.measure.metrics import CallTrace

    chunks = [sse(chunk("a")), sse(chunk("b")), sse(chunk("c"))]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body_stream(chunks, [0, 0, 30]))

    outcome = CallOutcome(CallTrace(0))
    async with client_for(handler) as c:
        with anyio.move_on_after(0.3) as scope:
            await c.stream_call("chat", CHAT, outcome=outcome)
    assert scope.cancelled_caught and outcome.text == "ab" and outcome.error is None


# -- options --------------------------------------------------------------------------------------------


def test_map_options_per_server() -> None:
    options = {"temperature": 0.1, "top_k": 5, "num_ctx": 4096, "num_gpu": 99, "num_predict": 16,
               "repeat_penalty": 1.1, "stop": ["\n"], "seed": 3, "min_p": 0.05}  # fmt: skip
    sent, skipped = map_options(options, "llama.cpp")
    assert sent == {"temperature": 0.1, "top_k": 5, "max_tokens": 16, "repeat_penalty": 1.1, "stop": ["\n"],
                    "seed": 3, "min_p": 0.05}  # fmt: skip
    assert skipped == ["num_ctx", "num_gpu"]
    sent, skipped = map_options(options, "vllm")
    assert sent["repetition_penalty"] == 1.1 and "repeat_penalty" not in sent
    sent, skipped = map_options(options, "openai")
    assert set(sent) == {"temperature", "max_tokens", "stop", "seed"}
    assert skipped == ["top_k", "num_ctx", "num_gpu", "repeat_penalty", "min_p"]
    assert map_options({"num_predict": -1}, "openai") == ({}, [])
    assert map_options({"num_predict": -2}, "openai") == ({}, ["num_predict"])


async def test_not_applied_options_reach_the_notes() -> None:
    body = {**CHAT, "options": {"num_ctx": 2048, "num_gpu": 1, "temperature": 0}, "keep_alive": "30m"}
    path, payload, notes = translate_body("chat", body, "llama.cpp")
    assert path == "/v1/chat/completions" and "keep_alive" not in payload and "num_ctx" not in payload
    assert notes == ["not applied by an OpenAI-compatible server: num_ctx, num_gpu, keep_alive"]
    async with client_for(streaming([sse(chunk("a"), chunk(finish="stop"), "[DONE]")])) as c:
        out = await c.stream_call("chat", body)
    assert out.notes[0] == notes[0]


async def test_api_key_from_env_at_request_time(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []
    raw = [sse(chunk("a"), chunk(finish="stop"), "[DONE]")]
    monkeypatch.delenv("CHIMERA_TEST_KEY", raising=False)
    async with client_for(streaming(raw, seen), api_key_env="CHIMERA_TEST_KEY") as c:
        await c.stream_call("chat", CHAT)
        monkeypatch.setenv("CHIMERA_TEST_KEY", "sk-123")
        await c.stream_call("chat", CHAT)
        assert "sk-123" not in repr(vars(c))
    assert "authorization" not in seen[0].headers
    assert seen[1].headers["authorization"] == "Bearer sk-123"


# -- management and kind detection -------------------------------------------------------------------------

MODELS = {"object": "list", "data": [{"id": "tiny.gguf", "object": "model", "meta": {"size": 1234}}]}


async def test_probe_llama_cpp_tags_show_and_no_cold_mode() -> None:
    table = {"/v1/models": (200, MODELS), "/props": (200, {"build_info": "b11434-abc", "total_slots": 2})}
    async with client_for(routes(table)) as c:
        info = await c.probe()
        assert c.url == "http://test" and info.version == "b11434-abc" and c.server == "llama.cpp"
        tags = await c.tags()
        assert [(m.name, m.size_bytes, m.digest) for m in tags] == [("tiny.gguf", 1234, None)]
        assert await c.ps() == [] and await c.is_loaded("x") is True
        show = await c.show("tiny.gguf")
        assert show["capabilities"] == ["completion"] and show["total_slots"] == 2
        await c.load("chat", "tiny.gguf", {}, "30m")
        with pytest.raises(ColdModeUnsupported):
            await c.load("chat", "tiny.gguf", {}, 0)


async def test_probe_flavours_and_refusals() -> None:
    async with client_for(routes({"/v1/models": (200, MODELS), "/version": (200, {"version": "0.9"})})) as c:
        assert (await c.probe()).version == "0.9" and c.server == "vllm"
    async with client_for(routes({"/v1/models": (200, MODELS)})) as c:
        assert (await c.probe()).version is None and c.server == "openai"
    async with client_for(routes({})) as c:
        with pytest.raises(NotOpenAICompatible):
            await c.probe()
    async with client_for(routes({"/v1/models": (200, b"<html>")})) as c:
        with pytest.raises(NotOpenAICompatible) as err:
            await c.probe()
        assert err.value.kind == "not_openai" and isinstance(err.value, NotOllama)
    auth = {"/v1/models": (401, {"error": {"message": "Invalid API Key", "type": "auth"}})}
    async with client_for(routes(auth)) as c:
        with pytest.raises(ServerError, match="Invalid API Key"):
            await c.probe()


async def test_detect_kind() -> None:
    ollama = routes({"/api/version": (200, {"version": "0.12.0"}), "/v1/models": (200, MODELS)})
    openai = routes({"/v1/models": (200, MODELS)})
    assert await detect_kind("http://test", transport=httpx.MockTransport(ollama)) == "ollama"
    assert await detect_kind("http://test/v1", transport=httpx.MockTransport(openai)) == "openai"
    with pytest.raises(NotOllama, match="neither"):
        await detect_kind("http://test", transport=httpx.MockTransport(routes({})))


async def test_detect_kind_unreachable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(EndpointUnreachable):
        await detect_kind("http://test", transport=httpx.MockTransport(refuse))


def test_decoder_end_needs_finish_or_usage() -> None:
    d = OpenAIStreamDecoder()
    d.feed(StampedLine(5, b"data: " + json.dumps(chunk("a")).encode()))
    assert d.end() is None
    d.feed(StampedLine(9, b"data: " + json.dumps(chunk(finish="stop")).encode()))
    event = d.end()
    assert event is not None and event.t_ns == 9 and event.final["done_reason"] == "stop"


def test_cached_counts_from_timings_and_usage_details() -> None:
    final = to_ollama_final("stop", None, TIMINGS)
    assert final["prompt_eval_count"] == 7 and final["prompt_eval_cached_count"] == 2
    usage = {"prompt_tokens": 30, "completion_tokens": 4, "prompt_tokens_details": {"cached_tokens": 24}}
    final = to_ollama_final("stop", usage, None)
    assert final["prompt_eval_count"] == 30 and final["prompt_eval_cached_count"] == 24
    # not sent: unknown (absent), never 0
    assert "prompt_eval_cached_count" not in to_ollama_final("stop", dict(USAGE["usage"]), None)
    no_cache = {k: v for k, v in TIMINGS.items() if k != "cache_n"}
    assert "prompt_eval_cached_count" not in to_ollama_final("stop", None, no_cache)


async def test_llama_cpp_prefill_over_processed_tokens_and_engine_decode_rate() -> None:
    timings = {"prompt_n": 5, "prompt_ms": 10.0, "cache_n": 2, "predicted_n": 3, "predicted_ms": 30.0}
    raw = sse(
        ROLE,
        chunk("a"),
        chunk("b"),
        chunk("c"),
        chunk(finish="length"),
        {**USAGE, "timings": timings},
        "[DONE]",
    )
    async with client_for(streaming([raw])) as c:
        out = await c.stream_call("chat", CHAT)
    m = compute_call_metrics(out.trace)
    assert m.prompt_cached_count == 2 and m.prompt_processed_count == 5
    assert m.prefill_rate == pytest.approx(5 / 0.010)  # llama.cpp's prompt_per_second
    assert m.server_decode_rate == pytest.approx(2 / 0.030)  # (predicted_n - 1) / predicted_ms
    assert "prefill_may_include_cached" not in m.flags
