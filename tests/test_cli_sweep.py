"""The sweep and workflow commands end to end against the demo simulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chimera_tui.cli import main


def small_sweep(tmp_path: Path) -> Path:
    path = tmp_path / "mini.toml"
    path.write_text(
        'name = "mini"\nruns = 2\nwarmup = 0\nnum_predict = 6\n'
        "[grid]\nnum_ctx = [256, 512]\ntemperature = [0.6]\n"
    )
    return path


def test_sweep_run_list_report_and_save_best(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "sessions"
    argv = [
        "sweep",
        "run",
        str(small_sweep(tmp_path)),
        "--demo",
        "--label",
        "drv 560",
        "--sessions-dir",
        str(root),
    ]
    assert main(argv) == 0
    out = capsys.readouterr()
    assert "complete" in out.out and "config 3/3" in out.err, out.err
    assert "no difference can reach significance" in out.err  # 2 runs: the honest warning
    assert main(["sweep", "list", "--sessions-dir", str(root)]) == 0
    listing = capsys.readouterr().out
    sweep_id = listing.split()[0]
    assert "mini" in listing and "done 3" in listing
    assert (
        main(["sweep", "report", sweep_id[:15], "--sessions-dir", str(root), "--save-best", "mini_best"]) == 0
    )
    report = capsys.readouterr()
    assert "baseline" in report.out and "significantly faster than the baseline: 0 of 2" in report.out
    assert "mini_best" in report.err
    assert main(["profiles", "mini_best"]) == 0
    assert "num_ctx" in capsys.readouterr().out
    out_json = tmp_path / "r.json"
    assert (
        main(
            [
                "sweep",
                "report",
                sweep_id,
                "--format",
                "json",
                "-o",
                str(out_json),
                "--sessions-dir",
                str(root),
            ]
        )
        == 0
    )
    assert json.loads(out_json.read_text())
    assert main(["sessions", "--json", "--sessions-dir", str(root)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["sessions"]) == 3 and doc["unreadable"] == []  # the sweeps/ folder is not a session
    assert all(s["label"].startswith("drv 560 · ") for s in doc["sessions"])  # sweep run --label

    # --json on list and report; the text report prints heat maps only when asked
    assert main(["sweep", "list", "--json", "--sessions-dir", str(root)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["sweeps"][0]["id"] == sweep_id and listed["sweeps"][0]["counts"]["done"] == 3
    assert main(["sweep", "report", sweep_id, "--json", "--sessions-dir", str(root)]) == 0
    assert json.loads(capsys.readouterr().out)["ranking"]
    assert main(["sweep", "report", sweep_id, "--sessions-dir", str(root)]) == 0
    assert " by " not in capsys.readouterr().out
    assert (
        main(["sweep", "report", sweep_id, "--heatmap", "num_ctx,temperature", "--sessions-dir", str(root)])
        == 0
    )
    text = capsys.readouterr().out
    assert "by temperature × num_ctx" in text or "by num_ctx × temperature" in text, text
    assert "temperature \\ num_ctx" in text and "256" in text and "512" in text


def test_workflow_workload(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "bench",
            "--demo",
            "--workload",
            "workflow",
            "--runs",
            "1",
            "--warmup",
            "0",
            "--num-predict",
            "8",
            "--sessions-dir",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "agent workflow: ingest → analysis → report" in out and "report" in out and "whole workflow" in out
