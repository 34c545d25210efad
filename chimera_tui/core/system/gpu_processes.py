"""Which process holds GPU memory: NVML's compute processes, named with psutil, servers picked out.

`endpoint_gpus` ties a local endpoint to its GPU(s): the process listening on the endpoint's port,
or one of its children (Ollama's model runner), holds memory on those GPUs.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import psutil

if TYPE_CHECKING:
    from chimera_tui.core.system.gpu import GpuProcess, Nvml

log = logging.getLogger(__name__)

OK = "ok"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"})


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One compute process on one GPU."""

    gpu: int
    pid: int
    name: str | None
    used_bytes: int | None
    #: "ollama runner", "ollama", "llama-server", "vllm" … or None for anything else
    role: str | None
    #: the ancestors' pids, nearest first (to tie a runner to the server that started it)
    parents: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"gpu": self.gpu, "pid": self.pid, "name": self.name, "role": self.role}
        out["used_bytes"] = self.used_bytes
        return {k: v for k, v in out.items() if v is not None}


def role_of(name: str | None, cmdline: Iterable[str] = ()) -> str | None:
    """Which inference server a process is, from its name and command line."""
    words = " ".join([name or "", *cmdline]).lower()
    if "ollama" in words:
        return "ollama runner" if "runner" in words or "llama_server" in words else "ollama"
    if "llama-server" in words or "llama_server" in words or "llama_cpp" in words:
        return "llama-server"
    if "vllm" in words:
        return "vllm"
    if "lm-studio" in words or "lmstudio" in words or "lms " in words:
        return "lm studio"
    return None


def _describe(pid: int, names: dict[int, str] | None) -> tuple[str | None, list[str], tuple[int, ...]]:
    if names is not None and pid in names:
        return names[pid], [], ()
    try:
        proc = psutil.Process(pid)
        name = proc.name()
        try:
            cmd = proc.cmdline()[:3]
        except psutil.Error:
            cmd = []
        parents = tuple(p.pid for p in proc.parents())
        return name, cmd, parents
    except (psutil.Error, OSError):
        return None, [], ()


def resolve(procs: Iterable[GpuProcess], names: dict[int, str] | None = None) -> list[ProcessInfo]:
    """Name every process (psutil; `names` overrides, as the simulated GPU gives) and its role."""
    out = []
    for p in procs:
        name, cmd, parents = _describe(p.pid, names)
        out.append(ProcessInfo(p.gpu, p.pid, name, p.used_bytes, role_of(name, cmd), parents))
    return sorted(out, key=lambda i: (i.gpu, -(i.used_bytes or 0), i.pid))


def list_processes(nvml: Nvml | None, no_nvml_reason: str) -> tuple[list[ProcessInfo] | None, str]:
    """Every GPU's compute processes, resolved; (None, why) without NVML or when it cannot list them."""
    if nvml is None:
        return None, no_nvml_reason
    procs = nvml.processes()
    if procs is None:
        return None, f"process list not available ({nvml.refused.get('processes', 'NVML refused')})"
    return resolve(procs, getattr(nvml.module, "process_names", None)), OK


def is_local(url: str) -> bool:
    """The endpoint's server runs on this machine (loopback, or one of this host's names)."""
    host = urlparse(url).hostname or ""
    if host in LOOPBACK or host.startswith("127."):
        return True
    try:
        return host in {socket.gethostname(), socket.getfqdn()}
    except OSError:
        return False


def listener_pid(port: int) -> int | None:
    """The pid listening on TCP `port` here, when this user may see it."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return int(conn.pid)
    except (psutil.Error, OSError) as exc:
        log.debug("cannot list listening sockets: %r", exc)
    return None


def endpoint_gpus(
    url: str, procs: list[ProcessInfo] | None, pid_of_port: Any = None
) -> tuple[list[int] | None, str]:
    """The GPUs the endpoint's server holds memory on, and how that was found (or why not)."""
    if not is_local(url):
        return None, "the server is not on this machine"
    if procs is None:
        return None, "GPU processes not available"
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    pid = (pid_of_port or listener_pid)(port)
    if pid is None:
        return None, f"no process seen listening on port {port}"
    gpus = sorted({p.gpu for p in procs if p.pid == pid or pid in p.parents})
    if not gpus:
        return None, f"the server (pid {pid}) holds no GPU memory"
    return gpus, f"pid {pid} (or its runner) holds memory on GPU {', '.join(map(str, gpus))}"
