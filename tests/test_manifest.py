"""The typed session manifest: version-1 sessions on disk still load and render; tolerant reading."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest
import tomli_w

from chimera_tui.cli.output import session_json, summary_table
from chimera_tui.core.errors import SessionError
from chimera_tui.core.measure.compare import compare_sessions
from chimera_tui.core.measure.concurrency import RoundMetrics
from chimera_tui.core.reports import export_sessions
from chimera_tui.core.store.manifest import Manifest, Result, Workload
from chimera_tui.core.store.session_store import SessionStore
from chimera_tui.core.store.sessions import MANIFEST, load_session

V1 = Path(__file__).parent / "fixtures" / "sessions_v1"
SINGLE = V1 / "20261201-100902-gemma3-latest-baseline_default-4d23"
DUAL = V1 / "20261201-100907-gemma3-latest-baseline_default-6d40"


def raw(folder: Path) -> dict[str, object]:
    return tomllib.loads((folder / MANIFEST).read_text(encoding="utf-8"))


@pytest.mark.parametrize("folder", [SINGLE, DUAL], ids=["single", "dual"])
def test_v1_manifest_reads_typed_and_writes_back_the_same_document(folder: Path) -> None:
    doc = raw(folder)
    manifest = Manifest.from_dict(doc)
    assert manifest.schema_version == 1 and manifest.model_name == "gemma3:latest"
    assert manifest.extra == {} and manifest.to_toml_dict() == doc
    assert list(manifest.to_toml_dict()) == list(doc)  # key order kept too


def test_v1_single_session_loads_and_renders() -> None:
    s = load_session(SINGLE)
    m = s.manifest
    assert isinstance(m, Manifest) and m.mode == "single" and s.status == "complete"
    assert m.workload is not None and m.workload.runs == 2 and m.workload.cold is False
    assert m.timeouts is not None and m.timeouts.first_byte_s == 300.0
    assert m.result is not None and m.result.runs_ok == 2 and m.result.mean_server_decode_rate
    assert m.endpoint_list[0].version == "0.33.0" and s.rounds == []
    table = summary_table(s)
    assert "gemma3:latest · baseline_default: 2 ok" in table and "decode rate (server)" in table
    md = export_sessions([s], "md")
    assert "# Benchmark report: gemma3:latest · baseline\\_default" in md
    for fmt in ("json", "csv", "html"):
        assert export_sessions([s], fmt)
    assert session_json(s)["endpoints"][0]["version"] == "0.33.0"


def test_v1_dual_session_loads_rounds_as_dataclasses_and_renders() -> None:
    s = load_session(DUAL)
    assert s.manifest.mode == "dual" and len(s.manifest.agent_list) == 2
    agent = s.manifest.agent_list[1]
    assert agent.index == 1 and agent.model is not None and agent.model.name == "gemma3:latest"
    assert s.manifest.concurrency is not None and s.manifest.concurrency.agents == 2
    assert s.rounds and all(isinstance(r, RoundMetrics) for r in s.rounds)
    assert [r.warmup for r in s.rounds] == [True, False, False]
    # a round saved before the three efficiencies: its efficiency_pct reads as the overlap figure
    assert all(r.overlap_efficiency_pct and r.overlap_efficiency_pct > 50 for r in s.rounds)
    assert all(r.research_efficiency_pct is not None for r in s.rounds if r.status == "ok")
    table = summary_table(s)
    assert "mode dual: 2 agents" in table and "overlap efficiency (%)" in table
    assert "not available: per-agent send / first-token / end times not saved" in table
    md = export_sessions([s], "md")
    assert "### Concurrency: dual mode, 2 agents" in md
    assert export_sessions([s], "html") and export_sessions([s], "json")


def test_v1_sessions_compare_and_list() -> None:
    single, dual = load_session(SINGLE), load_session(DUAL)
    comparison = compare_sessions([single, dual])
    assert comparison.metric("server_decode_rate").columns[1].verdict
    md = export_sessions([single, dual], "md")
    assert "overlap efficiency (rounds)" in md and "agent 2" in md  # older rounds, compared per agent
    summaries, broken = SessionStore(V1).summaries()
    assert not broken and {x.mode for x in summaries} == {"single", "dual"}
    assert all(x.status == "complete" and x.runs_ok for x in summaries)


def test_missing_keys_are_none_and_wrong_leaf_types_are_none() -> None:
    m = Manifest.from_dict({"schema_version": 1, "model": {"name": 3, "size_bytes": 1.5}, "label": 7})
    assert m.model is not None and m.model.name is None and m.model.size_bytes is None
    assert m.label is None and m.workload is None and m.result is None and m.endpoint_list == []
    w = Workload.from_dict({"runs": True, "cold": "no", "keep_alive": 300, "files": ["a", 2]})
    assert w.runs is None and w.cold is None and w.keep_alive == 300 and w.files == ["a"]
    assert Result.from_dict({"mean_ttft_ms": 12}).mean_ttft_ms == 12.0  # an int where a float goes


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": "gemma"}, "'model' must be a table"),
        ({"agents": {"a": 1}}, "'agents' must be an array of tables"),
        ({"agents": [{"model": 1}]}, "'agents[0].model' must be a table"),
    ],
)
def test_a_table_of_the_wrong_type_is_a_one_line_session_error(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    folder = tmp_path / SINGLE.name
    shutil.copytree(SINGLE, folder)
    (folder / MANIFEST).write_text(tomli_w.dumps({**raw(SINGLE), **change}), encoding="utf-8")
    with pytest.raises(SessionError) as info:
        load_session(folder)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith(f"{folder.name}: {MANIFEST}: ")


def test_relabel_keeps_unknown_keys(tmp_path: Path) -> None:
    folder = tmp_path / SINGLE.name
    shutil.copytree(SINGLE, folder)
    doc = raw(SINGLE)
    doc["future_table"] = {"x": 1}
    assert isinstance(doc["model"], dict)
    doc["model"]["future_key"] = "kept"
    (folder / MANIFEST).write_text(tomli_w.dumps(doc), encoding="utf-8")
    SessionStore(tmp_path).set_label(folder, "relabelled")
    after = raw(folder)
    assert after["label"] == "relabelled" and after["future_table"] == {"x": 1}
    assert isinstance(after["model"], dict) and after["model"]["future_key"] == "kept"
    del after["label"]
    assert after == doc
