"""Tiny inline-SVG charts for the HTML report: no script, no network, deterministic output.

Every coordinate is written with one decimal and every label with a fixed number of decimals, so the
same data always gives the same bytes. All text is escaped with html.escape. Text and grid lines use
`currentColor`, so the charts follow the page's light or dark colour scheme.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from chimera_tui.core.reports._common import finite

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
    return html.escape(text, quote=True)


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


def bar_chart_svg(title: str, series: Series, unit: str) -> str:
    """Per-run values as bars, grouped per session (one colour each), with each group's mean dashed."""
    data = _clean(series)
    values = [v for _, vs in data for v in vs]
    if not values:
        return _no_data(title)
    height, left, right, top, bottom = 240, 60, 12, 28, 40
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    ticks, decimals = nice_ticks(min(0.0, *values), max(values))
    y_lo, y_hi = ticks[0], ticks[-1]

    def y(value: float) -> float:
        return top + plot_h * (1 - (value - y_lo) / (y_hi - y_lo))

    out = _open(title, height)
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
    group_w = plot_w / len(data)
    for g, (label, vs) in enumerate(data):
        colour = PALETTE[g % len(PALETTE)]
        x0 = left + g * group_w
        centre = x0 + group_w / 2
        if vs:
            bar_w = min(24.0, group_w * 0.8 / len(vs))
            start = centre - bar_w * len(vs) / 2
            for i, value in enumerate(vs):
                top_y, base_y = sorted((y(value), y(max(0.0, y_lo))))
                out.append(
                    f'<rect x="{_n(start + i * bar_w + 1)}" y="{_n(top_y)}" '
                    f'width="{_n(max(1.0, bar_w - 2))}" height="{_n(max(0.5, base_y - top_y))}" '
                    f'fill="{colour}">'
                    f"<title>{_esc(label)} run {i + 1}: {value:.2f} {_esc(unit)}</title></rect>"
                )
            mean = sum(vs) / len(vs)
            out.append(
                f'<line x1="{_n(start)}" y1="{_n(y(mean))}" x2="{_n(start + bar_w * len(vs))}" '
                f'y2="{_n(y(mean))}" stroke="currentColor" stroke-dasharray="4 3">'
                f"<title>{_esc(label)} mean: {mean:.2f} {_esc(unit)}</title></line>"
            )
        else:
            out.append(
                f'<text x="{_n(centre)}" y="{_n(top + plot_h / 2)}" text-anchor="middle" '
                'fill="currentColor">no data</text>'
            )
        out.append(
            f'<text x="{_n(centre)}" y="{height - bottom + 16}" text-anchor="middle" fill="currentColor">'
            f"{_esc(_short(label, max(8, int(group_w / 7))))}</text>"
        )
    out.append(
        f'<line x1="{left}" y1="{_n(top + plot_h)}" x2="{WIDTH - right}" y2="{_n(top + plot_h)}" '
        'stroke="currentColor" stroke-opacity="0.5"/>'
    )
    out.append("</svg>")
    return "\n".join(out)


def distribution_svg(title: str, series: Series, unit: str) -> str:
    """One box-and-whisker row per session (min, p25, median, p75, max) with every value as a dot."""
    data = _clean(series)
    values = [v for _, vs in data for v in vs]
    if not values:
        return _no_data(title)
    row_h, left, right, top, bottom = 34, 190, 16, 28, 36
    height = top + row_h * len(data) + bottom
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
        f'<text x="{left + plot_w // 2}" y="{height - 6}" text-anchor="middle" fill="currentColor">'
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
    out.append("</svg>")
    return "\n".join(out)
