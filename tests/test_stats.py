"""Tests for chimera_tui.core.measure.stats, against hand-computed values."""

from __future__ import annotations

import itertools
import math
from dataclasses import fields

import pytest

from chimera_tui.core.measure.metrics import NUMERIC_METRICS, CallMetrics
from chimera_tui.core.measure.stats import (
    STAT_FIELDS,
    Summary,
    aggregate,
    format_mean_sd,
    summarize,
    t_critical_975,
)


def _all_stats_none(s: Summary) -> bool:
    return all(getattr(s, name) is None for name in STAT_FIELDS)


def test_one_to_four() -> None:
    s = summarize([1, 2, 3, 4])
    assert s.n == 4
    assert s.missing == 0
    assert s.mean == pytest.approx(2.5)
    assert s.median == pytest.approx(2.5)
    assert s.stddev == pytest.approx(1.2909944, abs=1e-7)
    assert s.cv_pct == pytest.approx(51.6398, abs=1e-4)
    assert s.min == 1.0
    assert s.max == 4.0
    half = 3.182 * 0.6454972
    assert s.ci95_low == pytest.approx(2.5 - half, abs=1e-3)
    assert s.ci95_high == pytest.approx(2.5 + half, abs=1e-3)
    # exactly the t value the module uses
    exact = t_critical_975(3) * 1.2909944487358056 / 2
    assert s.ci95_low == pytest.approx(2.5 - exact)
    assert s.ci95_high == pytest.approx(2.5 + exact)


def test_single_value() -> None:
    s = summarize([7.5])
    assert s.n == 1
    assert s.mean == 7.5
    assert s.median == 7.5
    assert s.min == s.max == s.p50 == s.p95 == s.p99 == 7.5
    assert s.stddev is None
    assert s.cv_pct is None
    assert s.ci95_low is None
    assert s.ci95_high is None


def test_empty() -> None:
    s = summarize([])
    assert s.n == 0
    assert s.missing == 0
    assert _all_stats_none(s)


def test_all_none() -> None:
    s = summarize([None, None, None])
    assert s.n == 0
    assert s.missing == 3
    assert _all_stats_none(s)


def test_mixed_none() -> None:
    s = summarize([None, 1, 2, None, 3, 4])
    assert s.n == 4
    assert s.missing == 2
    assert s.mean == pytest.approx(2.5)
    assert s.stddev == pytest.approx(1.2909944, abs=1e-7)


def test_nan_excluded() -> None:
    s = summarize([1.0, float("nan"), 3.0])
    assert s.n == 2
    assert s.missing == 1
    assert s.mean == pytest.approx(2.0)
    assert s.stddev == pytest.approx(math.sqrt(2))
    assert not math.isnan(s.max or 0.0)


def test_mean_zero_cv_none() -> None:
    s = summarize([-1, 1])
    assert s.mean == 0
    assert s.stddev == pytest.approx(math.sqrt(2))
    assert s.cv_pct is None
    assert s.ci95_low is not None


def test_negative_mean_cv_uses_abs() -> None:
    s = summarize([-1, -2, -3, -4])
    assert s.cv_pct == pytest.approx(51.6398, abs=1e-4)


def test_percentiles() -> None:
    s = summarize([10, 20, 30, 40, 50])
    assert s.p50 == pytest.approx(30)
    assert s.p95 == pytest.approx(48)
    assert s.p99 == pytest.approx(49.6)
    assert s.median == pytest.approx(30)


@pytest.mark.parametrize(
    ("df", "expected"),
    [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (5, 2.571), (9, 2.262), (10, 2.228),
     (15, 2.131), (20, 2.086), (25, 2.060), (29, 2.045), (30, 2.042)],
)  # fmt: skip
def test_t_table(df: int, expected: float) -> None:
    assert t_critical_975(df) == pytest.approx(expected, abs=5e-4)


@pytest.mark.parametrize(
    ("df", "expected"),
    [(31, 2.0395134), (40, 2.0210754), (60, 2.0002978), (120, 1.9799304), (10**6, 1.959966)],
)
def test_t_expansion(df: int, expected: float) -> None:
    assert t_critical_975(df) == pytest.approx(expected, abs=1e-4)


def test_t_expansion_rounded_and_monotone() -> None:
    assert round(t_critical_975(40), 4) == 2.0211
    assert round(t_critical_975(60), 4) == 2.0003
    assert round(t_critical_975(120), 4) == 1.9799
    assert t_critical_975(10**9) == pytest.approx(1.95996, abs=1e-5)
    values = [t_critical_975(df) for df in range(1, 500)]
    assert all(a > b for a, b in itertools.pairwise(values))


@pytest.mark.parametrize("df", [0, -1])
def test_t_bad_df(df: int) -> None:
    with pytest.raises(ValueError):
        t_critical_975(df)


def test_aggregate() -> None:
    calls = [
        CallMetrics(ttft_ms=100.0, e2e_ms=1000.0, token_count=10, load_ms=None, done_reason="stop"),
        CallMetrics(ttft_ms=110.0, e2e_ms=None, token_count=12, load_ms=None),
        CallMetrics(ttft_ms=120.0, e2e_ms=1200.0, token_count=14, load_ms=5.0),
    ]
    result = aggregate(calls)
    assert tuple(result) == NUMERIC_METRICS
    assert "done_reason" not in result
    assert result["ttft_ms"].n == 3
    assert result["ttft_ms"].missing == 0
    assert result["ttft_ms"].mean == pytest.approx(110.0)
    assert result["ttft_ms"].stddev == pytest.approx(10.0)
    assert result["e2e_ms"].n == 2
    assert result["e2e_ms"].missing == 1
    assert result["e2e_ms"].mean == pytest.approx(1100.0)
    assert result["token_count"].mean == pytest.approx(12.0)
    assert result["load_ms"].n == 1
    assert result["load_ms"].missing == 2
    assert result["load_ms"].stddev is None
    assert result["eval_ms"].n == 0
    assert result["eval_ms"].missing == 3
    assert _all_stats_none(result["eval_ms"])


def test_aggregate_empty() -> None:
    result = aggregate([])
    assert all(s.n == 0 and s.missing == 0 for s in result.values())


@pytest.mark.parametrize("values", [[1, 2, 3, 4], [5.0], [], [None, 2.0, None]])
def test_round_trip(values: list[float | None]) -> None:
    s = summarize(values)
    data = s.to_dict()
    assert set(data) == {f.name for f in fields(Summary)}
    assert Summary.from_dict(data) == s
    assert Summary.from_dict({**data, "unknown": 1}) == s


def test_summary_frozen() -> None:
    s = summarize([1, 2])
    with pytest.raises(AttributeError):
        s.mean = 3.0  # type: ignore[misc]


def test_stat_fields() -> None:
    assert set(STAT_FIELDS) == {f.name for f in fields(Summary)} - {"n", "missing"}
    assert STAT_FIELDS[0] == "mean"


def test_format_mean_sd() -> None:
    assert format_mean_sd(summarize([111.5, 114.5, 117.5])) == "114.5 ± 3.0"
    assert format_mean_sd(summarize([114.5])) == "114.5"
    assert format_mean_sd(summarize([])) == "—"
    assert format_mean_sd(summarize([None])) == "—"
    assert format_mean_sd(summarize([1, 2, 3, 4]), digits=3) == "2.500 ± 1.291"
    assert format_mean_sd(summarize([1, 2]), digits=0) == "2 ± 1"
