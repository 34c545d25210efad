"""GPU truth check, for a machine with an NVIDIA GPU: what the system panel and the energy figures show.

    .venv/bin/python tools/gpu_check.py                        # readings, processes, idle + load windows
    .venv/bin/python tools/gpu_check.py --endpoint http://127.0.0.1:11434 --model llama3.2:1b --runs 3
    .venv/bin/python tools/gpu_check.py --demo                 # + a bench session on the embedded simulator
    .venv/bin/python tools/gpu_check.py --simulated            # the same report on the simulated GPU

Prints, with numbers: each GPU's panel lines (memory, temperature, power, clocks, throttle reasons,
compute processes), the energy counter and the integrated power samples over an idle window and over
a load window (a torch matmul loop when torch sees CUDA, else none), their agreement, the idle
baseline, the sampler's cost, and, given an endpoint, a short bench session's per-run energy
(J, J/token, tokens/J, above idle, throttling). Exits 0 with a one-line reason when NVML is absent.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chimera_tui.core.errors import ChimeraError  # noqa: E402
from chimera_tui.core.run.gpu import GpuMeter, GpuOptions  # noqa: E402
from chimera_tui.core.system.energy import integrate_power  # noqa: E402
from chimera_tui.core.system.gpu import Nvml  # noqa: E402
from chimera_tui.core.system.gpu_processes import list_processes  # noqa: E402
from chimera_tui.core.system.thermal import reason_words  # noqa: E402
from chimera_tui.ui.widgets.system_panel import gpu_lines, process_line  # noqa: E402


def panel(module: Any) -> int:
    nvml, reason = Nvml.open(module)
    if nvml is None:
        print(f"NVML: {reason}")
        return 0
    try:
        print(f"driver {nvml.driver_version}; {nvml.count} GPU(s)")
        infos = {i.index: i for i in nvml.devices()}
        procs, why = list_processes(nvml, reason or "")
        counters = nvml.energy_mj()
        for s in nvml.sample():
            info = infos.get(s.index)
            print(f"GPU {s.index}  {info.name if info else '?'}  uuid {info.uuid if info else '?'}")
            for line in gpu_lines(s):
                print("   ", line)
            print(f"    clock-event reasons: 0x{s.clock_reasons or 0:x} {reason_words(s.clock_reasons)}")
            energy = counters[s.index]
            print(
                f"    energy counter: {energy} mJ"
                if energy is not None
                else f"    energy counter: none ({nvml.refused.get('energy')})"
            )
            mine = [p for p in procs or [] if p.gpu == s.index]
            print("   ", process_line(mine, limit=8) if mine else f"procs: none listed ({why})")
        return nvml.count
    finally:
        nvml.close()


def window(meter: GpuMeter, seconds: float, load: Any = None) -> None:
    """One energy window over every GPU: counter vs integrated samples."""
    win = meter.start("check", meter.all_gpus, busy=False)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if load is not None:
            load()
        else:
            time.sleep(0.05)
    points = {i: list(w.power) for i, w in win.seen.items()} if win else {}
    for g in meter.stop(win, busy=False):
        assert win is not None and win.t1_ns is not None
        integrated = integrate_power(points.get(g.index, []), win.t0_ns, win.t1_ns)
        agree = (
            f"{(g.energy_j / integrated - 1) * 100:+.1f}%" if g.energy_j is not None and integrated else "—"
        )
        print(f"    GPU {g.index}: {g.method}: {_n(g.energy_j, 2)} J, avg {_n(g.avg_power_w, 1)} W")
        print(f"      power samples {_n(integrated, 2)} J ({g.power_samples}); counter vs samples {agree}")
        print(f"      above idle {_n(g.above_idle_j, 2)} J; temperature {g.temp_start_c} → {g.temp_end_c} °C")
        throttle = g.throttle or "no throttling"
        print(f"      SM {_n(g.sm_clock_mean_mhz, 0)} MHz (min {g.sm_clock_min_mhz}); {throttle}")
        if g.reason:
            print(f"      {g.reason}")


def _n(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def torch_load() -> Any:
    try:
        import torch  # type: ignore[import-not-found]
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    a = torch.randn(4096, 4096, device="cuda")

    def step() -> None:
        for _ in range(8):
            a @ a
        torch.cuda.synchronize()

    return step


def bench(args: argparse.Namespace, module: Any) -> None:
    import anyio

    from chimera_tui.core.run.single import BenchRunner, BenchSpec
    from chimera_tui.core.store.profiles import ProfileStore
    from chimera_tui.core.system.gpu_notes import gpu_lines as session_gpu_lines

    spec = BenchSpec(
        model=args.model,
        profile=ProfileStore().get("baseline_default"),
        prompt="Write three sentences about the sea.",
        endpoint=args.endpoint,
        runs=args.runs,
        warmup=1,
        num_predict=args.num_predict,
    )
    with tempfile.TemporaryDirectory() as tmp:
        runner = BenchRunner(spec, Path(tmp), gpu=GpuOptions(nvml_module=module, idle_baseline_s=args.idle))
        session = anyio.run(runner.run)
        for r in session.runs:
            m = r.metrics
            kind = " (warm-up)" if r.warmup else ""
            print(
                f"    run {r.index}{kind}: {m.eval_count} tok {_n(m.energy_j, 2)} J {_n(m.avg_power_w, 1)} W"
            )
            print(
                f"      {_n(m.energy_per_token_j, 4)} J/tok, {_n(m.tokens_per_j, 3)} tok/J; flags {m.flags}"
            )
            print(f"      above idle {_n(m.energy_per_token_above_idle_j, 4)} J/token")
        for line in session_gpu_lines(session.manifest.gpu, session.runs):
            print("   ", line)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--simulated", action="store_true", help="use the simulated GPU instead of NVML")
    p.add_argument("--seconds", type=float, default=5.0, help="length of the idle and load windows")
    p.add_argument("--idle", type=float, default=3.0, help="idle baseline seconds")
    p.add_argument("--endpoint", default=None, help="an inference server to bench (optional)")
    p.add_argument("--model", default=None)
    p.add_argument("--demo", action="store_true", help="bench the embedded simulator (the bench path only)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--num-predict", type=int, default=128)
    args = p.parse_args(argv)
    module: Any = None
    if args.simulated:
        from chimera_tui.core.system.simulated_gpu import SimulatedNvml

        module = SimulatedNvml()
    print("== panel readings")
    if panel(module) == 0:
        return 0
    meter = GpuMeter(GpuOptions(nvml_module=module, idle_baseline_s=args.idle)).open()
    try:
        print(f"== idle baseline ({args.idle:g} s)")
        anyio_run(meter)
        print(f"    {meter.idle_power_w}")
        print(f"== idle window ({args.seconds:g} s)")
        window(meter, args.seconds)
        load = torch_load()
        if load is None and module is not None:
            module.set_busy(+1)
            print(f"== load window ({args.seconds:g} s, simulated load)")
            window(meter, args.seconds)
            module.set_busy(-1)
        elif load is not None:
            print(f"== load window ({args.seconds:g} s, torch matmul 4096²)")
            window(meter, args.seconds, load)
        else:
            print("== load window: skipped (no torch with CUDA here)")
    finally:
        meter.close()
    print("== sampler cost")
    from benchmarks.gpu_sampler import per_call_us, sampler_cpu_ms_per_s

    cpu = sampler_cpu_ms_per_s(module, 3.0, 0.1)
    sample_us, edges_us = per_call_us(module, 100)
    print(f"    sampler thread at 10 Hz: {cpu and round(cpu, 2)} ms CPU per second")
    print(f"    one sample of every GPU: {_n(sample_us, 1)} µs; window edges: {_n(edges_us, 1)} µs")
    if args.demo:  # the embedded simulator: the bench path end to end (its "GPU work" is not real)
        from chimera_tui.cli.common import start_demo_simulator

        sim = start_demo_simulator()
        args.endpoint, args.model = sim.url, args.model or "gemma3:latest"
    else:
        sim = None
    try:
        if args.endpoint and args.model:
            print(f"== bench {args.model} on {args.endpoint}")
            bench(args, module)
    except ChimeraError as exc:
        print(f"    bench failed: {exc}")
    finally:
        if sim is not None:
            sim.stop()
    return 0


def anyio_run(meter: GpuMeter) -> None:
    import anyio

    anyio.run(meter.measure_idle, lambda text: print("   ", text))


if __name__ == "__main__":
    raise SystemExit(main())
