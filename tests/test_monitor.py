"""SystemMonitor with a fake NVML: history, conversions, unsupported readings, failures, shutdown."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import psutil
import pytest

from chimera_tui.core.system.gpu import GpuSample, Nvml
from chimera_tui.core.system.monitor import (
    NO_READINGS,
    STATUS_OK,
    HostSample,
    SystemMonitor,
    SystemSnapshot,
    summarize_gpu,
)
from tests.fake_nvml import GIB, FakeGpu, FakeNvml

FAST = 0.02


def wait_for(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


@pytest.fixture
def monitors() -> Iterator[list[SystemMonitor]]:
    """Monitors made in a test are stopped even when it fails."""
    made: list[SystemMonitor] = []
    yield made
    for m in made:
        m.stop()


def make(monitors: list[SystemMonitor], **kw: object) -> SystemMonitor:
    m = SystemMonitor(**{"interval_s": FAST, **kw})  # type: ignore[arg-type]
    monitors.append(m)
    return m.start()


def two_gpus(**kw: object) -> FakeNvml:
    return FakeNvml(
        gpus=[
            FakeGpu(
                name="NVIDIA GeForce RTX 4090",
                uuid="GPU-a",
                mem_total=24 * GIB,
                mem_used=6 * GIB,
                util_gpu=37,
                temperature=61,
                power_mw=215_500,
                power_limit_mw=450_000,
                sm_clock=2520,
                mem_clock=10501,
            ),
            FakeGpu(name=b"Tesla T4", uuid=b"GPU-b", mem_total=16 * GIB, mem_used=1 * GIB, util_gpu=3),
        ],
        **kw,  # type: ignore[arg-type]
    )


def test_samples_fill_a_bounded_history_with_converted_values(monitors: list[SystemMonitor]) -> None:
    fake = two_gpus()
    mon = make(monitors, nvml_module=fake, history=5)
    assert mon.wait_ready(5)
    wait_for(lambda: len(mon.history()) == 5 and fake.samples_taken >= 8)
    hist = mon.history()
    assert len(hist) == 5  # bounded by maxlen
    assert [s.t_ns for s in hist] == sorted(s.t_ns for s in hist)
    snap = mon.latest()
    assert snap is not None and snap.gpu_status == STATUS_OK and mon.gpu_status == STATUS_OK
    g0, g1 = snap.gpus
    assert g0 == GpuSample(
        index=0,
        util_pct=37.0,
        mem_used_bytes=6 * GIB,
        mem_total_bytes=24 * GIB,
        temperature_c=61.0,
        power_w=215.5,  # mW -> W
        power_limit_w=450.0,
        sm_clock_mhz=2520,
        mem_clock_mhz=10501,
        clock_reasons=0,
    )
    assert g1.index == 1 and g1.util_pct == 3.0 and g1.mem_total_bytes == 16 * GIB
    infos = mon.gpu_infos
    assert [(i.index, i.name, i.uuid, i.memory_total_bytes) for i in infos] == [
        (0, "NVIDIA GeForce RTX 4090", "GPU-a", 24 * GIB),
        (1, "Tesla T4", "GPU-b", 16 * GIB),  # bytes from old bindings are decoded
    ]


def test_host_readings_are_sane(monitors: list[SystemMonitor]) -> None:
    mon = make(monitors, nvml_module=FakeNvml(gpus=0))
    wait_for(lambda: len(mon.history()) >= 3)
    host = mon.history()[-1].host
    assert host.cpu_pct is not None and 0.0 <= host.cpu_pct <= 100.0 * (psutil.cpu_count() or 1)
    assert host.ram_total_bytes is not None and host.ram_total_bytes > 0
    assert host.ram_used_bytes is not None and 0 < host.ram_used_bytes <= host.ram_total_bytes
    assert host.process_rss_bytes is not None and host.process_rss_bytes > 0
    snap = mon.latest()
    assert snap is not None and snap.gpus == []
    assert "0 devices" in snap.gpu_status


def test_unsupported_readings_are_none_not_zero(monitors: list[SystemMonitor]) -> None:
    fake = two_gpus(
        unsupported={"nvmlDeviceGetPowerUsage", "nvmlDeviceGetTemperature", "nvmlDeviceGetClockInfo"}
    )
    mon = make(monitors, nvml_module=fake)
    assert mon.wait_ready(5)
    snap = mon.latest()
    assert snap is not None and snap.gpu_status == STATUS_OK
    for g in snap.gpus:
        assert g.power_w is None and g.temperature_c is None
        assert g.sm_clock_mhz is None and g.mem_clock_mhz is None
        assert g.power_limit_w is not None and g.util_pct is not None  # the rest still read


def test_nvml_init_failure_gives_the_reason_and_host_sampling_goes_on(monitors: list[SystemMonitor]) -> None:
    fake = FakeNvml(gpus=2, fail_init="Driver Not Loaded")
    mon = make(monitors, nvml_module=fake)
    wait_for(lambda: len(mon.history()) >= 3)
    snap = mon.latest()
    assert snap is not None and snap.gpus == []
    assert snap.gpu_status == mon.gpu_status
    assert "no NVIDIA GPU/driver found" in snap.gpu_status and "Driver Not Loaded" in snap.gpu_status
    assert mon.gpu_infos == []
    assert snap.host.ram_total_bytes is not None


def test_nvml_failing_mid_run_changes_status_and_host_sampling_continues(
    monitors: list[SystemMonitor],
) -> None:
    fake = two_gpus(fail_after_n_samples=3)
    mon = make(monitors, nvml_module=fake)
    wait_for(lambda: mon.gpu_status == NO_READINGS)
    ok = [s for s in mon.history() if s.gpu_status == STATUS_OK]
    assert len(ok) == 3 and all(len(s.gpus) == 2 for s in ok)
    n = len(mon.history())
    wait_for(lambda: len(mon.history()) >= n + 3)  # still ticking
    snap = mon.latest()
    assert snap is not None and snap.gpus == [] and snap.gpu_status.startswith("NVML failed")
    assert snap.host.ram_total_bytes is not None
    # the driver comes back: so does the status
    fake.fail_after_n_samples = None
    fake.lost = False
    wait_for(lambda: mon.gpu_status == STATUS_OK)
    latest = mon.latest()
    assert latest is not None and len(latest.gpus) == 2


def test_sample_raising_is_reported_and_survived(
    monitors: list[SystemMonitor], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(self: Nvml) -> list[GpuSample]:
        raise RuntimeError("handle\nwent away")

    monkeypatch.setattr(Nvml, "sample", boom)
    mon = make(monitors, nvml_module=two_gpus())
    wait_for(lambda: len(mon.history()) >= 3)
    snap = mon.latest()
    assert snap is not None and snap.gpus == []
    assert snap.gpu_status == "NVML failed: handle went away"  # one line
    assert snap.host.ram_total_bytes is not None


def test_failing_psutil_gives_none_and_no_crash(
    monitors: list[SystemMonitor], monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(*a: object, **kw: object) -> object:
        raise psutil.AccessDenied()

    monkeypatch.setattr(psutil, "cpu_percent", denied)
    monkeypatch.setattr(psutil, "virtual_memory", denied)
    monkeypatch.setattr(psutil, "Process", denied)
    mon = make(monitors, nvml_module=two_gpus())
    wait_for(lambda: len(mon.history()) >= 3)
    snap = mon.latest()
    assert snap is not None
    assert snap.host == HostSample(snap.host.t_ns, None, None, None, None)
    assert len(snap.gpus) == 2  # GPU sampling is independent


def test_stop_joins_the_thread_and_shuts_nvml_down(monitors: list[SystemMonitor]) -> None:
    fake = two_gpus()
    mon = make(monitors, nvml_module=fake)
    assert mon.wait_ready(5)
    assert mon.running
    names = {t.name for t in threading.enumerate()}
    assert "chimera-system-monitor" in names
    assert mon.stop() is True
    assert not mon.running
    assert fake.init_calls == 1 and fake.shutdown_calls == 1
    n = len(mon.history())
    time.sleep(FAST * 3)
    assert len(mon.history()) == n  # no more samples
    assert mon.stop() is True  # idempotent


def test_context_manager(monitors: list[SystemMonitor]) -> None:
    fake = FakeNvml(gpus=1)
    with SystemMonitor(interval_s=FAST, nvml_module=fake) as mon:
        assert mon.wait_ready(5)
        assert mon.latest() is not None
    assert not mon.running and fake.shutdown_calls == 1


def test_latest_is_none_before_start() -> None:
    mon = SystemMonitor(interval_s=FAST, nvml_module=FakeNvml())
    assert mon.latest() is None and mon.history() == [] and mon.gpu_infos == []
    assert mon.stop() is True  # stopping a never-started monitor is fine
    with pytest.raises(ValueError):
        SystemMonitor(interval_s=0)
    with pytest.raises(ValueError):
        SystemMonitor(history=0)


def test_real_pynvml_on_this_machine_explains_itself(monitors: list[SystemMonitor]) -> None:
    nvml, reason = Nvml.open()
    if nvml is not None:
        nvml.close()
        pytest.skip("this machine has a working NVIDIA driver")
    mon = make(monitors)  # nvml_module=None: the real pynvml (or its absence)
    assert mon.wait_ready(5)
    snap = mon.latest()
    assert snap is not None and snap.gpus == [] and mon.gpu_infos == []
    assert snap.gpu_status == reason
    assert "NVML" in snap.gpu_status or "nvidia-ml-py" in snap.gpu_status


def _snap(i: int, *gpus: GpuSample) -> SystemSnapshot:
    host = HostSample(t_ns=i, cpu_pct=None, ram_used_bytes=None, ram_total_bytes=None, process_rss_bytes=None)
    return SystemSnapshot(t_ns=i, host=host, gpus=list(gpus), gpu_status=STATUS_OK)


def _gpu(
    index: int, util: float | None, mem: int | None, power: float | None, temp: float | None = None
) -> GpuSample:
    return GpuSample(index, util, mem, 24 * GIB, temp, power, 450.0, None, None)


def test_summarize_gpu_by_hand() -> None:
    hist = [
        _snap(1, _gpu(0, 10.0, 1 * GIB, 100.0, 50.0), _gpu(1, 90.0, 9 * GIB, 300.0)),
        _snap(2, _gpu(0, 50.0, 3 * GIB, None, 70.0), _gpu(1, None, None, None)),
        _snap(3, _gpu(0, None, 2 * GIB, 200.0)),
        _snap(4),  # NVML failed here: no GPU rows
    ]
    s0 = summarize_gpu(hist, 0)
    assert s0 == {
        "samples": 3,
        "util_mean_pct": 30.0,
        "util_max_pct": 50.0,
        "mem_used_max_bytes": 3 * GIB,
        "power_mean_w": 150.0,
        "power_max_w": 200.0,
        "temperature_max_c": 70.0,
    }
    s1 = summarize_gpu(hist, 1)
    assert s1["samples"] == 2 and s1["util_mean_pct"] == 90.0 and s1["power_mean_w"] == 300.0
    assert s1["temperature_max_c"] is None
    empty = summarize_gpu(hist, 7)
    assert empty["samples"] == 0
    assert all(v is None for k, v in empty.items() if k != "samples")
    assert summarize_gpu([], 0)["util_mean_pct"] is None
