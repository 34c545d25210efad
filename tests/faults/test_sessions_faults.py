"""Session folders that are truncated, from a newer schema, or not sessions at all; the listing of a
thousand sessions without reading their metrics; profiles with wrong types, unknown keys, bad ranges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomli_w

from chimera_tui.core.errors import SessionError
from chimera_tui.core.store.profiles import ProfileStore
from chimera_tui.core.store.session_store import SessionStore
from chimera_tui.core.store.sessions import METRICS, SCHEMA_VERSION, SessionWriter, load_session


def good_session(root: Path, runs: int = 2) -> Path:
    from chimera_tui.core.store.sessions import RunRecord

    writer = SessionWriter(root, {"model": {"name": "m:latest"}, "profile": {"name": "p"}})
    for i in range(runs):
        writer.start_run(RunRecord(i, False, "ok", "2026-01-01T00:00:00Z"))
        writer.finish_run(RunRecord(i, False, "ok", "2026-01-01T00:00:00Z"))
    writer.finish("complete")
    return writer.path


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p: (p / METRICS).write_text((p / METRICS).read_text()[:50]), "corrupt metrics.json"),
        (lambda p: (p / METRICS).write_bytes(b"\xff\xfe\x00garbage"), "corrupt metrics.json"),
        (lambda p: (p / METRICS).write_text("[1, 2, 3]"), "corrupt metrics.json"),
        (lambda p: (p / METRICS).write_text('{"runs": {"a": 1}}'), "corrupt metrics.json"),
        (lambda p: (p / METRICS).write_text('{"runs": [{"index": "x"}]}'), "corrupt metrics.json"),
        (
            lambda p: (p / METRICS).write_text('{"runs": [{"index": 0, "metrics": "fast"}]}'),
            "corrupt metrics.json",
        ),
        (lambda p: (p / METRICS).unlink(), "metrics.json is missing"),
        (lambda p: (p / "session.toml").write_text("schema_version = 1\nid = "), "unreadable session.toml"),
        (lambda p: (p / "session.toml").write_text("id = 'x'\n"), "has no schema_version"),
        (lambda p: (p / "session.toml").write_text("schema_version = true\n"), "has no schema_version"),
        (
            lambda p: (p / "session.toml").write_text(f"schema_version = {SCHEMA_VERSION + 1}\n"),
            f"newer chimera-tui (schema {SCHEMA_VERSION + 1} > {SCHEMA_VERSION}); upgrade to read it",
        ),
        (
            lambda p: (p / "session.toml").write_text("schema_version = 1\nresult = 3\n"),
            "'result' must be a table",
        ),
        (lambda p: (p / "session.toml").unlink(), "not a session (no session.toml)"),
    ],
    ids=[
        "truncated-metrics",
        "binary-metrics",
        "metrics-a-list",
        "runs-not-a-list",
        "bad-index",
        "metrics-not-an-object",
        "no-metrics",
        "truncated-manifest",
        "no-schema",
        "bool-schema",
        "newer-schema",
        "result-not-a-table",
        "not-a-session",
    ],
)
def test_a_damaged_session_is_one_clear_reason_and_the_rest_still_list(
    tmp_path: Path, damage: object, reason: str
) -> None:
    root = tmp_path / "sessions"
    fine = good_session(root)
    bad = good_session(root)
    damage(bad)  # type: ignore[operator]
    with pytest.raises(SessionError) as info:
        load_session(bad)
    assert reason in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith(bad.name)
    sessions, broken = SessionStore(root).load_all()
    assert [s.path for s in sessions] == [fine] and [b.path for b in broken] == [bad]


def test_odd_values_in_a_readable_session_are_not_numbers(tmp_path: Path) -> None:
    path = good_session(tmp_path / "sessions")
    doc = json.loads((path / METRICS).read_text())
    doc["runs"][0]["metrics"] = {"ttft_ms": "fast", "eval_count": True, "e2e_ms": None, "done_reason": 5}
    doc["runs"][1]["status"] = ["ok"]  # not a status: read as failed, never counted
    (path / METRICS).write_text(json.dumps(doc))
    session = load_session(path)
    assert session.runs[0].metrics.ttft_ms is None and session.runs[0].metrics.eval_count is None
    assert session.runs[1].status == "failed"
    assert session.counts["ok"] == 1 and session.aggregates["ttft_ms"].n == 0


def test_a_leftover_temp_file_from_a_killed_write_is_ignored(tmp_path: Path) -> None:
    path = good_session(tmp_path / "sessions")
    (path / ".metrics.json.abc123.tmp").write_text('{"runs": [')  # a write the kill interrupted
    assert load_session(path).counts["ok"] == 2


def test_a_folder_that_is_not_a_session_and_stray_files_are_listed_not_fatal(tmp_path: Path) -> None:
    root = tmp_path / "sessions"
    good_session(root)
    (root / "my-notes").mkdir()
    (root / "README.txt").write_text("not a folder")
    (root / ".hidden").mkdir()
    summaries, broken = SessionStore(root).summaries()
    assert len(summaries) == 1 and [b.path.name for b in broken] == ["my-notes"]


def test_listing_a_thousand_sessions_reads_no_metrics(tmp_path: Path) -> None:
    """The browser lists from the manifests alone (lazy metrics): every metrics.json here is garbage."""
    root = tmp_path / "sessions"
    root.mkdir()
    for i in range(1000):
        folder = root / f"20260101-000000-m-p-{i:04x}"
        folder.mkdir()
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "id": folder.name,
            "created_at": f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
            "mode": "single",
            "model": {"name": "m:latest"},
            "profile": {"name": "p"},
            "result": {"status": "complete", "runs_ok": 3, "runs_failed": 0, "mean_server_decode_rate": 50.0},
        }
        (folder / "session.toml").write_text(tomli_w.dumps(manifest))
        (folder / METRICS).write_text("{ this is not json")
    summaries, broken = SessionStore(root).summaries()
    assert len(summaries) == 1000 and broken == []
    assert all(s.status == "complete" and s.mean_tok_s == 50.0 for s in summaries)


OPTS = 'name = "bad"\n[options]\n'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (OPTS + 'num_ctx = "2048"\n', "option 'num_ctx' must be an integer >= 1, got '2048' (str)"),
        (OPTS + 'seed = 1.5\n', "option 'seed' must be an integer, got 1.5 (float)"),
        (OPTS + 'use_mmap = 1\n', "option 'use_mmap' must be true or false, got 1 (int)"),
        (OPTS + 'stop = ["a", 1]\n', "option 'stop' must be a list of strings"),
        (OPTS + 'temperature = nan\n', "option 'temperature' must be a number between 0 and 5"),
        (OPTS + 'temprature = 0.5\n', "unknown option 'temprature' (did you mean 'temperature'?)"),
        ('name = "bad"\nnum_ctx = 5\n', "option 'num_ctx' must be under [options], not at the top level"),
        (OPTS + 'num_gpu = -5\n', "option 'num_gpu' must be an integer >= -1, got -5 (int)"),
        ('name = "bad"\noptions = 3\n', "'options' must be a table"),
        ('name = 7\n', "'name' must be a string"),
        (OPTS + '"\\u001b[31m" = 1\n', "unknown option '\\x1b[31m'"),
    ],
)  # fmt: skip
def test_invalid_profiles_are_skipped_with_the_reason(tmp_path: Path, body: str, expected: str) -> None:
    user = tmp_path / "user"
    user.mkdir()
    (user / "bad.toml").write_text(body)
    (user / "good.toml").write_text('name = "good"\n[options]\nnum_ctx = 512\n')
    store = ProfileStore(tmp_path / "builtin", user)
    assert [p.name for p in store.list()] == ["good"]
    ((path, message),) = store.errors
    assert path.name == "bad.toml" and expected in message and "\n" not in message and "\x1b" not in message
