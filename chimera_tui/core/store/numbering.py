"""One numbering for runs, used by the live table, session detail, charts, every export and the CLI.

- single mode: warm-ups ``w1…wK``, measured runs ``1…N`` (prompt-cache cohorts: ``3c`` / ``3w``,
  the cache-cold and cache-warm call of measured run 3);
- multi-agent: per agent ``A1-w1`` (agent 1, warm-up 1), ``A1-3`` (agent 1, measured round 3),
  ``A1-s3`` (agent 1's solo baseline before round 3);
- workflow: the stage and the workflow's number, ``analysis w1``, ``analysis 2``, ``report 2``.

A record's `number` (1-based among the calls of its kind) is derived from the calls before it in the
session, in order: `SessionWriter.start_run` assigns it as a run starts and `Session` fills it on
load, so older sessions read the same. It is not stored in metrics.json.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

#: the note that names a workflow call's stage ("stage:analysis"), and its workflow ("workflow_run:2")
STAGE_NOTE = "stage:"
WORKFLOW_NOTE = "workflow_run:"
#: the short suffix of a prompt-cache cohort's calls
COHORT_SUFFIX = {"cache_cold": "c", "cache_warm": "w"}


class Numbered(Protocol):
    """What numbering reads from a run (RunRecord has all of it)."""

    index: int
    warmup: bool
    agent: int
    round: int | None
    solo: bool
    cohort: str | None
    notes: list[str]
    number: int | None


def stage_of(record: Numbered) -> str | None:
    """A workflow call's stage ("analysis" or "report") from its notes; None for other modes."""
    for note in record.notes:
        if note.startswith(STAGE_NOTE):
            return note.removeprefix(STAGE_NOTE)
    return None


def workflow_position(record: Numbered) -> int | None:
    """A workflow call's workflow (1-based, warm-ups included); None for other modes."""
    for note in record.notes:
        if note.startswith(WORKFLOW_NOTE):
            try:
                return int(note.removeprefix(WORKFLOW_NOTE))
            except ValueError:
                return None
    return None


def is_multi(record: Numbered) -> bool:
    """A call of a multi-agent session (it belongs to a round, is a solo baseline, or is agent ≥ 2)."""
    return record.round is not None or record.solo or record.agent > 0


def _kind(record: Numbered) -> str:
    return "warmup" if record.warmup else "solo" if record.solo else "measured"


def _key(record: Numbered) -> tuple[int, str | None, str]:
    return (record.agent, stage_of(record), _kind(record))


def _opens_number(record: Numbered) -> bool:
    """A cache-warm cohort call repeats the number of the cache-cold call before it."""
    return record.cohort != "cache_warm"


def number_of(record: Numbered, before: Iterable[Numbered]) -> int:
    """`record`'s number among the calls of its kind, given every call of the session started before it."""
    earlier = list(before)
    position = workflow_position(record)
    if position is not None:
        if record.warmup:
            return position
        warmups = {workflow_position(r) for r in earlier if r.warmup and workflow_position(r) is not None}
        return max(1, position - len(warmups))
    key = _key(record)
    count = sum(1 for r in earlier if _key(r) == key and _opens_number(r))
    return max(1, count + (1 if _opens_number(record) else 0))


def number_runs(runs: Sequence[Numbered]) -> None:
    """Give every run without a number its number (runs in the order they started)."""
    for i, run in enumerate(runs):
        if run.number is None:
            run.number = number_of(run, runs[:i])


def run_label(record: Numbered) -> str:
    """The run's label: ``w1``, ``3``, ``3c``, ``A1-3``, ``A1-w1``, ``A1-s3``, ``analysis 2``…

    A record that has no number yet (built outside a session) is labelled by its index + 1.
    """
    number = record.number if record.number is not None else record.index + 1
    core = f"w{number}" if record.warmup else f"s{number}" if record.solo else str(number)
    if record.cohort in COHORT_SUFFIX and not record.warmup:
        core += COHORT_SUFFIX[record.cohort]
    stage = stage_of(record)
    if stage is not None:
        return f"{stage} {core}"
    if is_multi(record):
        return f"A{record.agent + 1}-{core}"
    return core


def run_labels(runs: Sequence[Numbered]) -> list[str]:
    """The labels of `runs`, numbering any that have no number yet."""
    number_runs(runs)
    return [run_label(r) for r in runs]


def run_kind(record: Numbered) -> str:
    """A word for the call's kind, for headings: "warm-up", "solo baseline" or "run"."""
    return "warm-up" if record.warmup else "solo baseline" if record.solo else "run"


def round_labels(warmups: Iterable[bool]) -> list[str]:
    """The labels of a multi-agent session's rounds, in order: warm-up rounds ``w1…``, then ``1…N``
    (the number its calls carry: round 3's calls are ``A1-3``, ``A2-3``…)."""
    seen = {True: 0, False: 0}
    out = []
    for warm in warmups:
        seen[warm] += 1
        out.append(f"w{seen[warm]}" if warm else str(seen[warm]))
    return out


def progress_label(
    number: int, total: int, warmup: bool, agent: int | None = None, solo: bool = False
) -> str:
    """A running call's place, for progress lines: ``w1/2``, ``3/5``, ``A2-3/5``, ``A1-s3/5``."""
    core = f"w{number}/{total}" if warmup else f"s{number}/{total}" if solo else f"{number}/{total}"
    return f"A{agent + 1}-{core}" if agent is not None else core
