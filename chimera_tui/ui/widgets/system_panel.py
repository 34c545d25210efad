"""Live GPU and host readings: per GPU util (sparkline), memory, temperature, power, clocks and a
throttle indicator, the compute processes holding its memory; the current run's energy; CPU, RAM.
A simulated GPU (`--demo`) is labelled so in the panel's title and each GPU's name.

The panel reads `SystemMonitor.latest()/history()` on its own timer; the monitor thread never touches
widgets. Each tick only updates text and sparkline data (no recompose). Missing readings show "—".
Styles live in `CSS_FILE`: add it to the app's CSS_PATH.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.app import RenderResult as TextualRenderResult
from textual.color import Color
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Sparkline, Static

from chimera_tui.core.system.gpu import GpuInfo, GpuSample
from chimera_tui.core.system.gpu_processes import ProcessInfo
from chimera_tui.core.system.monitor import STATUS_OK, HostSample, SystemMonitor, SystemSnapshot
from chimera_tui.core.system.thermal import throttle_text
from chimera_tui.safe_text import sanitize_line

log = logging.getLogger(__name__)

CSS_FILE = Path(__file__).parent.parent / "styles" / "system_panel.tcss"

DASH = "—"
GIB = 1024**3
MIB = 1024**2
HOT_C = 85.0  # temperature from which the GPU details line is highlighted


# -- formatting (pure, no widgets) -----------------------------------------------------------------


def fmt_pct(value: float | None) -> str:
    return DASH if value is None else f"{value:.0f}%"


def fmt_pair(used: float | None, total: float | None, unit: str, scale: float = 1.0, digits: int = 0) -> str:
    """'used/total unit', with — for a missing side, or a lone — when both are missing."""
    if used is None and total is None:
        return DASH
    u = DASH if used is None else f"{used / scale:.{digits}f}"
    t = DASH if total is None else f"{total / scale:.{digits}f}"
    return f"{u}/{t} {unit}"


def fmt_num(value: float | None, unit: str) -> str:
    return DASH if value is None else f"{value:.0f} {unit}"


def gpu_name(index: int, infos: dict[int, GpuInfo]) -> str:
    info = infos.get(index)
    name = sanitize_line(info.name).strip() if info is not None else ""
    return name[:80] or f"GPU {index}"


def gpu_lines(sample: GpuSample) -> tuple[str, str, str]:
    """(util label, memory/temperature/power line, clocks line) for one GPU sample."""
    util = f"util {fmt_pct(sample.util_pct):>4}"
    details = "  ·  ".join(
        (
            "mem " + fmt_pair(sample.mem_used_bytes, sample.mem_total_bytes, "GiB", GIB, 1),
            "temp " + fmt_num(sample.temperature_c, "°C"),
            "power " + fmt_pair(sample.power_w, sample.power_limit_w, "W"),
        )
    )
    sm, mem = fmt_num(sample.sm_clock_mhz, "MHz"), fmt_num(sample.mem_clock_mhz, "MHz")
    clocks = f"clocks  SM {sm}  ·  mem {mem}"
    throttle = throttle_text(sample.clock_reasons)
    if throttle is not None:
        clocks = f"THROTTLED{throttle.removeprefix('throttled')}  ·  SM {sm}  ·  mem {mem}"
    return util, details, clocks


def process_line(procs: Sequence[ProcessInfo], limit: int = 2) -> str:
    """`procs ollama runner 5.2 GiB (pid 412) · python 0.3 GiB (pid 90) +1`: the biggest first."""
    parts = []
    for p in list(procs)[:limit]:
        name = sanitize_line(p.role or p.name or "?").strip()[:24] or "?"
        mem = DASH if p.used_bytes is None else f"{p.used_bytes / GIB:.1f} GiB"
        parts.append(f"{name} {mem} (pid {p.pid})")
    more = f" +{len(procs) - limit}" if len(procs) > limit else ""
    return "procs " + "  ·  ".join(parts) + more


def energy_text(
    joules: float | None,
    per_token: float | None,
    per_joule: float | None,
    label: str,
    note: str | None = None,
) -> str:
    """`now 12.3 J · 0.10 J/tok · 10.37 tok/J`, with `(note)` when the figure is not the counter's."""
    tail = f" ({note})" if note else ""
    if joules is None:
        return f"{label} energy {DASH}{tail}"
    jt = DASH if per_token is None else f"{per_token:.2f}"
    tj = DASH if per_joule is None else f"{per_joule:.2f}"
    return f"{label} {joules:.1f} J  ·  {jt} J/tok  ·  {tj} tok/J{tail}"


