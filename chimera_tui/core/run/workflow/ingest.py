"""The workflow's ingest phase: read a folder of CSV, JSON and Markdown files into a prompt digest."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from chimera_tui.core.errors import ChimeraError

#: the most characters of data digest that go into the analysis prompt
MAX_DIGEST_CHARS = 6000
#: larger files are skipped (counted, and named in `problems`)
MAX_FILE_BYTES = 4 * 1024 * 1024
_KINDS = {".csv": "csv", ".json": "json", ".md": "markdown", ".markdown": "markdown"}
FileKind = Literal["csv", "json", "markdown"]


class WorkflowError(ChimeraError):
    kind = "workflow_error"


@dataclass(frozen=True, slots=True)
class IngestedFile:
    """One data file read by the ingest phase."""

    path: str
    """Relative to the ingested folder, with '/' separators."""
    kind: FileKind
    size_bytes: int
    summary: str
    """One line: ``CSV, 19 rows x 11 columns``."""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What the ingest phase read: the files, what it skipped, how long it took, and a prompt digest."""

    directory: Path
    files: list[IngestedFile]
    skipped: int
    problems: list[str]
    total_bytes: int
    ingest_ms: float
    digest: str

    def counts(self) -> dict[str, int]:
        out = {"csv": 0, "json": 0, "markdown": 0}
        for f in self.files:
            out[f.kind] += 1
        return out

    def counts_text(self) -> str:
        c = self.counts()
        return (
            f"{len(self.files)} files ({c['csv']} CSV, {c['json']} JSON, {c['markdown']} Markdown), "
            f"{self.skipped} skipped, {self.total_bytes} bytes"
        )


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _read_csv(text: str) -> tuple[str, dict[str, Any]]:
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    header = rows[0] if rows else []
    data = rows[1:]
    numeric: dict[str, dict[str, float]] = {}
    for i, name in enumerate(header):
        values = [row[i].strip() for row in data if i < len(row) and row[i].strip()]
        numbers = [n for n in (_number(v) for v in values) if n is not None]
        if numbers and len(numbers) == len(values):
            numeric[name] = {
                "min": min(numbers),
                "mean": sum(numbers) / len(numbers),
                "max": max(numbers),
            }
    detail = {"rows": len(data), "columns": header, "head": data[:3], "numeric": numeric}
    return f"CSV, {len(data)} rows x {len(header)} columns", detail


def _read_json(text: str) -> tuple[str, dict[str, Any]]:
    doc = json.loads(text)
    if isinstance(doc, dict):
        keys = [str(k) for k in doc]
        return f"JSON object, {len(keys)} top-level keys", {"type": "object", "keys": keys}
    if isinstance(doc, list):
        return f"JSON array of {len(doc)} items", {"type": "array", "length": len(doc)}
    return f"JSON {type(doc).__name__}", {"type": type(doc).__name__}


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def _read_markdown(text: str) -> tuple[str, dict[str, Any]]:
    headings: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match:
            headings.append(f"{match.group(1)} {match.group(2)}")
    words = len(text.split())
    return f"Markdown, {words} words, {len(headings)} headings", {"headings": headings, "words": words}


_READERS: dict[str, Callable[[str], tuple[str, dict[str, Any]]]] = {
    "csv": _read_csv,
    "json": _read_json,
    "markdown": _read_markdown,
}


def _digest_lines(f: IngestedFile) -> list[str]:
    lines = [f"## {f.path} ({f.summary}, {f.size_bytes} bytes)"]
    d = f.detail
    if f.kind == "csv":
        lines.append("columns: " + ", ".join(d["columns"]))
        for name, s in d["numeric"].items():
            lines.append(f"  {name}: mean {s['mean']:.4g} (min {s['min']:.4g}, max {s['max']:.4g})")
        lines += ["head:", *("  " + ", ".join(row) for row in d["head"])]
    elif f.kind == "json":
        if d.get("keys"):
            lines.append("top-level keys: " + ", ".join(d["keys"][:30]))
    else:
        lines += ["headings:", *("  " + h for h in d["headings"][:30])]
    return lines


def ingest(
    directory: Path, max_digest_chars: int = MAX_DIGEST_CHARS, max_file_bytes: int = MAX_FILE_BYTES
) -> IngestResult:
    """Read every CSV, JSON and Markdown file under ``directory`` (recursively, in name order; hidden
    entries and symlinks skipped); other files are skipped and counted. Timed with perf_counter_ns.

    A file that cannot be read or parsed is skipped and named in ``problems``. WorkflowError when the
    directory itself cannot be read.
    """
    t0 = time.perf_counter_ns()
    root = Path(directory)
    if not root.is_dir():
        raise WorkflowError(f"data folder {root} does not exist or is not a folder")
    files: list[IngestedFile] = []
    problems: list[str] = []
    skipped = 0
    total = 0
    errors: list[OSError] = []
    for folder, dirs, names in os.walk(root, onerror=errors.append, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            kind = _KINDS.get(path.suffix.lower())
            if kind is None or name.startswith(".") or path.is_symlink():
                skipped += 1
                continue
            try:
                size = path.stat().st_size
                if size > max_file_bytes:
                    skipped += 1
                    problems.append(f"{rel}: skipped, {size} bytes is over the {max_file_bytes}-byte limit")
                    continue
                text = path.read_bytes().decode("utf-8-sig")
                summary, detail = _READERS[kind](text)
            except (OSError, UnicodeDecodeError, ValueError, csv.Error, RecursionError) as exc:
                skipped += 1
                problems.append(f"{rel}: skipped, {' '.join(str(exc).split())[:160]}")
                continue
            total += size
            files.append(IngestedFile(rel, kind, size, summary, detail))  # type: ignore[arg-type]
    if errors and not files and errors[0].filename == str(root):
        raise WorkflowError(f"cannot read data folder {root}: {errors[0].strerror or errors[0]}")
    problems += [f"{e.filename}: {e.strerror or e}" for e in errors]
    head = f"{len(files)} data files, {skipped} other files skipped, {total} bytes read."
    digest = "\n".join([head, *(line for f in files for line in _digest_lines(f))])
    if len(digest) > max_digest_chars:
        marker = f"\n... (digest truncated at {max_digest_chars} characters)"
        digest = digest[: max(0, max_digest_chars - len(marker))] + marker
    ingest_ms = round((time.perf_counter_ns() - t0) / 1e6, 3)
    return IngestResult(root, files, skipped, problems, total, ingest_ms, digest)
