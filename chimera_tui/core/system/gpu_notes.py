"""A session's GPU story in a few lines (CLI summary, reports, session detail): simulated or not,
how energy was measured and over which GPUs, the idle baseline, temperatures, clocks, throttling,
the compute processes, and multi-agent rounds' energy. Reads plain records; never NVML.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from chimera_tui.core.system.thermal import reason_words

GIB = 1024**3


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _f(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def gpu_lines(table: dict[str, Any] | None, runs: Sequence[Any]) -> list[str]:
    """The lines; [] for a session recorded before GPU energy existed (no table, no run detail)."""
    measured = [
        r for r in runs if getattr(r, "gpu", None) and r.status == "ok" and not r.warmup and not r.solo
    ]
    if table is None and not measured:
        return []
    table = table or {}
    lines: list[str] = []
    if table.get("simulated"):
        lines.append("GPU: SIMULATED (--demo) — these energy, clock and process figures are not a real GPU's")
    status = table.get("status")
    if isinstance(status, str) and status != "ok":
        lines.append(f"GPU energy: none ({status})")
        return lines
    scope, note = table.get("scope"), table.get("scope_note")
    idle = table.get("idle_power_w")
    idle_text = (
        "idle "
        + ", ".join(f"GPU {k} {_f(_num(v))} W" for k, v in idle.items())
        + f" over {table.get('idle_baseline_s')} s"
        if isinstance(idle, dict) and idle
        else "no idle baseline"
    )
    methods: dict[str, int] = {}
    for r in measured:
        for g in r.gpu.get("gpus", []):
            key = g.get("method") or "no figure"
            methods[key] = methods.get(key, 0) + 1
    how = ", ".join(f"{m} ×{n}" for m, n in methods.items()) or "no measured run"
    where = note or "all GPUs"
    where = where if where.startswith("per ") else f"per {scope or 'call'}, {where}"
    lines.append(f"GPU energy {where}; {how}; {idle_text}")
    temps = [(g.get("temp_start_c"), g.get("temp_end_c")) for r in measured for g in r.gpu.get("gpus", [])]
    starts = [t for t, _ in temps if _num(t) is not None]
    ends = [t for _, t in temps if _num(t) is not None]
    clocks = [
        g.get("sm_clock_mean_mhz")
        for r in measured
        for g in r.gpu.get("gpus", [])
        if _num(g.get("sm_clock_mean_mhz"))
    ]
    mins = [
        g.get("sm_clock_min_mhz")
        for r in measured
        for g in r.gpu.get("gpus", [])
        if _num(g.get("sm_clock_min_mhz"))
    ]
    if starts or clocks:
        temp = (
            f"temperature {_f(starts[0], 0)} → {_f(ends[-1], 0)} °C" if starts and ends else "temperature —"
        )
        clock = (
            f"SM clock mean {_f(statistics.fmean(clocks), 0)} MHz (min {min(mins)})"
            if clocks and mins
            else "SM clock —"
        )
        lines.append(f"GPU over the runs: {temp}; {clock}")
    bits = 0
    throttled = 0
    for r in measured:
        run_bits = 0
        for g in r.gpu.get("gpus", []):
            if isinstance(g.get("clock_reasons"), int) and g.get("throttle"):
                run_bits |= g["clock_reasons"]
        if run_bits:
            throttled += 1
            bits |= run_bits
    if throttled:
        lines.append(
            f"GPU throttled in {throttled} of {len(measured)} runs: {', '.join(reason_words(bits, True))}"
        )
    lines += round_lines(measured)
    procs = table.get("processes")
    if isinstance(procs, list) and procs:
        lines.append("GPU processes: " + "; ".join(process_text(p) for p in procs if isinstance(p, dict)))
    elif table.get("processes_status"):
        lines.append(f"GPU processes: — ({table['processes_status']})")
    return lines


def process_text(p: dict[str, Any]) -> str:
    used = _num(p.get("used_bytes"))
    role = f" [{p['role']}]" if p.get("role") else ""
    mem = f" {used / GIB:.2f} GiB" if used is not None else " memory ?"
    return f"GPU {p.get('gpu')}: {p.get('name') or '?'} (pid {p.get('pid')}){role}{mem}"


def round_lines(runs: Sequence[Any]) -> list[str]:
    """Multi-agent sessions measured per round (each call keeps its round's figures): their means."""
    by_round = {r.round: r.gpu for r in runs if r.gpu.get("scope") == "round" and "energy_j" in r.gpu}
    measured = list(by_round.values())
    if not measured:
        return []

    def mean(key: str) -> float | None:
        vals = [v for e in measured if (v := _num(e.get(key))) is not None]
        return statistics.fmean(vals) if vals else None

    return [
        f"GPU energy per round (mean of {len(measured)}): {_f(mean('energy_j'), 2)} J, "
        f"{_f(mean('energy_per_token_j'), 4)} J/token, {_f(mean('tokens_per_j'), 3)} tokens/J, "
        f"{_f(mean('avg_power_w'))} W; above idle {_f(mean('energy_per_token_above_idle_j'), 4)} J/token"
    ]
