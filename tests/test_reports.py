"""Report exporters: golden files for every format, hostile text, safe file names, JSON shape.

Golden files live in tests/golden/; after an intended change, rewrite them with
`CHIMERA_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_reports.py` and review the diff.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from chimera_tui.core.measure.metrics import CallMetrics
from chimera_tui.core.reports import FORMATS, default_filename, export_sessions, write_export
from chimera_tui.core.reports.charts import RunSeries, distribution_svg, nice_ticks, per_run_svg, percentile
from chimera_tui.core.reports.csv_export import CSV_COLUMNS, calls_csv
from chimera_tui.core.reports.json_export import EXPORT_SCHEMA, session_json_doc
from chimera_tui.core.reports.markdown import md_fence, md_text
from chimera_tui.core.store.sessions import (
    SCHEMA_VERSION,
    RunRecord,
    Session,
    SessionWriter,
    compute_aggregates,
    load_session,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("CHIMERA_UPDATE_GOLDEN") == "1"


# -- deterministic sessions ------------------------------------------------------------------------
def _metrics(rate: float, ttft: float, tokens: int = 64, load: float = 3.25) -> CallMetrics:
    eval_ms = tokens / rate * 1000
    prompt_ms = 12.5
    total = load + prompt_ms + eval_ms + 0.75
    return CallMetrics(
        ttft_ms=ttft,
        ttft_content_ms=ttft,
        e2e_ms=ttft + eval_ms + 1.5,
        client_decode_rate=rate * 0.98,
        token_count=tokens,
        thinking_token_count=0,
        itl_p50_ms=1000 / rate,
        itl_p95_ms=1000 / rate * 1.1,
        itl_p99_ms=1000 / rate * 1.25,
        itl_max_ms=1000 / rate * 1.5,
        server_decode_rate=rate,
        prompt_eval_rate=24 / (prompt_ms / 1000),
        load_ms=load,
        prompt_eval_ms=prompt_ms,
        eval_ms=eval_ms,
        total_ms=total,
        queue_gap_ms=0.75,
        eval_count=tokens,
        prompt_eval_count=24,
        done_reason="length",
    )


def _manifest(
    session_id: str, profile: str, options: dict[str, Any], *, model: str = "llama3.2:1b"
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "id": session_id,
        "created_at": "2026-01-01T12:00:00.000Z",
        "tool": {"name": "chimera-tui", "version": "0.1.0"},
        "mode": "single",
        "model": {
            "name": model,
            "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
            "parameter_size": "1.2B",
            "quantization": "Q8_0",
            "family": "llama",
            "size_bytes": 1_321_098_329,
            "capabilities": ["completion", "tools"],
        },
        "profile": {"name": profile, "description": "fixture profile", "builtin": True, "options": options},
        "endpoints": [{"url": "http://127.0.0.1:11434", "kind": "ollama", "version": "0.12.3"}],
        "workload": {
            "prompt_label": "short",
            "prompt": "Explain in two sentences what a GPU does during LLM inference.",
            "api": "generate",
            "runs": 4,
            "warmup": 1,
            "cold": False,
            "unique_prompt": True,
            "keep_alive": "30m",
            "num_predict": 64,
            "options_sent": {**options, "num_predict": 64},
        },
        "timeouts": {"connect_s": 5.0, "first_byte_s": 300.0, "idle_s": 60.0},
        "environment": {
            "hostname": "bench-box",
            "os": "Linux 6.8.0",
            "python": "3.11.9",
            "cpu": "AMD Ryzen 9 7950X 16-Core Processor",
            "cpu_cores_logical": 32,
            "cpu_cores_physical": 16,
            "ram_total_bytes": 68_719_476_736,
            "pid": 4242,
            "gpu_status": "ok",
            "gpu_driver": "550.54.14",
            "gpus": [{"index": 0, "name": "NVIDIA GeForce RTX 4090", "memory_total_bytes": 25_757_220_864}],
        },
        "result": {"status": "complete", "finished_at": "2026-01-01T12:01:00.000Z"},
    }


def _session(
    session_id: str,
    profile: str,
    options: dict[str, Any],
    rates: list[float],
    ttfts: list[float],
    extra: list[RunRecord] | None = None,
) -> Session:
    runs = [
        RunRecord(
            index=0,
            warmup=True,
            status="ok",
            started_at="2026-01-01T12:00:01.000Z",
            metrics=_metrics(rates[0] * 0.9, ttfts[0] * 3, load=850.0),
            prompt="[run 0000] prompt",
            response="Warm-up answer.",
        )
    ]
    for i, (rate, ttft) in enumerate(zip(rates, ttfts, strict=True), start=1):
        runs.append(
            RunRecord(
                index=i,
                warmup=False,
                status="ok",
                started_at=f"2026-01-01T12:00:{10 + i:02d}.000Z",
                metrics=_metrics(rate, ttft),
                prompt=f"[run {i:04d}] prompt",
                response=f"A GPU runs the matrix multiplications of run {i} in parallel.",
            )
        )
    runs += extra or []
    return Session(
        path=Path("sessions") / session_id,
        manifest=_manifest(session_id, profile, options),
        runs=runs,
        status="complete",
        aggregates=compute_aggregates(runs),
    )


def session_a() -> Session:
    failed = RunRecord(
        index=5,
        warmup=False,
        status="failed",
        started_at="2026-01-01T12:00:30.000Z",
        metrics=CallMetrics(ttft_ms=44.0, token_count=3, thinking_token_count=0),
        error_kind="idle_timeout",
        error="no token for 60 s",
        prompt="[run 0005] prompt",
        response="A GPU",
    )
    return _session(
        "20260101-120000-llama3.2-1b-baseline-a1b2",
        "baseline_default",
        {},
        [100.0, 102.5, 98.75, 101.25],
        [45.25, 47.75, 44.0, 46.0],
        [failed],
    )


def session_b() -> Session:
    cancelled = RunRecord(
        index=5, warmup=False, status="cancelled", started_at="2026-01-01T12:00:31.000Z", error="cancelled"
    )
    return _session(
        "20260101-121000-llama3.2-1b-gpu_offload-c3d4",
        "gpu_offload",
        {"num_gpu": 99, "num_ctx": 4096, "temperature": 0.7},
        [120.25, 118.75, 121.5, 119.5],
        [38.5, 40.0, 39.25, 37.75],
        [cancelled],
    )


HOSTILE_RESPONSE = (
    "<script>alert(1)</script>\n"
    "</pre><img src=x onerror=alert(1)>\n"
    "| injected | cell |\n"
    "````\n# not a heading\n```\n"
    "\x1b]52;c;ZXZpbA==\x07clipboard\x1b[31mred\x1b[0m\n"
)


def hostile_session() -> Session:
    s = session_a()
    s.manifest.id = "../../etc/passwd"
    s.manifest.model.name = "evil`model|x"
    s.manifest.profile.name = '=HYPERLINK("http://x")<b onmouseover=alert(1)>*p*|q</b>'
    s.manifest.profile.options = {"<script>": "</td>|x"}
    s.manifest.workload.prompt = "```\n</pre><script>alert(2)</script>\n```"
    s.manifest.environment["gpu_status"] = "\x1b[2J<iframe src=//x>"
    for run in s.runs:
        run.response = HOSTILE_RESPONSE
        run.thinking = "<svg onload=alert(3)>"
    s.runs[-1].error = "=cmd|' /C calc'!A0 | injected | cell |\x1b]8;;http://x\x07link"
    s.runs[-1].error_kind = "@SUM(1+1)"
    s.runs[-1].metrics.done_reason = "-2+3"
    return s


# -- golden files ------------------------------------------------------------------------------------
def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        return
    if not path.is_file():
        pytest.fail(f"missing golden file {path}; create it with CHIMERA_UPDATE_GOLDEN=1")
    expected = path.read_bytes().decode("utf-8")
    assert text == expected, f"{name} differs from its golden file (CHIMERA_UPDATE_GOLDEN=1 rewrites it)"


@pytest.mark.parametrize("fmt", FORMATS)
def test_session_export_matches_golden(fmt: str) -> None:
    _golden(f"session.{fmt}", export_sessions([session_a()], fmt))


@pytest.mark.parametrize("fmt", FORMATS)
def test_comparison_export_matches_golden(fmt: str) -> None:
    _golden(f"comparison.{fmt}", export_sessions([session_a(), session_b()], fmt))


def test_exports_are_deterministic() -> None:
    for fmt in FORMATS:
        assert export_sessions([session_a(), session_b()], fmt) == export_sessions(
            [session_a(), session_b()], fmt
        )


# -- content -----------------------------------------------------------------------------------------
def test_session_markdown_has_every_section() -> None:
    md = export_sessions([session_a()], "md")
    for needle in (
        "## 1. Configuration",
        "| profile options | none set: Ollama defaults |",
        "| quantization | Q8\\_0 |",
        "| Ollama version | 0.12.3 |",
        "| GPU 0 | NVIDIA GeForce RTX 4090 (24.0 GiB) |",
        "| GPU driver | 550.54.14 |",
        "| keep\\_alive | 30m |",
        "```text\nExplain in two sentences",
        "| metric | mean | stddev | CV% | min | max | 95% CI | n |",
        "| decode rate (server) (tok/s) | 100.62 |",
        "- run 5: failed: idle\\_timeout: no token for 60 s",
        "docs/metrics.md",
    ):
        assert needle in md, needle
    assert "bench-box" not in md  # the host name stays out of shareable reports


def test_comparison_markdown_table() -> None:
    md = export_sessions([session_a(), session_b()], "md")
    row = next(line for line in md.splitlines() if line.startswith("| decode rate (server)"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1].startswith("100.62 ± ")
    assert cells[2].startswith("120.00 ± ")
    assert cells[3] == "+19.38 (+19.3%)"
    assert cells[4] == "faster (p = 0.029)"
    options = "| profile options | none set: Ollama defaults | 3 set |\n| option num\\_gpu | (default) | 99 |"
    assert options in md
    assert "> - not comparable" not in md  # same prompt, model, server, GPU


def test_gpu_reason_when_there_is_none() -> None:
    s = session_a()
    s.manifest.environment.update(gpus=[], gpu_status="no NVIDIA GPU/driver found")
    s.manifest.environment.pop("gpu_driver")
    assert "| GPU | none (no NVIDIA GPU/driver found) |" in export_sessions([s], "md")


def test_three_sessions_get_a_delta_per_session() -> None:
    md = export_sessions([session_a(), session_b(), session_b()], "md")
    header = next(line for line in md.splitlines() if line.startswith("| metric |") and "verdict" in line)
    assert header.count("verdict") == 2 and header.count("Δ") == 2


# -- hostile text ------------------------------------------------------------------------------------
class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [name for name, _ in attrs]


@pytest.mark.parametrize("count", [1, 2])
def test_html_shows_hostile_text_without_running_it(count: int) -> None:
    page = export_sessions([hostile_session()] * count, "html")
    parser = _Tags()
    parser.feed(page)
    assert {"script", "img", "iframe", "b"}.isdisjoint(parser.tags)
    assert "svg" in parser.tags  # our charts, and only ours
    assert not [a for a in parser.attrs if a.startswith("on")]
    assert "<script" not in page.lower() and "\x1b" not in page and "\x07" not in page
    assert "default-src &#x27;none&#x27;" not in page  # the CSP is written as-is ...
    assert "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\"" in page  # ... here
    if count == 1:
        assert "&lt;/pre&gt;&lt;img src=x onerror=alert(1)&gt;" in page
        assert "<pre>&lt;script&gt;alert(1)&lt;/script&gt;" in page


def _table_pipes(line: str) -> int:
    """Unescaped pipes in a Markdown table line (a pipe after an odd run of backslashes is text)."""
    count, backslashes = 0, 0
    for ch in line:
        if ch == "|" and backslashes % 2 == 0:
            count += 1
        backslashes = backslashes + 1 if ch == "\\" else 0
    return count


def _outside_fences(md: str) -> str:
    out, fence = [], None
    for line in md.splitlines():
        run = re.match(r"^(`{3,})", line)
        if fence is None and run:
            fence = run.group(1)
        elif fence is not None and line == fence:
            fence = None
        elif fence is None:
            out.append(line)
    assert fence is None, "a code block was left open"
    return "\n".join(out)


@pytest.mark.parametrize("count", [1, 2])
def test_markdown_keeps_its_structure_with_hostile_text(count: int) -> None:
    md = export_sessions([hostile_session()] * count, "md")
    assert "\x1b" not in md and "\x07" not in md
    lines = md.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("|"):
            width = _table_pipes(lines[i])
            while i < len(lines) and lines[i].startswith("|"):
                assert _table_pipes(lines[i]) == width, lines[i]
                i += 1
        i += 1
    prose = _outside_fences(md)
    assert "<" not in prose and "`" not in prose.replace("\\`", "")
    headings = [line for line in prose.splitlines() if line.startswith("#")]
    clean = _outside_fences(export_sessions([session_a()] * count, "md"))
    assert len(headings) == len([line for line in clean.splitlines() if line.startswith("#")])
    assert not any("not a heading" in h for h in headings)
    if count == 1:
        # the response's backtick runs (up to 4) get a longer fence, so the block holds all of it
        assert "`````text\n<script>alert(1)</script>\n</pre><img src=x onerror=alert(1)>\n" in md


def test_markdown_escaping() -> None:
    assert md_text("a|b") == "a\\|b"
    assert md_text("<b>&") == "&lt;b&gt;&amp;"
    assert md_text("# h") == "\\# h" and md_text("1. x") == "1\\. x" and md_text("- x") == "\\- x"
    assert md_text("-0.5") == "-0.5" and md_text("1.5") == "1.5"
    assert md_text("*a* _b_ [c](d) `e` ~f~ $g$") == "\\*a\\* \\_b\\_ \\[c\\](d) \\`e\\` \\~f\\~ \\$g\\$"
    assert md_text("two\nlines\x1b[31m") == "two lines"
    assert md_fence("a ``` b ````` c") == "``````text\na ``` b ````` c\n``````"
    assert md_fence("plain") == "```text\nplain\n```"


def test_csv_neutralizes_formulas_and_keeps_numbers() -> None:
    text = export_sessions([hostile_session()], "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert rows[0]["profile"].startswith("'=HYPERLINK")
    last = rows[-1]
    assert last["error"].startswith("'=cmd|") and "\x1b" not in last["error"]
    assert last["error_kind"] == "'@SUM(1+1)" and last["done_reason"] == "'-2+3"
    assert last["status"] == "failed" and last["server_decode_rate"] == "" and last["ttft_ms"] == "44.0"
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())


def test_csv_has_every_call_of_every_session() -> None:
    a, b = session_a(), session_b()
    rows = list(csv.DictReader(io.StringIO(calls_csv([a, b]))))
    assert len(rows) == len(a.runs) + len(b.runs)
    assert [r["warmup"] for r in rows[:2]] == ["true", "false"]
    assert {r["status"] for r in rows} == {"ok", "failed", "cancelled"}
    assert rows[1]["server_decode_rate"] == "100.0" and rows[1]["eval_count"] == "64"
    # unlabelled sessions read as `model · profile`; the run column holds the one numbering
    assert rows[-1]["label"] == "llama3.2:1b · gpu_offload" and rows[-1]["profile"] == "gpu_offload"
    assert [r["run"] for r in rows[:3]] == ["w1", "1", "2"]


# -- file names and writing ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ids",
    [
        ["../../etc/passwd"],
        [".."],
        ["..", "../.."],
        ["a/../../b", "/abs/path"],
        ["...hidden"],
        ["\x00\x1b[31m"],
        ["x" * 300, "y" * 300, "z" * 300],
        ["C:\\Windows\\system32", "con"],
    ],
)
@pytest.mark.parametrize("fmt", FORMATS)
def test_default_filename_cannot_escape(ids: list[str], fmt: str, tmp_path: Path) -> None:
    sessions = [_session(i, "p", {}, [1.0], [1.0]) for i in ids]
    name = default_filename(sessions, fmt)
    assert re.fullmatch(r"[A-Za-z0-9._-]+", name), name
    assert ".." not in name and not name.startswith((".", "-")) and name.endswith(f".{fmt}")
    assert len(name) <= 120
    assert (tmp_path / name).resolve().parent == tmp_path.resolve()


def test_default_filename_names_the_sessions() -> None:
    assert default_filename([session_a()], "md") == "20260101-120000-llama3.2-1b-baseline-a1b2.md"
    name = default_filename([session_a(), session_b()], "html")
    assert name.startswith("compare-20260101-120000") and "-vs-" in name


def test_write_export(tmp_path: Path) -> None:
    target = tmp_path / "out" / default_filename([session_a()], "html")
    assert write_export(export_sessions([session_a()], "html"), target) == target
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        export_sessions([session_a()], "pdf")
    with pytest.raises(ValueError, match="no sessions"):
        export_sessions([], "md")
    with pytest.raises(ValueError):
        default_filename([session_a()], "../md")


# -- JSON ------------------------------------------------------------------------------------------
def test_json_round_trips_with_schema_and_chimeraforge() -> None:
    doc = json.loads(export_sessions([session_a()], "json"))
    assert doc["schema_version"] == SCHEMA_VERSION and doc["export_schema"] == EXPORT_SCHEMA
    assert doc["session"]["manifest"]["id"] == session_a().id
    assert len(doc["session"]["runs"]) == 6 and doc["session"]["runs"][5]["error"] == "no token for 60 s"
    assert doc["session"]["aggregates"]["server_decode_rate"]["n"] == 4
    forge = doc["chimeraforge"]
    assert {"agent_type", "configuration", "llm_calls", "aggregate_metrics"} <= set(forge)
    assert len(forge["llm_calls"]) == 4
    assert forge["llm_calls"][0]["metrics"]["throughput_tokens_per_sec"] == 100.0


def test_json_is_nan_free() -> None:
    s = session_a()
    s.runs[1].metrics.ttft_ms = math.nan
    s.runs[2].metrics.e2e_ms = math.inf
    s.manifest.profile.options = {"temperature": math.nan, "top_p": -math.inf}
    doc = session_json_doc(s)
    json.dumps(doc, allow_nan=False)
    assert doc["session"]["runs"][1]["metrics"]["ttft_ms"] is None
    assert doc["session"]["manifest"]["profile"]["options"] == {"temperature": None, "top_p": None}
    s.runs[2].metrics.e2e_ms = math.nan  # (compare_sessions treats NaN, not inf, as missing)
    out = export_sessions([s, session_b()], "json")
    assert "NaN" not in out and "Infinity" not in out
    json.loads(out)
    for fmt in FORMATS:
        assert export_sessions([s], fmt)


def test_comparison_json() -> None:
    doc = json.loads(export_sessions([session_a(), session_b()], "json"))
    assert doc["kind"] == "comparison" and [s["id"] for s in doc["sessions"]] == [
        session_a().id,
        session_b().id,
    ]
    assert doc["comparison"]["session_ids"] == [session_a().id, session_b().id]
    assert "chimeraforge" not in doc


# -- a session as written to disk --------------------------------------------------------------------
def test_exports_a_session_loaded_from_disk(tmp_path: Path) -> None:
    writer = SessionWriter(tmp_path, _manifest("ignored", "baseline_default", {}))
    for run in session_a().runs:
        writer.start_run(run)
        writer.finish_run(run)
    writer.finish("complete")
    loaded = load_session(writer.path)
    for fmt in FORMATS:
        assert export_sessions([loaded], fmt)
        assert export_sessions([loaded, session_b()], fmt)


def test_sessions_without_data_still_export() -> None:
    empty = Session(Path("sessions/x"), {"schema_version": 1, "id": "x"}, [], "incomplete", {})
    for fmt in FORMATS:
        assert export_sessions([empty], fmt)
        assert export_sessions([empty, empty], fmt)
    assert "No successful measured runs" in export_sessions([empty], "md")


# -- charts ------------------------------------------------------------------------------------------
def test_charts_escape_and_are_deterministic() -> None:
    series = [("<b>a</b>", [1.0, 2.5, math.nan]), ("b&c", [3.0]), ("none", [])]
    runs = [RunSeries(label, [(str(i + 1), v) for i, v in enumerate(vs)], "id<1>") for label, vs in series]
    svg = per_run_svg("t<itle>", runs, 'm"s')
    assert svg == per_run_svg("t<itle>", runs, 'm"s')
    assert "<b>" not in svg and "&lt;b&gt;a&lt;/b&gt;" in svg and "t&lt;itle&gt;" in svg
    assert "id&lt;1&gt;" in svg  # the legend names each session's id
    box = distribution_svg("d", series, "ms", ["id-a"])
    assert "&lt;b&gt;" in box and "no data" in box and "id-a" in box
    assert "no data" in per_run_svg("x", [RunSeries("a", [])], "ms")
    assert "no data" in distribution_svg("x", [], "ms")


def test_per_run_chart_shows_spread_with_mean_and_ci() -> None:
    """A 0.3% spread of a rate fills the axis (not from zero); each run is a dot labelled with the
    one numbering; the mean is a line and the 95% CI a band; a legend entry per series."""
    points = [("1", 100.0), ("2", 100.3), ("3", 100.1)]
    svg = per_run_svg("rate", [RunSeries("a", points, "sess-a"), RunSeries("b", points, "sess-b")], "tok/s")
    ticks = re.findall(r'text-anchor="end" fill="currentColor">([0-9.]+)</text>', svg)
    assert float(ticks[0]) >= 99  # the axis does not start at zero
    assert svg.count("<circle") == 6 and "a run 2: 100.30 tok/s" in svg
    assert "95% CI" in svg and "a mean: 100.13 tok/s" in svg
    assert "sess-a" in svg and "sess-b" in svg
    counts = per_run_svg("n", [RunSeries("a", points)], "tokens", from_zero=True)
    assert ">0</text>" in counts


def test_nice_ticks_and_percentile() -> None:
    assert nice_ticks(0, 123.4) == ([0, 20, 40, 60, 80, 100, 120, 140], 0)
    assert nice_ticks(0.5, 0.5)[0][0] <= 0.45 and nice_ticks(0.5, 0.5)[0][-1] >= 0.55
    ticks, decimals = nice_ticks(8.52, 8.57)
    assert decimals == 2 and ticks[0] <= 8.52 and ticks[-1] >= 8.57
    assert percentile([1, 2, 3, 4], 25) == 1.75 and percentile([5], 50) == 5


# -- layering ----------------------------------------------------------------------------------------
def test_reports_package_is_light_and_ui_free() -> None:
    code = (
        "import sys, chimera_tui.core.reports as r\n"
        "assert 'numpy' not in sys.modules and 'textual' not in sys.modules\n"
        "import chimera_tui.core.reports.html_export, chimera_tui.core.reports.json_export\n"
        "import chimera_tui.core.reports.csv_export\n"
        "assert not any(m.split('.')[0] == 'textual' for m in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_one_signed_formatter_signs_agree() -> None:
    from chimera_tui.core.reports._common import fmt_delta, fmt_signed

    assert fmt_delta(-0.04, -0.2, 1) == "−0.0 (−0.2%)"  # never "+0.0 (−0.2%)"
    assert fmt_delta(0.04, 0.2, 1, "ms") == "+0.0 ms (+0.2%)"
    assert fmt_delta(0.0, 0.0, 1) == "±0.0 (±0.0%)"
    assert fmt_signed(None) == "—" and fmt_signed(math.nan) == "—" and fmt_signed(-1.25, 1, "%") == "−1.2%"
    assert fmt_delta(None, 3.0) == "—"