def host_lines(host: HostSample | None) -> tuple[str, str]:
    """(CPU label, RAM line)."""
    if host is None:
        return f"CPU {DASH:>4}", f"RAM {DASH}"
    ram = "RAM " + fmt_pair(host.ram_used_bytes, host.ram_total_bytes, "GiB", GIB, 1)
    rss = DASH if host.process_rss_bytes is None else f"{host.process_rss_bytes / MIB:.0f} MiB"
    return f"CPU {fmt_pct(host.cpu_pct):>4}", f"{ram}  ·  this app {rss}"


def gpu_status_line(status: str, have_gpus: bool) -> str | None:
    """The one-line GPU notice, or None when there is nothing to say."""
    if status == STATUS_OK:
        return None if have_gpus else "GPU: no readings yet"
    return "GPU: " + sanitize_line(status).strip()


# -- widgets -----------------------------------------------------------------------------------------


class _FixedScaleBars:
    """One row of bars on a fixed scale (0-100 for percentages), unlike Sparkline's min-max scale."""

    BARS = "▁▂▃▄▅▆▇█"

    def __init__(
        self, data: Sequence[float], width: int, low: float, high: float, lo_color: Color, hi_color: Color
    ) -> None:
        self.data, self.width, self.low, self.high = data, width, low, high
        self.lo_color, self.hi_color = lo_color, hi_color

    def _buckets(self) -> list[float]:
        data, width = self.data, self.width
        if len(data) <= width:
            return list(data)
        step = len(data) / width
        return [max(data[int(i * step) : max(int((i + 1) * step), int(i * step) + 1)]) for i in range(width)]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = self.width or options.max_width
        self.width = width
        bars = self._buckets()
        pad = width - len(bars)
        if pad > 0:
            yield Segment(" " * pad)
        extent = (self.high - self.low) or 1.0
        top = len(self.BARS) - 1
        for value in bars:
            ratio = min(max((value - self.low) / extent, 0.0), 1.0)
            color = self.lo_color.blend(self.hi_color, ratio)
            yield Segment(self.BARS[round(ratio * top)], Style(color=color.rich_color))


class PercentSparkline(Sparkline):
    """A Sparkline drawn on a fixed 0-100 scale, newest sample at the right edge."""

    def render(self) -> TextualRenderResult:
        data = list(self.data or [])
        _, base = self.background_colors
        lo = base + self.get_component_styles("sparkline--min-color").color
        hi = base + self.get_component_styles("sparkline--max-color").color
        return _FixedScaleBars(data, self.size.width, 0.0, 100.0, lo, hi)


