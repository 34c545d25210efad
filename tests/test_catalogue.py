"""The one metric catalogue: complete, consistent, and the source of every face's rows."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

from chimera_tui.core.measure import catalogue as cat
from chimera_tui.core.measure.compare import COMPARE_METRICS, ROUND_COMPARE_METRICS, MetricSpec, verdict
from chimera_tui.core.measure.concurrency import ROUND_STATS, RoundMetrics
from chimera_tui.core.measure.metrics import NUMERIC_METRICS
from chimera_tui.core.measure.stats import summarize
from chimera_tui.core.reports._common import REPORT_METRICS

UI = Path(__file__).parent.parent / "chimera_tui" / "ui"


def test_every_metric_has_one_entry_and_every_selection_names_known_metrics() -> None:
    keys = [m.key for m in cat.CATALOGUE]
    assert len(keys) == len(set(keys))
    round_fields = {f.name for f in fields(RoundMetrics)}
    assert set(keys) == set(NUMERIC_METRICS) | set(cat.ROUND_STAT_KEYS) | set(cat.ROUND_COMPARE_KEYS)
    assert set(cat.ROUND_STAT_KEYS) | set(cat.ROUND_COMPARE_KEYS) <= round_fields
    for m in cat.CATALOGUE:
        assert m.measured_by in ("client", "server", "nvml") and m.digits >= 0 and m.label and m.short


def test_faces_read_the_catalogue() -> None:
    assert sorted(m.key for m in REPORT_METRICS) == sorted(NUMERIC_METRICS)
    assert [s.key for s in COMPARE_METRICS] == list(cat.COMPARE_KEYS)
    assert [s.key for s in ROUND_COMPARE_METRICS] == list(cat.ROUND_COMPARE_KEYS)
    assert [key for key, _, _ in ROUND_STATS] == list(cat.ROUND_STAT_KEYS)
    ttft = MetricSpec.of("ttft_ms")
    assert (ttft.label, ttft.unit, ttft.better) == ("TTFT", "ms", "lower")
    assert MetricSpec.of("token_count").unit == "tok" and cat.metric("token_count").title == "tokens"


def test_verdict_words_follow_higher_is_better() -> None:
    low, high = summarize([10.0, 10.1, 9.9, 10.0]), summarize([20.0, 20.1, 19.9, 20.0])
    for m in cat.CATALOGUE:
        word = verdict(MetricSpec.of(m.key), low, high, p_value=0.001)
        expected = {True: "faster", False: "slower", None: "higher"}[m.higher_is_better]
        if m.measured_by == "nvml":  # energy is not a speed: higher / lower with better / worse
            expected = {True: "higher (better)", False: "higher (worse)", None: "higher"}[m.higher_is_better]
        assert word == expected, m.key


def test_measured_by_names_the_side_that_took_the_number() -> None:
    client = {k for k, m in cat.METRICS.items() if m.measured_by == "client" and k in NUMERIC_METRICS}
    assert {"ttft_ms", "e2e_ms", "client_decode_rate", "token_count", "itl_p99_ms"} <= client
    assert not {"server_decode_rate", "eval_count", "load_ms", "queue_gap_ms"} & client


def test_ui_never_imports_the_cli() -> None:
    for path in UI.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n == "chimera_tui.cli" or n.startswith("chimera_tui.cli.") for n in names), path
