"""Host and GPU sampling on a fixed interval, in a daemon thread of its own.

NVML calls can take milliseconds (or hang on a sick driver), so they never run on the UI loop or
the stream reader: `SystemMonitor` samples in its own thread and keeps a bounded history that
readers copy under a lock. A reading that fails is None, never 0. Never imports Textual.
"""

from __future__ import annotations

import logging
import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import psutil

from chimera_tui.core.system.gpu import GpuInfo, GpuSample, Nvml
from chimera_tui.core.system.gpu_processes import ProcessInfo, list_processes

log = logging.getLogger(__name__)

T = TypeVar("T")

STATUS_OK = "ok"
STATUS_STARTING = "GPU monitor not started yet"
NO_READINGS = "NVML failed: no readings from any GPU (driver or device lost?)"
_CPU_MIN_WINDOW_S = 0.05  # a CPU % over a shorter window is noise, so the first one may be None


@dataclass(frozen=True, slots=True)
class HostSample:
    """Host readings at `t_ns` (perf_counter_ns); each None when psutil could not read it."""

    t_ns: int
    cpu_pct: float | None
    ram_used_bytes: int | None  # total - available, as memory pressure tools show it
    ram_total_bytes: int | None
    process_rss_bytes: int | None  # this process


@dataclass(frozen=True, slots=True)
class SystemSnapshot:
    """One tick: host readings, one GpuSample per GPU, and "ok" or why GPU readings are missing."""

    t_ns: int
    host: HostSample
    gpus: list[GpuSample]
    gpu_status: str


def _safe(read: Callable[[], T]) -> T | None:
    try:
        return read()
    except Exception as exc:  # psutil.Error, OSError...: unknown, not zero
        log.debug("host reading failed: %r", exc)
        return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _has_readings(s: GpuSample) -> bool:
    return any(
        v is not None
        for v in (
            s.util_pct,
            s.mem_used_bytes,
            s.mem_total_bytes,
            s.temperature_c,
            s.power_w,
            s.power_limit_w,
            s.sm_clock_mhz,
            s.mem_clock_mhz,
        )
    )


