"""10. The GPU sampler's cost: CPU time per wall second of its thread, and the runner's window edges.

The run hook (core/run/gpu.py) samples every GPU in its own thread every 0.1 s while a session runs
and reads the energy counters right before a call is sent and right after it ends. Measured here:
- the sampler's CPU time over a few wall seconds with one energy window open, in ms of CPU per
  second: the process's CPU clock (ns resolution) while the main thread sleeps, so the sampler
  thread is all that runs (an idle process, measured the same way, is subtracted);
- one `Nvml.sample()` (every reading of every GPU), median;
- one window's two edges (`GpuMeter.start` + `stop`: counters, temperatures, one sample each), median.
On a machine with an NVIDIA driver the real NVML is measured; elsewhere the simulated GPU (the same
Python path, without the driver's own cost), and the figure says which.
"""

from __future__ import annotations

import time

from benchmarks.common import Result, check, info, median
from chimera_tui.core.run.gpu import GpuMeter, GpuOptions
from chimera_tui.core.system.gpu import Nvml
from chimera_tui.core.system.simulated_gpu import SimulatedNvml

NAME = "gpu_sampler"


def _module() -> tuple[object | None, str]:
    nvml, _ = Nvml.open()
    if nvml is not None and nvml.count:
        nvml.close()
        return None, f"real NVML, {nvml.count} GPU(s)"
    return SimulatedNvml(), "simulated GPU (no NVIDIA driver here)"


def _cpu_ms_per_s(seconds: float) -> float:
    c0, t0 = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    return (time.process_time() - c0) / (time.perf_counter() - t0) * 1000.0


def sampler_cpu_ms_per_s(module: object | None, seconds: float, interval_s: float) -> float | None:
    idle = _cpu_ms_per_s(seconds / 2)
    meter = GpuMeter(GpuOptions(nvml_module=module, sample_interval_s=interval_s)).open()
    try:
        if not meter.available:
            return None
        window = meter.start("bench", meter.all_gpus, busy=False)
        busy = _cpu_ms_per_s(seconds)
        meter.stop(window, busy=False)
        return max(0.0, busy - idle)
    finally:
        meter.close()


def per_call_us(module: object | None, repeats: int) -> tuple[float | None, float | None]:
    nvml, _ = Nvml.open(module)
    meter = GpuMeter(GpuOptions(nvml_module=module, sample_interval_s=3600)).open()  # sampler idle
    try:
        if nvml is None:
            return None, None
        samples, edges = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            nvml.sample()
            samples.append((time.perf_counter() - t) * 1e6)
            t = time.perf_counter()
            meter.stop(meter.start("bench", meter.all_gpus, busy=False), busy=False)
            edges.append((time.perf_counter() - t) * 1e6)
        return median(samples), median(edges)
    finally:
        if nvml is not None:
            nvml.close()
        meter.close()


def run(quick: bool = False) -> list[Result]:
    module, what = _module()
    seconds = 2.0 if quick else 5.0
    cpu = sampler_cpu_ms_per_s(module, seconds, 0.1)
    sample_us, edges_us = per_call_us(module, 50 if quick else 200)
    return [
        check(NAME, "sampler thread CPU at 10 Hz", cpu, "ms/s", "<", 10.0, what),
        info(NAME, "one sample of every GPU (median)", sample_us, "µs", what),
        check(NAME, "energy window edges, start + stop (median)", edges_us, "µs", "<", 5000.0, what),
    ]
