"""Self-contained HTML reports: inline CSS and SVG, no script, nothing loaded from the network.

The page carries a Content-Security-Policy that forbids scripts and every remote load, and every piece
of session text is sanitized and html-escaped, so a hostile response is shown, never run.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from chimera_tui.core.measure.compare import session_labels
from chimera_tui.core.reports import _common as c
from chimera_tui.core.reports.charts import RunSeries, distribution_svg, per_run_svg
from chimera_tui.core.reports.markdown import comparison_headers, comparison_rows, side_by_side_rows
from chimera_tui.core.store.sessions import Session
from chimera_tui.safe_text import sanitize

if TYPE_CHECKING:
    from chimera_tui.core.measure.compare import Comparison

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

CSS = """
:root { color-scheme: light dark; --bg: #ffffff; --fg: #1f2328; --muted: #59636e; --border: #d1d9e0;
  --head: #f6f8fa; --warn-bg: #fff8c5; --warn-edge: #d4a72c; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --border: #3d444d; --head: #151b23;
    --warn-bg: #272115; --warn-edge: #9e6a03; }
}
body { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg);
  color: var(--fg); max-width: 1100px; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .25rem; }
h2 { border-bottom: 1px solid var(--border); padding-bottom: .2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid var(--border); padding: .25rem .5rem; text-align: left; vertical-align: top;
  overflow-wrap: anywhere; }
th { background: var(--head); }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
pre { background: var(--head); border: 1px solid var(--border); padding: .75rem; white-space: pre-wrap;
  overflow-wrap: anywhere; }
