"""Capacity sessions in reports: the per-level table, the answer, and throughput / TTFT vs load charts.

One capacity session gives its curve; several give their curves on one chart (two servers, two
profiles), the first named first. Markdown, self-contained HTML (inline SVG, no script) and JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chimera_tui.core.measure.capacity import LevelStats, Slo, levels_from
from chimera_tui.core.measure.catalogue import fmt
from chimera_tui.core.reports.charts import (
    PALETTE,
    WIDTH,
    _esc,
    _n,
    _no_data,
    _open,
    _short,
    nice_ticks,
    y_axis,
)
from chimera_tui.core.store.sessions import Session

#: the level table's columns (the CLI, the TUI and the reports show the same)
LEVEL_HEADERS: tuple[str, ...] = (
    "load",
    "sent",
    "errors",
    "tok/s total",
    "95% CI",
    "tok/s per stream",
    "TTFT p50",
    "TTFT p95",
    "TTFT p99",
    "queue p50",
    "e2e p50",
    "SLO",
)

#: a point of a curve: load, value, CI low, CI high (None when unknown)
Point = tuple[float, float | None, float | None, float | None]


def is_capacity(session: Session) -> bool:
    return session.manifest.kind == "capacity"


def slo_of(session: Session) -> Slo:
    rec = session.manifest.capacity
    if rec is None:
        return Slo()
    return Slo(rec.slo_ttft_p95_ms, rec.min_stream_tps, rec.max_error_pct or 0.0)


def capacity_levels(session: Session) -> list[LevelStats]:
    """The session's levels, recomputed from its records."""
    rec = session.manifest.capacity
    if rec is None:
        return []
    return levels_from(rec.levels or [], session.runs, slo_of(session), rec.min_gain_pct or 10.0)


def loop_of(session: Session) -> str:
    rec = session.manifest.capacity
    return (rec.loop if rec is not None else None) or "closed"


def load_label(load: float, loop: str) -> str:
    return f"{load:g} req/s" if loop == "open" else f"{int(load)}"


def loop_text(loop: str) -> str:
    """The load model, named as GuideLLM / vLLM bench serve name it."""
    if loop == "open":
        return (
            "open loop: Poisson arrivals at the rate shown (requests/s), whether or not the server keeps up"
        )
    return "closed loop: N concurrent streams, each sending its next request when the last ends"


def level_rows(levels: Sequence[LevelStats], loop: str) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for lv in levels:
        t = lv.throughput
        ci = f"{fmt(t.ci95_low, 0)}–{fmt(t.ci95_high, 0)}" if t.ci95_low is not None else "—"
        slo = {True: "met", False: "broken", None: "—"}[lv.meets_slo]
        rows.append(
            (
                load_label(lv.load, loop),
                str(lv.sent),
                str(lv.failed),
                fmt(lv.throughput_tps, 1),
                ci,
                fmt(lv.stream_tps.median, 1),
                fmt(lv.ttft_ms.p50, 0),
                fmt(lv.ttft_ms.p95, 0),
                fmt(lv.ttft_ms.p99, 0),
                fmt(lv.queue_ms.median, 0),
                fmt(lv.e2e_ms.median, 0),
                slo,
            )
        )
    return rows


def verdict_of(session: Session) -> dict[str, Any]:
    rec = session.manifest.capacity
    return dict(rec.verdict or {}) if rec is not None else {}


def slo_text(session: Session) -> str:
    slo = slo_of(session)
    parts = []
    if slo.ttft_p95_ms is not None:
        parts.append(f"TTFT p95 ≤ {slo.ttft_p95_ms:g} ms")
    if slo.min_stream_tps is not None:
        parts.append(f"≥ {slo.min_stream_tps:g} tok/s per stream")
    return ", ".join(parts) or "none"


def throughput_points(levels: Sequence[LevelStats]) -> list[Point]:
    return [(lv.load, lv.throughput_tps, lv.throughput.ci95_low, lv.throughput.ci95_high) for lv in levels]


def ttft_points(levels: Sequence[LevelStats]) -> list[Point]:
    return [(lv.load, lv.ttft_ms.p95, *lv.ttft_p95_ci) for lv in levels]


