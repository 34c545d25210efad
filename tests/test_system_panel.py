"""SystemPanel: GPU rows, dashes for missing readings, the no-GPU line, hostile names, live polling."""

from __future__ import annotations

from typing import cast

import pytest
from rich.console import ConsoleRenderable
from textual.app import App, ComposeResult
from textual.widgets import Static

from chimera_tui.core.system.gpu import GpuInfo, GpuSample
from chimera_tui.core.system.monitor import STATUS_OK, HostSample, SystemMonitor, SystemSnapshot
from chimera_tui.ui.widgets.system_panel import CSS_FILE, DASH, PercentSparkline, SystemPanel
from tests.fake_nvml import GIB, FakeNvml

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class _Host(App[None]):
    CSS_PATH = [CSS_FILE]

    def __init__(self, monitor: SystemMonitor | None = None) -> None:
        super().__init__()
        self.monitor = monitor

    def compose(self) -> ComposeResult:
        yield SystemPanel(self.monitor, refresh_s=0.02)


def texts(app: App[None]) -> str:
    """Every visible Static's text, one per line, runs of spaces collapsed."""
    lines = (str(w.render()) for w in app.query(Static) if w.display and w.parent is not None)
    return "\n".join(" ".join(line.split()) for line in lines)


def bars(app: App[None], spark: PercentSparkline) -> str:
    """The characters the sparkline draws."""
    renderable = cast(ConsoleRenderable, spark.render())
    return "".join(seg.text for seg in app.console.render(renderable))


def host(cpu: float | None = 12.0) -> HostSample:
    return HostSample(
        t_ns=1, cpu_pct=cpu, ram_used_bytes=8 * GIB, ram_total_bytes=32 * GIB, process_rss_bytes=150 * 2**20
    )


def snap(t: int, gpus: list[GpuSample], status: str = STATUS_OK, cpu: float | None = 12.0) -> SystemSnapshot:
    return SystemSnapshot(t_ns=t, host=host(cpu), gpus=gpus, gpu_status=status)


FULL = GpuSample(0, 37.0, 6 * GIB, 24 * GIB, 61.0, 215.5, 450.0, 2520, 10501)
EMPTY = GpuSample(1, None, None, None, None, None, None, None, None)
INFOS = [GpuInfo(0, "NVIDIA GeForce RTX 4090", "GPU-a", 24 * GIB), GpuInfo(1, "Tesla T4", "GPU-b", None)]


async def test_gpu_rows_show_values_and_dashes_for_missing_readings() -> None:
    app = _Host()
    async with app.run_test(size=(100, 30)) as pilot:
        panel = app.query_one(SystemPanel)
        history = [snap(i, [FULL, EMPTY], cpu=float(i * 10)) for i in range(1, 6)]
        panel.update_from(history[-1], history, INFOS)
        await pilot.pause()
        out = texts(app)
        assert "NVIDIA GeForce RTX 4090" in out and "Tesla T4" in out
        assert "util 37%" in out
        assert "mem 6.0/24.0 GiB" in out and "temp 61 °C" in out and "power 216/450 W" in out
        assert "SM 2520 MHz" in out and "mem 10501 MHz" in out
        assert "CPU 50%" in out and "RAM 8.0/32.0 GiB" in out and "150 MiB" in out
        # GPU 1 read nothing: dashes, never zeros
        block1 = panel._blocks[1]
        details1 = str(block1.details.render())
        assert details1 == f"mem {DASH}  ·  temp {DASH}  ·  power {DASH}"
        assert DASH in str(block1.util.render()) and "0" not in str(block1.util.render())
        assert str(block1.clocks.render()) == f"clocks  SM {DASH}  ·  mem {DASH}"
        assert not panel.status_line.display  # all fine: no GPU notice
        assert list(panel._blocks[0].spark.data or []) == [37.0] * 5
        assert list(panel.cpu_spark.data or []) == [10.0, 20.0, 30.0, 40.0, 50.0]


async def test_no_gpu_says_so_in_one_line_and_still_shows_host() -> None:
    app = _Host()
    async with app.run_test(size=(100, 30)) as pilot:
        panel = app.query_one(SystemPanel)
        reason = "no NVIDIA GPU/driver found (NVML: NVML Shared Library Not Found)"
        s = snap(1, [], status=reason, cpu=None)
        panel.update_from(s, [s])
        await pilot.pause()
        out = texts(app)
        assert f"GPU: {reason}" in out
        assert "no NVIDIA GPU" in out
        assert panel.status_line.display and panel.status_line.has_class("-warn")
        assert f"CPU {DASH}" in out and "RAM 8.0/32.0 GiB" in out
        assert panel._blocks == {}


