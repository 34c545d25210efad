"""Which process holds GPU memory: names and roles, endpoints tied to their GPUs, the monitor's list,
and multi-agent energy per agent (separate GPUs) or per round (a shared GPU), with the fake NVML."""

from __future__ import annotations

from pathlib import Path

import pytest

from chimera_tui.core.measure.metrics import FLAG_GPU_THROTTLED
from chimera_tui.core.run.gpu import GpuOptions
from chimera_tui.core.run.multi import MultiRunner
from chimera_tui.core.system import gpu_processes
from chimera_tui.core.system.energy import COUNTER
from chimera_tui.core.system.gpu import GpuProcess
from chimera_tui.core.system.gpu_notes import gpu_lines
from chimera_tui.core.system.gpu_processes import endpoint_gpus, is_local, resolve, role_of
from chimera_tui.core.system.monitor import SystemMonitor
from tests.fake_nvml import GIB, FakeGpu, FakeNvml
from tests.helpers import fast_sim
from tests.test_multi import multi_spec

pytestmark = pytest.mark.anyio
URLS = ["http://127.0.0.1:1", "http://127.0.0.1:2"]


def test_roles_are_picked_out() -> None:
    assert role_of("ollama", ["/usr/bin/ollama", "runner", "--model"]) == "ollama runner"
    assert role_of("ollama", ["ollama", "serve"]) == "ollama"
    assert role_of("llama-server", []) == "llama-server"
    assert role_of("python3", ["-m", "vllm.entrypoints.openai.api_server"]) == "vllm"
    assert role_of("Xorg", []) is None


def test_resolve_names_sorts_by_gpu_and_memory() -> None:
    procs = [GpuProcess(1, 7, GIB), GpuProcess(0, 5, GIB), GpuProcess(0, 6, 4 * GIB)]
    out = resolve(procs, {5: "Xorg", 6: "ollama runner", 7: "llama-server"})
    assert [(p.gpu, p.pid, p.role) for p in out] == [
        (0, 6, "ollama runner"),
        (0, 5, None),
        (1, 7, "llama-server"),
    ]


def test_endpoints_are_tied_through_the_listening_process_or_its_children() -> None:
    procs = [
        gpu_processes.ProcessInfo(0, 100, "ollama", GIB, "ollama runner", parents=(50, 1)),
        gpu_processes.ProcessInfo(1, 200, "llama-server", GIB, "llama-server"),
    ]
    ports = {11434: 50, 8080: 200, 9999: 300}
    assert endpoint_gpus("http://127.0.0.1:11434", procs, ports.get)[0] == [0]
    assert endpoint_gpus("http://localhost:8080", procs, ports.get)[0] == [1]
    assert endpoint_gpus("http://127.0.0.1:9999", procs, ports.get) == (
        None,
        "the server (pid 300) holds no GPU memory",
    )
    assert endpoint_gpus("http://gpu-box.example:11434", procs, ports.get)[0] is None
    assert not is_local("http://10.1.2.3:11434") and is_local("http://127.0.0.1:1")


def test_monitor_lists_processes_or_says_why() -> None:
    fake = FakeNvml(gpus=[FakeGpu(processes=[(4242, 2 * GIB)])], process_names={4242: "ollama runner"})
    with SystemMonitor(0.01, nvml_module=fake) as mon:
        assert mon.wait_ready(5)
        procs, status = mon.processes()
    assert status == "ok" and procs is not None
    assert [(p.pid, p.name, p.role, p.used_bytes) for p in procs] == [
        (4242, "ollama runner", "ollama runner", 2 * GIB)
    ]
    unsupported = FakeNvml(unsupported={"nvmlDeviceGetComputeRunningProcesses"})
    with SystemMonitor(0.01, nvml_module=unsupported) as mon:
        assert mon.wait_ready(5)
        procs, status = mon.processes()
    assert procs is None and "Not Supported" in status


def _two_gpu_fake(shared: bool) -> FakeNvml:
    pids = [(1001, 3 * GIB)], [(1002, 3 * GIB)]
    gpus = [
        FakeGpu(
            energy_step_mj=4000,
            processes=pids[0] + (pids[1] if shared else []),
            clock_reasons=0x4 if shared else 0,
        ),
        FakeGpu(energy_step_mj=6000, processes=[] if shared else pids[1]),
    ]
    return FakeNvml(gpus=gpus, process_names={1001: "ollama", 1002: "ollama"})


async def _multi(tmp_path: Path, fake: FakeNvml, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(gpu_processes, "listener_pid", {1: 1001, 2: 1002}.get)
    sims = {u: fast_sim() for u in URLS}
    runner = MultiRunner(
        multi_spec("dual", URLS, runs=2, warmup=0),
        tmp_path,
        transport_factory=lambda url: sims[url].transport(),
        gpu=GpuOptions(nvml_module=fake, idle_baseline_s=0),
    )
    return await runner.run()


async def test_agents_on_separate_gpus_get_their_own_energy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await _multi(tmp_path, _two_gpu_fake(shared=False), monkeypatch)
    table = session.manifest.gpu
    assert table is not None and table["scope"] == "agent"
    assert table["scope_note"] == "per agent: agent 1 → GPU 0, agent 2 → GPU 1"
    measured = [r for r in session.runs if not r.warmup and not r.solo]
    for run in measured:
        assert run.gpu is not None and run.gpu["scope"] == "agent"
        assert [g["index"] for g in run.gpu["gpus"]] == [run.agent]
        assert run.gpu["gpus"][0]["method"] == COUNTER
        assert run.metrics.energy_j == pytest.approx(4.0 if run.agent == 0 else 6.0)
    assert {p["pid"] for p in table["processes"]} == {1001, 1002}


async def test_agents_sharing_a_gpu_are_measured_per_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await _multi(tmp_path, _two_gpu_fake(shared=True), monkeypatch)
    table = session.manifest.gpu
    assert table is not None and table["scope"] == "round" and "share a GPU" in table["scope_note"]
    measured = [r for r in session.runs if not r.warmup and not r.solo]
    assert all(r.metrics.energy_j is None for r in measured)  # no per-call figure: it is the round's
    rounds = {r.round: r.gpu for r in measured}
    assert len(rounds) == 2
    for energy in rounds.values():
        assert energy is not None and energy["scope"] == "round"
        assert energy["energy_j"] == pytest.approx(10.0)  # both GPUs, one counter step each
        assert energy["output_tokens"] > 0
    assert all(
        FLAG_GPU_THROTTLED in r.metrics.flags and "GPU 0 throttled (power cap)" in r.notes for r in measured
    )
    assert any(
        line.startswith("GPU energy per round (mean of 2): 10.00 J")
        for line in gpu_lines(table, session.runs)
    )


async def test_preflight_checks_memory_on_each_endpoints_own_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeNvml(
        gpus=[
            FakeGpu(mem_total=4 * GIB, mem_used=3 * GIB, processes=[(1001, 3 * GIB)]),
            FakeGpu(mem_total=80 * GIB, mem_used=1 * GIB, processes=[(1002, GIB)]),
        ],
        process_names={1001: "ollama", 1002: "ollama"},
    )
    session = await _multi(tmp_path, fake, monkeypatch)
    warnings = session.manifest.concurrency.preflight_warnings  # type: ignore[union-attr]
    assert any("do not fit on GPU 0" in w and "1.0 GiB free there" in w for w in warnings), warnings
    assert not any("GPU 1" in w for w in warnings)
