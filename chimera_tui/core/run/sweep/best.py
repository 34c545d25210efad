"""The best configuration of a ranked sweep, as a profile."""

from __future__ import annotations

from collections.abc import Sequence

from chimera_tui.core.errors import ProfileError
from chimera_tui.core.run.sweep.definition import SweepError
from chimera_tui.core.run.sweep.ranking import RankRow, metric_spec
from chimera_tui.core.store.profiles import Profile


def best_profile(
    rows: Sequence[RankRow], name: str, description: str | None = None, significant_only: bool = False
) -> Profile:
    """The top-ranked configuration's options as an unsaved user profile (ProfileStore.save_user).

    With ``significant_only``, the top configuration whose verdict is "faster" than the baseline;
    SweepError when there is none.
    """
    candidates = [r for r in rows if r.mean is not None]
    if significant_only:
        candidates = [r for r in candidates if r.verdict == "faster"]
    if not candidates:
        what = "significantly faster than the baseline" if significant_only else "with measured runs"
        raise SweepError(f"no configuration {what}: no best profile")
    best = min(candidates, key=lambda r: r.rank)
    if description is None:
        spec = metric_spec(best.metric)
        text = f"best of a sweep: {best.key}, {best.mean:.2f} {spec.unit or best.metric}".rstrip()
        if best.delta_pct is not None:
            text += f", {best.delta_pct:+.2f}% vs baseline ({best.verdict})"
        description = text
    try:
        return Profile(name, description, dict(best.options))
    except ProfileError as exc:
        raise SweepError(str(exc)) from None
