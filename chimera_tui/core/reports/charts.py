"""Tiny inline-SVG charts for the HTML report: no script, no network, deterministic output.

Every coordinate is written with one decimal and every label with a fixed number of decimals, so the
same data always gives the same bytes. All text is escaped with html.escape. Text and grid lines use
`currentColor`, so the charts follow the page's light or dark colour scheme.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chimera_tui.core.measure.stats import summarize
from chimera_tui.core.reports._common import finite
from chimera_tui.safe_text import sanitize

Series = Sequence[tuple[str, Sequence[float]]]

#: colour-blind friendly series colours that read on light and dark backgrounds (Tableau 10)
PALETTE: tuple[str, ...] = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1")

WIDTH = 640
_FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="11"'


def _n(value: float) -> str:
    """A coordinate: one decimal, never "-0.0"."""
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _esc(text: str) -> str:
    """Session text for SVG: control sequences and invisible format characters made inert, escaped."""
    return html.escape(sanitize(text), quote=True)


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clean(series: Series) -> list[tuple[str, list[float]]]:
    return [
        (str(label), [v for v in (finite(x) for x in values) if v is not None]) for label, values in series
    ]


def nice_ticks(lo: float, hi: float, target: int = 5) -> tuple[list[float], int]:
    """Round tick values covering [lo, hi] (steps of 1, 2 or 5 × 10^k) and the decimals to show them."""
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(hi) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(1, target)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    fraction = raw / magnitude
    step = magnitude * (1.0 if fraction < 1.5 else 2.0 if fraction < 3 else 5.0 if fraction < 7 else 10.0)
    start = math.floor(lo / step + 1e-9) * step
    end = math.ceil(hi / step - 1e-9) * step
    count = round((end - start) / step)
    ticks = [start + i * step for i in range(count + 1)]
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return ticks, decimals


def _tick_label(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def y_axis(
    ticks: Sequence[float],
    decimals: int,
    y: Callable[[float], float],
    frame: tuple[int, int, int, int],
    unit: str,
) -> list[str]:
    """The SVG of a y axis: a faint grid line and a label per tick, and the unit turned on its side.
    `frame` is (left, right, top, plot height) of the plot area."""
    left, right, top, plot_h = frame
    out: list[str] = []
    for tick in ticks:
        out.append(
            f'<line x1="{left}" y1="{_n(y(tick))}" x2="{WIDTH - right}" y2="{_n(y(tick))}" '
            'stroke="currentColor" stroke-opacity="0.15"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{_n(y(tick) + 4)}" text-anchor="end" fill="currentColor">'
            f"{_tick_label(tick, decimals)}</text>"
        )
    out.append(
        f'<text x="14" y="{_n(top + plot_h / 2)}" text-anchor="middle" fill="currentColor" '
        f'transform="rotate(-90 14 {_n(top + plot_h / 2)})">{_esc(unit)}</text>'
    )
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation, as numpy's default."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _open(title: str, height: int) -> list[str]:
    t = _esc(title)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-label="{t}" {_FONT}>',
        f"<title>{t}</title>",
        f'<text x="{WIDTH // 2}" y="16" text-anchor="middle" font-weight="bold" '
        f'fill="currentColor">{t}</text>',
    ]


def _no_data(title: str) -> str:
    return "\n".join(
        [
            *_open(title, 60),
            f'<text x="{WIDTH // 2}" y="42" text-anchor="middle" fill="currentColor">no data</text>',
            "</svg>",
        ]
    )


@dataclass(frozen=True, slots=True)
class RunSeries:
    """One session's points on a per-run chart: its label, its legend note (the session id), and
    (run label, value) per measured run, the run labels of core/store/numbering.py."""

    label: str
    points: Sequence[tuple[str, float]]
    note: str = ""


def _legend(entries: Sequence[tuple[str, str]], y0: float) -> tuple[list[str], int]:
    """A legend under the plot: a swatch, the label and (muted) the note per series; its height."""
    out: list[str] = []
    for i, (label, note) in enumerate(entries):
        y_text = y0 + 14 * i + 10
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="12" y="{_n(y_text - 8)}" width="10" height="10" fill="{colour}"/>')
        tail = f' <tspan fill-opacity="0.7">{_esc(_short(note, 60))}</tspan>' if note else ""
        out.append(
            f'<text x="28" y="{_n(y_text + 1)}" fill="currentColor">{_esc(_short(label, 40))}{tail}</text>'
        )
    return out, 14 * len(entries) + 6 if entries else 0


def _mean_ci(values: Sequence[float]) -> tuple[float, float | None]:
    """The mean and the half-width of its Student-t 95% CI (None with fewer than two values)."""
    s = summarize(values)
    mean = s.mean if s.mean is not None else sum(values) / len(values)
    half = (s.ci95_high - mean) if s.ci95_high is not None else None
    return mean, half


def per_run_svg(title: str, series: Sequence[RunSeries], unit: str, *, from_zero: bool = False) -> str:
    """Every measured run as a dot, grouped per session (one colour each), with the group's mean (a
    line) and its 95% CI (a band). The axis spans the data, not from zero (`from_zero` for counts),
    so a 0.3% spread is visible; a legend names each session and its id."""
    data = [
        RunSeries(
            x.label, [(str(k), v) for k, v in ((k, finite(v)) for k, v in x.points) if v is not None], x.note
        )
        for x in series
    ]
    values = [v for x in data for _, v in x.points]
    if not values:
        return _no_data(title)
    stats = [_mean_ci([v for _, v in x.points]) if x.points else None for x in data]
    bounds = [*values]  # the axis holds every dot and every CI band
    for st in stats:
        if st is not None and st[1] is not None:
            bounds += [st[0] - st[1], st[0] + st[1]]
    left, right, top, axis_h = 60, 12, 28, 200
    legend, legend_h = _legend([(x.label, x.note) for x in data], top + axis_h + 34)
    height = top + axis_h + 34 + legend_h
    plot_w, plot_h = WIDTH - left - right, axis_h
    ticks, decimals = nice_ticks(min(0.0, *bounds) if from_zero else min(bounds), max(bounds))
    y_lo, y_hi = ticks[0], ticks[-1]

    def y(value: float) -> float:
        return top + plot_h * (1 - (value - y_lo) / (y_hi - y_lo))

    out = _open(title, height)
    out += y_axis(ticks, decimals, y, (left, right, top, plot_h), unit)
    group_w = plot_w / len(data)
    for g, x in enumerate(data):
        colour = PALETTE[g % len(PALETTE)]
        x0 = left + g * group_w
        centre = x0 + group_w / 2
        if not x.points:
            out.append(
                f'<text x="{_n(centre)}" y="{_n(top + plot_h / 2)}" text-anchor="middle" '
                'fill="currentColor">no data</text>'
            )
            continue
        step = min(24.0, group_w * 0.8 / len(x.points))
        start = centre - step * len(x.points) / 2
        span = (start, start + step * len(x.points))
        mean, half = stats[g] or (0.0, None)
        if half is not None:
            lo, hi = mean - half, mean + half
            out.append(
                f'<rect x="{_n(span[0])}" y="{_n(y(hi))}" width="{_n(span[1] - span[0])}" '
                f'height="{_n(max(0.5, y(lo) - y(hi)))}" fill="{colour}" fill-opacity="0.15">'
                f"<title>{_esc(x.label)} 95% CI: {mean - half:.2f} to {mean + half:.2f} {_esc(unit)}"
                "</title></rect>"
            )
        out.append(
            f'<line x1="{_n(span[0])}" y1="{_n(y(mean))}" x2="{_n(span[1])}" y2="{_n(y(mean))}" '
            f'stroke="{colour}" stroke-width="2">'
            f"<title>{_esc(x.label)} mean: {mean:.2f} {_esc(unit)}</title></line>"
        )
        for i, (run, value) in enumerate(x.points):
            cx = start + (i + 0.5) * step
            out.append(
                f'<circle cx="{_n(cx)}" cy="{_n(y(value))}" r="3.5" fill="{colour}" '
                f'stroke="currentColor" stroke-width="0.5">'
                f"<title>{_esc(x.label)} run {_esc(run)}: {value:.2f} {_esc(unit)}</title></circle>"
            )
            if step >= 7 * len(run) + 4:  # the run's label under its dot, where it fits
                out.append(
                    f'<text x="{_n(cx)}" y="{top + plot_h + 12}" text-anchor="middle" font-size="9" '
                    f'fill="currentColor" fill-opacity="0.7">{_esc(run)}</text>'
                )
        out.append(
            f'<text x="{_n(centre)}" y="{top + plot_h + 26}" text-anchor="middle" fill="currentColor">'
            f"{_esc(_short(x.label, max(8, int(group_w / 7))))}</text>"
        )
    out.append(
        f'<line x1="{left}" y1="{_n(top + plot_h)}" x2="{WIDTH - right}" y2="{_n(top + plot_h)}" '
        'stroke="currentColor" stroke-opacity="0.5"/>'
    )
    out += legend
    out.append("</svg>")
    return "\n".join(out)


def distribution_svg(title: str, series: Series, unit: str, notes: Sequence[str] = ()) -> str:
    """One box-and-whisker row per session (min, p25, median, p75, max) with every value as a dot;
    a legend names each session and its note (the session id)."""
    data = _clean(series)
    values = [v for _, vs in data for v in vs]
    if not values:
        return _no_data(title)
    row_h, left, right, top, bottom = 34, 190, 16, 28, 36
    legend, legend_h = _legend(
        [(label, notes[i] if i < len(notes) else "") for i, (label, _) in enumerate(data)],
        top + row_h * len(data) + bottom,
    )
    height = top + row_h * len(data) + bottom + legend_h
    plot_w = WIDTH - left - right
    ticks, decimals = nice_ticks(min(values), max(values))
    x_lo, x_hi = ticks[0], ticks[-1]

    def x(value: float) -> float:
        return left + plot_w * (value - x_lo) / (x_hi - x_lo)

    out = _open(title, height)
    axis_y = top + row_h * len(data)
    for tick in ticks:
        out.append(
            f'<line x1="{_n(x(tick))}" y1="{top}" x2="{_n(x(tick))}" y2="{axis_y}" '
            'stroke="currentColor" stroke-opacity="0.15"/>'
        )
        out.append(
            f'<text x="{_n(x(tick))}" y="{axis_y + 14}" text-anchor="middle" fill="currentColor">'
            f"{_tick_label(tick, decimals)}</text>"
        )
    out.append(
        f'<text x="{left + plot_w // 2}" y="{axis_y + bottom - 6}" text-anchor="middle" fill="currentColor">'
        f"{_esc(unit)}</text>"
    )
    for r, (label, vs) in enumerate(data):
        colour = PALETTE[r % len(PALETTE)]
        mid = top + row_h * r + row_h / 2
        out.append(
            f'<text x="{left - 8}" y="{_n(mid + 4)}" text-anchor="end" fill="currentColor">'
            f"{_esc(_short(label, 26))}</text>"
        )
        if not vs:
            out.append(f'<text x="{left + 4}" y="{_n(mid + 4)}" fill="currentColor">no data</text>')
            continue
        lo, q1, med, q3, hi = (percentile(vs, q) for q in (0, 25, 50, 75, 100))
        tip = (
            f"{_esc(label)}: n={len(vs)}, min {lo:.2f}, p25 {q1:.2f}, median {med:.2f}, "
            f"p75 {q3:.2f}, max {hi:.2f} {_esc(unit)}"
        )
        out.append(f"<g><title>{tip}</title>")
        out.append(
            f'<line x1="{_n(x(lo))}" y1="{_n(mid)}" x2="{_n(x(hi))}" y2="{_n(mid)}" stroke="{colour}"/>'
        )
        for end in (lo, hi):
            out.append(
                f'<line x1="{_n(x(end))}" y1="{_n(mid - 7)}" x2="{_n(x(end))}" y2="{_n(mid + 7)}" '
                f'stroke="{colour}"/>'
            )
        out.append(
            f'<rect x="{_n(x(q1))}" y="{_n(mid - 10)}" width="{_n(max(1.0, x(q3) - x(q1)))}" height="20" '
            f'fill="{colour}" fill-opacity="0.35" stroke="{colour}"/>'
        )
        out.append(
            f'<line x1="{_n(x(med))}" y1="{_n(mid - 10)}" x2="{_n(x(med))}" y2="{_n(mid + 10)}" '
            'stroke="currentColor" stroke-width="2"/>'
        )
        out += [
            f'<circle cx="{_n(x(v))}" cy="{_n(mid)}" r="2.5" fill="{colour}" stroke="currentColor" '
            'stroke-width="0.5"/>'
            for v in vs
        ]
        out.append("</g>")
    out += legend
    out.append("</svg>")
    return "\n".join(out)
