"""Issue 15, item 10: text is inert. Bidi controls and other invisible format characters in model
names and model output never reach the terminal or an export raw (alongside the escape sequences
test_hostile_output.py covers). A real socket server, the CLI in a subprocess, real export files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chimera_tui.safe_text import sanitize, sanitize_line
from tests.fault_server import FINAL, FakeOllama, FaultServer, Reply, Request, ndjson, stream_reply

#: right-to-left override, isolates, marks, zero-width space, word joiner, BOM, a tag character
INVISIBLE = (
    "\u202e",
    "\u202a",
    "\u2066",
    "\u2069",
    "\u200f",
    "\u061c",
    "\u200b",
    "\u2060",
    "\ufeff",
    "\U000e0041",
)
EVIL_MODEL = "gpt\u202eexe.txt:latest"


def stream(_r: Request) -> Reply:
    lines = [{"model": "m", "response": f"tok{c} ", "done": False} for c in INVISIBLE]
    return stream_reply([ndjson(line) for line in lines] + [ndjson({**FINAL, "eval_count": len(INVISIBLE)})])


def assert_inert(text: str) -> None:
    found = [f"U+{ord(c):04X}" for c in INVISIBLE if c in text]
    assert not found, found


def test_sanitize_removes_invisible_format_characters_but_keeps_joiners() -> None:
    assert sanitize("a\u202eb\u200bc\U000e0041d") == "abcd"
    assert sanitize_line("x\u2066y\u2069") == "xy"
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # an emoji sequence: ZWJ kept
    assert sanitize(family) == family and sanitize("\u0645\u200c\u06cc") == "\u0645\u200c\u06cc"


@pytest.mark.parametrize("fmt", ["md", "html", "csv", "json"])
def test_cli_output_listing_and_exports_are_inert(tmp_path: Path, fmt: str) -> None:
    fake = FakeOllama(models=[EVIL_MODEL], stream=stream)
    root = tmp_path / "sessions"
    env = {**os.environ, "NO_COLOR": "1"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "chimera_tui", *args, "--sessions-dir", str(root)],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip

    with FaultServer(fake) as server:
        bench = cli("bench", "--endpoint", server.url, "--model", EVIL_MODEL, "--runs", "1", "--warmup", "0")
    assert bench.returncode == 0, bench.stderr
    assert "gptexe.txt:latest" in bench.stderr + bench.stdout  # the name is shown, made inert
    listing = cli("sessions")
    (folder,) = [p for p in root.iterdir() if p.is_dir()]
    out = tmp_path / f"report.{fmt}"
    export = cli("export", folder.name, "-f", fmt, "-o", str(out))
    assert export.returncode == 0, export.stderr
    for text in (bench.stdout, bench.stderr, listing.stdout, listing.stderr, export.stderr):
        assert_inert(text)
    assert_inert(out.read_text(encoding="utf-8"))
    # the session itself keeps the text as sent (a faithful record)
    assert "\u202e" in (folder / "metrics.json").read_text(encoding="utf-8").encode().decode("unicode_escape")


@pytest.mark.anyio
async def test_a_huge_model_name_is_cut_with_an_ellipsis_on_the_setup_screen(tmp_path: Path) -> None:
    from textual.widgets import Select, Static

    from chimera_tui.ui.app import ChimeraApp
    from chimera_tui.ui.config import AppConfig
    from tests.fake_nvml import FakeNvml
    from tests.tui_helpers import wait_until

    huge = "m" * 10_000 + ":latest"
    fake = FakeOllama(models=[huge, "m:latest"], stream=stream)
    with FaultServer(fake) as server:
        config = AppConfig(
            endpoints=[server.url],
            sessions_root=tmp_path,
            nvml_module=FakeNvml(gpus=1),
            monitor_interval_s=0,
            idle_baseline_s=0,
        )
        app = ChimeraApp(config)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(
                pilot, lambda: "reachable" in str(app.screen.query_one("#endpoint-status", Static).render())
            )
            select = app.screen.query_one("#model", Select)
            labels = [str(label) for label, _value in select._options]
            assert select.value == huge  # the full name is what is used
            assert any(label.startswith("m" * 59 + "…") for label in labels)
            assert all(len(label) < 120 for label in labels)