def curve_svg(title: str, series: Sequence[tuple[str, Sequence[Point]]], x_label: str, unit: str) -> str:
    """One line per series over the load axis (log2 spacing for closed loop is left to the data: the
    axis is the level's position), with each point's 95% CI as a whisker."""
    loads = sorted({p[0] for _, pts in series for p in pts})
    values = [p[1] for _, pts in series for p in pts if p[1] is not None]
    values += [v for _, pts in series for p in pts if p[1] is not None for v in p[2:] if v is not None]
    if not loads or not values:
        return _no_data(title)
    height, left, right, top, bottom = 260, 64, 12, 28, 58
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    ticks, decimals = nice_ticks(min(0.0, *values), max(values))
    y_lo, y_hi = ticks[0], ticks[-1]
    step = plot_w / max(1, len(loads))

    def x(load: float) -> float:
        return left + step * (loads.index(load) + 0.5)

    def y(value: float) -> float:
        return top + plot_h * (1 - (value - y_lo) / (y_hi - y_lo))

    out = _open(title, height)
    out += y_axis(ticks, decimals, y, (left, right, top, plot_h), unit)
    for load in loads:
        out.append(
            f'<text x="{_n(x(load))}" y="{top + plot_h + 16}" text-anchor="middle" fill="currentColor">'
            f"{load:g}</text>"
        )
    out.append(
        f'<text x="{WIDTH // 2}" y="{top + plot_h + 32}" text-anchor="middle" fill="currentColor">'
        f"{_esc(x_label)}</text>"
    )
    for s, (label, pts) in enumerate(series):
        colour = PALETTE[s % len(PALETTE)]
        known = [(load, v, lo, hi) for load, v, lo, hi in pts if v is not None]
        if len(known) >= 2:
            path = " ".join(f"{_n(x(p[0]))},{_n(y(p[1]))}" for p in known)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for load, v, lo, hi in known:
            assert v is not None
            if lo is not None or hi is not None:  # an unknown end (too few calls) runs to the axis, dashed
                dash = "" if lo is not None and hi is not None else ' stroke-dasharray="3 2"'
                low = y_lo if lo is None else max(lo, y_lo)
                high = y_hi if hi is None else min(hi, y_hi)
                out.append(
                    f'<line x1="{_n(x(load))}" y1="{_n(y(low))}" x2="{_n(x(load))}" '
                    f'y2="{_n(y(high))}" stroke="{colour}" stroke-width="1"{dash}/>'
                )
            out.append(
                f'<circle cx="{_n(x(load))}" cy="{_n(y(v))}" r="3" fill="{colour}">'
                f"<title>{_esc(label)} at {load:g}: {v:.1f} {_esc(unit)}</title></circle>"
            )
        room = (WIDTH - left) / len(series)
        out.append(
            f'<text x="{_n(left + room * s)}" y="{height - 8}" fill="{colour}">'
            f"■ {_esc(_short(label, max(8, int(room / 7))))}</text>"
        )
    out.append(
        f'<line x1="{left}" y1="{_n(top + plot_h)}" x2="{WIDTH - right}" y2="{_n(top + plot_h)}" '
        'stroke="currentColor" stroke-opacity="0.5"/>'
    )
    out.append("</svg>")
    return "\n".join(out)


def series_label(session: Session) -> str:
    """The session's label, else its profile @ host:port (two servers or two profiles tell apart)."""
    ep = session.manifest.endpoint_list
    where = (ep[0].url or "?").split("://", 1)[-1] if ep else "?"
    return session.manifest.label or f"{session.manifest.profile_name or '?'} @ {where}"


def charts_svg(sessions: Sequence[Session]) -> list[str]:
    """Throughput and TTFT p95 vs load, every session on the same charts."""
    loop = loop_of(sessions[0])
    axis = "arrival rate (requests/s)" if loop == "open" else "concurrent streams"
    levels = [(series_label(s), capacity_levels(s)) for s in sessions]
    return [
        curve_svg(
            "Aggregate output throughput (95% CI)",
            [(name, throughput_points(lv)) for name, lv in levels],
            axis,
            "tok/s",
        ),
        curve_svg("TTFT p95 (95% CI)", [(name, ttft_points(lv)) for name, lv in levels], axis, "ms"),
    ]


def capacity_json(sessions: Sequence[Session]) -> dict[str, Any]:
    """Each session's load model, SLO, levels (every statistic) and verdict."""
    return {
        "kind": "capacity",
        "sessions": [
            {
                "id": s.id,
                "label": series_label(s),
                "model": s.manifest.model_name,
                "profile": s.manifest.profile_name,
                "endpoint": s.manifest.endpoint_list[0].url if s.manifest.endpoint_list else None,
                "loop": loop_of(s),
                "slo": {"ttft_p95_ms": slo_of(s).ttft_p95_ms, "min_stream_tps": slo_of(s).min_stream_tps},
                "server": (s.manifest.capacity.server if s.manifest.capacity else None),
                "levels": [lv.to_dict() for lv in capacity_levels(s)],
                "verdict": verdict_of(s) or None,
            }
            for s in sessions
        ],
    }


def capacity_markdown(sessions: Sequence[Session]) -> str:
    from chimera_tui.core.reports.markdown import md_table, md_text

    out = ["# Capacity" + (" comparison" if len(sessions) > 1 else ""), ""]
    for s in sessions:
        v = verdict_of(s)
        out += [
            f"## {md_text(series_label(s))}",
            "",
            f"- session: `{md_text(s.id)}`; model {md_text(s.manifest.model_name or '?')}, "
            f"profile {md_text(s.manifest.profile_name or '?')}",
            f"- load model: {loop_text(loop_of(s))}",
            f"- SLO: {md_text(slo_text(s))}",
            f"- stopped: {md_text(v.get('stop_text') or '?')}",
            "",
            f"**Answer:** {md_text(v.get('text') or 'no verdict')}",
            "",
            md_table(LEVEL_HEADERS, level_rows(capacity_levels(s), loop_of(s))),
            "",
        ]
    out += [
        "Aggregate throughput: output token chunks (client stamps) over the level's window, first send "
        "to last end; its CI from 5 equal sub-windows. Per-stream rate: median client decode rate. "
        'Queue: the server\'s queue gap (docs/metrics.md "Capacity").',
        "",
    ]
    return "\n".join(out)


def capacity_html(sessions: Sequence[Session]) -> str:
    from chimera_tui.core.reports.html_export import _page, _table, h

    charts = '<div class="charts">' + "\n".join(charts_svg(sessions)) + "</div>"
    body = [f"<h1>Capacity{' comparison' if len(sessions) > 1 else ''}</h1>", charts]
    for s in sessions:
        v = verdict_of(s)
        body += [
            f"<h2>{h(series_label(s))}</h2>",
            f"<p>session <code>{h(s.id)}</code>; model {h(s.manifest.model_name or '?')}, "
            f"profile {h(s.manifest.profile_name or '?')}; {h(loop_text(loop_of(s)))}; "
            f"SLO: {h(slo_text(s))}; stopped: {h(v.get('stop_text') or '?')}</p>",
            f"<p><strong>Answer:</strong> {h(v.get('text') or 'no verdict')}</p>",
            _table(list(LEVEL_HEADERS), level_rows(capacity_levels(s), loop_of(s))),
        ]
    return _page("Capacity", body)