class _Line(Static):
    """A one-line Static that takes plain (untrusted) text and only refreshes when it changes."""

    def __init__(self, text: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(Content(text), id=id, classes=classes, markup=False)
        self._plain = text

    @property
    def plain(self) -> str:
        return self._plain

    def set_text(self, text: str, style: str | None = None) -> None:
        if text == self._plain:
            return
        self._plain = text
        self.update(Content.assemble((text, style)) if style else Content(text), layout=False)


def _set_spark(spark: Sparkline, values: list[float]) -> None:
    if list(spark.data or []) != values:
        spark.data = values


class _GpuBlock(Vertical):
    """The rows for one GPU; children are created up front so they can be updated before mounting."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.title = _Line(f"GPU {index}", classes="gpu-title")
        self.util = _Line(f"util {DASH:>4}", classes="sys-label")
        self.spark = PercentSparkline([], classes="sys-spark")
        self.details = _Line(DASH, classes="sys-line gpu-details")
        self.clocks = _Line(DASH, classes="sys-line gpu-clocks")
        self.procs = _Line("", classes="sys-line gpu-procs")
        self.procs.display = False
        row = Horizontal(self.util, self.spark, classes="sys-row")
        super().__init__(self.title, row, self.details, self.clocks, self.procs, classes="gpu-block")

    def show(self, name: str, sample: GpuSample, util_history: list[float]) -> None:
        self.title.set_text(f"GPU {self.index}  {name}", "bold")
        util, details, clocks = gpu_lines(sample)
        self.util.set_text(util)
        self.details.set_text(details)
        self.details.set_class(sample.temperature_c is not None and sample.temperature_c >= HOT_C, "-hot")
        self.clocks.set_text(clocks)
        self.clocks.set_class(throttle_text(sample.clock_reasons) is not None, "-throttled")
        _set_spark(self.spark, util_history)

    def show_processes(self, procs: Sequence[ProcessInfo] | None) -> None:
        self.procs.display = bool(procs)
        if procs:
            self.procs.set_text(process_line(procs))


class SystemPanel(Widget):
    """GPU and host readings from a SystemMonitor, refreshed every `refresh_s` seconds.

    The panel does not start or stop the monitor. Without a monitor, feed it with `update_from`.
    """

    def __init__(
        self,
        monitor: SystemMonitor | None = None,
        refresh_s: float = 0.5,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.monitor = monitor
        self.refresh_s = refresh_s
        self.status_line = _Line("GPU: waiting for the first sample…", id="gpu-status", classes="sys-status")
        self.gpu_list = Vertical(id="gpu-list")
        self.cpu_label = _Line(f"CPU {DASH:>4}", id="cpu-label", classes="sys-label")
        self.cpu_spark = PercentSparkline([], id="cpu-spark", classes="sys-spark")
        self.ram_line = _Line(f"RAM {DASH}", id="ram-line", classes="sys-line")
        #: the live screen's current-run energy (`energy_text`), read on each poll; None: no line
        self.energy_source: Callable[[], str | None] | None = None
        self.energy_line = _Line("", id="energy-line", classes="sys-line")
        self.energy_line.display = False
        self._blocks: dict[int, _GpuBlock] = {}
        self._infos: dict[int, GpuInfo] = {}
        self._last_t_ns: int | None = None
        self._live = False
        self._pending: tuple[SystemSnapshot | None, list[SystemSnapshot], list[GpuInfo] | None] | None = None

    def compose(self) -> ComposeResult:
        yield self.status_line
        yield self.gpu_list
        yield self.energy_line
        with Horizontal(classes="sys-row host-row"):
            yield self.cpu_label
            yield self.cpu_spark
        yield self.ram_line

    def on_mount(self) -> None:
        simulated = self.monitor is not None and self.monitor.simulated
        self.border_title = "System · SIMULATED GPU" if simulated else "System"
        self._live = True
        if self._pending is not None:
            snapshot, history, infos = self._pending
            self._pending = None
            self.update_from(snapshot, history, infos)
        if self.monitor is not None:
            self.poll()
            self.set_interval(self.refresh_s, self.poll)

    def poll(self) -> None:
        """Read the monitor (cheap: a locked copy of its history) and update the display."""
        monitor = self.monitor
        if monitor is None:
            return
        try:
            self.show_energy(self.energy_source() if self.energy_source is not None else None)
            snapshot = monitor.latest()
            if snapshot is not None and snapshot.t_ns == self._last_t_ns:
                return
            self.update_from(snapshot, monitor.history(), monitor.gpu_infos)
            procs, _ = monitor.processes()
            for index, block in self._blocks.items():
                block.show_processes([p for p in procs or [] if p.gpu == index])
        except Exception:  # a display bug must not take the app down
            log.exception("system panel refresh failed")

    def update_from(
        self,
        snapshot: SystemSnapshot | None,
        history: Iterable[SystemSnapshot] = (),
        infos: Sequence[GpuInfo] | None = None,
    ) -> None:
        """Show `snapshot`, with sparklines over `history` (oldest first); `infos` give GPU names."""
        history = list(history)
        if not self._live:  # before on_mount: keep it for then
            self._pending = (snapshot, history, list(infos) if infos is not None else None)
            return
        if infos is not None:
            self._infos = {i.index: i for i in infos}
        if snapshot is None:
            self.status_line.set_text("GPU: waiting for the first sample…")
            self.status_line.display = True
            return
        self._last_t_ns = snapshot.t_ns
        self._show_gpus(snapshot, history)
        cpu_label, ram = host_lines(snapshot.host)
        self.cpu_label.set_text(cpu_label)
        self.ram_line.set_text(ram)
        _set_spark(self.cpu_spark, [s.host.cpu_pct for s in history if s.host.cpu_pct is not None])

    def show_energy(self, text: str | None) -> None:
        """The current (or last) run's energy line; hidden when None."""
        self.energy_line.display = text is not None
        if text is not None:
            self.energy_line.set_text(text)

    def _show_gpus(self, snapshot: SystemSnapshot, history: list[SystemSnapshot]) -> None:
        notice = gpu_status_line(snapshot.gpu_status, bool(snapshot.gpus))
        self.status_line.display = notice is not None
        if notice is not None:
            self.status_line.set_text(notice)
        self.status_line.set_class(snapshot.gpu_status != STATUS_OK, "-warn")

        utils: dict[int, list[float]] = {s.index: [] for s in snapshot.gpus}
        for snap in history:
            for g in snap.gpus:
                if g.util_pct is not None and g.index in utils:
                    utils[g.index].append(g.util_pct)

        shown = set()
        for sample in sorted(snapshot.gpus, key=lambda s: s.index):
            block = self._blocks.get(sample.index)
            if block is None:  # a new GPU: mount once, then only update text
                block = self._blocks[sample.index] = _GpuBlock(sample.index)
                self.gpu_list.mount(block)
            block.display = True
            name = gpu_name(sample.index, self._infos)
            if self.monitor is not None and self.monitor.simulated:
                name += " [simulated]"
            block.show(name, sample, utils[sample.index])
            shown.add(sample.index)
        for index, block in self._blocks.items():
            if index not in shown:
                block.display = False
