"""A simulated GPU with NVML's shape, for `--demo`: every face that shows it labels it "simulated".

Power follows the load the run hook reports (`set_busy`), the energy counter integrates that power,
the temperature follows the power with a lag, and above `THROTTLE_C` the SM clock drops with the
thermal clock-event reason set, so a newcomer sees what the panel and the energy figures do.
"""

from __future__ import annotations

import os
import threading
import time
from types import SimpleNamespace

SIMULATED_NAME = "Simulated GPU (demo)"
IDLE_W = 38.0
BUSY_W = 265.0
LIMIT_W = 300.0
AMBIENT_C = 41.0
HOT_C = 88.0  # where a busy GPU would settle
THROTTLE_C = 83.0
TAU_S = 20.0
SM_MHZ = 2520
MEM_MHZ = 10501
MEM_TOTAL = 24 * 1024**3
MODEL_BYTES = int(5.2 * 1024**3)
#: the simulated idle power is steady: half a second of baseline is enough (`--demo`'s default)
DEMO_IDLE_BASELINE_S = 0.5


class NVMLError(Exception):
    pass


class SimulatedNvml:
    """Module-like stand-in for pynvml: one GPU whose readings follow `set_busy`."""

    SIMULATED = True
    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2
    NVMLError = NVMLError

    def __init__(self, clock: object = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._busy = 0
        self._t = self._now()
        self._energy_mj = 1_234_567_000.0
        self._temp = AMBIENT_C + 4.0
        self.process_names = {os.getpid(): "ollama runner (simulated)"}

    def _now(self) -> float:
        return float(self._clock())  # type: ignore[operator]

    def set_busy(self, delta: int) -> None:
        """The run hook: +1 when a call starts on this GPU, -1 when it ends."""
        with self._lock:
            self._advance()
            self._busy = max(0, self._busy + delta)

    def _power(self) -> float:
        if not self._busy:
            return IDLE_W
        watts = BUSY_W + 6.0 * (self._busy - 1)
        return min(LIMIT_W, watts * (0.86 if self._temp >= THROTTLE_C else 1.0))

    def _advance(self) -> None:
        now = self._now()
        dt = max(0.0, now - self._t)
        self._t = now
        self._energy_mj += self._power() * dt * 1000.0
        target = AMBIENT_C + (HOT_C - AMBIENT_C) * (self._power() - IDLE_W) / (BUSY_W - IDLE_W)
        self._temp += (target - self._temp) * min(1.0, dt / TAU_S)

    def _read(self) -> tuple[float, float, int]:
        with self._lock:
            self._advance()
            return self._power(), self._temp, self._busy

    # -- the pynvml calls the project uses ---------------------------------------------------------
    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        pass

    def nvmlSystemGetDriverVersion(self) -> str:
        return "simulated"

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if index != 0:
            raise NVMLError("Invalid Argument")
        return 0

    def nvmlDeviceGetName(self, handle: int) -> str:
        return SIMULATED_NAME

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return "GPU-simulated-0"

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        used = MODEL_BYTES + 400 * 1024**2
        return SimpleNamespace(total=MEM_TOTAL, used=used, free=MEM_TOTAL - used)

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        busy = self._read()[2]
        return SimpleNamespace(gpu=97 if busy else 0, memory=61 if busy else 0)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        return round(self._read()[1])

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return round(self._read()[0] * 1000)

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        return int(LIMIT_W * 1000)

    def nvmlDeviceGetClockInfo(self, handle: int, clock_type: int) -> int:
        _, temp, busy = self._read()
        if clock_type == self.NVML_CLOCK_MEM:
            return MEM_MHZ if busy else 405
        if not busy:
            return 210
        return int(SM_MHZ * 0.82) if temp >= THROTTLE_C else SM_MHZ

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: int) -> int:
        _, temp, busy = self._read()
        if not busy:
            return 0x1  # idle
        return 0x20 if temp >= THROTTLE_C else 0

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        with self._lock:
            self._advance()
            return int(self._energy_mj)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[SimpleNamespace]:
        return [SimpleNamespace(pid=pid, usedGpuMemory=MODEL_BYTES) for pid in self.process_names]


_shared: SimulatedNvml | None = None


def simulated_nvml() -> SimulatedNvml:
    """The one simulated GPU of this process (the panel and the runner must see the same one)."""
    global _shared
    if _shared is None:
        _shared = SimulatedNvml()
    return _shared
