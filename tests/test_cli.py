"""The headless CLI: happy path on the demo simulator, and one clear line for every error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chimera_tui.cli import main


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chimera_tui", *argv], capture_output=True, text=True, timeout=120
    )


def test_help_lists_the_commands() -> None:
    out = run_cli("--help")
    assert out.returncode == 0
    for command in ("bench", "sessions", "profiles", "sim"):
        assert command in out.stdout


def test_bench_demo_json_saves_a_session(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "bench",
            "--demo",
            "--runs",
            "2",
            "--warmup",
            "1",
            "--num-predict",
            "8",
            "--json",
            "--sessions-dir",
            str(tmp_path),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert Path(doc["path"]).is_dir() and Path(doc["path"]).parent == tmp_path
    assert doc["status"] == "complete" and doc["counts"]["ok"] == 2
    assert doc["aggregates"]["server_decode_rate"]["n"] == 2
    assert "run 2/2" in err  # progress went to stderr

    code = main(["sessions", "--json", "--sessions-dir", str(tmp_path)])
    listed = json.loads(capsys.readouterr().out)
    assert code == 0 and listed["sessions"][0]["id"] == doc["id"]
    assert listed["sessions"][0]["runs_ok"] == 2 and listed["sessions"][0]["status"] == "complete"


def test_bench_demo_table_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "--sessions-dir",
            str(tmp_path),
            "bench",
            "--demo",
            "--runs",
            "1",
            "--warmup",
            "0",
            "--num-predict",
            "5",
            "--profile",
            "tier2_balanced",
            "--preset",
            "medium",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "decode rate (server)" in out and "session saved:" in out and "tier2_balanced" in out


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("chimera-tui:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_unreachable_endpoint_is_one_line(tmp_path: Path) -> None:
    line = _one_line_error(
        run_cli("bench", "--endpoint", "http://127.0.0.1:9", "--model", "m", "--sessions-dir", str(tmp_path))
    )
    assert "cannot reach http://127.0.0.1:9" in line


def test_unknown_model_lists_the_available_ones(tmp_path: Path) -> None:
    line = _one_line_error(run_cli("bench", "--demo", "--model", "nope", "--sessions-dir", str(tmp_path)))
    assert "model 'nope' not found" in line and "gemma3:latest" in line


def test_invalid_profile_names_file_key_and_expectation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[options]\nnum_ctx = "big"\n')
    line = _one_line_error(run_cli("bench", "--demo", "--profile", str(bad), "--sessions-dir", str(tmp_path)))
    assert "bad.toml" in line and "num_ctx" in line and "integer" in line


def test_unknown_profile_name(tmp_path: Path) -> None:
    line = _one_line_error(run_cli("bench", "--demo", "--profile", "nope", "--sessions-dir", str(tmp_path)))
    assert "unknown profile 'nope'" in line


def test_bad_arguments_are_usage_errors() -> None:
    result = run_cli("bench", "--runs", "zero")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    result = run_cli("bench", "--demo", "--runs", "0")
    assert result.returncode == 2 and "--runs" in result.stderr and "at least 1" in result.stderr


def test_profiles_and_sessions_listing(tmp_path: Path) -> None:
    out = run_cli("profiles")
    assert out.returncode == 0 and "baseline_default" in out.stdout and "gpu60_ctx256_temp0p6" in out.stdout
    out = run_cli("profiles", "tier1_resource_constrained")
    assert "num_gpu = 60" in out.stdout
    out = run_cli("sessions", "--sessions-dir", str(tmp_path / "empty"))
    assert out.returncode == 0 and "no sessions" in out.stdout


def _two_sessions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    ids = []
    for profile in ("baseline_default", "tier1_resource_constrained"):
        code = main(
            [
                "bench",
                "--demo",
                "--runs",
                "2",
                "--warmup",
                "0",
                "--num-predict",
                "6",
                "--json",
                "--profile",
                profile,
                "--sessions-dir",
                str(tmp_path),
            ]
        )
        assert code == 0
        ids.append(json.loads(capsys.readouterr().out)["id"])
    return ids


def test_compare_and_export_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _two_sessions(tmp_path, capsys)
    assert main(["compare", a, b, "--json", "--sessions-dir", str(tmp_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["session_ids"] == [a, b]
    assert any(m["key"] == "server_decode_rate" for m in doc["metrics"]) or doc["metrics"]

    assert main(["compare", a[:-5], b, "--sessions-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "baseline:" in out and "verdict" in out

    (tmp_path / "out").mkdir()
    for fmt in ("md", "json", "csv", "html"):
        target = tmp_path / "out" / f"report.{fmt}"
        assert (
            main(["export", a, b, "--format", fmt, "-o", str(target), "--sessions-dir", str(tmp_path)]) == 0
        )
        assert target.stat().st_size > 100
    assert main(["export", a, "--format", "md", "--sessions-dir", str(tmp_path)]) == 0
    assert "|" in capsys.readouterr().out


def test_compare_against_an_imported_chimeraforge_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fixture = Path(__file__).parent / "fixtures" / "chimeraforge_metrics.json"
    assert main(["compare", str(fixture), "--sessions-dir", str(tmp_path)]) == 0  # baseline vs chimera agents
    assert "baseline:" in capsys.readouterr().out


def test_compare_errors_are_one_line(tmp_path: Path) -> None:
    line = _one_line_error(run_cli("compare", "nope", "nada", "--sessions-dir", str(tmp_path)))
    assert "no session 'nope'" in line
    broken = tmp_path / "x.json"
    broken.write_text("{not json")
    line = _one_line_error(run_cli("export", str(broken), "--sessions-dir", str(tmp_path)))
    assert "x.json" in line
