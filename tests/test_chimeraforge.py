"""Chimeraforge (TR111 Rust agent) metrics.json: import, shapes, errors, export and round trip."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from chimera_tui.core.errors import SessionError
from chimera_tui.core.measure.compare import compare_sessions
from chimera_tui.core.measure.metrics import CallMetrics
from chimera_tui.core.store.chimeraforge import import_chimeraforge, import_chimeraforge_all, to_chimeraforge
from chimera_tui.core.store.sessions import SCHEMA_VERSION, RunRecord, Session, compute_aggregates

FIXTURE = Path(__file__).parent / "fixtures" / "chimeraforge_metrics.json"
BASELINE_RATES = [117.43, 111.62, 114.57]
BASELINE_TTFT = [672.1, 558.9, 579.6]
BASELINE_TOKENS = [2519, 2480, 2558]


def fixture_doc() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def write(tmp_path: Path, doc: Any, name: str = "metrics.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def per_call(session: Session) -> list[tuple[Any, ...]]:
    keys = ["server_decode_rate", "token_count", "eval_count", "ttft_ms", "eval_ms", "load_ms"]
    keys += ["prompt_eval_ms", "total_ms"]
    return [tuple(getattr(r.metrics, k) for k in keys) for r in session.runs]


# -- import ---------------------------------------------------------------------------------------


def test_import_maps_every_field() -> None:
    s = import_chimeraforge(FIXTURE)
    raw = fixture_doc()["baseline"]["llm_calls"]
    assert s.path == FIXTURE
    assert s.status == "complete"
    assert s.id == "chimeraforge-chimeraforge_metrics-Baseline"
    m = s.manifest.to_toml_dict()
    assert m["schema_version"] == SCHEMA_VERSION
    assert m["read_only"] is True
    assert m["label"] == "Baseline"
    assert m["mode"] == "single"
    assert m["source"]["kind"] == "chimeraforge" and m["source"]["path"] == str(FIXTURE)
    assert m["model"]["name"] == "gemma3:latest"
    assert m["profile"] == {"name": "Baseline", "options": {}}
    assert m["workload"]["prompt_label"] == "chimeraforge"
    assert m["workload"]["prompt"] == raw[0]["prompt"]

    assert len(s.runs) == 3
    for i, (run, call) in enumerate(zip(s.runs, raw, strict=True)):
        cm = call["metrics"]
        assert run.index == i and run.status == "ok" and not run.warmup
        assert run.prompt == call["prompt"] and run.response == call["response"]
        assert run.metrics.server_decode_rate == cm["throughput_tokens_per_sec"]
        assert run.metrics.token_count == run.metrics.eval_count == cm["tokens_generated"]
        assert run.metrics.ttft_ms == cm["ttft_ms"]
        assert run.metrics.eval_ms == cm["eval_duration_ms"]
        assert run.metrics.load_ms == cm["load_duration_ms"]
        assert run.metrics.prompt_eval_ms == cm["prompt_eval_duration_ms"]
        assert run.metrics.total_ms == cm["total_duration_ms"]
        for missing in ("client_decode_rate", "e2e_ms", "ttft_content_ms", "itl_p50_ms", "prompt_eval_rate"):
            assert getattr(run.metrics, missing) is None
    assert "stage analysis, run 1" in s.runs[0].notes[0]
    assert "stage report, run 1" in s.runs[1].notes[0]


def test_aggregates_are_ours_and_theirs_kept_for_reference() -> None:
    s = import_chimeraforge(FIXTURE)
    rate, ttft = s.aggregates["server_decode_rate"], s.aggregates["ttft_ms"]
    assert rate.n == 3
    assert rate.mean == pytest.approx(114.54, abs=0.005)
    assert rate.stddev == pytest.approx(statistics.stdev(BASELINE_RATES))
    assert ttft.mean == pytest.approx(603.53, abs=0.005)
    assert s.aggregates["client_decode_rate"].n == 0
    theirs = s.manifest.source["aggregate_metrics"]
    assert theirs["average_tokens_per_second"] == pytest.approx(114.54)
    assert theirs["total_tokens_generated"] == sum(BASELINE_TOKENS)
    result = s.manifest.result.to_toml_dict()
    assert result["status"] == "complete" and result["runs_ok"] == 3
    assert result["mean_server_decode_rate"] == pytest.approx(rate.mean)


def test_import_all_gives_one_session_per_execution() -> None:
    baseline, chimera = import_chimeraforge_all(FIXTURE)
    assert baseline.id.endswith("-Baseline") and chimera.id.endswith("-Chimera")
    assert chimera.manifest.profile.to_toml_dict() == {
        "name": "Chimera",
        "options": {"num_gpu": 60, "num_ctx": 256, "temperature": 0.6},
    }
    assert chimera.aggregates["server_decode_rate"].mean == pytest.approx(114.51, abs=0.005)
    assert chimera.aggregates["ttft_ms"].mean == pytest.approx(1346.82, abs=0.005)
    assert chimera.runs[0].metrics.load_ms == pytest.approx(3021.88)
    # and they compare: 3 vs 3 with overlapping CIs is within noise
    c = compare_sessions([baseline, chimera])
    assert c.labels == ["Baseline", "Chimera"]
    assert c.metric("server_decode_rate").columns[1].verdict == "within noise"
    assert not any(w.startswith("not comparable") for w in c.warnings)


# -- shapes ---------------------------------------------------------------------------------------


def test_list_of_executions_and_single_execution(tmp_path: Path) -> None:
    doc = fixture_doc()
    executions = [doc["baseline"], doc["chimera"]]
    as_list = import_chimeraforge_all(write(tmp_path, executions, "list.json"))
    assert [s.manifest.label for s in as_list] == ["Baseline", "Chimera"]
    single = import_chimeraforge_all(write(tmp_path, doc["chimera"], "one.json"))
    assert len(single) == 1 and single[0].id == "chimeraforge-one-Chimera"
    wrapped = import_chimeraforge_all(write(tmp_path, {"executions": executions}, "wrapped.json"))
    assert [s.manifest.label for s in wrapped] == ["Baseline", "Chimera"]


def test_keyed_object_names_agents_without_agent_type(tmp_path: Path) -> None:
    doc = fixture_doc()
    for execution in doc.values():
        del execution["agent_type"]
    sessions = import_chimeraforge_all(write(tmp_path, doc))
    assert [s.manifest.profile.name for s in sessions] == ["baseline", "chimera"]
    assert [s.id for s in sessions] == ["chimeraforge-metrics-baseline", "chimeraforge-metrics-chimera"]


def test_enum_agent_type_as_object(tmp_path: Path) -> None:
    execution = fixture_doc()["chimera"]
    execution["agent_type"] = {"Chimera": {"tier": "balanced"}}
    assert import_chimeraforge(write(tmp_path, execution)).manifest.label == "Chimera"


def test_bare_list_of_calls_and_missing_fields(tmp_path: Path) -> None:
    calls = [
        {"metrics": {"throughput_tokens_per_sec": 100.0, "tokens_generated": 500}},
        {"stage": "report", "metrics": {"tokens_generated": 400, "eval_duration_ms": 4000.0}},
        {"metrics": {"throughput_tokens_per_sec": None, "ttft_ms": "fast", "load_duration_ms": -1}},
    ]
    s = import_chimeraforge(write(tmp_path, calls, "bare.json"))
    assert s.id == "chimeraforge-bare"
    assert s.manifest.model.name == "unknown"
    assert s.manifest.profile.to_toml_dict() == {"name": "chimeraforge", "options": {}}
    assert s.manifest.workload.prompt is None
    a, b, c = s.runs
    assert a.metrics.server_decode_rate == 100.0 and a.metrics.ttft_ms is None
    assert b.metrics.server_decode_rate == pytest.approx(100.0)  # derived: 400 tokens / 4 s
    assert c.metrics == CallMetrics()  # null, a string and a negative number are all missing
    assert a.prompt is None and a.response == ""
    assert s.aggregates["server_decode_rate"].n == 2


def test_call_without_metrics_is_a_failed_run(tmp_path: Path) -> None:
    execution = fixture_doc()["baseline"]
    del execution["llm_calls"][1]["metrics"]
    s = import_chimeraforge(write(tmp_path, execution))
    assert [r.status for r in s.runs] == ["ok", "failed", "ok"]
    assert s.aggregates["server_decode_rate"].n == 2
    assert s.manifest.result.runs_failed == 1


def test_duplicate_agent_types_get_unique_ids(tmp_path: Path) -> None:
    b = fixture_doc()["baseline"]
    ids = [s.id for s in import_chimeraforge_all(write(tmp_path, [b, b]))]
    assert ids == ["chimeraforge-metrics-Baseline", "chimeraforge-metrics-Baseline-2"]


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ('{"hello": "world"}', "not a Chimeraforge metrics file"),
        ("[1, 2, 3]", "not a Chimeraforge metrics file"),
        ('"text"', "not a Chimeraforge metrics file"),
        ('{"agent_type": "Baseline", "llm_calls": []}', "holds no LLM calls"),
        ('{"baseline": {"llm_calls": []}, "chimera": {"llm_calls": []}}', "holds no LLM calls"),
    ],
)
def test_malformed_files_raise_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SessionError, match=message) as info:
        import_chimeraforge(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(SessionError, match="no such file"):
        import_chimeraforge(tmp_path / "absent.json")
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SessionError, match="not a text file"):
        import_chimeraforge(binary)
    with pytest.raises(SessionError, match="cannot read"):
        import_chimeraforge(tmp_path)  # a directory


# -- export ---------------------------------------------------------------------------------------


def test_round_trip_keeps_per_call_values(tmp_path: Path) -> None:
    for original in import_chimeraforge_all(FIXTURE):
        exported = to_chimeraforge(original)
        back = import_chimeraforge(write(tmp_path, exported, f"{original.manifest.label}.json"))
        assert per_call(back) == per_call(original)
        assert [r.prompt for r in back.runs] == [r.prompt for r in original.runs]
        assert [r.response for r in back.runs] == [r.response for r in original.runs]
        assert back.manifest.profile == original.manifest.profile
        assert back.manifest.model == original.manifest.model
        assert back.manifest.source["chimera_tui"]["session_id"] == original.id


def test_export_shape_and_aggregates() -> None:
    session = import_chimeraforge(FIXTURE)
    out = to_chimeraforge(session)
    json.dumps(out, allow_nan=False)
    assert out["agent_type"] == "Baseline"
    assert out["configuration"] == {}
    assert [c["run_number"] for c in out["llm_calls"]] == [1, 2, 3]
    assert {c["stage"] for c in out["llm_calls"]} == {"benchmark"}
    assert set(out["llm_calls"][0]["metrics"]) == {
        "throughput_tokens_per_sec",
        "tokens_generated",
        "ttft_ms",
        "eval_duration_ms",
        "load_duration_ms",
        "prompt_eval_duration_ms",
        "total_duration_ms",
    }
    agg = out["aggregate_metrics"]
    assert agg["average_tokens_per_second"] == pytest.approx(statistics.mean(BASELINE_RATES))
    assert agg["stddev_throughput"] == pytest.approx(statistics.stdev(BASELINE_RATES))
    assert agg["average_ttft_ms"] == pytest.approx(statistics.mean(BASELINE_TTFT))
    assert agg["stddev_ttft"] == pytest.approx(statistics.stdev(BASELINE_TTFT))
    assert agg["total_tokens_generated"] == sum(BASELINE_TOKENS)
    theirs = session.manifest.source["aggregate_metrics"]
    for key in ("eval_duration_ms", "load_duration_ms", "prompt_eval_duration_ms", "total_duration_ms"):
        assert agg[key] == pytest.approx(theirs[key])  # sums, as in the fixture
    assert out["chimera_tui"] == {
        "schema_version": SCHEMA_VERSION,
        "session_id": session.id,
        "model": "gemma3:latest",
    }


def test_export_of_a_native_session_only_measured_ok_and_nulls() -> None:
    first_metrics = CallMetrics(server_decode_rate=100.0, token_count=5)
    runs = [
        RunRecord(0, True, "ok", "", metrics=CallMetrics(server_decode_rate=999.0)),
        RunRecord(1, False, "ok", "", prompt="p1", metrics=first_metrics),
        RunRecord(2, False, "failed", "", metrics=CallMetrics(server_decode_rate=1.0)),
        RunRecord(3, False, "ok", "", metrics=CallMetrics(eval_count=60, token_count=61, ttft_ms=80.0)),
    ]
    manifest = {
        "id": "native",
        "model": {"name": "gemma3:latest"},
        "profile": {"name": "baseline_default", "options": {"num_ctx": 2048}},
        "workload": {"prompt": "Say hello."},
    }
    out = to_chimeraforge(Session(Path("native"), manifest, runs, "complete", compute_aggregates(runs)))
    json.dumps(out, allow_nan=False)
    assert out["agent_type"] == "baseline_default" and out["configuration"] == {"num_ctx": 2048}
    first, second = out["llm_calls"]
    assert first["prompt"] == "p1" and second["prompt"] == "Say hello."
    assert first["metrics"]["tokens_generated"] == 5  # token_count when eval_count is missing
    assert second["metrics"]["tokens_generated"] == 60  # eval_count preferred
    assert second["metrics"]["throughput_tokens_per_sec"] is None  # null: Rust's f64 would reject it
    assert first["metrics"]["eval_duration_ms"] is None
    agg = out["aggregate_metrics"]
    assert agg["average_tokens_per_second"] == 100.0 and agg["stddev_throughput"] is None
    assert agg["total_tokens_generated"] == 65 and agg["eval_duration_ms"] is None


def test_export_of_an_empty_session() -> None:
    out = to_chimeraforge(Session(Path("empty"), {}, [], "failed", compute_aggregates([])))
    assert out["llm_calls"] == [] and out["agent_type"] == "unknown"
    assert out["aggregate_metrics"]["average_tokens_per_second"] is None
    json.dumps(out, allow_nan=False)
