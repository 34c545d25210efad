"""The runners' GPU hook: energy windows around each call, the idle baseline, the thermal gate.

`GpuMeter` opens NVML in the runner (never in the reader), reads each GPU's energy counter and
temperature right before a call is sent and right after it ends, and runs a `SystemMonitor`
sampler in its own thread whose power, clocks and clock-event reasons fill the open windows.
Without NVML every figure is None and the meter says why once. docs/metrics.md "GPU energy".
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import anyio

from chimera_tui.core.measure.metrics import FLAG_GPU_THROTTLED, FLAGS
from chimera_tui.core.store.sessions import RunRecord
from chimera_tui.core.system.energy import (
    COUNTER,
    NS,
    GpuRunEnergy,
    GpuWindow,
    call_energy,
    gpu_run_energy,
    integrate_power,
)
from chimera_tui.core.system.gpu import Nvml
from chimera_tui.core.system.gpu_processes import ProcessInfo, endpoint_gpus, is_local, list_processes
from chimera_tui.core.system.monitor import SystemMonitor, SystemSnapshot
from chimera_tui.core.system.thermal import coolest_wait

log = logging.getLogger(__name__)

IDLE_BASELINE_DEFAULT_S = 3.0
SAMPLE_INTERVAL_S = 0.1
COOL_TIMEOUT_S = 900.0
COOL_POLL_S = 1.0


@dataclass(slots=True)
class GpuOptions:
    """What the user chose for GPU measurement (`--idle-baseline`, `--cool-to`, `--cooldown`)."""

    nvml_module: Any = None
    #: seconds of idle baseline before the session; None: IDLE_BASELINE_DEFAULT_S when a GPU is present
    idle_baseline_s: float | None = None
    #: thermal gate: wait until every GPU is below this temperature (°C) before the next configuration
    cool_to_c: float | None = None
    #: thermal gate: a fixed pause (s) before the next configuration
    cooldown_s: float = 0.0
    sample_interval_s: float = SAMPLE_INTERVAL_S
    #: an idle baseline measured already (a sweep measures it once for all its sessions)
    idle_power_w: dict[int, float | None] | None = None


@dataclass(slots=True)
class Window:
    """One energy window (a call, an agent's call or a round) over some GPUs."""

    key: str
    gpus: list[int]
    t0_ns: int
    counters0: list[int | None]
    temps0: list[float | None]
    seen: dict[int, GpuWindow] = field(default_factory=dict)
    t1_ns: int | None = None


class GpuMeter:
    """Energy, clocks and throttling per call, for one runner. `open()` it, `close()` it after."""

    def __init__(self, options: GpuOptions | None = None) -> None:
        self.options = options or GpuOptions()
        self.nvml: Nvml | None = None
        self.reason: str = "GPU meter not opened"
        self.idle_power_w: dict[int, float | None] = {}
        self.idle_note: str | None = None
        self._monitor: SystemMonitor | None = None
        self._lock = threading.Lock()
        self._open: dict[str, Window] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with its runner for the engine process (core/run/process.py): the options and
        the idle baseline travel; NVML, the sampler thread and the lock belong to the process that
        opens the meter."""
        state = dict(self.__dict__)
        for name in ("_lock", "_monitor", "nvml", "_open"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.nvml, self._monitor, self._lock, self._open = None, None, threading.Lock(), {}

    # -- lifecycle ------------------------------------------------------------------------------------
    def open(self) -> GpuMeter:
        nvml, reason = Nvml.open(self.options.nvml_module)
        if nvml is not None and nvml.count == 0:
            nvml.close()
            nvml, reason = None, "no NVIDIA GPU found (NVML reports 0 devices)"
        self.nvml, self.reason = nvml, reason or "ok"
        if nvml is not None:
            self._monitor = SystemMonitor(
                self.options.sample_interval_s,
                nvml_module=self.options.nvml_module,
                history=8,
                on_sample=self._on_sample,
                sample_host=False,
                processes_every_s=None,
            ).start()
        return self

    def close(self) -> None:
        if self._monitor is not None:
            self._monitor.stop()
            self._monitor = None
        if self.nvml is not None:
            self.nvml.close()
            self.nvml = None

    @property
    def available(self) -> bool:
        return self.nvml is not None

    @property
    def simulated(self) -> bool:
        return bool(getattr(self.options.nvml_module, "SIMULATED", False))

    @property
    def all_gpus(self) -> list[int]:
        return list(range(self.nvml.count)) if self.nvml is not None else []

    # -- where a server runs --------------------------------------------------------------------------
    def processes(self) -> tuple[list[ProcessInfo] | None, str]:
        return list_processes(self.nvml, self.reason)

    def gpus_for(self, url: str, procs: list[ProcessInfo] | None = None) -> tuple[list[int] | None, str]:
        """The GPUs whose energy counts for `url`'s calls, and why those. None: no figure (why)."""
        if self.nvml is None:
            return None, self.reason
        if not is_local(url):
            return None, "the server is not on this machine: its GPU cannot be read here"
        if procs is None:
            procs, _ = self.processes()
        gpus, how = endpoint_gpus(url, procs)
        if gpus is None:
            return self.all_gpus, f"all GPUs ({how})"
        return gpus, how

    # -- the sampler thread feeds the open windows ----------------------------------------------------
    def _on_sample(self, snap: SystemSnapshot) -> None:
        with self._lock:
            windows = list(self._open.values())
        for win in windows:
            for g in snap.gpus:
                if g.index in win.seen:
                    seen = win.seen[g.index]
                    seen.add(snap.t_ns, g.power_w, g.sm_clock_mhz, g.mem_clock_mhz, g.clock_reasons, None)
                    seen.add_temp(g.temperature_c)

    # -- windows ----------------------------------------------------------------------------------------
    def start(self, key: str, gpus: list[int] | None, busy: bool = True) -> Window | None:
        """Open a window: counters and temperatures read now (right before the call is sent)."""
        if self.nvml is None or not gpus:
            return None
        if busy:
            self._set_busy(gpus, +1)
        counters, temps = self.nvml.energy_mj(gpus), self.nvml.temperatures(gpus)
        win = Window(key, list(gpus), time.perf_counter_ns(), counters, temps, {i: GpuWindow() for i in gpus})
        self._edge(win, win.t0_ns)  # a reading at each edge: even a call shorter than a tick has two
        with self._lock:
            self._open[key] = win
        return win

    def _edge(self, win: Window, t_ns: int) -> None:
        assert self.nvml is not None
        for g in self.nvml.sample():
            if g.index in win.seen:
                win.seen[g.index].add(t_ns, g.power_w, g.sm_clock_mhz, g.mem_clock_mhz, g.clock_reasons, None)

    def stop(self, win: Window | None, busy: bool = True) -> list[GpuRunEnergy]:
        """Close a window: counters and temperatures read now (right after the call ended)."""
        if win is None or self.nvml is None:
            return []
        counters, temps = self.nvml.energy_mj(win.gpus), self.nvml.temperatures(win.gpus)
        win.t1_ns = time.perf_counter_ns()
        self._edge(win, win.t1_ns)
        if busy:
            self._set_busy(win.gpus, -1)
        with self._lock:
            self._open.pop(win.key, None)
        return [
            gpu_run_energy(
                i,
                win.seen[i],
                win.t0_ns,
                win.t1_ns,
                (win.counters0[k], counters[k]),
                (win.temps0[k], temps[k]),
                self.idle_power_w.get(i),
                self.nvml.refused.get("energy"),
            )
            for k, i in enumerate(win.gpus)
        ]

    def live(self, tokens: int) -> tuple[float | None, float | None, float | None]:
        """The call(s) in flight: (J so far over every open window's GPUs, J/token, tokens/J) from the
        power samples; `tokens` is what they have streamed so far. Any thread."""
        with self._lock:
            wins = list(self._open.values())
        now = time.perf_counter_ns()
        total = 0.0
        for win in wins:
            for w in win.seen.values():
                joules = integrate_power(list(w.power), win.t0_ns, now)
                if joules is None:
                    return None, None, None
                total += joules
        if not wins or total <= 0:
            return None, None, None
        return total, (total / tokens if tokens else None), (tokens / total if tokens else None)

    def _set_busy(self, gpus: list[int], delta: int) -> None:
        set_busy = getattr(self.options.nvml_module, "set_busy", None)
        if set_busy is not None:  # the simulated GPU follows the calls
            set_busy(delta)

    # -- idle baseline and thermal gate ----------------------------------------------------------------
    def idle_seconds(self) -> float:
        chosen = self.options.idle_baseline_s
        if self.nvml is None:
            return 0.0
        return IDLE_BASELINE_DEFAULT_S if chosen is None else max(0.0, chosen)

    async def measure_idle(self, emit: Callable[[str], None]) -> None:
        """Each GPU's idle power over a few seconds before the session (the "above idle" figures)."""
        if self.options.idle_power_w is not None and self.nvml is not None:
            self.idle_power_w = dict(self.options.idle_power_w)
            self.idle_note = "idle baseline measured once before the sweep"
            return
        seconds = self.idle_seconds()
        if seconds <= 0:
            self.idle_note = "no idle baseline (disabled)" if self.nvml is not None else None
            return
        emit(f"GPU idle baseline: {seconds:g} s with no request in flight")
        win = self.start("idle", self.all_gpus, busy=False)
        await anyio.sleep(seconds)
        for g in self.stop(win, busy=False):
            self.idle_power_w[g.index] = g.avg_power_w
        self.idle_note = f"idle baseline over {seconds:g} s before the session"

    async def cool_gate(self, emit: Callable[[str], None], first: bool) -> None:
        """Before the next configuration: the fixed cooldown, then wait until below `cool_to_c`."""
        opts = self.options
        if not first and opts.cooldown_s > 0:
            emit(f"cooling down {opts.cooldown_s:g} s")
            await anyio.sleep(opts.cooldown_s)
        if opts.cool_to_c is None:
            return
        if self.nvml is None:
            emit(f"--cool-to not applied: {self.reason}")
            return
        nvml = self.nvml
        waited = 0.0
        while True:
            below, hottest = coolest_wait(nvml.temperatures, opts.cool_to_c)
            if below:
                if waited:
                    emit(f"GPU at {hottest:g} °C after {waited:.0f} s: below {opts.cool_to_c:g} °C")
                return
            if waited >= COOL_TIMEOUT_S:
                emit(f"GPU still at {hottest:g} °C after {waited:.0f} s: going on")
                return
            if waited == 0:
                emit(f"waiting for the GPU to cool below {opts.cool_to_c:g} °C (now {hottest:g} °C)")
            await anyio.sleep(COOL_POLL_S)
            waited += COOL_POLL_S

    # -- what is recorded -------------------------------------------------------------------------------
    def session_record(self, scope: str | None, scope_note: str | None) -> dict[str, Any]:
        """The manifest's `[gpu_energy]` table: status, simulated, idle baseline, scope, processes."""
        procs, why = self.processes()
        out: dict[str, Any] = {
            "status": "ok" if self.nvml is not None else self.reason,
            "simulated": self.simulated or None,
            "idle_baseline_s": self.idle_seconds() if self.nvml is not None else None,
            "idle_power_w": {str(i): round(w, 2) for i, w in self.idle_power_w.items() if w is not None}
            or None,
            "scope": scope,
            "scope_note": scope_note,
            "sample_interval_s": self.options.sample_interval_s if self.nvml is not None else None,
            "processes": [p.to_dict() for p in procs] if procs is not None else None,
            "processes_status": None if procs is not None else why,
        }
        return out


def output_tokens(record: RunRecord) -> int | None:
    """The call's output tokens: the server's eval_count, else the tokens the reader counted."""
    m = record.metrics
    return m.eval_count if m.eval_count is not None else m.token_count


def apply_energy(
    record: RunRecord, gpus: list[GpuRunEnergy], scope: str, win: Window | None, simulated: bool
) -> RunRecord:
    """The finished record with its energy figures (CallMetrics), per-GPU detail and throttle flag."""
    if win is None or not gpus or win.t1_ns is None:
        return record
    m = record.metrics
    tokens = output_tokens(record)
    e = call_energy(gpus, tokens, (win.t1_ns - win.t0_ns) / NS)
    metrics = replace(
        m,
        energy_j=e.energy_j,
        energy_per_token_j=e.energy_per_token_j,
        tokens_per_j=e.tokens_per_j,
        avg_power_w=e.avg_power_w,
        energy_above_idle_j=e.energy_above_idle_j,
        energy_per_token_above_idle_j=e.energy_per_token_above_idle_j,
        tokens_per_j_above_idle=e.tokens_per_j_above_idle,
        flags=list(m.flags),
    )
    notes = list(record.notes)
    throttled = [g for g in gpus if g.throttle]
    if throttled and FLAG_GPU_THROTTLED not in metrics.flags:
        metrics.flags.append(FLAG_GPU_THROTTLED)
        metrics.flags.sort(key=FLAGS.index)
    notes += [f"GPU {g.index} {g.throttle}" for g in throttled]
    fallback = [g for g in gpus if g.method not in (COUNTER, None)]
    notes += [f"GPU {g.index} energy: {g.method} ({g.reason})" for g in fallback]
    notes += [f"GPU {g.index} energy unknown: {g.reason}" for g in gpus if g.method is None]
    detail = {"scope": scope, "simulated": simulated or None, "gpus": [_clean(g.to_dict()) for g in gpus]}
    gpu = {k: v for k, v in detail.items() if v is not None}
    return replace(record, metrics=metrics, notes=notes, gpu=gpu)


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    """Rounded, JSON-safe values (no NaN): what metrics.json keeps per GPU."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, float):
            v = round(v, 4) if math.isfinite(v) else None
        out[k] = v
    return out


def round_energy(meter: GpuMeter, win: Window, records: list[RunRecord]) -> dict[str, Any] | None:
    """A concurrent round's energy over every GPU (agents sharing GPUs): the round's `gpu_energy`."""
    gpus = meter.stop(win)
    if not gpus or win.t1_ns is None:
        return None
    counts = [output_tokens(r) for r in records]
    tokens = sum(c for c in counts if c) if all(c is not None for c in counts) else None
    e = call_energy(gpus, tokens, (win.t1_ns - win.t0_ns) / NS)
    out = {
        "scope": "round",
        "simulated": meter.simulated or None,
        "output_tokens": tokens,
        **{k: _round4(v) for k, v in asdict(e).items()},
        "throttle": "; ".join(f"GPU {g.index} {g.throttle}" for g in gpus if g.throttle) or None,
        "gpus": [_clean(g.to_dict()) for g in gpus],
    }
    return {k: v for k, v in out.items() if v is not None}


def _round4(v: float | None) -> float | None:
    return round(v, 4) if v is not None and math.isfinite(v) else None


class AgentEnergy:
    """Multi-agent energy (MultiRunner): per agent when every agent's local server holds GPUs no
    other agent uses, else per round over every GPU; `scope` and `note` say which and why."""

    def __init__(self, meter: GpuMeter) -> None:
        self.meter = meter
        self.scope: str | None = None
        self.note: str | None = None
        self._gpus: dict[int, list[int]] = {}
        self._agents: dict[int, Window | None] = {}
        self._round: Window | None = None

    def tie(self, endpoints: list[str]) -> dict[int, list[int]]:
        """Each agent's GPU(s), where its local server's process (or runner) shows on them."""
        from chimera_tui.core.system.gpu_processes import endpoint_gpus

        procs, _ = self.meter.processes()
        tied: dict[int, list[int]] = {}
        for agent, url in enumerate(endpoints):
            gpus, _how = endpoint_gpus(url, procs)
            if gpus is not None:
                tied[agent] = gpus
        return tied

    def choose(self, endpoints: list[str]) -> None:
        """After the preload (the servers' runners exist), decide the scope."""
        if not self.meter.available:
            self.scope, self.note = None, self.meter.reason
            return
        tied = self.tie(endpoints)
        sets = [set(tied.get(i, [])) for i in range(len(endpoints))]
        if all(sets) and all(not (a & b) for i, a in enumerate(sets) for b in sets[i + 1 :]):
            self._gpus, self.scope = tied, "agent"
            self.note = "per agent: " + ", ".join(
                f"agent {i + 1} → GPU {', '.join(map(str, g))}" for i, g in tied.items()
            )
        else:
            self.scope = "round"
            why = "the agents share a GPU" if all(sets) else "an agent's GPU could not be determined"
            self.note = f"per round over all GPUs: {why}"

    def open_round(self, r: int, agents: int) -> None:
        """Right before the barrier releases the agents: nothing streams yet."""
        self._round = None
        if self.scope == "agent":
            self._agents = {a: self.meter.start(f"round {r} agent {a}", self._gpus[a]) for a in range(agents)}
        elif self.scope == "round":
            self._round = self.meter.start(f"round {r}", self.meter.all_gpus)

    async def agent_done(self, record: RunRecord) -> RunRecord:
        """An agent's call ended: close its window in a worker thread (the others may still stream)."""
        window = self._agents.pop(record.agent, None)
        if window is None:
            return record
        energy = await anyio.to_thread.run_sync(self.meter.stop, window)
        return apply_energy(record, energy, "agent", window, self.meter.simulated)

    def close_round(self, records: list[RunRecord]) -> list[RunRecord]:
        """After the round: its energy kept with each of its calls (scope "round")."""
        window, self._round = self._round, None
        figures = round_energy(self.meter, window, records) if window is not None else None
        if figures is None:
            return records
        return [_throttle_flag(replace(r, gpu=figures), figures.get("throttle")) for r in records]


def _throttle_flag(record: RunRecord, throttle: str | None) -> RunRecord:
    """A call of a throttled round carries the flag and the round's reasons in its notes."""
    if not throttle or FLAG_GPU_THROTTLED in record.metrics.flags:
        return record
    flags = sorted([*record.metrics.flags, FLAG_GPU_THROTTLED], key=FLAGS.index)
    return replace(record, metrics=replace(record.metrics, flags=flags), notes=[*record.notes, throttle])
