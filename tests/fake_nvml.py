"""A fake `pynvml` module for tests: pass a `FakeNvml` instance wherever `pynvml` would go.

Configurable: the GPUs and their readings (`FakeGpu`), `fail_init` (nvmlInit raises with that
message), `unsupported` (names of functions that raise `NVMLError_NotSupported`), and
`fail_after_n_samples` (after that many samples every device call raises "GPU is lost").
A sample is counted each time GPU 0's utilisation is read, which `Nvml.sample()` does once per call.

Each GPU also models the total-energy counter (mJ): every read advances it by `energy_step_mj`
and, at read number `energy_reset_at_read`, it restarts near zero (a driver reload); its
clock-event reason bits (`clock_reasons`) and its compute processes (`processes`: pid, bytes).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace

GIB = 1024**3


class NVMLError(Exception):
    """Stands in for pynvml.NVMLError."""


class NVMLError_NotSupported(NVMLError):
    """Stands in for pynvml.NVMLError_NotSupported."""

    def __init__(self, message: str = "Not Supported") -> None:
        super().__init__(message)


@dataclass
class FakeGpu:
    """One fake GPU; change fields while a monitor runs to simulate load."""

    name: str | bytes = "NVIDIA GeForce RTX 4090"
    uuid: str | bytes = "GPU-00000000-0000-0000-0000-000000000000"
    mem_total: int = 24 * GIB
    mem_used: int = 6 * GIB
    util_gpu: int = 50
    util_mem: int = 20
    temperature: int = 60
    power_mw: int = 215_500
    power_limit_mw: int = 450_000
    sm_clock: int = 2520
    mem_clock: int = 10501
    #: the total-energy counter (mJ since the driver loaded) and how much each read adds
    energy_mj: int = 4_000_000_000
    energy_step_mj: int = 5_000
    #: at this read (1-based) the counter restarts near zero, as after a driver reload
    energy_reset_at_read: int | None = None
    energy_reads: int = 0
    #: NVML clock-event reason bits (0x20 software thermal, 0x4 power cap, 0x1 idle …)
    clock_reasons: int = 0
    #: compute processes: (pid, used GPU memory in bytes, or None when NVML cannot say)
    processes: list[tuple[int, int | None]] = field(default_factory=list)


@dataclass(frozen=True)
class _Handle:
    index: int


@dataclass
class FakeNvml:
    """Module-like fake of pynvml. `gpus` is a count (default GPUs) or a list of FakeGpu."""

    gpus: int | Sequence[FakeGpu] = 1
    fail_init: str | None = None
    unsupported: Iterable[str] = ()
    fail_after_n_samples: int | None = None
    driver_version: str | bytes = "550.54.14"
    lost: bool = False  # set True/False directly to break or heal every device call
    samples_taken: int = 0
    init_calls: int = 0
    shutdown_calls: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    #: pid → name, used instead of psutil when naming processes (as the simulated GPU does)
    process_names: dict[int, str] | None = None

    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_GRAPHICS = 0
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2
    NVMLError = NVMLError
    NVMLError_NotSupported = NVMLError_NotSupported

    def __post_init__(self) -> None:
        if isinstance(self.gpus, int):
            self.gpus = [FakeGpu(name=f"NVIDIA Fake GPU {i}", uuid=f"GPU-fake-{i}") for i in range(self.gpus)]
        else:
            self.gpus = list(self.gpus)
        self.unsupported = set(self.unsupported)
        self._lock = threading.Lock()

    @property
    def devices(self) -> list[FakeGpu]:
        assert isinstance(self.gpus, list)
        return self.gpus

    def _enter(self, name: str, handle: _Handle | None = None) -> FakeGpu | None:
        with self._lock:
            self.calls[name] = self.calls.get(name, 0) + 1
        if name in self.unsupported:
            raise NVMLError_NotSupported()
        if self.lost and handle is not None:
            raise NVMLError("GPU is lost")
        if handle is None:
            return None
        if not 0 <= handle.index < len(self.devices):
            raise NVMLError("Invalid Argument")
        return self.devices[handle.index]

    # -- library ---------------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.fail_init is not None:
            raise NVMLError(self.fail_init)
        self._enter("nvmlInit")

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1
        self._enter("nvmlShutdown")

    def nvmlSystemGetDriverVersion(self) -> str | bytes:
        self._enter("nvmlSystemGetDriverVersion")
        return self.driver_version

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        self._enter("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.devices):
            raise NVMLError("Invalid Argument")
        return _Handle(index)

    # -- per device ------------------------------------------------------------------------------

    def nvmlDeviceGetName(self, handle: _Handle) -> str | bytes:
        gpu = self._enter("nvmlDeviceGetName", handle)
        assert gpu is not None
        return gpu.name

    def nvmlDeviceGetUUID(self, handle: _Handle) -> str | bytes:
        gpu = self._enter("nvmlDeviceGetUUID", handle)
        assert gpu is not None
        return gpu.uuid

    def nvmlDeviceGetMemoryInfo(self, handle: _Handle) -> SimpleNamespace:
        gpu = self._enter("nvmlDeviceGetMemoryInfo", handle)
        assert gpu is not None
        return SimpleNamespace(total=gpu.mem_total, used=gpu.mem_used, free=gpu.mem_total - gpu.mem_used)

    def nvmlDeviceGetUtilizationRates(self, handle: _Handle) -> SimpleNamespace:
        if handle.index == 0 and self.fail_after_n_samples is not None:
            with self._lock:
                if self.samples_taken >= self.fail_after_n_samples:
                    self.lost = True
                else:
                    self.samples_taken += 1
        elif handle.index == 0:
            with self._lock:
                self.samples_taken += 1
        gpu = self._enter("nvmlDeviceGetUtilizationRates", handle)
        assert gpu is not None
        return SimpleNamespace(gpu=gpu.util_gpu, memory=gpu.util_mem)

    def nvmlDeviceGetTemperature(self, handle: _Handle, sensor: int) -> int:
        gpu = self._enter("nvmlDeviceGetTemperature", handle)
        assert gpu is not None
        if sensor != self.NVML_TEMPERATURE_GPU:
            raise NVMLError("Invalid Argument")
        return gpu.temperature

    def nvmlDeviceGetPowerUsage(self, handle: _Handle) -> int:
        gpu = self._enter("nvmlDeviceGetPowerUsage", handle)
        assert gpu is not None
        return gpu.power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: _Handle) -> int:
        gpu = self._enter("nvmlDeviceGetEnforcedPowerLimit", handle)
        assert gpu is not None
        return gpu.power_limit_mw

    def nvmlDeviceGetClockInfo(self, handle: _Handle, clock_type: int) -> int:
        gpu = self._enter("nvmlDeviceGetClockInfo", handle)
        assert gpu is not None
        if clock_type == self.NVML_CLOCK_SM:
            return gpu.sm_clock
        if clock_type == self.NVML_CLOCK_MEM:
            return gpu.mem_clock
        raise NVMLError("Invalid Argument")

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: _Handle) -> int:
        gpu = self._enter("nvmlDeviceGetTotalEnergyConsumption", handle)
        assert gpu is not None
        with self._lock:
            gpu.energy_reads += 1
            if gpu.energy_reset_at_read is not None and gpu.energy_reads == gpu.energy_reset_at_read:
                gpu.energy_mj = 1_000  # restarted: lower than any read before
            else:
                gpu.energy_mj += gpu.energy_step_mj
            return gpu.energy_mj

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: _Handle) -> int:
        gpu = self._enter("nvmlDeviceGetCurrentClocksEventReasons", handle)
        assert gpu is not None
        return gpu.clock_reasons

    def nvmlDeviceGetComputeRunningProcesses(self, handle: _Handle) -> list[SimpleNamespace]:
        gpu = self._enter("nvmlDeviceGetComputeRunningProcesses", handle)
        assert gpu is not None
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in gpu.processes]
