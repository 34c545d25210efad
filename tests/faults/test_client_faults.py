"""The Ollama client against faults on a real socket: each gives one clear, typed error (or a note)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from chimera_tui.core.backends import ollama as ollama_module
from chimera_tui.core.backends.ollama import CallOutcome, OllamaClient, Timeouts
from chimera_tui.core.backends.stream import MAX_LINE_BYTES
from chimera_tui.core.errors import (
    BenchTimeout,
    ChimeraError,
    EndpointUnreachable,
    ModelNotFound,
    NotOllama,
    ServerError,
    StreamError,
)
from chimera_tui.core.measure.metrics import compute_call_metrics
from tests.fault_server import (
    FINAL,
    HANG,
    FakeOllama,
    FaultServer,
    Handler,
    Reply,
    full_backlog_port,
    head,
    json_reply,
    ndjson,
    normal_stream,
    stream_reply,
    text_reply,
    tls_context,
    tokens,
)

pytestmark = pytest.mark.anyio

FAST = Timeouts(connect_s=2.0, first_byte_s=2.0, idle_s=2.0)
BODY = {"model": "m", "prompt": "p"}


@pytest.fixture
def serve() -> Iterator[list[FaultServer]]:
    servers: list[FaultServer] = []
    yield servers
    for server in servers:
        server.stop()


def start(servers: list[FaultServer], handler: Handler) -> FaultServer:
    server = FaultServer(handler).start()
    servers.append(server)
    return server


def always(reply: Reply) -> Handler:
    return lambda _request: reply


async def call(url: str, timeouts: Timeouts = FAST) -> CallOutcome:
    async with OllamaClient(url, timeouts) as client:
        return await client.stream_call("generate", BODY)


async def probe_error(url: str, timeouts: Timeouts = FAST) -> ChimeraError:
    async with OllamaClient(url, timeouts) as client:
        with pytest.raises(ChimeraError) as info:
            await client.probe()
    return info.value


def one_line(error: BaseException | None) -> str:
    text = str(error)
    assert text and "\n" not in text and "\x1b" not in text and "Traceback" not in text
    return text


# -- the connection -----------------------------------------------------------------------------------
async def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once the block ends
    url = f"http://127.0.0.1:{port}"
    error = await probe_error(url)
    assert isinstance(error, EndpointUnreachable) and "connection refused" in one_line(error)
    out = await call(url)
    assert isinstance(out.error, EndpointUnreachable) and "connection refused" in one_line(out.error)


async def test_dns_failure_names_the_host() -> None:
    url = "http://chimera-fault-test.invalid:11434"
    error = await probe_error(url)
    assert isinstance(error, EndpointUnreachable)
    assert "cannot resolve the host name 'chimera-fault-test.invalid'" in one_line(error)
    out = await call(url)
    assert isinstance(out.error, EndpointUnreachable) and "cannot resolve" in str(out.error)


async def test_connect_timeout_is_named_with_its_seconds() -> None:
    with full_backlog_port() as port:
        if port is None:
            pytest.skip("this OS accepts connects beyond the listen backlog: no way to make connect hang")
        timeouts = Timeouts(connect_s=0.3, first_byte_s=2.0, idle_s=2.0)
        error = await probe_error(f"http://127.0.0.1:{port}", timeouts)
        assert isinstance(error, BenchTimeout) and error.which == "connect" and error.seconds == 0.3
        assert "timed out after 0.3 s connecting to" in one_line(error) and "connect timeout" in str(error)
        out = await call(f"http://127.0.0.1:{port}", timeouts)
        assert isinstance(out.error, BenchTimeout) and out.error.which == "connect"


# -- a port that answers, but not as Ollama -------------------------------------------------------------
async def test_plain_http_200_html_is_not_ollama(serve: list[FaultServer]) -> None:
    server = start(serve, always(text_reply(200, "<html><body>Welcome to nginx!</body></html>")))
    error = await probe_error(server.url)
    assert isinstance(error, NotOllama) and "not an Ollama server (GET / gave HTTP 200)" in one_line(error)
    out = await call(server.url)
    assert isinstance(out.error, StreamError) and "not JSON" in one_line(out.error)


async def test_a_server_that_404s_everything_is_not_ollama(serve: list[FaultServer]) -> None:
    server = start(serve, always(text_reply(404, "404 page not found", "text/plain")))
    error = await probe_error(server.url)
    assert isinstance(error, NotOllama) and "HTTP 404" in one_line(error)
    out = await call(server.url)
    assert isinstance(out.error, NotOllama) and "is not found (HTTP 404)" in one_line(out.error)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[FaultServer]:
    ctx = tls_context(tmp_path)
    if ctx is None:
        pytest.skip("cannot make a self-signed certificate (no `cryptography` package, no `openssl`)")
    with FaultServer(FakeOllama(), tls=ctx) as server:
        yield server


async def test_plain_http_to_a_tls_port_says_so(tls_server: FaultServer) -> None:
    url = tls_server.url.replace("https://", "http://")
    error = await probe_error(url)
    assert isinstance(error, NotOllama) and "TLS" in one_line(error)
    out = await call(url)
    assert isinstance(out.error, StreamError) and "without an HTTP answer" in one_line(out.error)


async def test_https_with_an_untrusted_certificate(tls_server: FaultServer) -> None:
    error = await probe_error(tls_server.url)
    assert isinstance(error, EndpointUnreachable)
    assert "TLS certificate verification failed" in one_line(error)


# -- silence: each timeout fires by name ------------------------------------------------------------------
async def test_accepts_and_never_answers(serve: list[FaultServer]) -> None:
    server = start(serve, always([HANG]))
    timeouts = Timeouts(connect_s=1.0, first_byte_s=0.3, idle_s=0.2)
    error = await probe_error(server.url, timeouts)  # management calls wait for the idle timeout
    assert isinstance(error, BenchTimeout) and error.which == "idle" and error.seconds == 0.2
    assert "waiting for a response from" in one_line(error) and "(idle timeout)" in str(error)
    out = await call(server.url, timeouts)
    assert isinstance(out.error, BenchTimeout) and out.error.which == "first_byte"
    assert out.error.seconds == 0.3 and "(first-byte timeout)" in one_line(out.error)


async def test_headers_then_stall_is_a_first_byte_timeout(serve: list[FaultServer]) -> None:
    server = start(serve, always(stream_reply([HANG])))
    out = await call(server.url, Timeouts(connect_s=1.0, first_byte_s=0.3, idle_s=5.0))
    assert isinstance(out.error, BenchTimeout) and out.error.which == "first_byte"
    assert "waiting for the first byte" in one_line(out.error)


async def test_stall_mid_stream_is_an_idle_timeout_and_keeps_the_partial_trace(
    serve: list[FaultServer],
) -> None:
    server = start(serve, always(stream_reply([ndjson(*tokens(3)), HANG])))
    out = await call(server.url, Timeouts(connect_s=1.0, first_byte_s=5.0, idle_s=0.3))
    assert isinstance(out.error, BenchTimeout) and out.error.which == "idle" and out.error.seconds == 0.3
    assert "waiting for the next line" in one_line(out.error) and "(idle timeout)" in str(out.error)
    assert out.trace.content_tokens == 3 and out.text == "tok tok tok "


# -- HTTP errors with Ollama's {"error": ...} ------------------------------------------------------------
async def test_unknown_model_lists_the_models_that_exist(serve: list[FaultServer]) -> None:
    server = start(serve, FakeOllama())
    async with OllamaClient(server.url, FAST) as client:
        with pytest.raises(ModelNotFound) as info:
            await client.show("nope:1b")
    assert "model 'nope:1b' not found" in one_line(info.value)
    assert "available: m:latest, other:7b" in str(info.value)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, '"m" does not support thinking'),
        (500, 'option "num_ctx" must be of type integer'),
        (503, "server busy, please try again.  maximum pending requests exceeded"),
    ],
)
async def test_http_errors_carry_the_server_message(
    serve: list[FaultServer], status: int, message: str
) -> None:
    server = start(serve, always(json_reply(status, {"error": message})))
    out = await call(server.url)
    assert isinstance(out.error, ServerError) and out.error.status == status
    assert one_line(out.error) == f"server returned HTTP {status}: {message}"


async def test_a_hostile_error_message_is_one_clean_line(serve: list[FaultServer]) -> None:
    evil = "boom\x1b]52;c;ZXZpbA==\x07\n\x1b[2Jsecond line\r" + "x" * 5000
    server = start(serve, always(json_reply(500, {"error": evil})))
    out = await call(server.url)
    text = one_line(out.error)
    assert "\x07" not in text and "\r" not in text and "boom" in text and "second line" in text
    assert len(text) < 600


async def test_an_oversized_management_answer_is_refused(
    serve: list[FaultServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ollama_module, "MAX_JSON_BODY", 64 * 1024)
    fake = FakeOllama()
    fake.overrides["GET /api/tags"] = json_reply(200, {"models": [], "junk": "x" * 200_000})
    server = start(serve, fake)
    async with OllamaClient(server.url, FAST) as client:
        with pytest.raises(NotOllama, match="sent more than"):
            await client.tags()


# -- broken streams ---------------------------------------------------------------------------------------
async def test_mid_stream_error_line(serve: list[FaultServer]) -> None:
    server = start(serve, always(stream_reply([ndjson(*tokens(2)), ndjson({"error": "runner crashed"})])))
    out = await call(server.url)
    assert isinstance(out.error, StreamError)
    assert one_line(out.error) == "server error mid-stream: runner crashed"
    assert out.text == "tok tok "


async def test_stream_that_ends_without_done(serve: list[FaultServer]) -> None:
    server = start(serve, always(stream_reply([ndjson(*tokens(2))])))
    out = await call(server.url)
    assert isinstance(out.error, StreamError) and "without a final 'done' line" in one_line(out.error)
    assert out.trace.final is None and compute_call_metrics(out.trace).e2e_ms is None


async def test_stream_cut_by_a_killed_server(serve: list[FaultServer]) -> None:
    server = start(serve, always(stream_reply([ndjson(*tokens(2))], end=False)))
    out = await call(server.url)
    assert isinstance(out.error, StreamError) and "broke mid-stream" in one_line(out.error)
    assert out.trace.content_tokens == 2


async def test_a_line_of_several_mb_is_accepted_below_the_limit(serve: list[FaultServer]) -> None:
    big = {"model": "m", "response": "y" * (3 * 1024 * 1024), "done": False}
    server = start(serve, always(stream_reply([ndjson(big), ndjson(FINAL)])))
    out = await call(server.url)
    assert out.error is None and len(out.text) == 3 * 1024 * 1024


async def test_a_line_over_the_limit_is_refused_not_buffered(serve: list[FaultServer]) -> None:
    blob = b'{"response": "' + b"z" * (MAX_LINE_BYTES + 1024)  # no newline: it would buffer forever
    server = start(serve, always(stream_reply([blob, HANG])))
    out = await call(server.url, Timeouts(connect_s=1.0, first_byte_s=5.0, idle_s=5.0))
    assert isinstance(out.error, StreamError) and "exceeded 16 MiB" in one_line(out.error)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json\n", "not JSON"),
        (b"[1, 2]\n", "not an object"),
        (b'{"response": "\xff\xfe"}\n', "not valid UTF-8"),
        (b'{"eval_count": ' + b"9" * 5000 + b"}\n", "not usable JSON"),
        (b"[" * 100_000 + b"\n", "not"),
    ],
)
async def test_undecodable_lines_fail_the_run(serve: list[FaultServer], raw: bytes, expected: str) -> None:
    server = start(serve, always(stream_reply([ndjson(*tokens(1)), raw, ndjson(FINAL)])))
    out = await call(server.url)
    assert isinstance(out.error, StreamError) and expected in one_line(out.error)
    assert out.trace.content_tokens == 1


# -- odd but usable: the run succeeds and says what was odd -----------------------------------------------
async def test_duplicate_done_lines_are_ignored_and_noted(serve: list[FaultServer]) -> None:
    final2 = {**FINAL, "eval_count": 999}
    server = start(
        serve, always(stream_reply([ndjson(*tokens(2)), ndjson(FINAL), ndjson(final2), b"junk\n"]))
    )
    out = await call(server.url)
    assert out.error is None and out.trace.final is not None
    assert out.trace.final["eval_count"] == 5  # the first done line counts
    assert out.extra_done_lines == 2
    assert "2 line(s) after the final 'done' line were ignored (1 of them another 'done' line)" in out.notes


async def test_lines_after_done_in_the_same_read_are_counted(serve: list[FaultServer]) -> None:
    server = start(serve, always(stream_reply([ndjson(*tokens(2), FINAL, FINAL)])))
    out = await call(server.url)
    assert out.error is None and out.extra_done_lines == 1


async def test_a_stream_held_open_after_done_is_not_waited_on(serve: list[FaultServer]) -> None:
    server = start(serve, always(stream_reply([ndjson(*tokens(2)), ndjson(FINAL), HANG])))
    out = await call(server.url, Timeouts(connect_s=1.0, first_byte_s=2.0, idle_s=0.2))
    assert out.error is None
    assert any("kept the stream open" in note for note in out.notes)


@pytest.mark.parametrize(
    ("fields", "missing"),
    [
        ({"eval_duration": -50_000_000}, "eval_ms"),
        ({"eval_duration": 10**18}, "eval_ms"),
        ({"load_duration": 10**18}, "load_ms"),
        ({"eval_duration": 1}, "server_decode_rate"),  # 5 tokens in 1 ns: 5e9 tok/s
        ({"total_duration": "soon"}, "total_ms"),
    ],
)
async def test_absurd_durations_are_missing_noted_and_kept_raw(
    serve: list[FaultServer], fields: dict[str, object], missing: str
) -> None:
    final = {**FINAL, **fields}
    server = start(serve, always(stream_reply([ndjson(*tokens(5)), ndjson(final)])))
    out = await call(server.url)
    assert out.error is None
    metrics = compute_call_metrics(out.trace)
    assert getattr(metrics, missing) is None
    assert out.trace.final is not None and all(out.trace.final[k] == v for k, v in fields.items())
    assert any("treated as missing" in note for note in out.notes)
    if missing in ("eval_ms", "load_ms", "total_ms"):
        assert metrics.queue_gap_ms is None  # a component present but unusable: no gap either
    assert metrics.ttft_ms is not None and metrics.e2e_ms is not None  # client figures stand


async def test_non_finite_numbers_are_kept_as_text(serve: list[FaultServer]) -> None:
    raw = b'{"done": true, "done_reason": "stop", "eval_count": 5, "eval_duration": 1e400, "x": NaN}\n'
    server = start(serve, always(stream_reply([ndjson(*tokens(5)), raw])))
    out = await call(server.url)
    assert out.error is None and out.trace.final is not None
    assert out.trace.final["eval_duration"] == "1e400" and out.trace.final["x"] == "NaN"
    assert compute_call_metrics(out.trace).server_decode_rate is None
    json.dumps(out.trace.final, allow_nan=False)  # the session file can hold it


async def test_eval_count_without_eval_duration(serve: list[FaultServer]) -> None:
    final = {k: v for k, v in FINAL.items() if k != "eval_duration"}
    server = start(serve, always(stream_reply([ndjson(*tokens(5)), ndjson(final)])))
    out = await call(server.url)
    metrics = compute_call_metrics(out.trace)
    assert out.error is None and metrics.eval_count == 5 and metrics.server_decode_rate is None
    assert metrics.eval_ms is None and metrics.token_count == 5
    assert "the server sent eval_count without eval_duration: no server decode rate" in out.notes


async def test_a_healthy_stream_has_no_notes(serve: list[FaultServer]) -> None:
    server = start(serve, always(normal_stream(4)))
    out = await call(server.url)
    assert out.error is None and out.notes == [] and out.extra_done_lines == 0
    assert compute_call_metrics(out.trace).server_decode_rate == pytest.approx(80.0)


async def test_the_raw_response_head_is_what_the_helpers_send() -> None:
    assert head(200, {"A": "b"}).endswith(b"Connection: close\r\n\r\n")
