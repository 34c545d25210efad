"""Aggregates over a set of runs: mean, spread, percentiles and a Student-t 95% confidence interval.

Missing values (None or NaN) are never treated as 0: they are left out and counted in `missing`.
Every statistic that cannot be computed from the values present is None.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from chimera_tui.core.measure.metrics import NUMERIC_METRICS, CallMetrics

#: two-sided 95% Student-t critical values t_{0.975, df} for df = 1..30
_T975: tuple[float, ...] = (
    12.7062047, 4.3026527, 3.1824463, 2.7764451, 2.5705818,
    2.4469119, 2.3646243, 2.3060041, 2.2621572, 2.2281389,
    2.2009852, 2.1788128, 2.1603687, 2.1447867, 2.1314495,
    2.1199053, 2.1098156, 2.1009220, 2.0930241, 2.0859634,
    2.0796138, 2.0738731, 2.0686576, 2.0638986, 2.0595386,
    2.0555294, 2.0518305, 2.0484071, 2.0452296, 2.0422725,
)  # fmt: skip

#: z_{0.975}, the standard normal quantile the expansion for df > 30 starts from
_Z975 = 1.959963984540054

#: the statistics of a Summary, in display order
STAT_FIELDS: tuple[str, ...] = (
    "mean",
    "median",
    "stddev",
    "cv_pct",
    "min",
    "max",
    "p50",
    "p95",
    "p99",
    "ci95_low",
    "ci95_high",
)


def t_critical_975(df: int) -> float:
    """The two-sided 95% Student-t critical value for `df` degrees of freedom.

    Exact (to 7 decimals) for df <= 30; for larger df, the Cornish–Fisher expansion around the
    normal quantile, accurate to better than 1e-4.
    """
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    z3, z5, z7, z9 = z**3, z**5, z**7, z**9
    n = float(df)
    return (
        z
        + (z3 + z) / (4 * n)
        + (5 * z5 + 16 * z3 + 3 * z) / (96 * n**2)
        + (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * n**3)
        + (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / (92160 * n**4)
    )


@dataclass(frozen=True, slots=True)
class Summary:
    """Descriptive statistics of one metric over a set of runs; None where not computable."""

    n: int
    mean: float | None = None
    median: float | None = None
    stddev: float | None = None
    cv_pct: float | None = None
    min: float | None = None
    max: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    ci95_low: float | None = None
    ci95_high: float | None = None
    #: how many values were missing (None or NaN) and left out
    missing: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _is_missing(value: float | int | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def summarize(values: Iterable[float | int | None]) -> Summary:
    """Summarize `values`, leaving out (and counting) the None and NaN ones."""
    present: list[float] = []
    missing = 0
    for value in values:
        if _is_missing(value):
            missing += 1
        else:
            present.append(float(value))  # type: ignore[arg-type]
    n = len(present)
    if n == 0:
        return Summary(n=0, missing=missing)

    arr = np.asarray(present, dtype=np.float64)
    mean = float(arr.mean())
    p50, p95, p99 = (float(p) for p in np.percentile(arr, [50, 95, 99]))
    stddev = cv_pct = ci_low = ci_high = None
    if n >= 2:
        stddev = float(arr.std(ddof=1))
        if mean != 0:
            cv_pct = stddev / abs(mean) * 100
        half = t_critical_975(n - 1) * stddev / math.sqrt(n)
        ci_low, ci_high = mean - half, mean + half
    return Summary(
        n=n,
        mean=mean,
        median=float(np.median(arr)),
        stddev=stddev,
        cv_pct=cv_pct,
        min=float(arr.min()),
        max=float(arr.max()),
        p50=p50,
        p95=p95,
        p99=p99,
        ci95_low=ci_low,
        ci95_high=ci_high,
        missing=missing,
    )


def aggregate(calls: Sequence[CallMetrics]) -> dict[str, Summary]:
    """One Summary per numeric metric (NUMERIC_METRICS order) over `calls`."""
    return {name: summarize(getattr(call, name) for call in calls) for name in NUMERIC_METRICS}


def format_mean_sd(summary: Summary, digits: int = 1) -> str:
    """Format as `mean ± sd` with `digits` decimals; just the mean when n == 1, and "—" when n == 0."""
    if summary.n == 0 or summary.mean is None:
        return "—"
    mean = f"{summary.mean:.{digits}f}"
    if summary.stddev is None:
        return mean
    return f"{mean} ± {summary.stddev:.{digits}f}"


def pooled_gaps(offset_lists: Iterable[Sequence[float]]) -> Summary:
    """The session's inter-token gaps (ms), pooled: every gap between consecutive token arrivals of
    every run, in one distribution (its p99 is the p99 of all gaps, not a mean of per-call p99s)."""
    gaps: list[float] = []
    for offsets in offset_lists:
        if len(offsets) >= 2:
            gaps += np.diff(np.asarray(offsets, dtype=float)).tolist()
    return summarize(gaps)
