"""GPU energy with the fake NVML: the counter (and its reset), the power-sample fallback, unsupported
calls, two GPUs, throttle reasons, the idle baseline, the thermal gate, and the runners' records.

Every session here sets the idle baseline to 0 (or measures it with a count-driven fake) so it stays
fast; no figure that depends on the machine's speed is asserted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chimera_tui.core.measure.catalogue import COMPARE_KEYS, METRICS, SUMMARY_KEYS
from chimera_tui.core.measure.compare import MetricSpec, verdict
from chimera_tui.core.measure.metrics import FLAG_GPU_THROTTLED
from chimera_tui.core.measure.stats import summarize
from chimera_tui.core.run import gpu as gpu_hook
from chimera_tui.core.run.gpu import GpuMeter, GpuOptions
from chimera_tui.core.run.single import BenchRunner
from chimera_tui.core.store.sessions import load_session
from chimera_tui.core.system.energy import (
    COUNTER,
    INTEGRATED,
    GpuWindow,
    call_energy,
    counter_joules,
    gpu_run_energy,
    integrate_power,
)
from chimera_tui.core.system.gpu import Nvml
from chimera_tui.core.system.gpu_notes import gpu_lines
from chimera_tui.core.system.thermal import reason_words, throttle_text, throttled
from tests.fake_nvml import FakeGpu, FakeNvml, NVMLError_NotSupported
from tests.helpers import fast_sim, spec

pytestmark = pytest.mark.anyio

S = 1_000_000_000
LOCAL = "http://127.0.0.1:1"  # a local endpoint (nothing listens: the energy covers every GPU)


# -- pure maths ---------------------------------------------------------------------------------------
def test_counter_delta_and_reset() -> None:
    assert counter_joules(10_000, 12_500) == (2.5, None)
    assert counter_joules(10_000, 500) == (None, "energy counter reset during the call")
    assert counter_joules(None, 500) == (None, "energy counter not supported")


def test_power_integration_is_trapezoidal_and_held_at_the_edges() -> None:
    assert integrate_power([(0, 100.0)], 0, 2 * S) == pytest.approx(200.0)  # one sample: held
    ramp = [(0, 100.0), (2 * S, 300.0)]
    assert integrate_power(ramp, 0, 2 * S) == pytest.approx(400.0)
    assert integrate_power(ramp, S, 2 * S) == pytest.approx(250.0)  # clipped inside a segment
    assert integrate_power(ramp, 2 * S, 3 * S) == pytest.approx(300.0)  # held after the last
    assert integrate_power([], 0, S) is None
    assert integrate_power(ramp, S, S) is None


def test_a_reset_counter_falls_back_to_the_power_samples_and_says_so() -> None:
    win = GpuWindow()
    win.add(0, 200.0, 2500, 10000, 0, 60.0)
    win.add(S, 200.0, 2400, 10000, 0x20, 70.0)
    g = gpu_run_energy(0, win, 0, S, (5_000_000, 100), (60.0, 70.0), 50.0)
    assert g.method == INTEGRATED and g.energy_j == pytest.approx(200.0)
    assert g.reason == "energy counter reset during the call"
    assert g.above_idle_j == pytest.approx(150.0) and g.avg_power_w == pytest.approx(200.0)
    assert g.sm_clock_min_mhz == 2400 and g.temp_max_c == 70.0
    assert g.throttle == "throttled (thermal (software))"
    counted = gpu_run_energy(0, win, 0, S, (5_000_000, 5_180_000), (60.0, 70.0), None)
    assert counted.method == COUNTER and counted.energy_j == pytest.approx(180.0)
    assert counted.above_idle_j is None  # no baseline: no "above idle" figure, never 0


def test_call_totals_are_none_when_a_gpu_has_no_figure() -> None:
    a = gpu_run_energy(0, GpuWindow(), 0, S, (0, 100_000), (None, None), 40.0)
    b = gpu_run_energy(1, GpuWindow(), 0, S, (None, None), (None, None), 40.0)
    assert b.energy_j is None and b.reason and "no power samples" in b.reason
    assert call_energy([a, b], 100, 1.0).energy_j is None
    e = call_energy([a], 100, 1.0)
    assert (e.energy_j, e.energy_per_token_j, e.tokens_per_j, e.avg_power_w) == (100.0, 1.0, 1.0, 100.0)
    assert e.energy_above_idle_j == pytest.approx(60.0) and e.tokens_per_j_above_idle == pytest.approx(
        100 / 60
    )
    assert call_energy([a], 0, 1.0).tokens_per_j is None  # no tokens: no ratio, no division by zero


def test_throttle_reasons_in_words() -> None:
    assert reason_words(0x1) == ["idle"] and not throttled(0x1) and throttle_text(0x1) is None
    assert throttle_text(0x4 | 0x40) == "throttled (power cap, thermal (hardware))"
    assert throttled(0x8) and reason_words(None) == []


# -- the NVML wrapper on the fake ---------------------------------------------------------------------
def test_energy_counter_processes_and_reasons_on_two_gpus() -> None:
    fake = FakeNvml(
        gpus=[
            FakeGpu(energy_step_mj=1000, clock_reasons=0x4, processes=[(11, 3 * 2**30)]),
            FakeGpu(energy_step_mj=2000, processes=[(12, None)]),
        ]
    )
    nvml, _ = Nvml.open(fake)
    assert nvml is not None
    first, second = nvml.energy_mj(), nvml.energy_mj()
    assert [b - a for a, b in zip(first, second, strict=True) if a is not None and b is not None] == [
        1000,
        2000,
    ]
    assert [s.clock_reasons for s in nvml.sample()] == [0x4, 0]
    procs = nvml.processes()
    assert procs is not None and [(p.gpu, p.pid, p.used_bytes) for p in procs] == [
        (0, 11, 3 * 2**30),
        (1, 12, None),
    ]
    nvml.close()


def test_unsupported_calls_are_none_with_a_reason() -> None:
    fake = FakeNvml(
        unsupported={
            "nvmlDeviceGetTotalEnergyConsumption",
            "nvmlDeviceGetCurrentClocksEventReasons",
            "nvmlDeviceGetComputeRunningProcesses",
        }
    )
    with pytest.raises(NVMLError_NotSupported):
        fake.nvmlDeviceGetTotalEnergyConsumption(fake.nvmlDeviceGetHandleByIndex(0))
    nvml, _ = Nvml.open(fake)
    assert nvml is not None
    assert nvml.energy_mj() == [None] and nvml.processes() is None
    assert nvml.sample()[0].clock_reasons is None and nvml.sample()[0].power_w == 215.5
    assert "Not Supported" in nvml.refused["energy"] and "Not Supported" in nvml.refused["processes"]
    nvml.close()


# -- the runner hook ------------------------------------------------------------------------------------
def _bench(tmp_path: Path, fake: FakeNvml | None, **kw: object) -> BenchRunner:
    sim = fast_sim()
    options = GpuOptions(nvml_module=fake, idle_baseline_s=0, **kw)  # type: ignore[arg-type]
    return BenchRunner(
        spec(endpoint=LOCAL, warmup=0, runs=2), tmp_path, transport=sim.transport(), gpu=options
    )


async def test_each_run_gets_the_counter_energy_of_both_gpus(tmp_path: Path) -> None:
    fake = FakeNvml(gpus=[FakeGpu(energy_step_mj=5000), FakeGpu(energy_step_mj=3000, clock_reasons=0x20)])
    session = await _bench(tmp_path, fake).run()
    measured = [r for r in session.runs if not r.warmup]
    for run in measured:
        m = run.metrics
        assert m.energy_j == pytest.approx(8.0)  # one counter step per GPU between send and end
        assert m.eval_count and m.energy_per_token_j == pytest.approx(8.0 / m.eval_count)
        assert m.tokens_per_j == pytest.approx(m.eval_count / 8.0)
        assert m.energy_above_idle_j is None  # idle baseline disabled
        assert run.gpu is not None and run.gpu["scope"] == "call"
        assert [g["method"] for g in run.gpu["gpus"]] == [COUNTER, COUNTER]
        assert FLAG_GPU_THROTTLED in m.flags and "GPU 1 throttled (thermal (software))" in run.notes
    loaded = load_session(session.path)
    assert loaded.aggregates["energy_j"].n == 2 and loaded.aggregates["energy_j"].mean == pytest.approx(8.0)
    assert loaded.runs[-1].gpu == measured[-1].gpu  # kept in metrics.json
    assert loaded.manifest.gpu is not None and loaded.manifest.gpu["status"] == "ok"
    assert any(
        "GPU throttled in 2 of 2 runs: thermal (software)" in line
        for line in gpu_lines(loaded.manifest.gpu, loaded.runs)
    )


async def test_a_counter_reset_mid_session_is_detected(tmp_path: Path) -> None:
    fake = FakeNvml(gpus=[FakeGpu(energy_reset_at_read=2)])  # the first call's end read has reset
    session = await _bench(tmp_path, fake).run()
    first, second = [r for r in session.runs if not r.warmup]
    assert first.gpu is not None and first.gpu["gpus"][0]["method"] == INTEGRATED
    assert "reset" in first.gpu["gpus"][0]["reason"]
    assert first.metrics.energy_j is not None and first.metrics.energy_j > 0
    assert any("integrated power samples" in n for n in first.notes)
    assert second.gpu is not None and second.gpu["gpus"][0]["method"] == COUNTER


async def test_without_nvml_every_figure_is_none_and_the_reason_is_kept(tmp_path: Path) -> None:
    session = await _bench(tmp_path, FakeNvml(fail_init="Driver Not Loaded")).run()
    assert all(r.gpu is None and r.metrics.energy_j is None for r in session.runs)
    table = session.manifest.gpu
    assert table is not None and "Driver Not Loaded" in table["status"]
    assert gpu_lines(table, session.runs) == [f"GPU energy: none ({table['status']})"]


async def test_unsupported_counter_uses_power_samples(tmp_path: Path) -> None:
    fake = FakeNvml(unsupported={"nvmlDeviceGetTotalEnergyConsumption"})
    session = await _bench(tmp_path, fake).run()
    run = session.runs[-1]
    assert run.gpu is not None and run.gpu["gpus"][0]["method"] == INTEGRATED
    assert run.gpu["gpus"][0]["reason"] == "energy counter not supported"
    assert run.metrics.avg_power_w == pytest.approx(215.5)  # the fake's steady power


async def test_idle_baseline_gives_above_idle_figures(tmp_path: Path) -> None:
    fake = FakeNvml(gpus=[FakeGpu(energy_step_mj=1000)])
    meter = GpuMeter(GpuOptions(nvml_module=fake, idle_baseline_s=0.01, sample_interval_s=0.005)).open()
    try:
        await meter.measure_idle(lambda _t: None)
        assert meter.idle_power_w[0] is not None and meter.idle_power_w[0] > 0
        win = meter.start("call", [0])
        gpus = meter.stop(win)
        assert gpus[0].above_idle_j is not None and gpus[0].above_idle_j < gpus[0].energy_j  # type: ignore[operator]
        record = meter.session_record("call", "GPU 0")
        assert record["idle_power_w"] == {"0": round(meter.idle_power_w[0], 2)}  # type: ignore[arg-type]
    finally:
        meter.close()


async def test_thermal_gate_waits_until_the_gpu_is_below(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu_hook, "COOL_POLL_S", 0.001)
    fake = FakeNvml(gpus=[FakeGpu(temperature=90)])
    reads = iter([90, 86, 79])

    def cooling(handle: object, sensor: int) -> int:
        return next(reads, 79)

    fake.nvmlDeviceGetTemperature = cooling  # type: ignore[method-assign]
    meter = GpuMeter(GpuOptions(nvml_module=fake, cool_to_c=80))
    meter.nvml, _ = Nvml.open(fake)  # no sampler thread: only the gate reads the temperature
    lines: list[str] = []
    try:
        await meter.cool_gate(lines.append, first=True)
    finally:
        meter.close()
    assert lines[0] == "waiting for the GPU to cool below 80 °C (now 90 °C)"
    assert "79 °C" in lines[-1] and "below 80" in lines[-1]
    no_gpu = GpuMeter(GpuOptions(nvml_module=FakeNvml(fail_init="x"), cool_to_c=80)).open()
    lines.clear()
    await no_gpu.cool_gate(lines.append, first=True)
    assert lines and "not applied" in lines[0]


# -- the catalogue and comparisons ----------------------------------------------------------------------
def test_energy_metrics_in_the_catalogue_and_their_verdicts() -> None:
    assert METRICS["energy_per_token_j"].better == "lower" and METRICS["tokens_per_j"].better == "higher"
    assert {"energy_per_token_j", "tokens_per_j"} <= set(COMPARE_KEYS) & set(SUMMARY_KEYS)
    low, high = summarize([1.0, 1.1, 0.9, 1.0]), summarize([2.0, 2.1, 1.9, 2.0])
    assert verdict(MetricSpec.of("energy_per_token_j"), low, high, 0.01) == "higher (worse)"
    assert verdict(MetricSpec.of("tokens_per_j"), low, high, 0.01) == "higher (better)"


def test_simulated_gpu_follows_the_load() -> None:
    from chimera_tui.core.system.simulated_gpu import IDLE_W, SimulatedNvml

    now = [0.0]
    sim = SimulatedNvml(clock=lambda: now[0])
    e0 = sim.nvmlDeviceGetTotalEnergyConsumption(0)
    now[0] = 1.0
    assert sim.nvmlDeviceGetTotalEnergyConsumption(0) - e0 == pytest.approx(IDLE_W * 1000, abs=1)
    sim.set_busy(+1)
    assert (
        sim.nvmlDeviceGetPowerUsage(0) > IDLE_W * 1000 and sim.nvmlDeviceGetCurrentClocksEventReasons(0) == 0
    )
    now[0] = 400.0  # long enough to heat past the throttle point
    sim.nvmlDeviceGetPowerUsage(0)
    assert sim.nvmlDeviceGetCurrentClocksEventReasons(0) == 0x20 and sim.nvmlDeviceGetClockInfo(0, 1) < 2520
    sim.set_busy(-1)
    assert sim.nvmlDeviceGetCurrentClocksEventReasons(0) == 0x1  # idle


async def test_reports_say_simulated_and_carry_the_energy(tmp_path: Path) -> None:
    import json

    from chimera_tui.core.reports import export_sessions

    fake = FakeNvml(gpus=[FakeGpu(energy_step_mj=2000, clock_reasons=0x4)])
    fake.SIMULATED = True  # type: ignore[attr-defined]  # labelled as the --demo GPU is
    session = load_session((await _bench(tmp_path, fake).run()).path)
    md = export_sessions([session], "md")
    assert "GPU: SIMULATED (--demo)" in md and "GPU throttled in 2 of 2 runs: power cap" in md
    assert "| output tokens per joule (tok/J) |" in md
    html = export_sessions([session], "html")
    assert "SIMULATED (--demo)" in html
    doc = json.loads(export_sessions([session], "json"))
    text = json.dumps(doc)
    assert '"simulated": true' in text and '"method": "energy counter"' in text


def test_a_lost_gpu_is_not_called_unsupported() -> None:
    assert counter_joules(None, 5, "NVML: GPU is lost") == (
        None,
        "energy counter not readable (NVML: GPU is lost)",
    )
    assert counter_joules(None, 5, "NVML: Not Supported") == (None, "energy counter not supported")


def test_live_energy_of_the_call_in_flight() -> None:
    meter = GpuMeter(GpuOptions(nvml_module=FakeNvml(gpus=2), sample_interval_s=3600)).open()
    try:
        assert meter.live(10) == (None, None, None)  # nothing in flight
        window = meter.start("call", [0, 1])
        joules, per_token, per_joule = meter.live(10)
        assert joules is not None and joules > 0  # two GPUs at 215.5 W since the send
        assert per_token == pytest.approx(joules / 10) and per_joule == pytest.approx(10 / joules)
        assert meter.live(0)[1:] == (None, None)  # no token yet: no ratio
        meter.stop(window)
        assert meter.live(10) == (None, None, None)
    finally:
        meter.close()


async def test_a_sweep_measures_the_idle_baseline_once_for_all_configurations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chimera_tui.core.run.sweep import SweepRunner
    from tests.test_sweep import BASE, TIMEOUTS, small

    monkeypatch.setattr(gpu_hook, "COOL_POLL_S", 0.001)
    fake = FakeNvml(gpus=[FakeGpu(energy_step_mj=1000, temperature=50)])
    events: list[object] = []
    options = GpuOptions(nvml_module=fake, idle_baseline_s=0.01, cool_to_c=60)
    sweep = SweepRunner(
        small(),
        tmp_path,
        LOCAL,
        "gemma3:latest",
        events.append,
        fast_sim().transport(),
        timeouts=TIMEOUTS,
        base=BASE,
        gpu=options,
    )
    record = await sweep.run()
    assert record.status == "complete"
    phases = [getattr(e, "message", "") for e in events]
    assert sum("GPU idle baseline" in p for p in phases) == 1  # once for the whole sweep
    sessions = [load_session(p) for p in sorted(tmp_path.iterdir()) if (p / "session.toml").is_file()]
    idle = {str(s.manifest.gpu["idle_power_w"]) for s in sessions if s.manifest.gpu}  # type: ignore[index]
    assert len(sessions) >= 2 and len(idle) == 1 and "None" not in idle
    assert all(r.metrics.energy_above_idle_j is not None for s in sessions for r in s.runs if not r.warmup)


async def test_multi_agent_rounds_pass_the_thermal_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--cool-to` in shared / dual mode: before every round after the first, as before every run."""
    from chimera_tui.core.backends.ollama import Timeouts
    from chimera_tui.core.run.events import PhaseChanged
    from chimera_tui.core.run.multi import AgentSpec, MultiRunner, MultiSpec
    from chimera_tui.core.store.profiles import Profile

    monkeypatch.setattr(gpu_hook, "COOL_POLL_S", 0.001)
    fake = FakeNvml(gpus=[FakeGpu(temperature=90)])
    sim = fast_sim()
    base = Profile("baseline_default", "", {}, None, True)
    spec = MultiSpec(
        "shared",
        [AgentSpec(LOCAL, "gemma3:latest", base), AgentSpec(LOCAL, "gemma3:latest", base)],
        "Say hi",
        runs=2,
        warmup=0,
        num_predict=5,
        timeouts=Timeouts(2, 10, 5),
        ps_wait_s=5.0,
        solo_baseline=False,
    )
    events: list[object] = []
    options = GpuOptions(nvml_module=fake, idle_baseline_s=0, cool_to_c=60)
    runner = MultiRunner(spec, tmp_path, events.append, lambda _url: sim.transport(), gpu=options)
    monkeypatch.setattr(gpu_hook, "COOL_TIMEOUT_S", 0.003)  # a GPU that stays hot: the gate gives up
    session = await runner.run()
    assert session.status == "complete"
    gates = [e.message for e in events if isinstance(e, PhaseChanged) and "cool below 60" in e.message]
    assert len(gates) == 1  # two rounds: the gate before the second


def test_the_tui_takes_the_gpu_options_and_bench_keeps_its_own() -> None:
    from chimera_tui.cli.main import build_parser
    from chimera_tui.ui.config import AppConfig

    tui = build_parser().parse_args(["--cool-to", "60", "--idle-baseline", "1"])
    assert (tui.command, tui.tui_cool_to, tui.tui_idle_baseline) == (None, 60.0, 1.0)
    bench = build_parser().parse_args(["bench", "--cool-to", "50"])
    assert bench.cool_to == 50.0 and bench.tui_cool_to is None
    options = AppConfig(cool_to_c=60.0, idle_baseline_s=1.0).gpu_options()
    assert (options.cool_to_c, options.idle_baseline_s) == (60.0, 1.0)
