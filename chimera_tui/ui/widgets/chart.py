"""ChartWidget: our own chart API, so the charting library (textual-plotext today) can be swapped.

Screens call `per_run(...)` or `distribution(...)` with plain numbers; nothing outside this module
knows plotext exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.app import ComposeResult
from textual.widget import Widget
from textual_plotext import PlotextPlot

Series = Sequence[tuple[str, Sequence[float]]]


class ChartWidget(Widget):
    """A titled chart of per-run values or of their distribution, one series per session."""

    def __init__(
        self, title: str, unit: str = "", *, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.unit = unit
        self._plot = PlotextPlot()

    def compose(self) -> ComposeResult:
        yield self._plot

    def _start(self) -> object:
        plt: Any = self._plot.plt
        plt.clear_figure()
        plt.title(self.title)
        if self.unit:
            plt.ylabel(self.unit)
        return plt

    def per_run(self, series: Series, run_labels: Sequence[str] | None = None) -> None:
        """Each session's values run by run as dots joined by a line, on an axis that spans the data
        (not from zero, so a small spread shows); x ticks are the runs' labels (1…N by default)."""
        plt: Any = self._plot.plt
        self._start()
        present = [(label, list(values)) for label, values in series if values]
        if not present:
            plt.title(f"{self.title}: no data")
        else:
            runs = max(len(v) for _, v in present)
            xs = list(range(1, runs + 1))
            for label, values in present:
                plt.plot(xs[: len(values)], values, label=label, marker="dot")
            ticks = list(run_labels)[:runs] if run_labels else [str(x) for x in xs]
            plt.xticks(xs[: len(ticks)], ticks)
            plt.xlabel("run")
        self._plot.refresh()

    def distribution(self, series: Series) -> None:
        """A box plot per session: median, quartiles and range of its values."""
        plt: Any = self._plot.plt
        self._start()
        present = [(label, list(values)) for label, values in series if values]
        if not present:
            plt.title(f"{self.title}: no data")
        else:
            plt.box([label for label, _ in present], [v for _, v in present])
        self._plot.refresh()

    def curves(
        self, series: Sequence[tuple[str, Sequence[tuple[float, float | None, float | None]]]]
    ) -> None:
        """Each series as a line over the levels (x: the level's position, labelled with its load), with
        each point's 95% CI half-width as an error bar; points without a value are skipped."""
        plt: Any = self._plot.plt
        self._start()
        loads = sorted({x for _, pts in series for x, y, _ in pts if y is not None})
        if not loads:
            plt.title(f"{self.title}: no data")
        else:
            top = 0.0
            for label, pts in series:
                known = [(loads.index(x) + 1, y, half) for x, y, half in pts if y is not None]
                if not known:
                    continue
                xs, ys = [p[0] for p in known], [p[1] for p in known]
                top = max(top, *(y + (half or 0.0) for _, y, half in known))
                plt.plot(xs, ys, label=label, marker="dot")  # the error bars' grid: aligned
                if any(p[2] is not None for p in known):
                    plt.error(xs, ys, yerr=[p[2] or 0.0 for p in known])
            plt.xticks(list(range(1, len(loads) + 1)), [f"{x:g}" for x in loads])
            plt.xlim(0.5, len(loads) + 0.5)
            plt.ylim(0, top * 1.1 or 1.0)  # from zero: a flat curve looks flat
        self._plot.refresh()
