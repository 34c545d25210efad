"""Sessions: round trip, atomic writes, crash recovery, corrupt and foreign folders."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chimera_tui.core.errors import SessionError
from chimera_tui.core.measure.metrics import CallMetrics
from chimera_tui.core.store.atomic import atomic_write_text
from chimera_tui.core.store.session_store import SessionStore
from chimera_tui.core.store.sessions import (
    METRICS,
    SCHEMA_VERSION,
    RunRecord,
    SessionWriter,
    load_session,
    safe_slug,
)

MANIFEST = {"mode": "single", "model": {"name": "gemma3:latest"}, "profile": {"name": "baseline_default"}}


def record(index: int, rate: float | None, warmup: bool = False, status: str = "ok") -> RunRecord:
    return RunRecord(
        index,
        warmup,
        status,
        "2026-01-01T00:00:00Z",  # type: ignore[arg-type]
        metrics=CallMetrics(server_decode_rate=rate, ttft_ms=100.0 + index, token_count=10),
    )


def test_round_trip_and_aggregates_exclude_warmup_and_failures(tmp_path: Path) -> None:
    w = SessionWriter(tmp_path, MANIFEST)
    for r in [
        record(0, 999.0, warmup=True),
        record(1, 100.0),
        record(2, 110.0),
        record(3, None, status="failed"),
    ]:
        w.start_run(r)
        w.finish_run(r)
    w.finish("complete")
    s = load_session(w.path)
    assert s.status == "complete"
    assert s.manifest.schema_version == SCHEMA_VERSION
    assert s.manifest.model.name == "gemma3:latest"
    assert [r.status for r in s.runs] == ["ok", "ok", "ok", "failed"]
    agg = s.aggregates["server_decode_rate"]
    assert agg.n == 2 and agg.mean == pytest.approx(105.0)
    assert s.counts == {"ok": 2, "failed": 1, "cancelled": 0, "incomplete": 0, "warmup": 1}
    assert s.manifest.result.runs_ok == 2


def test_each_finished_run_is_on_disk_before_the_next(tmp_path: Path) -> None:
    w = SessionWriter(tmp_path, MANIFEST)
    r = record(0, 50.0)
    w.start_run(r)
    on_disk = json.loads((w.path / METRICS).read_text())
    assert on_disk["runs"][0]["status"] == "in_flight"
    w.finish_run(r)
    on_disk = json.loads((w.path / METRICS).read_text())
    assert on_disk["runs"][0]["status"] == "ok"
    assert on_disk["aggregates"]["server_decode_rate"]["mean"] == 50.0


def test_killed_writer_leaves_completed_runs_and_an_incomplete_one(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from chimera_tui.core.measure.metrics import CallMetrics
        from chimera_tui.core.store.sessions import RunRecord, SessionWriter
        w = SessionWriter(Path({str(tmp_path)!r}), {MANIFEST!r})
        for i in range(2):
            r = RunRecord(i, False, "ok", "t", metrics=CallMetrics(server_decode_rate=100.0 + i))
            w.start_run(r)
            w.finish_run(r)
        w.start_run(RunRecord(2, False, "ok", "t"))
        os._exit(9)  # dies mid-run, like SIGKILL: no cleanup runs
    """)
    subprocess.run([sys.executable, "-c", script], check=False)
    (folder,) = list(tmp_path.iterdir())
    s = load_session(folder)
    assert s.status == "incomplete"
    assert [r.status for r in s.runs] == ["ok", "ok", "incomplete"]
    assert s.aggregates["server_decode_rate"].n == 2


def test_atomic_write_leaves_old_content_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f.json"
    atomic_write_text(target, "old")

    def boom(*_a: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temp file left behind


def test_unwritable_sessions_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SessionError, match="cannot create session folder"):
        SessionWriter(blocker, MANIFEST)


def test_listing_tolerates_corrupt_and_foreign_folders(tmp_path: Path) -> None:
    good = SessionWriter(tmp_path, MANIFEST)
    good.finish("complete")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    bad_toml = tmp_path / "bad-toml"
    bad_toml.mkdir()
    (bad_toml / "session.toml").write_text("this = = not toml")
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "session.toml").write_text(f"schema_version = {SCHEMA_VERSION}\nid = 'truncated'\n")
    (truncated / "metrics.json").write_text('{"runs": [{"index": 0, ')
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "session.toml").write_text("schema_version = 99\n")
    (tmp_path / "stray.txt").write_text("not a folder")

    sessions, broken = SessionStore(tmp_path).load_all()
    assert [s.path for s in sessions] == [good.path]
    reasons = {b.path.name: b.reason for b in broken}
    assert "not a session" in reasons["notes"]
    assert "unreadable session.toml" in reasons["bad-toml"]
    assert "corrupt metrics.json" in reasons["truncated"]
    assert "newer chimera-tui" in reasons["newer"]


def test_resolve_by_prefix_and_errors(tmp_path: Path) -> None:
    w = SessionWriter(tmp_path, MANIFEST)
    store = SessionStore(tmp_path)
    assert store.resolve(w.id[:20]) == w.path
    assert store.resolve(str(w.path)) == w.path
    with pytest.raises(SessionError, match="no session"):
        store.resolve("nope")


def test_folder_names_from_hostile_model_names_stay_inside_the_root(tmp_path: Path) -> None:
    w = SessionWriter(tmp_path, {"model": {"name": "../../etc/passwd"}, "profile": {"name": "a/b\x1b[31m"}})
    assert w.path.parent == tmp_path
    assert safe_slug("../..") == "x"


def test_summaries_read_manifests_only_and_report_status(tmp_path: Path) -> None:
    done = SessionWriter(tmp_path, MANIFEST)
    r = record(0, 120.0)
    done.start_run(r)
    done.finish_run(r)
    done.finish("complete")
    running = SessionWriter(tmp_path, MANIFEST)  # this process is alive: "running"
    (tmp_path / "junk").mkdir()
    rows, broken = SessionStore(tmp_path).summaries()
    by_id = {row.id: row for row in rows}
    assert by_id[done.id].status == "complete" and by_id[done.id].runs_ok == 1
    assert by_id[done.id].mean_tok_s == 120.0 and by_id[done.id].model == "gemma3:latest"
    assert by_id[running.id].status == "running" and by_id[running.id].runs_ok is None
    assert [b.path.name for b in broken] == ["junk"]


def test_label_and_delete_stay_inside_the_root(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "s")
    w = SessionWriter(store.root, MANIFEST)
    store.set_label(w.path, "  before   tuning ")
    assert load_session(w.path).manifest.label == "before tuning"
    outside = tmp_path / "outside"
    outside.mkdir()
    with pytest.raises(SessionError, match="not a session folder"):
        store.delete(outside)
    store.delete(w.path)
    assert not w.path.exists() and outside.exists()
