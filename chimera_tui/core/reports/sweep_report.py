"""Sweep reports: the ranking vs the baseline, the success rate, heat maps; as CSV, Markdown, JSON, HTML.

Pure functions over a sweep record and its ranked rows (core/sweep.py). Every option value and name is
escaped for its format as the session reports do: a hostile `stop` string renders as literal text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from chimera_tui.core.reports import _common as c
from chimera_tui.core.reports.csv_export import csv_number, csv_text
from chimera_tui.core.reports.html_export import _page, _table, h
from chimera_tui.core.reports.json_export import json_safe
from chimera_tui.core.reports.markdown import md_fence, md_table, md_text
from chimera_tui.core.run.sweep.definition import BASELINE_KEY, sweep_to_dict
from chimera_tui.core.run.sweep.heatmap import HeatMap
from chimera_tui.core.run.sweep.ranking import RankRow, success_rate
from chimera_tui.core.run.sweep.record import SweepRecord
from chimera_tui.core.store.profiles import OPTION_SPECS, format_value

__all__ = [
    "SWEEP_CSV_COLUMNS",
    "SWEEP_EXPORT_SCHEMA",
    "heatmap_text",
    "heatmap_title",
    "option_columns",
    "ranking_headers",
    "ranking_rows",
    "success_text",
    "sweep_csv",
    "sweep_html",
    "sweep_json",
    "sweep_markdown",
]

SWEEP_EXPORT_SCHEMA = "chimera-tui/sweep/1"

#: the CSV columns; one ``option_<name>`` column per option set in any row goes after ``baseline``
SWEEP_CSV_COLUMNS: tuple[str, ...] = (
    "rank",
    "key",
    "baseline",
    "metric",
    "n",
    "mean",
    "stddev",
    "cv_pct",
    "ci95_low",
    "ci95_high",
    "delta_pct",
    "p_value",
    "verdict",
    "mean_ttft_ms",
    "stddev_ttft_ms",
    "ttft_delta_pct",
    "ttft_p_value",
    "ttft_verdict",
    "reload_load_ms",
    "notes",
)

METHOD: tuple[str, ...] = (
    "Each configuration is an ordinary session; statistics use its measured, successful runs only "
    "(warm-up, failed, cancelled and incomplete runs are left out).",
    "Verdicts against the baseline: a difference is called only when a two-sided permutation test on "
    "the difference of means gives p < 0.05 and the two 95% confidence intervals do not overlap; "
    'otherwise "within noise" ("too few runs" under 2 runs).',
    "Success rate: the share of non-baseline configurations whose decode rate is significantly faster "
    'than the baseline\'s (verdict "faster"), the honest form of TR111\'s "optimization success rate".',
    "Load-time options (num_ctx, num_gpu, ...) differ between configurations, so switching to one "
    "reloads the model. The reload is timed on its own (reload ms) and kept out of the statistics: the "
    "options are applied before the session's calls, and warm-up calls absorb what is left.",
)


# -- shared rows -----------------------------------------------------------------------------------
def option_columns(rows: Sequence[RankRow], record: SweepRecord | None = None) -> list[str]:
    """The options worth a column: the grid's when a record is given, else every option set, in
    OPTION_SPECS order."""
    if record is not None:
        return list(record.definition.grid)
    order = {name: i for i, name in enumerate(OPTION_SPECS)}
    names = {k for r in rows for k in r.options}
    return sorted(names, key=lambda n: (order.get(n, len(order)), n))


def _unit(rows: Sequence[RankRow]) -> str:
    metric = rows[0].metric if rows else "server_decode_rate"
    info = c.METRIC_INFO.get(metric)
    return info.unit if info is not None else ""


def _metric_label(rows: Sequence[RankRow]) -> str:
    metric = rows[0].metric if rows else "server_decode_rate"
    info = c.METRIC_INFO.get(metric)
    return info.title if info is not None else metric


def _option_text(row: RankRow, names: Sequence[str]) -> str:
    if row.is_baseline:
        return "base profile" + (f" ({c.value_text(row.options)})" if row.options else ": Ollama defaults")
    return ", ".join(f"{k}={format_value(row.options[k])}" for k in names if k in row.options) or "—"


def ranking_headers(rows: Sequence[RankRow]) -> list[str]:
    unit = _unit(rows) or "value"
    return [
        "rank",
        "configuration",
        "options",
        "n",
        f"{unit} mean ± sd",
        "CV%",
        f"Δ {unit}",
        "verdict",
        "TTFT ms",
        "Δ TTFT",
        "TTFT verdict",
        "reload ms",
        "notes",
    ]


def ranking_rows(rows: Sequence[RankRow], record: SweepRecord | None = None) -> list[list[str]]:
    """Plain (unescaped) text cells of the ranking table."""
    names = option_columns(rows, record)
    digits = c.METRIC_INFO[rows[0].metric].digits if rows and rows[0].metric in c.METRIC_INFO else 2
    out: list[list[str]] = []
    for r in rows:
        verdict = r.verdict + (f" ({c.fmt_p(r.p_value)})" if r.p_value is not None else "")
        out.append(
            [
                str(r.rank),
                r.key,
                _option_text(r, names),
                str(r.n),
                _mean_sd(r.summary.mean, r.summary.stddev, digits),
                c.fmt(r.cv_pct, 1),
                c.fmt_signed(r.delta_pct, 2, "%"),
                verdict,
                c.fmt(r.mean_ttft_ms, 1),
                c.fmt_signed(r.ttft_delta_pct, 1, "%"),
                r.ttft_verdict,
                c.fmt(r.reload_load_ms, 1),
                "; ".join(r.notes),
            ]
        )
    return out


def _mean_sd(mean: float | None, sd: float | None, digits: int) -> str:
    text = c.fmt(mean, digits)
    return text if c.finite(sd) is None or text == c.DASH else f"{text} ± {c.fmt(sd, digits)}"


def success_text(rows: Sequence[RankRow]) -> str:
    """One sentence: how many configurations beat the baseline significantly."""
    beat, total, pct = success_rate(rows)
    if not any(r.is_baseline for r in rows):
        return "Success rate: no baseline configuration, so nothing is compared."
    if total == 0:
        return "Success rate: no configuration besides the baseline."
    return (
        f"Success rate: {beat} of {total} configurations ({c.fmt(pct, 1)}%) are significantly faster "
        "than the baseline."
    )


def _best_text(rows: Sequence[RankRow]) -> str | None:
    top = next((r for r in rows if r.mean is not None), None)
    if top is None:
        return None
    unit = _unit(rows)
    text = f"Top configuration: {top.key}, {c.fmt(top.mean, 2)} {unit}".rstrip()
    if top.delta_pct is not None:
        text += f" ({c.fmt_signed(top.delta_pct, 2, '%')} vs baseline, {top.verdict})"
    return text + "."


def _cell(value: float | None, digits: int) -> str:
    return c.fmt(value, digits)


def _heatmap_rows(hm: HeatMap, digits: int) -> tuple[list[str], list[list[str]]]:
    headers = [f"{hm.y_option} \\ {hm.x_option}", *(format_value(x) for x in hm.x_values)]
    rows = [[format_value(y), *(_cell(v, digits) for v in hm.cells[yi])] for yi, y in enumerate(hm.y_values)]
    return headers, rows


def heatmap_text(hm: HeatMap) -> str:
    """A heat map as a plain-text grid for the terminal: the title, then rows (y) by columns (x)."""
    headers, rows = _heatmap_rows(hm, _digits(hm.metric))
    widths = [
        max(len(headers[i]), *(len(r[i]) for r in rows)) if rows else len(headers[i])
        for i in range(len(headers))
    ]
    lines = [heatmap_title(hm)]
    lines.append(
        "  ".join(
            h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        )
    )
    lines += [
        "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    ]
    note = _averaging_note(hm)
    return "\n".join([*lines, *([note] if note else [])])


def heatmap_title(hm: HeatMap) -> str:
    """``decode rate (server) (tok/s) by num_ctx × num_gpu (temperature=0.6)``."""
    info = c.METRIC_INFO.get(hm.metric)
    label = info.title if info is not None else hm.metric
    return hm.title.replace(hm.metric, label, 1)


def _averaging_note(hm: HeatMap) -> str | None:
    most = max((n for row in hm.counts for n in row), default=0)
    if most <= 1:
        return None
    return f"Options outside the map vary: a cell is the mean of up to {most} configurations' means."


def _digits(metric: str) -> int:
    info = c.METRIC_INFO.get(metric)
    return info.digits if info is not None else 2


def _setup_rows(record: SweepRecord) -> list[tuple[str, str]]:
    d = record.definition
    counts = record.counts()
    order = d.order + (f" (seed {d.seed})" if d.order == "shuffled" and d.seed is not None else "")
    rows = [
        ("sweep id", record.id),
        ("status", record.status),
        ("created", record.created_at),
        ("finished", record.finished_at or "—"),
        ("endpoint", record.endpoint),
        ("model", record.model),
        ("base profile", d.base_profile),
        *((f"grid {k}", ", ".join(format_value(v) for v in vals)) for k, vals in d.grid.items()),
        ("configurations", f"{len(record.configs)} ({counts['done']} done)"),
        ("runs per configuration", str(d.runs)),
        ("warm-up runs", str(d.warmup)),
        ("order", order),
        ("cold", "yes" if d.cold else "no"),
        ("cooldown", f"{d.cooldown_s:g} s"),
        ("prompt", record.prompt_label),
        ("num_predict", str(d.num_predict) if d.num_predict is not None else "model default"),
    ]
    if record.error:
        rows.append(("error", record.error))
    return rows


CONFIG_HEADERS = ("configuration", "status", "sessions", "reload ms", "first-call load ms", "reload reason")


def _config_rows(record: SweepRecord) -> list[list[str]]:
    by_key = {cr.key: cr for cr in record.configs}
    out = []
    for key in record.run_order:
        cr = by_key[key]
        out.append(
            [
                key,
                cr.status + (f": {cr.error}" if cr.error else ""),
                ", ".join(cr.session_ids) or "—",
                ", ".join(c.fmt(v, 1) for v in cr.reload_load_ms) or "—",
                ", ".join(c.fmt(v, 1) for v in cr.first_call_load_ms) or "—",
                ", ".join(cr.reload_reason) or ("none" if cr.visits_done else "—"),
            ]
        )
    return out


# -- CSV -------------------------------------------------------------------------------------------
def sweep_csv(rows: Sequence[RankRow]) -> str:
    """One row per configuration, ranked (SWEEP_CSV_COLUMNS, with ``option_<name>`` columns inserted)."""
    names = option_columns(rows)
    head = list(SWEEP_CSV_COLUMNS)
    head[3:3] = [f"option_{n}" for n in names]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(head)
    for r in rows:
        options = [csv_text(format_value(r.options[n])) if n in r.options else "" for n in names]
        s, t = r.summary, r.ttft
        writer.writerow(
            [
                str(r.rank),
                csv_text(r.key),
                "true" if r.is_baseline else "false",
                *options,
                csv_text(r.metric),
                str(r.n),
                csv_number(s.mean),
                csv_number(s.stddev),
                csv_number(s.cv_pct),
                csv_number(s.ci95_low),
                csv_number(s.ci95_high),
                csv_number(r.delta_pct),
                csv_number(r.p_value),
                csv_text(r.verdict),
                csv_number(t.mean),
                csv_number(t.stddev),
                csv_number(r.ttft_delta_pct),
                csv_number(r.ttft_p_value),
                csv_text(r.ttft_verdict),
                csv_number(r.reload_load_ms),
                csv_text("; ".join(r.notes)),
            ]
        )
    return buf.getvalue()


# -- Markdown --------------------------------------------------------------------------------------
def sweep_markdown(record: SweepRecord, rows: Sequence[RankRow], heatmaps: Sequence[HeatMap] = ()) -> str:
    """The sweep as a Markdown report: setup, ranking, success rate, heat maps, configurations, method."""
    d = record.definition
    parts = [f"# Parameter sweep: {md_text(d.name)}", ""]
    if d.description:
        parts += [md_text(d.description), ""]
    parts += ["## 1. Setup", "", md_table(("setting", "value"), _setup_rows(record)), ""]
    parts += ["Prompt:", "", md_fence(record.prompt), ""]
    parts += [f"## 2. Ranking by {md_text(_metric_label(rows))}", ""]
    if rows:
        parts += [md_table(ranking_headers(rows), ranking_rows(rows, record)), ""]
        parts += [md_text(success_text(rows)), ""]
        best = _best_text(rows)
        if best:
            parts += [md_text(best), ""]
    else:
        parts += ["No configuration has measured runs yet.", ""]
    if heatmaps:
        parts += ["## 3. Heat maps", ""]
        for hm in heatmaps:
            headers, cells = _heatmap_rows(hm, _digits(hm.metric))
            parts += [f"### {md_text(heatmap_title(hm))}", "", md_table(headers, cells), ""]
            note = _averaging_note(hm)
            if note:
                parts += [md_text(note), ""]
    parts += ["## 4. Configurations", "", md_table(CONFIG_HEADERS, _config_rows(record)), ""]
    parts += ["## 5. Method", "", *(f"- {md_text(line)}" for line in METHOD), ""]
    return "\n".join(parts)


# -- JSON ------------------------------------------------------------------------------------------
def _row_dict(r: RankRow) -> dict[str, Any]:
    return {
        "rank": r.rank,
        "key": r.key,
        "baseline": r.is_baseline,
        "options": dict(r.options),
        "metric": r.metric,
        "n": r.n,
        "summary": r.summary.to_dict(),
        "delta_pct": r.delta_pct,
        "p_value": r.p_value,
        "verdict": r.verdict,
        "ttft_ms": r.ttft.to_dict(),
        "ttft_delta_pct": r.ttft_delta_pct,
        "ttft_p_value": r.ttft_p_value,
        "ttft_verdict": r.ttft_verdict,
        "reload_load_ms": r.reload_load_ms,
        "notes": list(r.notes),
    }


def _heatmap_dict(hm: HeatMap) -> dict[str, Any]:
    return {
        "title": heatmap_title(hm),
        "metric": hm.metric,
        "x_option": hm.x_option,
        "y_option": hm.y_option,
        "fixed": dict(hm.fixed),
        "x_values": list(hm.x_values),
        "y_values": list(hm.y_values),
        "cells": [list(row) for row in hm.cells],
        "counts": [list(row) for row in hm.counts],
    }


def sweep_json(
    record: SweepRecord, rows: Sequence[RankRow], heatmaps: Sequence[HeatMap] = ()
) -> dict[str, Any]:
    """A JSON-ready document (no NaN): the record, the ranking, the success rate and the heat maps."""
    beat, total, pct = success_rate(rows)
    doc = record.to_dict()
    doc["definition"] = sweep_to_dict(record.definition)
    return json_safe(
        {
            "schema": SWEEP_EXPORT_SCHEMA,
            "sweep": doc,
            "baseline_key": record.baseline_key or BASELINE_KEY,
            "ranking": [_row_dict(r) for r in rows],
            "success_rate": {"faster": beat, "total": total, "pct": pct},
            "heatmaps": [_heatmap_dict(hm) for hm in heatmaps],
            "method": list(METHOD),
        }
    )


# -- HTML ------------------------------------------------------------------------------------------
def _shade(value: float | None, lo: float, hi: float, higher_better: bool) -> str:
    """An inline background for a heat-map cell: stronger green is better (numbers only, no text)."""
    if value is None:
        return ""
    t = 0.5 if hi == lo else (value - lo) / (hi - lo)
    if not higher_better:
        t = 1 - t
    return f' style="background-color: rgba(46, 160, 67, {0.1 + 0.6 * t:.3f})"'


def _heatmap_html(hm: HeatMap) -> str:
    digits = _digits(hm.metric)
    values = [v for row in hm.cells for v in row if v is not None]
    lo, hi = (min(values), max(values)) if values else (0.0, 0.0)
    higher = hm.metric.endswith("rate") or hm.metric.startswith("aggregate")
    head = f"<th>{h(hm.y_option)} \\ {h(hm.x_option)}</th>" + "".join(
        f"<th>{h(format_value(x))}</th>" for x in hm.x_values
    )
    body = []
    for yi, y in enumerate(hm.y_values):
        cells = "".join(
            f'<td class="num"{_shade(v, lo, hi, higher)}>{h(_cell(v, digits))}</td>' for v in hm.cells[yi]
        )
        body.append(f"<tr><th>{h(format_value(y))}</th>{cells}</tr>")
    return (
        f"<h3>{h(heatmap_title(hm))}</h3>\n<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(body)
        + "\n</tbody>\n</table>"
        + (f'\n<p class="muted">{h(note)}</p>' if (note := _averaging_note(hm)) else "")
    )


_RANK_NUMERIC = frozenset({0, 3, 4, 5, 6, 8, 9, 11})


def sweep_html(record: SweepRecord, rows: Sequence[RankRow], heatmaps: Sequence[HeatMap] = ()) -> str:
    """The sweep as a self-contained page (no script, no remote loads); heat maps as shaded tables."""
    d = record.definition
    title = f"Parameter sweep: {d.name}"
    body = [f"<h1>{h(title)}</h1>"]
    if d.description:
        body.append(f'<p class="muted">{h(d.description)}</p>')
    body += [
        "<h2>1. Setup</h2>",
        _table(("setting", "value"), _setup_rows(record)),
        "<p>Prompt:</p>",
        f"<pre>{h(record.prompt)}</pre>",
        f"<h2>2. Ranking by {h(_metric_label(rows))}</h2>",
    ]
    if rows:
        body.append(_table(ranking_headers(rows), ranking_rows(rows, record), _RANK_NUMERIC))
        body.append(f"<p>{h(success_text(rows))}</p>")
        best = _best_text(rows)
        if best:
            body.append(f"<p>{h(best)}</p>")
    else:
        body.append("<p>No configuration has measured runs yet.</p>")
    if heatmaps:
        body.append("<h2>3. Heat maps</h2>")
        body += [_heatmap_html(hm) for hm in heatmaps]
    body += [
        "<h2>4. Configurations</h2>",
        _table(CONFIG_HEADERS, _config_rows(record)),
        "<h2>5. Method</h2>",
        "<ul>" + "".join(f"<li>{h(line)}</li>" for line in METHOD) + "</ul>",
    ]
    return _page(title, body)