async def test_gpus_disappearing_mid_run_are_hidden_and_come_back() -> None:
    app = _Host()
    async with app.run_test(size=(100, 30)) as pilot:
        panel = app.query_one(SystemPanel)
        a = snap(1, [FULL])
        panel.update_from(a, [a], INFOS)
        await pilot.pause()
        b = snap(2, [], status="NVML failed: no readings from any GPU (driver or device lost?)")
        panel.update_from(b, [a, b])
        await pilot.pause()
        assert not panel._blocks[0].display
        assert "GPU: NVML failed" in texts(app)
        c = snap(3, [FULL])
        panel.update_from(c, [a, b, c])
        await pilot.pause()
        assert panel._blocks[0].display and not panel.status_line.display
        assert len(panel._blocks) == 1  # re-shown, not re-mounted


async def test_hostile_gpu_name_is_shown_literally() -> None:
    app = _Host()
    async with app.run_test(size=(100, 30)) as pilot:
        panel = app.query_one(SystemPanel)
        evil = "[bold red]GPU[/] \x1b]52;c;aGk=\x07[link=x]y\x1b[2J"
        s = snap(1, [FULL], status=STATUS_OK)
        panel.update_from(s, [s], [GpuInfo(0, evil, None, None)])
        await pilot.pause()
        title = str(panel._blocks[0].title.render())
        assert "[bold red]GPU[/]" in title and "[link=x]y" in title  # markup not interpreted
        assert "\x1b" not in title and "\x07" not in title
        bad_status = snap(2, [], status="[b]boom[/b]\nsecond line")
        panel.update_from(bad_status, [bad_status])
        await pilot.pause()
        assert str(panel.status_line.render()) == "GPU: [b]boom[/b] second line"


async def test_update_before_mount_and_no_snapshot_do_not_raise() -> None:
    panel = SystemPanel()
    s = snap(1, [FULL])
    panel.update_from(s, [s], INFOS)  # not mounted yet: applied on mount

    class _Early(App[None]):
        CSS_PATH = [CSS_FILE]

        def compose(self) -> ComposeResult:
            yield panel

    app = _Early()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert "NVIDIA GeForce RTX 4090" in texts(app)
        panel.update_from(None, [])
        await pilot.pause()
        assert "waiting for the first sample" in texts(app)


async def test_sparkline_uses_a_fixed_percent_scale() -> None:
    app = _Host()
    async with app.run_test(size=(100, 30)) as pilot:
        panel = app.query_one(SystemPanel)
        history = [
            snap(i, [GpuSample(0, u, None, None, None, None, None, None, None)])
            for i, u in enumerate([0.0, 50.0, 100.0], start=1)
        ]
        panel.update_from(history[-1], history, INFOS)
        await pilot.pause()
        spark = panel._blocks[0].spark
        assert isinstance(spark, PercentSparkline)
        line = bars(app, spark)
        assert line.strip() == "▁▅█"
        flat = [snap(i, [GpuSample(0, 50.0, None, None, None, None, None, None, None)]) for i in range(4, 8)]
        panel.update_from(flat[-1], flat)
        await pilot.pause()
        line = bars(app, spark)
        assert set(line.strip()) == {"▅"}  # 50% is mid-height, not full or empty


async def test_panel_polls_a_live_monitor() -> None:
    fake = FakeNvml(gpus=2)
    mon = SystemMonitor(interval_s=0.02, nvml_module=fake)
    mon.start()
    try:
        assert mon.wait_ready(5)
        app = _Host(mon)
        async with app.run_test(size=(100, 30)) as pilot:
            panel = app.query_one(SystemPanel)
            for _ in range(200):
                await pilot.pause(0.02)
                if len(panel._blocks) == 2 and "NVIDIA Fake GPU 1" in texts(app):
                    break
            out = texts(app)
            assert "NVIDIA Fake GPU 0" in out and "NVIDIA Fake GPU 1" in out
            assert "util 50%" in out and "power 216/450 W" in out
            fake.lost = True  # the driver goes away
            for _ in range(200):
                await pilot.pause(0.02)
                if "NVML failed" in texts(app):
                    break
            assert "GPU: NVML failed" in texts(app)
            assert "RAM " in texts(app)
    finally:
        assert mon.stop()
