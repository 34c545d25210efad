"""Energy of one call, per GPU: NVML's total-energy counter read around the call, else power samples.

Pure maths over readings the runner hook (core/run/gpu.py) collects; docs/metrics.md "GPU energy"
defines every figure. A counter that went backwards was reset (driver reload, GPU reset): that
GPU's figure falls back to the integrated power samples and says so. Missing is None, with a reason.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

COUNTER = "energy counter"
INTEGRATED = "integrated power samples"
NS = 1_000_000_000


def counter_joules(
    start_mj: int | None, end_mj: int | None, refused: str | None = None
) -> tuple[float | None, str | None]:
    """Joules between two counter reads, or (None, why); `refused` is NVML's answer to a failed read."""
    if start_mj is None or end_mj is None:
        if refused is None or "not supported" in refused.lower():
            return None, "energy counter not supported"
        return None, f"energy counter not readable ({refused})"
    if end_mj < start_mj:
        return None, "energy counter reset during the call"
    return (end_mj - start_mj) / 1000.0, None


def integrate_power(points: Sequence[tuple[int, float]], t0_ns: int, t1_ns: int) -> float | None:
    """Joules over [t0, t1] from (t_ns, W) samples: linear between samples, held flat beyond the first
    and the last; one sample is held over the whole window. None without any sample or window."""
    if t1_ns <= t0_ns or not points:
        return None
    pts = sorted(points)
    if len(pts) == 1:
        return pts[0][1] * (t1_ns - t0_ns) / NS

    def power_at(t: int) -> float:
        if t <= pts[0][0]:
            return pts[0][1]
        if t >= pts[-1][0]:
            return pts[-1][1]
        for (ta, pa), (tb, pb) in itertools.pairwise(pts):
            if ta <= t <= tb:
                return pa if tb == ta else pa + (pb - pa) * (t - ta) / (tb - ta)
        return pts[-1][1]  # pragma: no cover - the loop always finds the segment

    xs = [t0_ns] + [t for t, _ in pts if t0_ns < t < t1_ns] + [t1_ns]
    ys = [power_at(t) for t in xs]
    return sum((xs[i + 1] - xs[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(len(xs) - 1)) / NS


@dataclass(slots=True)
class GpuWindow:
    """What the sampler saw of one GPU during one call (filled from the sampler thread)."""

    power: list[tuple[int, float]] = field(default_factory=list)
    sm_clocks: list[int] = field(default_factory=list)
    mem_clocks: list[int] = field(default_factory=list)
    reasons: int | None = None  # every reason bit seen (OR)
    temp_max_c: float | None = None

    def add(
        self,
        t_ns: int,
        power_w: float | None,
        sm: int | None,
        mem: int | None,
        bits: int | None,
        temp: float | None,
    ) -> None:
        if power_w is not None:
            self.power.append((t_ns, power_w))
        if sm is not None:
            self.sm_clocks.append(sm)
        if mem is not None:
            self.mem_clocks.append(mem)
        if bits is not None:
            self.reasons = bits | (self.reasons or 0)
        self.add_temp(temp)

    def add_temp(self, temp: float | None) -> None:
        if temp is not None:
            self.temp_max_c = temp if self.temp_max_c is None else max(self.temp_max_c, temp)


@dataclass(slots=True)
class GpuRunEnergy:
    """One GPU over one call, as stored in the run's `gpu` record (metrics.json)."""

    index: int
    energy_j: float | None = None
    method: str | None = None  # COUNTER or INTEGRATED
    reason: str | None = None  # why the counter was not used, or why there is no figure
    avg_power_w: float | None = None
    idle_power_w: float | None = None
    above_idle_j: float | None = None
    temp_start_c: float | None = None
    temp_end_c: float | None = None
    temp_max_c: float | None = None
    sm_clock_mean_mhz: float | None = None
    sm_clock_min_mhz: int | None = None
    mem_clock_mean_mhz: float | None = None
    clock_reasons: int | None = None
    throttle: str | None = None  # "throttled (thermal (software), power cap)" or None
    power_samples: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gpu_run_energy(
    index: int,
    window: GpuWindow,
    t0_ns: int,
    t1_ns: int,
    counters: tuple[int | None, int | None],
    temps: tuple[float | None, float | None],
    idle_power_w: float | None,
    refused: str | None = None,
) -> GpuRunEnergy:
    """One GPU's figures for the call between `t0_ns` and `t1_ns` (the counter reads)."""
    from chimera_tui.core.system.thermal import throttle_text

    joules, why = counter_joules(*counters, refused)
    method = COUNTER if joules is not None else None
    if joules is None:
        joules = integrate_power(window.power, t0_ns, t1_ns)
        if joules is not None:
            method = INTEGRATED
        else:
            why = f"{why}; no power samples either"
    seconds = (t1_ns - t0_ns) / NS
    avg = joules / seconds if joules is not None and seconds > 0 else None
    above = joules - idle_power_w * seconds if joules is not None and idle_power_w is not None else None
    sm, mem = window.sm_clocks, window.mem_clocks
    return GpuRunEnergy(
        index=index,
        energy_j=joules,
        method=method,
        reason=why,
        avg_power_w=avg,
        idle_power_w=idle_power_w,
        above_idle_j=above,
        temp_start_c=temps[0],
        temp_end_c=temps[1],
        temp_max_c=window.temp_max_c,
        sm_clock_mean_mhz=sum(sm) / len(sm) if sm else None,
        sm_clock_min_mhz=min(sm) if sm else None,
        mem_clock_mean_mhz=sum(mem) / len(mem) if mem else None,
        clock_reasons=window.reasons,
        throttle=throttle_text(window.reasons),
        power_samples=len(window.power),
    )


@dataclass(frozen=True, slots=True)
class CallEnergy:
    """The call's totals over the GPUs it ran on (CallMetrics' energy fields)."""

    energy_j: float | None
    energy_per_token_j: float | None
    tokens_per_j: float | None
    avg_power_w: float | None
    energy_above_idle_j: float | None
    energy_per_token_above_idle_j: float | None
    tokens_per_j_above_idle: float | None


def call_energy(gpus: Sequence[GpuRunEnergy], output_tokens: int | None, seconds: float) -> CallEnergy:
    """Totals over `gpus`: None when any GPU has no figure (a partial sum would understate)."""
    total = _sum([g.energy_j for g in gpus])
    above = _sum([g.above_idle_j for g in gpus])
    tokens = output_tokens if output_tokens else None
    return CallEnergy(
        energy_j=total,
        energy_per_token_j=total / tokens if total is not None and tokens else None,
        tokens_per_j=tokens / total if tokens and total else None,
        avg_power_w=total / seconds if total is not None and seconds > 0 else None,
        energy_above_idle_j=above,
        energy_per_token_above_idle_j=above / tokens if above is not None and above > 0 and tokens else None,
        tokens_per_j_above_idle=tokens / above if tokens and above is not None and above > 0 else None,
    )


def _sum(values: list[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return float(sum(v for v in values if v is not None))
