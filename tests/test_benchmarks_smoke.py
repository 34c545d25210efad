"""The benchmark harness works (tiny sizes, no timing assertions): modules import, the firehose serves
well-formed NDJSON to all three clients, the engine scaling measurement runs, results combine."""

from __future__ import annotations

import importlib

import pytest

from benchmarks import pipeline, scaling, timestamps
from benchmarks.__main__ import BENCHMARKS, table
from benchmarks.common import Result, check, combine, firehose, info
from benchmarks.firehose import render
from chimera_tui.core.backends.stream import LineSplitter, ollama_line_events


def test_every_benchmark_module_imports_and_has_run() -> None:
    for name in BENCHMARKS:
        assert callable(importlib.import_module(f"benchmarks.{name}").run)


def test_firehose_renders_chunked_ollama_lines_ending_with_done() -> None:
    body = render("generate", 3)
    assert body.endswith(b"0\r\n\r\n")
    chunks, rest = [], body
    while (size := int(rest.split(b"\r\n", 1)[0], 16)) > 0:
        head = rest.index(b"\r\n") + 2
        chunks.append(rest[head : head + size])
        rest = rest[head + size + 2 :]
    lines = LineSplitter().lines(b"".join(chunks))
    events = [e for line in lines for e in ollama_line_events(1, line)]
    assert [type(e).__name__ for e in events] == ["TokenEvent", "TokenEvent", "TokenEvent", "DoneEvent"]


def test_the_three_pipeline_clients_read_the_same_answer() -> None:
    with firehose(2000) as url:
        rates = pipeline.measure(url, 2000, 1)
    assert set(rates) == {"ours", "httpx_floor", "ollama_client"}
    assert all(len(r) == 1 and r[0].per_cpu_s > 0 and r[0].per_wall_s > 0 for r in rates.values())


def test_engine_scaling_measures_a_cost_per_token() -> None:
    costs = scaling.engine([200], 1)
    assert costs[200] >= 0


def test_processes_share_one_monotonic_clock() -> None:
    shared, impl = timestamps.same_clock()
    assert shared, impl


def test_errors_need_as_many_client_stamps_as_server_emits() -> None:
    assert list(timestamps.errors_ms([5_000_000], [4_000_000])) == [1.0]
    with pytest.raises(RuntimeError, match="client stamps"):
        timestamps.errors_ms([1, 2], [1])


def test_results_combine_to_medians_checked_again_and_print_as_a_table() -> None:
    rounds = [[check("b", "fast", v, "ms", "<", 5.0), info("b", "note", 1.0, "x")] for v in (4.0, 9.0, 4.5)]
    combined = combine(rounds)
    assert [(r.figure, r.value, r.passed) for r in combined] == [("fast", 4.5, True), ("note", 1.0, None)]
    text = table([*combined, Result("b", "crashed", None, "", "runs", False)])
    assert "PASS" in text and "FAIL" in text and "info" in text
