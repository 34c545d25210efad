"""The CLI for scripts: labels, rename / delete / import, profile editing, exit codes (README's table),
-o into a missing folder, closed pipes, the ETA and the timing block after each run."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chimera_tui.cli import common, main
from chimera_tui.cli.output import HeadlessProgress, timing_block
from chimera_tui.core.measure.eta import EtaTracker, estimate_remaining, format_eta, remaining_positions
from chimera_tui.core.measure.metrics import CallMetrics
from chimera_tui.core.run.events import RunFinished, RunStarted, SessionStarted
from chimera_tui.core.store.sessions import RunRecord

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "chimeraforge_metrics.json"


def run_cli(*argv: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "chimera_tui", *argv], capture_output=True, text=True, timeout=120, **kw
    )


def _bench(root: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, object]:
    argv = ["bench", "--demo", "--runs", "2", "--warmup", "1", "--num-predict", "8", "--json"]
    assert main([*argv, "--sessions-dir", str(root), *extra]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


# -- labels, rename, delete, import ---------------------------------------------------------------
def test_label_rename_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "s"
    doc = _bench(root, capsys, "--label", "  my   first run ")
    assert doc["label"] == "my first run" and [r["run"] for r in doc["runs"]] == ["w1", "1", "2"]
    other = _bench(root, capsys)
    assert other["label"] == "gemma3:latest · baseline_default"  # the default: model · profile

    assert main(["sessions", "rename", str(doc["id"])[:20], "renamed", "--sessions-dir", str(root)]) == 0
    capsys.readouterr()
    assert main(["sessions", "--json", "list", "--sessions-dir", str(root)]) == 0  # --json before the action
    listed = {s["id"]: s for s in json.loads(capsys.readouterr().out)["sessions"]}
    assert listed[doc["id"]]["label"] == "renamed"
    assert listed[other["id"]]["display_label"] == "gemma3:latest · baseline_default"

    # not a terminal and no --yes: refused, a usage error, nothing deleted
    refused = run_cli(
        "sessions", "delete", str(doc["id"]), "--sessions-dir", str(root), stdin=subprocess.DEVNULL
    )
    assert refused.returncode == 2 and "--yes" in refused.stderr and (root / str(doc["id"])).is_dir()
    assert main(["sessions", "delete", str(doc["id"]), "--yes", "--sessions-dir", str(root)]) == 0
    assert not (root / str(doc["id"])).exists() and (root / str(other["id"])).is_dir()


def test_delete_asks_on_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "s"
    doc = _bench(root, capsys)
    answers = iter(["n", "y"])
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    assert main(["sessions", "delete", str(doc["id"]), "--sessions-dir", str(root)]) == 0
    assert (root / str(doc["id"])).is_dir() and "not deleted" in capsys.readouterr().out
    assert main(["sessions", "delete", str(doc["id"]), "--sessions-dir", str(root)]) == 0
    assert not (root / str(doc["id"])).exists()


def test_import_persists_as_sessions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "s"
    assert main(["sessions", "import", str(FIXTURE), "--json", "--sessions-dir", str(root)]) == 0
    doc = json.loads(capsys.readouterr().out)
    ids = [s["id"] for s in doc["imported"]]
    assert ids and doc["skipped"] == []
    # a later process (a restart) lists them; importing again adds nothing
    listed = run_cli("sessions", "--json", "--sessions-dir", str(root))
    assert sorted(s["id"] for s in json.loads(listed.stdout)["sessions"]) == sorted(ids)
    assert main(["sessions", "import", str(FIXTURE), "--sessions-dir", str(root)]) == 0
    assert "already imported" in capsys.readouterr().out
    assert main(["export", ids[0], "--format", "csv", "--sessions-dir", str(root)]) == 0
    assert ",1," in capsys.readouterr().out  # its calls numbered 1…N
    assert main(["export", ids[0], "--json", "--sessions-dir", str(root)]) == 0
    assert json.loads(capsys.readouterr().out)["session"]["runs"][0]["run"] == "1"


# -- profiles ---------------------------------------------------------------------------------------
def test_profile_new_copy_diff_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "new", "mine", "--from", "baseline_default", "--set", "num_ctx=4096"]) == 0
    assert main(["profiles", "copy", "mine", "mine2"]) == 0
    assert main(["profiles", "new", "mine", "--set", "num_ctx=1"]) == 1  # exists already
    capsys.readouterr()
    assert main(["profiles", "diff", "baseline_default", "mine", "--json"]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert diff["options"] == [
        {"name": "num_ctx", "kind": "added", "old": None, "new": 4096, "load_time": True}
    ]
    assert main(["profiles", "diff", "mine", "mine2"]) == 0
    assert "(the same options)" in capsys.readouterr().out
    assert main(["profiles", "delete", "baseline_default", "--yes"]) == 1  # built-ins are read-only
    assert main(["profiles", "delete", "mine2", "--yes"]) == 0
    assert main(["profiles", "show", "mine2"]) == 1
    assert main(["profiles", "new", "bad", "--set", "num_ctx=big"]) == 1
    assert main(["profiles", "copy", "mine"]) == 2  # usage: two names


def test_profile_edit_validates_and_keeps_an_invalid_edit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["profiles", "new", "ed", "--set", "num_ctx=2048"]) == 0
    good = tmp_path / "good.sh"
    good.write_text('#!/bin/sh\nsed -i "s/num_ctx = 2048/num_ctx = 8192/" "$1"\n')
    bad = tmp_path / "bad.sh"
    bad.write_text('#!/bin/sh\nsed -i "s/num_ctx = [0-9]*/num_ctx = \\"huge\\"/" "$1"\n')
    for script in (good, bad):
        script.chmod(0o755)
    profile_file = tmp_path / "user_profiles" / "ed.toml"

    monkeypatch.setenv("EDITOR", str(good))
    monkeypatch.delenv("VISUAL", raising=False)
    assert main(["profiles", "edit", "ed"]) == 0
    assert "num_ctx = 8192" in profile_file.read_text()

    monkeypatch.setenv("EDITOR", str(bad))
    result = run_cli("profiles", "edit", "ed")
    assert result.returncode == 1 and "num_ctx" in result.stderr
    kept = re.search(r"kept in (\S+\.toml)", result.stderr)
    assert kept and '"huge"' in Path(kept.group(1)).read_text()  # the edit is kept, and said where
    assert "num_ctx = 8192" in profile_file.read_text()  # the profile is unchanged
    assert main(["profiles", "edit", "baseline_default"]) == 1  # built-ins are read-only


# -- exit codes, output paths, pipes --------------------------------------------------------------
def _readme_exit_codes() -> dict[int, str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Exit codes") :]
    rows = re.findall(r"^\| `?(\d+)`? \| (.+?) \|$", section, re.M)
    return {int(code): meaning for code, meaning in rows}


def test_readme_exit_code_table_is_the_code() -> None:
    codes = _readme_exit_codes()
    assert set(codes) == {
        common.EXIT_OK,
        common.EXIT_ERROR,
        common.EXIT_USAGE,
        common.EXIT_RUNS_FAILED,
        common.EXIT_CANCELLED,
        common.EXIT_BROKEN_PIPE,
    }


def test_every_usage_error_exits_2(tmp_path: Path) -> None:
    root = str(tmp_path / "s")
    cases = [
        ("bench", "--runs", "0"),
        ("bench", "--demo", "--runs", "2", "--mode", "single", "--cache-cohorts", "--cold"),
        ("bench", "--demo", "--mode", "shared", "--agents", "1"),
        ("bench", "--demo", "--preset", "no-such-preset"),
        ("sweep", "run", "tr111", "--runs", "0"),
        ("compare", "only-one"),
        ("profiles", "diff", "baseline_default"),
        ("export", "x", "--format", "pdf"),
        ("no-such-command",),
    ]
    for argv in cases:
        result = run_cli(*argv, "--sessions-dir", root)
        assert result.returncode == 2, (argv, result.stderr)
        assert "Traceback" not in result.stderr


def test_output_into_a_missing_folder_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "s"
    doc = _bench(root, capsys)
    missing = tmp_path / "nope" / "report.md"
    result = run_cli("export", str(doc["id"]), "-o", str(missing), "--sessions-dir", str(root))
    assert result.returncode == 2 and not missing.parent.exists()
    assert result.stderr.count("\n") == 1 and "does not exist" in result.stderr


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    for command in ("profiles", "profiles --json", "sessions --json"):
        result = subprocess.run(
            f"{sys.executable} -m chimera_tui {command} | head -c 1 >/dev/null",
            shell=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.stderr == "", (command, result.stderr)


# -- ETA and the timing block -----------------------------------------------------------------------
def test_eta_from_finished_durations() -> None:
    assert remaining_positions(1, 2, True, 5) == 6 and remaining_positions(3, 5, False, 5) == 2
    assert estimate_remaining([], [], 3) is None
    assert estimate_remaining([], [4.0], 3) == 12.0  # only warm-ups so far
    assert estimate_remaining([1.0, 3.0, 2.0], [9.0], 2) == 4.0  # median of measured runs
    assert estimate_remaining([1.0], [], 0) == 0.0
    assert [format_eta(s) for s in (None, 4.4, 65, 7380)] == ["", "ETA 4s", "ETA 1m05s", "ETA 2h03m"]


def test_eta_tracker_counts_a_cohort_pair_as_one_position() -> None:
    now = [0.0]
    eta = EtaTracker(2, clock=lambda: now[0])
    assert eta.finished() is None
    eta.started(False, 1, 2)  # the cache-cold call of run 1
    now[0] = 1.0
    assert eta.finished() == 1.0  # so far: 1 s for run 1, one run to come
    eta.started(False, 1, 2)  # its cache-warm call: the same position
    now[0] = 3.0
    assert eta.finished() == 3.0  # run 1 took 3 s in all
    eta.started(False, 2, 2)
    now[0] = 6.0
    assert eta.finished() == 0.0


def test_progress_lines_have_labels_eta_and_timings() -> None:
    out = io.StringIO()
    now = [0.0]
    progress = HeadlessProgress(out, clock=lambda: now[0])
    progress(SessionStarted("sid", Path("sid"), "m", "p", "http://x", None, 2, 1))
    metrics = CallMetrics(
        server_decode_rate=100.0, total_ms=1100.0, load_ms=2.0, prompt_eval_count=20, prompt_cached_count=4,
        prompt_processed_count=16, prompt_eval_ms=10.0, prompt_eval_rate=2000.0, prefill_rate=1600.0,
        eval_count=100, eval_ms=1000.0,
    )  # fmt: skip
    for index, (warmup, number, total) in enumerate([(True, 1, 1), (False, 1, 2), (False, 2, 2)]):
        progress(RunStarted(index, number, total, warmup))
        now[0] += 2.0
        record = RunRecord(index, warmup, "ok", "", metrics=metrics, number=number)
        progress(RunFinished(record))
    text = out.getvalue()
    assert "warm-up w1/1:" in text and "run 1/2:" in text and "run 2/2:" in text
    assert "; ETA 4s" in text  # after the warm-up: two runs of 2 s to come
    assert "; ETA 2s" in text  # after run 1
    assert (
        "prompt eval 20 tok (4 cached, 16 processed) in 10.0 ms · 2000.0 tok/s (prefill 1600.0 tok/s)" in text
    )
    assert timing_block(CallMetrics()) == []  # nothing reported: no lines
    assert timing_block(metrics)[0].strip() == "total 1100.0 ms · load 2.0 ms"
