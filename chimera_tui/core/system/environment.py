"""A snapshot of the machine a session ran on, for the manifest."""

from __future__ import annotations

import os
import platform
import socket
from typing import Any

import psutil

from chimera_tui.core.system.gpu import Nvml


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def collect_environment(nvml_module: Any | None = None) -> dict[str, Any]:
    """OS, CPU, RAM and (when NVML is present) GPU names, memory and driver. None-free for TOML."""
    env: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_cores_logical": psutil.cpu_count(logical=True) or 0,
        "cpu_cores_physical": psutil.cpu_count(logical=False) or 0,
        "ram_total_bytes": psutil.virtual_memory().total,
        "pid": os.getpid(),
    }
    nvml, reason = Nvml.open(nvml_module)
    if nvml is None:
        env["gpu_status"] = reason or "unavailable"
        env["gpus"] = []
        return env
    try:
        env["gpu_status"] = "ok"
        if getattr(nvml.module, "SIMULATED", False):
            env["gpu_status"] = "simulated (--demo): not a real GPU"
            env["gpu_simulated"] = True
        if nvml.driver_version:
            env["gpu_driver"] = nvml.driver_version
        env["gpus"] = [
            {
                k: v
                for k, v in {
                    "index": g.index,
                    "name": g.name,
                    "uuid": g.uuid,
                    "memory_total_bytes": g.memory_total_bytes,
                }.items()
                if v is not None
            }
            for g in nvml.devices()
        ]
    finally:
        nvml.close()
    return env
