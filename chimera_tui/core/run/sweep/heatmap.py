"""Heat maps: a metric over two options of a ranked sweep, one map per value of a third."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chimera_tui.core.run.sweep.ranking import RankRow
from chimera_tui.core.store.profiles import format_value


@dataclass(frozen=True)
class HeatMap:
    """A metric over two options: ``cells[y][x]`` is the mean over the matching configurations, or None."""

    x_option: str
    y_option: str
    metric: str
    x_values: list[Any]
    y_values: list[Any]
    cells: list[list[float | None]]
    #: how many configurations each cell averages (more than 1 when an option outside x, y, fixed varies)
    counts: list[list[int]]
    fixed: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        fixed = ", ".join(f"{k}={format_value(v)}" for k, v in self.fixed.items())
        return f"{self.metric} by {self.y_option} × {self.x_option}" + (f" ({fixed})" if fixed else "")


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, int | float):
        return (1, value)
    return (2, str(value))


def heatmap(
    rows: Sequence[RankRow],
    x_option: str,
    y_option: str,
    metric: str = "server_decode_rate",
    fixed: Mapping[str, Any] | None = None,
) -> HeatMap:
    """The mean of ``metric`` for each (y, x) pair of option values over the non-baseline rows whose
    options match ``fixed`` (e.g. num_gpu × num_ctx with ``fixed={"temperature": 0.6}``)."""
    fixed = dict(fixed or {})
    chosen = [
        r
        for r in rows
        if not r.is_baseline
        and x_option in r.options
        and y_option in r.options
        and all(r.options.get(k) == v for k, v in fixed.items())
    ]
    xs = sorted({_freeze(r.options[x_option]) for r in chosen}, key=_sort_key)
    ys = sorted({_freeze(r.options[y_option]) for r in chosen}, key=_sort_key)
    sums = [[0.0] * len(xs) for _ in ys]
    counts = [[0] * len(xs) for _ in ys]
    for r in chosen:
        summary = r.aggregates.get(metric) or (r.summary if metric == r.metric else None)
        if metric == "ttft_ms" and summary is None:
            summary = r.ttft
        if summary is None or summary.mean is None:
            continue
        yi, xi = ys.index(_freeze(r.options[y_option])), xs.index(_freeze(r.options[x_option]))
        sums[yi][xi] += summary.mean
        counts[yi][xi] += 1
    cells: list[list[float | None]] = [
        [sums[y][x] / counts[y][x] if counts[y][x] else None for x in range(len(xs))] for y in range(len(ys))
    ]
    return HeatMap(
        x_option, y_option, metric, [_thaw(v) for v in xs], [_thaw(v) for v in ys], cells, counts, fixed
    )


def heatmaps_by(rows: Sequence[RankRow], x: str, y: str, metric: str = "server_decode_rate") -> list[HeatMap]:
    """Heat maps of ``metric`` over options ``x`` and ``y``: one per value of the other option that varies
    (e.g. one per temperature); a single map (cells averaged) when none or several others vary."""
    others: dict[str, set[Any]] = {}
    for row in rows:
        if row.is_baseline:
            continue
        for key, value in row.options.items():
            if key not in (x, y):
                others.setdefault(key, set()).add(_freeze(value))
    varying = {k: sorted(v, key=_sort_key) for k, v in others.items() if len(v) > 1}
    if len(varying) != 1:
        return [heatmap(rows, x, y, metric)]
    ((name, values),) = varying.items()
    return [heatmap(rows, x, y, metric, {name: _thaw(v)}) for v in values]


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _thaw(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