class SystemMonitor:
    """Samples host and GPUs every `interval_s` in a daemon thread; keeps the last `history` snapshots.

    Use `start()`/`stop()` or `with SystemMonitor() as mon:`. Readers call `latest()` / `history()`
    from any thread. `nvml_module` replaces `pynvml` (tests pass a fake).
    """

    def __init__(
        self,
        interval_s: float = 0.5,
        nvml_module: Any = None,
        history: int = 240,
        *,
        on_sample: Callable[[SystemSnapshot], None] | None = None,
        sample_host: bool = True,
        processes_every_s: float | None = 2.0,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        if history < 1:
            raise ValueError("history must be >= 1")
        self.interval_s = interval_s
        self._nvml_module = nvml_module
        self._lock = threading.Lock()
        self._history: deque[SystemSnapshot] = deque(maxlen=history)
        self._gpu_infos: list[GpuInfo] = []
        self._gpu_status = STATUS_STARTING
        self._open_reason: str = STATUS_STARTING
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        #: called in the sampling thread with every snapshot (the run hook's energy windows)
        self._on_sample = on_sample
        self._host_on = sample_host
        self._processes_every_s = processes_every_s
        self._processes: list[ProcessInfo] | None = None
        self._processes_status = STATUS_STARTING
        self._processes_at = -math.inf
        #: the GPUs are simulated (`--demo`): every face that shows them says so
        self.simulated = bool(getattr(nvml_module, "SIMULATED", False))

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> SystemMonitor:
        """Start the sampling thread (no-op if it is running). Returns self."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="chimera-system-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Stop sampling and join the thread; True if it has ended (False: stuck in a driver call)."""
        self._stop.set()
        thread = self._thread
        if thread is None:
            return True
        if thread is not threading.current_thread():
            thread.join(timeout)
        if thread.is_alive():
            log.warning("system monitor thread did not stop within %ss", timeout)
            return False
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the first snapshot exists (or the thread ended); True if it does."""
        self._ready.wait(timeout)
        return self.latest() is not None

    def __enter__(self) -> SystemMonitor:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- readers (any thread) --------------------------------------------------------------------

    def latest(self) -> SystemSnapshot | None:
        with self._lock:
            return self._history[-1] if self._history else None

    def history(self) -> list[SystemSnapshot]:
        """A copy of the kept snapshots, oldest first."""
        with self._lock:
            return list(self._history)

    @property
    def gpu_infos(self) -> list[GpuInfo]:
        """Static GPU facts (name, uuid, memory) once NVML is open; [] without NVML."""
        with self._lock:
            return list(self._gpu_infos)

    @property
    def gpu_status(self) -> str:
        """The string "ok", or a one-line reason GPU readings are missing."""
        with self._lock:
            return self._gpu_status

    def processes(self) -> tuple[list[ProcessInfo] | None, str]:
        """The GPUs' compute processes (refreshed every few seconds) and "ok" or why they are missing."""
        with self._lock:
            return (list(self._processes) if self._processes is not None else None), self._processes_status

    # -- the sampling thread ---------------------------------------------------------------------

    def _run(self) -> None:
        nvml: Nvml | None = None
        try:
            proc = _safe(psutil.Process)
            _safe(lambda: psutil.cpu_percent(interval=None))  # prime: psutil keeps the baseline per thread
            primed_at = time.monotonic()
            nvml = self._open_nvml()
            next_t = time.monotonic()
            first = True
            while not self._stop.is_set():
                # Later CPU % readings cover a whole interval; the first covers only NVML's start-up.
                cpu_ok = not first or time.monotonic() - primed_at >= _CPU_MIN_WINDOW_S
                first = False
                try:
                    self._tick(nvml, proc, cpu_ok)
                except Exception:  # never let the thread die: the panel would freeze silently
                    log.exception("system monitor tick failed")
                self._ready.set()
                next_t += self.interval_s
                delay = next_t - time.monotonic()
                if delay < 0:  # fell behind (slow NVML): don't burst to catch up
                    next_t, delay = time.monotonic(), 0.0
                if self._stop.wait(delay):
                    break
        except Exception:
            log.exception("system monitor thread crashed")
        finally:
            if nvml is not None:
                nvml.close()
            self._ready.set()

    def _open_nvml(self) -> Nvml | None:
        try:
            nvml, reason = Nvml.open(self._nvml_module)
        except Exception as exc:  # Nvml.open should not raise, but a broken binding might
            nvml, reason = None, f"no NVIDIA GPU/driver found (NVML: {_one_line(exc)})"
        infos: list[GpuInfo] = []
        if nvml is not None:
            try:
                infos = nvml.devices()
            except Exception as exc:
                log.warning("NVML device listing failed: %r", exc)
            reason = STATUS_OK if nvml.count > 0 else "no NVIDIA GPU found (NVML reports 0 devices)"
        status = reason or "GPU unavailable"
        with self._lock:
            self._gpu_infos = infos
            self._open_reason = status
            self._gpu_status = status
        return nvml

    def _tick(self, nvml: Nvml | None, proc: psutil.Process | None, cpu_ok: bool) -> None:
        host = self._sample_host(proc, cpu_ok)
        gpus, status = self._sample_gpus(nvml)
        snap = SystemSnapshot(t_ns=host.t_ns, host=host, gpus=gpus, gpu_status=status)
        with self._lock:
            if status != self._gpu_status:
                log.info("GPU status: %s", status)
            self._gpu_status = status
            self._history.append(snap)
        if self._on_sample is not None:
            self._on_sample(snap)
        every = self._processes_every_s
        if every is not None and time.monotonic() - self._processes_at >= every:
            self._processes_at = time.monotonic()
            procs, why = list_processes(nvml, self._open_reason)
            with self._lock:
                self._processes, self._processes_status = procs, why

    def _sample_host(self, proc: psutil.Process | None, cpu_ok: bool) -> HostSample:
        t_ns = time.perf_counter_ns()
        if not self._host_on:
            return HostSample(t_ns, None, None, None, None)
        cpu = _safe(lambda: float(psutil.cpu_percent(interval=None)))
        vm = _safe(psutil.virtual_memory)
        rss = _safe(lambda: int(proc.memory_info().rss)) if proc is not None else None
        total = _safe(lambda: int(vm.total)) if vm is not None else None
        used = _safe(lambda: int(vm.total - vm.available)) if vm is not None else None
        return HostSample(
            t_ns=t_ns,
            cpu_pct=cpu if cpu_ok else None,
            ram_used_bytes=used,
            ram_total_bytes=total,
            process_rss_bytes=rss,
        )

    def _sample_gpus(self, nvml: Nvml | None) -> tuple[list[GpuSample], str]:
        if nvml is None or nvml.count == 0:
            return [], self._open_reason
        try:
            samples = nvml.sample()
        except Exception as exc:
            return [], f"NVML failed: {_one_line(exc)}"
        if not any(_has_readings(s) for s in samples):
            return [], NO_READINGS
        return samples, STATUS_OK


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def summarize_gpu(history: Iterable[SystemSnapshot], index: int) -> dict[str, float | int | None]:
    """Summary of GPU `index` over snapshots: mean/max util %, max memory used, mean/max power, max temp.

    Each value is None where no snapshot had that reading; `samples` counts snapshots with the GPU.
    """
    util: list[float] = []
    mem: list[int] = []
    power: list[float] = []
    temp: list[float] = []
    n = 0
    for snap in history:
        for g in snap.gpus:
            if g.index != index:
                continue
            n += 1
            if g.util_pct is not None:
                util.append(g.util_pct)
            if g.mem_used_bytes is not None:
                mem.append(g.mem_used_bytes)
            if g.power_w is not None:
                power.append(g.power_w)
            if g.temperature_c is not None:
                temp.append(g.temperature_c)
    return {
        "samples": n,
        "util_mean_pct": _mean(util),
        "util_max_pct": max(util) if util else None,
        "mem_used_max_bytes": max(mem) if mem else None,
        "power_mean_w": _mean(power),
        "power_max_w": max(power) if power else None,
        "temperature_max_c": max(temp) if temp else None,
    }
