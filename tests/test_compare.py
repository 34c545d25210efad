"""Comparing sessions: verdicts, permutation p-values, deltas, comparability warnings, JSON."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from chimera_tui.core.errors import SessionError
from chimera_tui.core.measure.compare import (
    COMPARE_METRICS,
    Comparison,
    MetricSpec,
    comparability_warnings,
    compare_sessions,
    comparison_to_dict,
    permutation_p_value,
    session_labels,
    values_for,
    verdict,
)
from chimera_tui.core.measure.metrics import CallMetrics
from chimera_tui.core.measure.stats import summarize
from chimera_tui.core.store.sessions import (
    RunRecord,
    Session,
    SessionWriter,
    compute_aggregates,
    load_session,
)

RATE = next(s for s in COMPARE_METRICS if s.key == "server_decode_rate")
TTFT = next(s for s in COMPARE_METRICS if s.key == "ttft_ms")
TOKENS = next(s for s in COMPARE_METRICS if s.key == "token_count")

MANIFEST: dict[str, Any] = {
    "mode": "single",
    "model": {
        "name": "gemma3:latest",
        "digest": "a2af6cc3eb7fa8be8504abaf9b04e88f17a119ec3f04a3addf55f92841195f5a",
    },
    "profile": {"name": "baseline_default", "options": {}},
    "endpoints": [{"url": "http://127.0.0.1:11434", "kind": "ollama", "version": "0.12.6"}],
    "workload": {
        "prompt_label": "short",
        "prompt": "Say hello.",
        "api": "generate",
        "cold": False,
        "num_predict": 128,
        "options_sent": {"num_predict": 128},
    },
    "environment": {
        "hostname": "bench-1",
        "gpus": [{"index": 0, "name": "NVIDIA GeForce RTX 4080 Laptop GPU"}],
    },
}


def make_session(
    rates: Sequence[float | None],
    ttfts: Sequence[float | None] | None = None,
    label: str | None = None,
    manifest: dict[str, Any] | None = None,
    extra_runs: list[RunRecord] | None = None,
) -> Session:
    """An in-memory session with one measured ok run per rate (plus `extra_runs`)."""
    ttfts = ttfts if ttfts is not None else [100.0] * len(rates)
    runs = [
        RunRecord(i, False, "ok", "", metrics=CallMetrics(server_decode_rate=r, ttft_ms=t, token_count=50))
        for i, (r, t) in enumerate(zip(rates, ttfts, strict=True))
    ]
    runs += extra_runs or []
    m = copy.deepcopy(MANIFEST if manifest is None else manifest)
    m["id"] = f"session-{label or 'x'}"
    if label:
        m["label"] = label
    return Session(Path("/nonexistent") / m["id"], m, runs, "complete", compute_aggregates(runs))


def with_changes(**changes: Any) -> dict[str, Any]:
    """MANIFEST with `section.key=value` changes (a value of ... deletes the key)."""
    m = copy.deepcopy(MANIFEST)
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = m
        for key in path:
            node = node[key]
        if value is ...:
            node.pop(last, None)
        else:
            node[last] = value
    return m


# -- known differences ----------------------------------------------------------------------------


def test_known_difference_is_faster_with_delta_and_p() -> None:
    a = make_session([99.0, 100.5, 100.0, 101.0, 99.5], ttfts=[200.0, 201.0, 199.0, 202.0, 198.0], label="A")
    b = make_session(
        [119.0, 120.5, 120.0, 121.0, 119.5], ttfts=[150.0, 151.0, 149.0, 152.0, 148.0], label="B"
    )
    c = compare_sessions([a, b])
    assert c.labels == ["A", "B"]
    assert c.session_ids == ["session-A", "session-B"]
    assert [mc.spec.key for mc in c.metrics] == [s.key for s in COMPARE_METRICS]

    rate = c.metric("server_decode_rate")
    base, other = rate.columns
    assert base.verdict == "baseline" and base.delta is None and base.p_value is None
    assert other.verdict == "faster"
    assert other.delta == pytest.approx(20.0)
    assert other.delta_pct == pytest.approx(20.0)
    # 5 vs 5: C(10, 5) = 252 splits, enumerated exactly; only the 2 extreme ones are as far apart
    assert other.p_value == pytest.approx(2 / 252)
    assert other.p_value is not None and other.p_value < 0.05

    ttft = c.metric("ttft_ms").columns[1]
    assert ttft.delta == pytest.approx(-50.0) and ttft.delta_pct == pytest.approx(-25.0)
    assert ttft.verdict == "faster"  # lower latency is better

    # reversed roles: the slower session, the later TTFT
    r = compare_sessions([b, a])
    assert r.metric("server_decode_rate").columns[1].verdict == "slower"
    assert r.metric("ttft_ms").columns[1].verdict == "slower"
    assert r.metric("server_decode_rate").columns[1].delta_pct == pytest.approx(-20 / 120 * 100)


def test_three_or_more_sessions_each_against_the_baseline() -> None:
    a = make_session([100.0, 101.0, 99.0, 100.0, 100.0], label="A")
    b = make_session([120.0, 121.0, 119.0, 120.0, 120.0], label="B")
    c = make_session([80.0, 81.0, 79.0, 80.0, 80.0], label="C")
    verdicts = [col.verdict for col in compare_sessions([a, b, c]).metric("server_decode_rate").columns]
    assert verdicts == ["baseline", "faster", "slower"]


def test_same_distribution_is_within_noise() -> None:
    a = make_session([100.0, 102.0, 98.0, 101.0, 99.0])
    b = make_session([101.0, 99.0, 100.0, 98.5, 101.5])
    col = compare_sessions([a, b]).metric("server_decode_rate").columns[1]
    assert col.verdict == "within noise"
    assert col.p_value is not None and col.p_value > 0.5


def test_one_run_is_too_few() -> None:
    a = make_session([100.0, 101.0, 99.0])
    b = make_session([150.0])
    col = compare_sessions([a, b]).metric("server_decode_rate").columns[1]
    assert col.verdict == "too few runs"
    assert col.p_value is None
    assert col.delta == pytest.approx(50.0)  # the delta of the means is still shown


def test_three_runs_cannot_reach_p_below_005() -> None:
    """3 vs 3 gives at best p = 0.1: even a huge gap stays "within noise" (conservative on purpose)."""
    col = compare_sessions([make_session([1.0, 1.1, 1.2]), make_session([9.0, 9.1, 9.2])]).metric(
        "server_decode_rate"
    )
    assert col.columns[1].p_value == pytest.approx(0.1)
    assert col.columns[1].verdict == "within noise"
    assert (
        compare_sessions([make_session([1.0, 1.1, 1.2]), make_session([9.0, 9.1, 9.2])], alpha=0.2)
        .metric("server_decode_rate")
        .columns[1]
        .verdict
        == "faster"
    )


# -- verdict rules --------------------------------------------------------------------------------


def test_verdict_rules() -> None:
    low, high = summarize([10.0, 11.0, 12.0, 10.5, 11.5]), summarize([20.0, 21.0, 22.0, 20.5, 21.5])
    assert verdict(RATE, low, high, 0.01) == "faster"
    assert verdict(RATE, high, low, 0.01) == "slower"
    assert verdict(TTFT, low, high, 0.01) == "slower"
    assert verdict(TTFT, high, low, 0.01) == "faster"
    assert verdict(TOKENS, low, high, 0.01) == "higher"
    assert verdict(TOKENS, high, low, 0.01) == "lower"
    # not significant, or no test: within noise even with disjoint CIs
    assert verdict(RATE, low, high, 0.05) == "within noise"
    assert verdict(RATE, low, high, None) == "within noise"
    assert verdict(RATE, low, high, 0.03, alpha=0.01) == "within noise"
    # overlapping CIs: within noise even with a tiny p
    wide = summarize([5.0, 30.0, 12.0])
    assert verdict(RATE, low, wide, 0.001) == "within noise"
    # too few
    assert verdict(RATE, low, summarize([30.0]), 0.001) == "too few runs"
    assert verdict(RATE, summarize([]), high, None) == "too few runs"


def test_neutral_spec_and_custom_spec() -> None:
    spec = MetricSpec("x", "x", "u", "neutral")
    assert verdict(spec, summarize([1, 1.1, 0.9, 1, 1]), summarize([5, 5.1, 4.9, 5, 5]), 0.001) == "higher"


# -- permutation test -----------------------------------------------------------------------------


def test_exact_p_value_by_hand() -> None:
    # 20 splits of {1..6} into 3+3; only {1,2,3}|{4,5,6} and {4,5,6}|{1,2,3} reach |diff| = 3
    assert permutation_p_value([1, 2, 3], [4, 5, 6]) == pytest.approx(2 / 20)
    # [1,2,4] vs [3,5,6]: observed |diff| = 7/3; splits at least as extreme: {1,2,3},{1,2,4} and mirrors
    assert permutation_p_value([1, 2, 4], [3, 5, 6]) == pytest.approx(4 / 20)
    # identical samples: every split is as extreme
    assert permutation_p_value([5, 5, 5], [5, 5, 5]) == 1.0
    # unequal sizes: 2 vs 3 = 10 splits
    assert permutation_p_value([1, 2], [10, 11, 12]) == pytest.approx(1 / 10)


def test_monte_carlo_is_seeded_and_close_to_exact() -> None:
    a = [100.0, 101.0, 99.5, 100.5, 99.0, 100.2, 101.3, 98.9]
    b = [100.8, 101.9, 100.1, 101.4, 100.0, 101.7, 102.0, 99.9]
    exact = permutation_p_value(a, b, resamples=20_000)  # C(16, 8) = 12,870: enumerated
    mc1 = permutation_p_value(a, b, resamples=5_000, seed=7)
    mc2 = permutation_p_value(a, b, resamples=5_000, seed=7)
    mc3 = permutation_p_value(a, b, resamples=5_000, seed=8)
    assert exact is not None and mc1 is not None and mc3 is not None
    assert mc1 == mc2
    assert mc1 != mc3
    assert mc1 == pytest.approx(exact, abs=0.02)
    assert 0 < mc1 <= 1


def test_monte_carlo_never_gives_zero() -> None:
    p = permutation_p_value(list(range(20)), [x + 100.0 for x in range(20)], resamples=999)
    assert p == pytest.approx(1 / 1000)


def test_p_value_needs_two_values_each() -> None:
    assert permutation_p_value([1.0], [2.0, 3.0]) is None
    assert permutation_p_value([], []) is None
    assert permutation_p_value([1.0, 2.0], [3.0]) is None


# -- values and None handling ---------------------------------------------------------------------


def test_values_for_uses_measured_ok_runs_and_drops_missing() -> None:
    extra = [
        RunRecord(10, True, "ok", "", metrics=CallMetrics(server_decode_rate=999.0)),  # warm-up
        RunRecord(11, False, "failed", "", metrics=CallMetrics(server_decode_rate=1.0)),
        RunRecord(12, False, "ok", "", metrics=CallMetrics(server_decode_rate=float("nan"))),
    ]
    s = make_session([100.0, None, 102.0], extra_runs=extra)
    assert values_for(s, "server_decode_rate") == [100.0, 102.0]
    assert values_for(s, "client_decode_rate") == []


def test_missing_metric_everywhere_is_too_few_runs_and_json_safe() -> None:
    a, b = make_session([100.0, None, 101.0]), make_session([None, None, None])
    c = compare_sessions([a, b])
    base, col = c.metric("server_decode_rate").columns
    assert base.summary.n == 2 and base.summary.missing == 1
    assert col.summary.n == 0 and col.summary.missing == 3
    assert col.verdict == "too few runs" and col.delta is None and col.delta_pct is None
    client = c.metric("client_decode_rate").columns[1]
    assert client.verdict == "too few runs" and client.summary.mean is None
    json.dumps(comparison_to_dict(c), allow_nan=False)


def test_delta_pct_none_when_baseline_mean_is_zero() -> None:
    a = make_session([0.0, 0.0, 0.0])
    b = make_session([1.0, 1.0, 1.0])
    col = compare_sessions([a, b]).metric("server_decode_rate").columns[1]
    assert col.delta == 1.0 and col.delta_pct is None


def test_compare_needs_two_sessions_and_metric_lookup() -> None:
    with pytest.raises(SessionError):
        compare_sessions([make_session([1.0, 2.0])])
    c = compare_sessions([make_session([1.0, 2.0]), make_session([1.0, 2.0])])
    with pytest.raises(KeyError):
        c.metric("nope")
    assert "permutation" in c.method and "seed 0" in c.method and "0.05" in c.method


def test_labels_are_label_else_model_profile_mode_and_unique() -> None:
    a, b, c = make_session([1.0], label="run"), make_session([1.0], label="run"), make_session([1.0])
    assert session_labels([a, b, c]) == ["run", "run #2", "gemma3:latest · baseline_default"]


# -- comparability --------------------------------------------------------------------------------

RATES = [100.0, 101.0, 99.0]


def pair_warnings(other: dict[str, Any], base: dict[str, Any] | None = None) -> list[str]:
    a = make_session(RATES, label="A", manifest=base)
    b = make_session(RATES, label="B", manifest=other)
    return comparability_warnings([a, b])


def test_identical_manifests_warn_nothing() -> None:
    assert pair_warnings(MANIFEST) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"workload__prompt": "Write a report.", "workload__prompt_label": "tr_report"},
            "not comparable: prompts differ (A: short, B: tr_report)",
        ),
        (
            {"workload__prompt": "Say goodbye."},
            "not comparable: prompts differ (A: Say hello., B: Say goodbye.)",
        ),
        (
            {"workload__num_predict": 256, "workload__options_sent": {"num_predict": 256}},
            "not comparable: num_predict values differ (A: 128, B: 256)",
        ),
        (
            {"workload__num_predict": ..., "workload__options_sent": {}},
            "not comparable: num_predict values differ (A: 128, B: model default)",
        ),
        (
            {"endpoints": [{"url": "http://x", "version": "0.13.0"}]},
            "not comparable: Ollama versions differ (A: 0.12.6, B: 0.13.0)",
        ),
        (
            {"environment__gpus": [{"name": "NVIDIA H100 80GB HBM3"}]},
            "not comparable: GPUs differ (A: NVIDIA GeForce RTX 4080 Laptop GPU, B: NVIDIA H100 80GB HBM3)",
        ),
        ({"environment__hostname": "bench-2"}, "not comparable: hosts differ (A: bench-1, B: bench-2)"),
        ({"workload__cold": True}, "not comparable: warm/cold modes differ (A: warm, B: cold)"),
        ({"workload__api": "chat"}, "not comparable: APIs differ (A: generate, B: chat)"),
        (
            {"model__digest": "0123456789abcdef0123"},
            "not comparable: model digests of gemma3:latest differ (A: a2af6cc3eb7f, B: 0123456789ab)",
        ),
    ],
)
def test_each_difference_is_flagged(changes: dict[str, Any], expected: str) -> None:
    assert pair_warnings(with_changes(**changes)) == [expected]


def test_num_predict_from_options_when_workload_lacks_it() -> None:
    base = with_changes(workload__num_predict=...)
    other = with_changes(workload__num_predict=..., workload__options_sent={})
    other["profile"]["options"] = {"num_predict": 64}
    assert pair_warnings(other, base) == ["not comparable: num_predict values differ (A: 128, B: 64)"]


def test_different_model_names_do_not_compare_digests() -> None:
    assert pair_warnings(with_changes(model={"name": "llama3.2:3b", "digest": "ffff"})) == []


def test_missing_fields_are_unknown_not_differences() -> None:
    bare: dict[str, Any] = {"mode": "single"}
    warnings = pair_warnings(bare)
    assert not any(w.startswith("not comparable") for w in warnings)
    assert warnings == [
        "not checked (A vs B: unknown on at least one side): prompts, num_predict values, "
        "Ollama versions, hosts, APIs, GPUs, warm/cold modes"
    ]
    # odd values where lists or numbers are expected must not crash either
    odd: dict[str, Any] = {
        "workload": {"prompt": 3, "cold": "yes"},
        "endpoints": [{"version": 7}],
        "environment": {"gpus": "none"},
        "model": {"name": ["x"]},
    }
    assert not any(w.startswith("not comparable") for w in pair_warnings(odd))
    assert not any(w.startswith("not comparable") for w in pair_warnings(MANIFEST, base=odd))
    # a table that is not a table is refused when the session is built, in one line
    for bad in ({"workload": "x"}, {"endpoints": {}}, {"model": 3}):
        with pytest.raises(SessionError, match="must be"):
            pair_warnings(bad)


def test_no_gpu_list_is_unknown_and_same_name_without_digest_is_unknown() -> None:
    other = with_changes(environment__gpus=[], model__digest=...)
    assert pair_warnings(other) == [
        "not checked (A vs B: unknown on at least one side): GPUs, model digests of gemma3:latest"
    ]


def test_too_few_measured_runs_is_warned() -> None:
    a = make_session([100.0], label="A")
    b = make_session(RATES, label="B")
    assert comparability_warnings([a, b]) == [
        "too few runs: A has 1 measured run (statistics need at least 2)"
    ]
    c = make_session([], label="C")
    assert "too few runs: C has 0 measured runs (statistics need at least 2)" in comparability_warnings(
        [b, c]
    )
    assert comparability_warnings([]) == []


def test_sessions_written_to_disk_compare(tmp_path: Path) -> None:
    """Real sessions: manifests round-tripped through TOML (None dropped) still compare cleanly."""
    sessions = []
    for rate in (100.0, 120.0):
        manifest = {k: v for k, v in copy.deepcopy(MANIFEST).items() if k != "id"}
        w = SessionWriter(tmp_path, manifest)
        for i, jitter in enumerate((-1.0, 0.5, 0.0, 1.0, -0.5)):
            rec = RunRecord(i, False, "ok", "", metrics=CallMetrics(server_decode_rate=rate + jitter))
            w.start_run(rec)
            w.finish_run(rec)
        w.finish("complete")
        sessions.append(load_session(w.path))
    c = compare_sessions(sessions)
    assert c.warnings == []
    assert c.labels == ["gemma3:latest · baseline_default", "gemma3:latest · baseline_default #2"]
    assert c.metric("server_decode_rate").columns[1].verdict == "faster"


# -- JSON -----------------------------------------------------------------------------------------


def test_comparison_to_dict_is_json_ready() -> None:
    a = make_session([99.0, 100.5, 100.0, 101.0, 99.5], label="A")
    b = make_session(
        [119.0, 120.5, 120.0, 121.0, 119.5], label="B", manifest=with_changes(workload__cold=True)
    )
    c = compare_sessions([a, b])
    d = comparison_to_dict(c)
    text = json.dumps(d, allow_nan=False)
    back = json.loads(text)
    assert back["labels"] == ["A", "B"]
    assert back["warnings"] == c.warnings and back["method"] == c.method
    rate = next(m for m in back["metrics"] if m["key"] == "server_decode_rate")
    assert rate["better"] == "higher" and rate["unit"] == "tok/s"
    base, other = rate["columns"]
    assert base["verdict"] == "baseline" and base["delta"] is None and base["session_id"] == "session-A"
    assert other["verdict"] == "faster" and other["delta"] == pytest.approx(20.0)
    assert other["summary"]["n"] == 5 and other["summary"]["mean"] == pytest.approx(120.0)


def test_comparison_to_dict_replaces_non_finite_numbers() -> None:
    c = compare_sessions([make_session([1.0, 2.0]), make_session([1.0, 2.0])])
    col = c.metric("server_decode_rate").columns[1]
    broken = Comparison(
        c.labels,
        c.session_ids,
        [
            type(c.metrics[0])(
                c.metrics[0].spec,
                [c.metrics[0].columns[0], type(col)(col.summary, math.inf, math.nan, None, "x")],
            )
        ],
        [],
        "m",
    )
    cols = comparison_to_dict(broken)["metrics"][0]["columns"]
    assert cols[1]["delta"] is None and cols[1]["delta_pct"] is None
