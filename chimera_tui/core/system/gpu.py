"""GPU readings through NVML (`pynvml` from nvidia-ml-py). Works, and says why, when NVML is absent.

Every reading that NVML refuses (not supported on this GPU, driver hiccup) is None, never 0.
The module object is injectable, so tests drive this code with a fake NVML.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GpuInfo:
    index: int
    name: str
    uuid: str | None
    memory_total_bytes: int | None


@dataclass(frozen=True, slots=True)
class GpuSample:
    index: int
    util_pct: float | None
    mem_used_bytes: int | None
    mem_total_bytes: int | None
    temperature_c: float | None
    power_w: float | None
    power_limit_w: float | None
    sm_clock_mhz: int | None
    mem_clock_mhz: int | None
    #: NVML clock-event (throttle) reason bits; None when NVML cannot say (core/system/thermal.py)
    clock_reasons: int | None = None


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """A compute process on a GPU: pid and the GPU memory it holds (None when NVML cannot say)."""

    gpu: int
    pid: int
    used_bytes: int | None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Nvml:
    """An initialised NVML session. Create with `Nvml.open()`; call `close()` when done."""

    def __init__(self, module: Any) -> None:
        self._nv = module
        self._handles: list[Any] = []
        self._closed = False
        module.nvmlInit()
        try:
            count = module.nvmlDeviceGetCount()
            self._handles = [module.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except BaseException:
            self._try(module.nvmlShutdown)  # don't leak the NVML session we just opened
            raise
        self.driver_version: str | None = self._try(lambda: _text(module.nvmlSystemGetDriverVersion()))
        #: why a kind of reading is missing: "energy", "clock_reasons", "processes" → one line
        self.refused: dict[str, str] = {}

    @classmethod
    def open(cls, module: ModuleType | Any | None = None) -> tuple[Nvml | None, str | None]:
        """Return (nvml, None) or (None, one-line reason it is unavailable)."""
        try:
            nv = module if module is not None else importlib.import_module("pynvml")
        except ImportError:
            return None, "NVML bindings (nvidia-ml-py) are not installed"
        try:
            return cls(nv), None
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            log.info("NVML unavailable: %r", exc)
            return None, f"no NVIDIA GPU/driver found (NVML: {str(exc) or type(exc).__name__})"

    def _try(self, read: Any) -> Any:
        try:
            return read()
        except Exception as exc:  # any NVMLError: the reading is unknown, not zero
            log.debug("NVML reading failed: %r", exc)
            return None

    def _why(self, what: str, read: Any) -> Any:
        """Like `_try`, but remembers why `what` failed (the reason shown beside a None)."""
        try:
            value = read()
        except Exception as exc:
            self.refused[what] = f"NVML: {' '.join(str(exc).split()) or type(exc).__name__}"
            log.debug("NVML %s failed: %r", what, exc)
            return None
        self.refused.pop(what, None)
        return value

    @property
    def module(self) -> Any:
        """The NVML module in use (pynvml, a fake, or the simulated GPU)."""
        return self._nv

    @property
    def count(self) -> int:
        return len(self._handles)

    def devices(self) -> list[GpuInfo]:
        nv = self._nv
        infos = []
        for i, h in enumerate(self._handles):
            mem = self._try(lambda h=h: nv.nvmlDeviceGetMemoryInfo(h))
            infos.append(
                GpuInfo(
                    index=i,
                    name=self._try(lambda h=h: _text(nv.nvmlDeviceGetName(h))) or f"GPU {i}",
                    uuid=self._try(lambda h=h: _text(nv.nvmlDeviceGetUUID(h))),
                    memory_total_bytes=int(mem.total) if mem is not None else None,
                )
            )
        return infos

    def sample(self) -> list[GpuSample]:
        nv = self._nv
        out = []
        for i, h in enumerate(self._handles):
            util = self._try(lambda h=h: nv.nvmlDeviceGetUtilizationRates(h))
            mem = self._try(lambda h=h: nv.nvmlDeviceGetMemoryInfo(h))
            temp = self._try(lambda h=h: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))
            power = self._try(lambda h=h: nv.nvmlDeviceGetPowerUsage(h))
            limit = self._try(lambda h=h: nv.nvmlDeviceGetEnforcedPowerLimit(h))
            sm = self._try(lambda h=h: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM))
            memclk = self._try(lambda h=h: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM))
            reasons = self._why("clock_reasons", lambda h=h: self._clock_reasons(h))
            out.append(
                GpuSample(
                    index=i,
                    util_pct=float(util.gpu) if util is not None else None,
                    mem_used_bytes=int(mem.used) if mem is not None else None,
                    mem_total_bytes=int(mem.total) if mem is not None else None,
                    temperature_c=float(temp) if temp is not None else None,
                    power_w=power / 1000.0 if power is not None else None,
                    power_limit_w=limit / 1000.0 if limit is not None else None,
                    sm_clock_mhz=int(sm) if sm is not None else None,
                    mem_clock_mhz=int(memclk) if memclk is not None else None,
                    clock_reasons=int(reasons) if reasons is not None else None,
                )
            )
        return out

    def _clock_reasons(self, handle: Any) -> int:
        """The clock-event reasons (drivers ≥ 535 name them so; older bindings say "throttle")."""
        nv = self._nv
        read = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None)
        if read is None:
            read = nv.nvmlDeviceGetCurrentClocksThrottleReasons
        return int(read(handle))

    def _pick(self, indices: list[int] | None) -> list[Any]:
        return self._handles if indices is None else [self._handles[i] for i in indices]

    def energy_mj(self, indices: list[int] | None = None) -> list[int | None]:
        """The total-energy counter (mJ since the driver loaded) of each GPU (or of `indices`);
        None where unsupported."""
        nv = self._nv
        return [
            self._why("energy", lambda h=h: int(nv.nvmlDeviceGetTotalEnergyConsumption(h)))
            for h in self._pick(indices)
        ]

    def temperatures(self, indices: list[int] | None = None) -> list[float | None]:
        nv = self._nv
        return [
            self._try(lambda h=h: float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)))
            for h in self._pick(indices)
        ]

    def processes(self) -> list[GpuProcess] | None:
        """Every GPU's compute processes; None when NVML cannot list them on any GPU."""
        nv = self._nv
        out: list[GpuProcess] = []
        listed = False
        for i, h in enumerate(self._handles):
            procs = self._why("processes", lambda h=h: nv.nvmlDeviceGetComputeRunningProcesses(h))
            if procs is None:
                continue
            listed = True
            for p in procs:
                used = getattr(p, "usedGpuMemory", None)
                out.append(GpuProcess(i, int(p.pid), int(used) if isinstance(used, int) else None))
        return out if listed else None

    def close(self) -> None:
        """Shut NVML down once (NVML counts init/shutdown pairs, so a second shutdown is not harmless)."""
        if self._closed:
            return
        self._closed = True
        self._handles = []
        self._try(self._nv.nvmlShutdown)
