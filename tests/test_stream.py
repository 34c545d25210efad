"""NDJSON decoding: split lines, thinking, final text, errors, missing fields, bad bytes."""

from __future__ import annotations

import json

import pytest

from chimera_tui.core.backends.stream import (
    DoneEvent,
    ErrorEvent,
    LineSplitter,
    StampedLine,
    TokenEvent,
    ollama_events,
    parse_json,
)
from chimera_tui.core.errors import StreamError


def line(obj: object, t: int = 1) -> StampedLine:
    return StampedLine(t, json.dumps(obj).encode())


def test_lines_split_across_reads_are_stamped_by_the_completing_read() -> None:
    s = LineSplitter()
    assert s.feed(10, b'{"response":"a"') == []
    out = s.feed(20, b',"done":false}\n{"resp')
    assert [(ln.t_ns, ln.raw) for ln in out] == [(20, b'{"response":"a","done":false}')]
    out = s.feed(30, b'onse":"b"}\n')
    assert [ln.t_ns for ln in out] == [30]


def test_several_lines_in_one_read_share_its_stamp_and_blank_lines_are_skipped() -> None:
    out = LineSplitter().feed(5, b'{"a":1}\n\n{"b":2}\n')
    assert [ln.raw for ln in out] == [b'{"a":1}', b'{"b":2}']
    assert {ln.t_ns for ln in out} == {5}


def test_last_line_without_newline_is_flushed() -> None:
    s = LineSplitter()
    s.feed(1, b'{"done":true}')
    assert [ln.raw for ln in s.flush(2)] == [b'{"done":true}']
    assert s.flush(3) == []


def test_oversized_line_is_refused() -> None:
    s = LineSplitter(max_line_bytes=100)
    with pytest.raises(StreamError, match="exceeded"):
        s.feed(1, b"x" * 101)


def test_generate_token_and_thinking_order() -> None:
    events = list(ollama_events(line({"response": "Hi", "thinking": "hmm", "done": False})))
    assert events == [TokenEvent(1, "hmm", "thinking"), TokenEvent(1, "Hi", "content")]


def test_chat_message_fields() -> None:
    events = list(ollama_events(line({"message": {"role": "assistant", "content": "", "thinking": "x"}})))
    assert events == [TokenEvent(1, "x", "thinking")]
    assert list(ollama_events(line({"message": {"role": "assistant", "content": ""}, "done": False}))) == []


def test_final_chunk_with_text_yields_the_token_then_done() -> None:
    final = {"response": "!", "done": True, "done_reason": "stop", "eval_count": 3, "context": [1, 2]}
    events = list(ollama_events(line(final, 7)))
    assert events[0] == TokenEvent(7, "!", "content")
    assert isinstance(events[1], DoneEvent)
    assert events[1].final == {"done": True, "done_reason": "stop", "eval_count": 3}


def test_midstream_error_line() -> None:
    assert list(ollama_events(line({"error": "boom"}, 4))) == [ErrorEvent(4, "boom")]
    structured = list(ollama_events(line({"error": {"code": 1}})))
    assert isinstance(structured[0], ErrorEvent) and "code" in structured[0].message


@pytest.mark.parametrize(
    ("raw", "match"),
    [(b"not json", "not JSON"), (b"\xff\xfe", "UTF-8"), (b"[1,2]", "not an object")],
)
def test_bad_lines_raise_clear_errors(raw: bytes, match: str) -> None:
    with pytest.raises(StreamError, match=match):
        list(ollama_events(StampedLine(1, raw)))


@pytest.mark.parametrize(
    "raw",
    [b'{"response":"a"}', b' \t{"response":"a"}', b'{"response":"a"}\r', b'{"response":"a"}  \t\r'],
)
def test_whitespace_around_a_line_is_fine_as_json_allows_it(raw: bytes) -> None:
    assert parse_json(raw) == {"response": "a"}


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b'{"response":"a"} x', r"not JSON \(Extra data\)"),
        (b'{"response":"a"}\x0c', r"not JSON \(Extra data\)"),  # form feed: not JSON whitespace
        (b'{"a":1}{"b":2}', r"not JSON \(Extra data\)"),
        (b"   ", r"not JSON \(Expecting value\)"),
    ],
)
def test_anything_after_the_object_is_refused_as_the_full_decoder_would(raw: bytes, match: str) -> None:
    with pytest.raises(StreamError, match=match):
        parse_json(raw)


def test_lines_without_stamps_match_feed() -> None:
    data = [b'{"a":1}\n{"b"', b':2}\n\n  \n{"c":3}', b"\n"]
    stamped, bare = LineSplitter(), LineSplitter()
    for t, read in enumerate(data):
        assert [ln.raw for ln in stamped.feed(t, read)] == bare.lines(read)
    assert stamped.flush(9) == [] and bare.flush_lines() == []
