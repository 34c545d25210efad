"""Property-based tests (hypothesis) of what reads untrusted input: the NDJSON line splitter, the
Ollama event decoder, the profile loader, and the session loader."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chimera_tui.core.backends.stream import (
    DoneEvent,
    ErrorEvent,
    LineSplitter,
    StampedLine,
    TokenEvent,
    ollama_events,
)
from chimera_tui.core.errors import ProfileError, SessionError, StreamError
from chimera_tui.core.store.profiles import (
    NAME_PATTERN,
    OPTION_SPECS,
    OptionSpec,
    OptionType,
    Profile,
    load_profile,
    validate_options,
)
from chimera_tui.core.store.sessions import load_session

SLOW_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# -- the line splitter ---------------------------------------------------------------------------------
@st.composite
def stream_and_reads(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    lines = draw(st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=12))
    data = b"\n".join(lines) + draw(st.sampled_from([b"", b"\n"]))
    cuts = sorted(draw(st.sets(st.integers(0, len(data)), max_size=10)))
    bounds = [0, *cuts, len(data)]
    return data, [data[a:b] for a, b in itertools.pairwise(bounds)]


def expected_lines(data: bytes, reads: list[bytes]) -> list[tuple[int, bytes]]:
    """(index of the read that completed it, line) for every non-blank line; flush is len(reads)."""
    ends: list[int] = []
    position = 0
    for read in reads:
        position += len(read)
        ends.append(position)
    out: list[tuple[int, bytes]] = []
    start = 0
    for pos, byte in enumerate(data):
        if byte == 0x0A:
            read_index = next(i for i, end in enumerate(ends) if pos < end)
            out.append((read_index, data[start:pos]))
            start = pos + 1
    out.append((len(reads), data[start:]))
    return [(t, line) for t, line in out if line.strip()]


def split(reads: list[bytes], max_line_bytes: int) -> list[tuple[int, bytes]]:
    splitter = LineSplitter(max_line_bytes)
    got: list[StampedLine] = []
    for t, read in enumerate(reads):
        got += splitter.feed(t, read)
    got += splitter.flush(len(reads))
    return [(line.t_ns, line.raw) for line in got]


@given(stream_and_reads())
def test_any_split_into_reads_gives_the_same_lines_stamped_by_the_completing_read(
    case: tuple[bytes, list[bytes]],
) -> None:
    data, reads = case
    assert split(reads, 1024) == expected_lines(data, reads)
    assert [line for _, line in split([data], 1024)] == [line for _, line in expected_lines(data, reads)]


@given(stream_and_reads(), st.integers(1, 40))
def test_a_line_over_the_limit_raises_whatever_the_split(case: tuple[bytes, list[bytes]], limit: int) -> None:
    data, reads = case
    too_long = any(len(line) > limit for line in data.split(b"\n"))
    if too_long:
        with pytest.raises(StreamError, match="exceeded"):
            split(reads, limit)
    else:
        assert split(reads, limit) == expected_lines(data, reads)


# -- the event decoder -----------------------------------------------------------------------------------
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
KEYS = ["response", "thinking", "message", "content", "done", "done_reason", "error", "eval_count", "context"]
ollama_like = st.dictionaries(
    st.sampled_from(KEYS) | st.text(max_size=6), json_values, max_size=6
) | st.fixed_dictionaries(
    {"message": st.dictionaries(st.sampled_from(["content", "thinking", "role"]), json_values, max_size=3)},
    optional={"done": st.booleans() | json_values},
)


def events_of(raw: bytes) -> list[Any]:
    return list(ollama_events(StampedLine(7, raw)))


@given(ollama_like)
def test_any_json_object_decodes_to_well_formed_events(obj: dict[str, Any]) -> None:
    events = events_of(json.dumps(obj).encode())
    assert all(e.t_ns == 7 for e in events)
    if any(isinstance(e, ErrorEvent) for e in events):
        assert len(events) == 1 and isinstance(events[0].message, str)
        return
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    assert all(isinstance(e.text, str) and e.text for e in tokens)
    assert [e.kind for e in tokens] in ([], ["content"], ["thinking"], ["thinking", "content"])
    dones = [e for e in events if isinstance(e, DoneEvent)]
    assert len(dones) <= 1 and (not dones or events[-1] is dones[0])
    if dones:
        assert not {"response", "message", "thinking", "context"} & dones[0].final.keys()
        json.dumps(dones[0].final, allow_nan=False)  # storable as is


@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_bytes_decode_or_raise_stream_error_only(raw: bytes) -> None:
    try:
        events_of(raw)
    except StreamError as exc:
        assert str(exc) and "\n" not in str(exc)


@given(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e999"]))
def test_non_finite_numbers_stay_text(literal: str) -> None:
    (done,) = events_of(f'{{"done": true, "eval_duration": {literal}}}'.encode())
    assert isinstance(done, DoneEvent) and done.final["eval_duration"] == literal


# -- the profile loader ----------------------------------------------------------------------------------
anything = json_values | st.floats() | st.integers() | st.lists(st.text(max_size=5), max_size=3)


@given(st.dictionaries(st.sampled_from(list(OPTION_SPECS)) | st.text(max_size=12), anything, max_size=6))
def test_validate_options_raises_only_profile_error(options: dict[str, Any]) -> None:
    try:
        result = validate_options(options, "fuzz.toml")
    except ProfileError as exc:
        assert str(exc).startswith("fuzz.toml: ") and "\n" not in str(exc)
    else:
        assert result.keys() == options.keys()


def valid_value(spec: OptionSpec) -> st.SearchStrategy[Any]:
    if spec.type is OptionType.BOOL:
        return st.booleans()
    if spec.type is OptionType.STR_LIST:
        return st.lists(st.text(max_size=10), max_size=4)
    if spec.type is OptionType.STR:
        return st.text(max_size=10)
    lo = spec.minimum
    hi = spec.maximum
    if spec.type is OptionType.INT:
        return st.integers(int(lo) if lo is not None else -(2**63), int(hi) if hi is not None else 2**63 - 1)
    return st.floats(lo, hi if hi is not None else 1e300, allow_nan=False, allow_infinity=False)


valid_options = st.fixed_dictionaries(
    {}, optional={name: valid_value(spec) for name, spec in OPTION_SPECS.items()}
)


@SLOW_OK
@given(st.from_regex(NAME_PATTERN, fullmatch=True), st.text(max_size=40), valid_options)
def test_valid_profiles_round_trip_through_toml(
    tmp_path: Path, name: str, description: str, options: dict[str, Any]
) -> None:
    profile = Profile(name, description, options)
    path = tmp_path / "p.toml"
    path.write_text(profile.to_toml(), encoding="utf-8")
    loaded = load_profile(path)
    assert (loaded.name, loaded.description) == (name, description)
    assert loaded.options == profile.options
    for key, value in loaded.options.items():
        assert type(value) is type(profile.options[key])
        if isinstance(value, float):
            assert math.isfinite(value)


toml_docs = st.dictionaries(
    st.sampled_from(["name", "description", "options", *OPTION_SPECS]) | st.text(max_size=6),
    st.dictionaries(st.sampled_from(list(OPTION_SPECS)) | st.text(max_size=6), anything, max_size=4)
    | st.text(max_size=10)
    | st.integers()
    | st.booleans(),
    max_size=4,
)


@SLOW_OK
@given(toml_docs | st.binary(max_size=120).map(lambda b: {"raw": b}))
def test_load_profile_raises_only_profile_error(tmp_path: Path, doc: dict[str, Any]) -> None:
    path = tmp_path / "fuzz.toml"
    if "raw" in doc and isinstance(doc["raw"], bytes):
        path.write_bytes(doc["raw"])
    else:
        try:
            text = tomli_w.dumps(_toml_safe(doc))
        except (TypeError, ValueError):
            return  # not expressible in TOML (None inside a list...)
        path.write_text(text, encoding="utf-8")
    try:
        load_profile(path)
    except ProfileError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)


def _toml_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _toml_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_toml_safe(v) for v in value if v is not None]
    return value


# -- the session loader ----------------------------------------------------------------------------------
@SLOW_OK
@given(
    json_values
    | st.fixed_dictionaries(
        {
            "runs": st.lists(
                st.dictionaries(
                    st.sampled_from(["index", "status", "metrics", "warmup", "notes"]), json_values
                ),
                max_size=3,
            )
        },
        optional={
            "status": st.sampled_from(["running", "complete", "bogus"]) | json_values,
            "writer": json_values,
        },
    )
)
def test_load_session_raises_only_session_error(tmp_path: Path, doc: Any) -> None:
    folder = tmp_path / "fuzz"
    folder.mkdir(exist_ok=True)
    (folder / "session.toml").write_text("schema_version = 1\nid = 'fuzz'\n", encoding="utf-8")
    (folder / "metrics.json").write_text(json.dumps(doc), encoding="utf-8")
    try:
        session = load_session(folder)
    except SessionError as exc:
        assert "\n" not in str(exc)
    else:
        assert session.counts["ok"] >= 0 and isinstance(session.aggregates, dict)
