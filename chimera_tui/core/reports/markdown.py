"""Markdown reports in the style of the research's Technical Reports: one session, or a comparison.

All text that comes from a session (names, prompts, responses, errors) is sanitized, then escaped so
it renders as the literal text: it cannot add table cells, headings, links, HTML or close a code block.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from chimera_tui.core.reports import _common as c
from chimera_tui.core.store.sessions import Session
from chimera_tui.safe_text import sanitize, sanitize_line

if TYPE_CHECKING:
    from chimera_tui.core.measure.compare import Comparison

_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
_BACKSLASHED = frozenset("\\`*_[]|~$")
#: what makes the start of a line a heading, list item, thematic break or setext underline
_LEADING_MARKER = re.compile(r"^(?:#{1,6}(?=[ \t]|$)|[-+](?=[ \t]|$)|\d{1,9}[.)](?=[ \t]|$)|[-=]+[ \t]*$)")


def md_text(text: object, limit: int | None = None) -> str:
    """`text` as inline Markdown that renders literally: one line, markup characters escaped."""
    plain = sanitize_line(str(text)).strip()
    if limit is not None and len(plain) > limit:
        plain = plain[: limit - 1] + "…"
    out = "".join(_ENTITIES.get(ch) or ("\\" + ch if ch in _BACKSLASHED else ch) for ch in plain)
    marker = _LEADING_MARKER.match(out)
    if marker:  # `# heading`, `- item`, `1. item`, `---`: escape the character that makes it one
        at = marker.end() - 1 if out[0].isdigit() else 0
        out = out[:at] + "\\" + out[at:]
    return out


def md_fence(text: str, info: str = "text") -> str:
    """`text` in a fenced code block whose fence is longer than any backtick run inside it."""
    body = sanitize(text).rstrip("\n")
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body}\n{fence}"


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GFM table; every cell (headers included) is escaped."""
    lines = [
        "| " + " | ".join(md_text(h) for h in headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(md_text(cell) or " " for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _problems(session: Session) -> str:
    runs = c.problem_runs(session)
    if not runs:
        return "None: every run succeeded."
    return "\n".join(f"- {md_text(c.problem_text(r))}" for r in runs)


def _responses(session: Session) -> list[str]:
    out: list[str] = []
    for run in c.response_runs(session):
        out.append(
            f"### {md_text(c.run_kind(run).capitalize())} {md_text(c.run_label(run))} ({md_text(run.status)})"
        )
        out.append("")
        if run.thinking:
            out += ["Thinking:", "", md_fence(run.thinking), ""]
            if run.response:
                out += ["Response:", ""]
        if run.response:
            out += [md_fence(run.response), ""]
    return out or ["No response text was recorded.", ""]


def _methodology() -> list[str]:
    return [*(p + "\n" for p in c.METHODOLOGY)]


def session_markdown(session: Session) -> str:
    """A full report of one session: configuration, environment, results, runs, failures, method."""
    prompt = c.prompt_text(session)
    lines = [
        f"# Benchmark report: {md_text(c.session_title(session))}",
        "",
        f"Session {md_text(session.id)} — {md_text(session.status)} — {md_text(c.counts_text(session))}.",
        "",
        "## Summary",
        "",
        md_text(c.headline(session)),
        "",
        "## 1. Configuration",
        "",
        md_table(("setting", "value"), c.config_rows(session)),
        "",
    ]
    if prompt is not None:
        lines += ["Prompt:", "", md_fence(prompt), ""]
    lines += [
        "## 2. Environment",
        "",
        md_table(("item", "value"), c.environment_rows(session)),
        "",
        "## 3. Results",
        "",
    ]
    results = c.result_rows(session)
    lines.append(md_table(c.result_headers(session), results) if results else "No successful measured runs.")
    flags = c.flag_lines(session)
    if flags:
        lines += ["", "Flags (docs/metrics.md):", "", *(f"- {md_text(f)}" for f in flags)]
    if session.rounds:
        agents, stats, rounds = c.concurrency_tables(session)
        lines += [
            "",
            f"### Concurrency: {md_text(session.manifest.mode or '?')} mode, {len(agents)} agents",
            "",
            *(f"{md_text(note)}  " for note in c.concurrency_notes(session)),
            "",
            md_table(c.AGENT_HEADERS, agents),
            "",
            md_table(c.ROUND_STAT_HEADERS, stats) if stats else "No complete measured rounds.",
            "",
            md_table(c.ROUND_HEADERS, rounds),
        ]
    lines += [
        "",
        "## 4. Per-run data",
        "",
        md_table(c.RUN_HEADERS, c.run_rows(session)) if session.runs else "No runs were recorded.",
        "",
        "## 5. Failed runs",
        "",
        _problems(session),
        "",
        "## 6. Responses",
        "",
        *_responses(session),
        "## 7. Methodology",
        "",
        *_methodology(),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


def side_by_side_rows(
    sessions: Sequence[Session], rows_of: Callable[[Session], list[c.Row]] = c.config_rows
) -> list[tuple[str, ...]]:
    """Each setting once, with every session's value ("—" where a session lacks it)."""
    row_lists = [rows_of(s) for s in sessions]
    per_session = [dict(rows) for rows in row_lists]
    return [
        (label, *(values.get(label, c.missing_value(label)) for values in per_session))
        for label in c.merged_labels(row_lists)
    ]


def comparison_headers(comparison: Comparison) -> list[str]:
    """metric | each session | Δ and verdict of each session after the baseline."""
    labels = list(comparison.labels)
    headers = ["metric", *labels]
    if len(labels) == 2:
        return [*headers, "Δ vs baseline", "verdict"]
    for label in labels[1:]:
        headers += [f"Δ {label} vs baseline", f"verdict {label}"]
    return headers


def comparison_rows(comparison: Comparison) -> list[tuple[str, ...]]:
    """The comparison table's rows as plain text (cells as comparison_headers)."""
    rows: list[tuple[str, ...]] = []
    for mc in comparison.metrics:
        info = c.METRIC_INFO.get(mc.spec.key)
        digits = info.digits if info else 2
        title = f"{mc.spec.label} ({mc.spec.unit})" if mc.spec.unit else mc.spec.label
        cells = [title, *(c.fmt_mean_sd_cv(col.summary, digits) for col in mc.columns)]
        for col in mc.columns[1:]:
            delta = c.fmt_delta(col.delta, col.delta_pct, digits)
            verdict = str(col.verdict or c.DASH)
            p = c.fmt_p(col.p_value)
            cells += [delta, f"{verdict} ({p})" if p else verdict]
        rows.append(tuple(cells))
    return rows


def comparison_markdown(sessions: Sequence[Session], comparison: Comparison) -> str:
    """A comparison report: each session's configuration side by side, warnings, the table, method."""
    labels = list(comparison.labels)
    lines = [
        "# Benchmark comparison: " + md_text(" vs ".join(labels)),
        "",
        f"Baseline: {md_text(labels[0] if labels else '?')}. Sessions:",
        "",
    ]
    for label, s in zip(labels, sessions, strict=False):  # the legend: label → session id
        lines.append(
            f"- **{md_text(label)}**: session {md_text(s.id)} — {md_text(c.model_name(s))} / "
            f"{md_text(c.profile_name(s))} — {md_text(s.status)}, {md_text(c.counts_text(s))}"
        )
    lines.append("")
    if comparison.warnings:
        lines += ["> **Warnings**", ">", *(f"> - {md_text(w)}" for w in comparison.warnings), ""]
    lines += [
        "## 1. Comparison",
        "",
        md_table(comparison_headers(comparison), comparison_rows(comparison)),
        "",
        f"Method: {md_text(comparison.method)}",
        *(f"Compared: {md_text(note)}" for note in comparison.notes),
        "",
        "## 2. Configuration",
        "",
        md_table(("setting", *labels), side_by_side_rows(sessions)),
        "",
    ]
    prompts = [c.prompt_text(s) for s in sessions]
    if prompts and all(p == prompts[0] for p in prompts) and prompts[0] is not None:
        lines += ["Prompt (the same for every session):", "", md_fence(prompts[0]), ""]
    else:
        for label, prompt in zip(labels, prompts, strict=False):
            if prompt is not None:
                lines += [f"Prompt of {md_text(label)}:", "", md_fence(prompt), ""]
    lines += [
        "## 3. Environment",
        "",
        md_table(("item", *labels), side_by_side_rows(sessions, c.environment_rows)),
        "",
        "## 4. Failed runs",
        "",
    ]
    for label, s in zip(labels, sessions, strict=False):
        lines += [f"### {md_text(label)}", "", _problems(s), ""]
    lines += ["## 5. Methodology", "", *_methodology()]
    return "\n".join(lines).rstrip("\n") + "\n"