.muted { color: var(--muted); }
.warnings { background: var(--warn-bg); border-left: 4px solid var(--warn-edge); padding: .5rem 1rem; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
svg.chart { max-width: 100%; height: auto; }
details { margin: .5rem 0; }
summary { cursor: pointer; }
""".strip()


def h(text: object) -> str:
    """Session text for HTML: control sequences stripped, then escaped (quotes included)."""
    return html.escape(sanitize(str(text)), quote=True)


def _table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: frozenset[int] = frozenset()
) -> str:
    head = "".join(f"<th>{h(x)}</th>" for x in headers)
    body = "\n".join(
        "<tr>"
        + "".join(
            f'<td class="num">{h(cell)}</td>' if i in numeric else f"<td>{h(cell)}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _pre(text: str) -> str:
    return f"<pre>{h(text)}</pre>"


def _page(title: str, body: list[str]) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="referrer" content="no-referrer">',
            f"<title>{h(title)}</title>",
            f"<style>\n{CSS}\n</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )


def _charts(labels: Sequence[str], sessions: Sequence[Session]) -> str:
    """Per-run server decode rate and TTFT per session (dots, mean, 95% CI), and their distributions;
    each with a legend: label → session id."""
    ids = [s.id for s in sessions]

    def runs(key: str) -> list[RunSeries]:
        return [
            RunSeries(label, c.run_points(s, key), s.id) for label, s in zip(labels, sessions, strict=False)
        ]

    def values(key: str) -> list[tuple[str, list[float]]]:
        return [(label, c.run_values(s, key)) for label, s in zip(labels, sessions, strict=False)]

    return "\n".join(
        [
            '<div class="charts">',
            per_run_svg("Decode rate (server) per run", runs("server_decode_rate"), "tok/s"),
            per_run_svg("TTFT (any token) per run", runs("ttft_ms"), "ms"),
            distribution_svg("Decode rate (server) distribution", values("server_decode_rate"), "tok/s", ids),
            distribution_svg("TTFT (any token) distribution", values("ttft_ms"), "ms", ids),
            "</div>",
        ]
    )


def _problems(session: Session) -> str:
    runs = c.problem_runs(session)
    if not runs:
        return "<p>None: every run succeeded.</p>"
    return "<ul>\n" + "\n".join(f"<li>{h(c.problem_text(r))}</li>" for r in runs) + "\n</ul>"


def _responses(session: Session) -> list[str]:
    out: list[str] = []
    for run in c.response_runs(session):
        kind = c.run_kind(run).capitalize()
        out.append(f"<details><summary>{h(kind)} {h(c.run_label(run))} ({h(run.status)})</summary>")
        if run.thinking:
            out += ["<p>Thinking:</p>", _pre(run.thinking)]
            if run.response:
                out.append("<p>Response:</p>")
        if run.response:
            out.append(_pre(run.response))
        out.append("</details>")
    return out or ["<p>No response text was recorded.</p>"]


def _methodology() -> list[str]:
    return [f"<p>{h(p)}</p>" for p in c.METHODOLOGY]


_RESULT_NUMERIC = frozenset(range(1, len(c.RESULT_HEADERS)))
_RUN_NUMERIC = frozenset({0, 3, 4, 5, 6, 7, 8})


def _concurrency(session: Session) -> list[str]:
    if not session.rounds:
        return []
    agents, stats, rounds = c.concurrency_tables(session)
    mode = session.manifest.mode or "?"
    return [
        f"<h3>Concurrency: {h(mode)} mode, {len(agents)} agents</h3>",
        *(f"<p>{h(note)}</p>" for note in c.concurrency_notes(session)),
        _table(c.AGENT_HEADERS, agents),
        _table(c.ROUND_STAT_HEADERS, stats) if stats else "<p>No complete measured rounds.</p>",
        _table(c.ROUND_HEADERS, rounds),
    ]


def session_html(session: Session) -> str:
    """One session as a self-contained page: the Markdown report's tables plus inline SVG charts."""
    title = f"Benchmark report: {c.session_title(session)}"
    prompt = c.prompt_text(session)
    results = c.result_rows(session)
    body = [
        f"<h1>{h(title)}</h1>",
        f'<p class="muted">Session {h(session.id)} — {h(session.status)} — {h(c.counts_text(session))}.</p>',
        "<h2>Summary</h2>",
        f"<p>{h(c.headline(session))}</p>",
        "<h2>1. Configuration</h2>",
        _table(("setting", "value"), c.config_rows(session)),
    ]
    if prompt is not None:
        body += ["<p>Prompt:</p>", _pre(prompt)]
    body += [
        "<h2>2. Environment</h2>",
        _table(("item", "value"), c.environment_rows(session)),
        "<h2>3. Results</h2>",
        _table(c.result_headers(session), results, _RESULT_NUMERIC)
        if results
        else "<p>No successful measured runs.</p>",
        *(
            [
                "<p>Flags (docs/metrics.md):</p><ul>"
                + "".join(f"<li>{h(f)}</li>" for f in c.flag_lines(session))
                + "</ul>"
            ]
            if c.flag_lines(session)
            else []
        ),
        _charts(session_labels([session]), [session]),
        *_concurrency(session),
        "<h2>4. Per-run data</h2>",
        _table(c.RUN_HEADERS, c.run_rows(session), _RUN_NUMERIC) if session.runs else "<p>No runs.</p>",
        "<h2>5. Failed runs</h2>",
        _problems(session),
        "<h2>6. Responses</h2>",
        *_responses(session),
        "<h2>7. Methodology</h2>",
        *_methodology(),
    ]
    return _page(title, body)


def comparison_html(sessions: Sequence[Session], comparison: Comparison) -> str:
    """A comparison as a self-contained page: the Markdown comparison's tables plus charts per session."""
    labels = list(comparison.labels)
    title = "Benchmark comparison: " + " vs ".join(labels)
    body = [f"<h1>{h(title)}</h1>", f"<p>Baseline: {h(labels[0] if labels else '?')}. Sessions:</p>", "<ul>"]
    for label, s in zip(labels, sessions, strict=False):  # the legend: label → session id
        body.append(
            f"<li><strong>{h(label)}</strong>: session {h(s.id)} — {h(c.model_name(s))} / "
            f"{h(c.profile_name(s))} — {h(s.status)}, {h(c.counts_text(s))}</li>"
        )
    body.append("</ul>")
    if comparison.warnings:
        body += [
            '<div class="warnings"><strong>Warnings</strong><ul>',
            *(f"<li>{h(w)}</li>" for w in comparison.warnings),
            "</ul></div>",
        ]
    headers = comparison_headers(comparison)
    n = len(labels)
    numeric = frozenset([*range(1, n + 1), *range(n + 1, len(headers), 2)])  # not the verdicts
    body += [
        "<h2>1. Comparison</h2>",
        _table(headers, comparison_rows(comparison), numeric),
        f'<p class="muted">Method: {h(comparison.method)}</p>',
        _charts(labels, sessions),
        "<h2>2. Configuration</h2>",
        _table(("setting", *labels), side_by_side_rows(sessions)),
    ]
    prompts = [c.prompt_text(s) for s in sessions]
    if prompts and prompts[0] is not None and all(p == prompts[0] for p in prompts):
        body += ["<p>Prompt (the same for every session):</p>", _pre(prompts[0])]
    else:
        for label, prompt in zip(labels, prompts, strict=False):
            if prompt is not None:
                body += [f"<p>Prompt of {h(label)}:</p>", _pre(prompt)]
    body += [
        "<h2>3. Environment</h2>",
        _table(("item", *labels), side_by_side_rows(sessions, c.environment_rows)),
        "<h2>4. Failed runs</h2>",
    ]
    for label, s in zip(labels, sessions, strict=False):
        body += [f"<h3>{h(label)}</h3>", _problems(s)]
    body += ["<h2>5. Methodology</h2>", *_methodology()]
    return _page(title, body)
