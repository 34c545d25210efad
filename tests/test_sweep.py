"""Parameter sweeps: definitions, grid expansion, ordering, running/resuming against the simulator,
ranking and success-rate math, heat maps, the best profile, and the exports."""

from __future__ import annotations

import csv
import io
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from chimera_tui.core.backends.ollama import Timeouts
from chimera_tui.core.measure.metrics import CallMetrics
from chimera_tui.core.reports.sweep_report import (
    SWEEP_CSV_COLUMNS,
    _averaging_note,
    sweep_csv,
    sweep_html,
    sweep_json,
    sweep_markdown,
)
from chimera_tui.core.run.events import RunStarted, SessionFinished, TokenBatch
from chimera_tui.core.run.sweep.best import best_profile
from chimera_tui.core.run.sweep.definition import (
    SweepDefinition,
    SweepError,
    builtin_sweeps_dir,
    default_tr111_sweep,
    find_sweep,
    load_sweep,
    sweep_to_toml,
)
from chimera_tui.core.run.sweep.events import ConfigFinished, ConfigStarted, SweepFinished, SweepStarted
from chimera_tui.core.run.sweep.grid import config_key, expand_grid, plan
from chimera_tui.core.run.sweep.heatmap import heatmap
from chimera_tui.core.run.sweep.ranking import rank, success_rate
from chimera_tui.core.run.sweep.record import (
    RECORD_JSON,
    RECORD_TOML,
    SWEEPS_DIRNAME,
    ConfigRecord,
    SweepRecord,
    list_sweeps,
    load_sweep_record,
    load_sweep_sessions,
    resolve_sweep,
)
from chimera_tui.core.run.sweep.runner import SweepRunner, resume_sweep
from chimera_tui.core.store.profiles import NAME_PATTERN, Profile, ProfileStore
from chimera_tui.core.store.sessions import (
    RunRecord,
    Session,
    compute_aggregates,
    load_session,
    read_manifest,
)
from tests.helpers import fast_sim

BASE = Profile("baseline_default", "Ollama defaults", {}, None, True)
TIMEOUTS = Timeouts(connect_s=2, first_byte_s=10, idle_s=5)


def small(**overrides: Any) -> SweepDefinition:
    """A 2×2 grid + baseline, 2 runs, no warm-up, 5 tokens: fast against the simulator."""
    fields: dict[str, Any] = {
        "name": "small",
        "grid": {"num_ctx": [256, 512], "temperature": [0.6, 0.8]},
        "runs": 2,
        "warmup": 0,
        "num_predict": 5,
    }
    fields.update(overrides)
    return SweepDefinition(**fields)


def runner(defn: SweepDefinition, root: Path, sim: Any, events: list[Any] | None = None) -> SweepRunner:
    emit = events.append if events is not None else None
    return SweepRunner(
        defn,
        root,
        "http://sim",
        "gemma3:latest",
        emit,
        sim.transport(),
        timeouts=TIMEOUTS,
        base=BASE,
        ps_wait_s=5,
    )


def session_dirs(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if p.is_dir() and p.name != SWEEPS_DIRNAME]


# -- definitions -----------------------------------------------------------------------------------
def test_tr111_file_matches_the_builtin_definition_and_expands_to_19_configs() -> None:
    defn = load_sweep(builtin_sweeps_dir() / "tr111.toml")
    assert defn == default_tr111_sweep()
    assert (defn.runs, defn.warmup, defn.order, defn.config_count) == (3, 1, "sequential", 19)
    configs = expand_grid(defn, BASE)
    assert len(configs) == 19 and len({c.key for c in configs}) == 19
    assert configs[0].key == "baseline" and configs[0].is_baseline and configs[0].options == {}
    assert configs[0].profile.name == "baseline_default"
    assert configs[1].key == "num_gpu60_num_ctx256_temperature0p6"
    assert configs[2].key == "num_gpu60_num_ctx256_temperature0p8"  # the last grid key varies fastest
    assert configs[-1].key == "num_gpu120_num_ctx1024_temperature0p8"
    assert configs[1].options == {"num_gpu": 60, "num_ctx": 256, "temperature": 0.6}
    assert configs[1].profile.name == configs[1].key and not configs[1].is_baseline
    assert sum(1 for c in configs if c.options.get("num_gpu") == 80) == 6
    # the default store resolves the built-in baseline profile
    assert [c.key for c in expand_grid(defn)] == [c.key for c in configs]


def test_grid_points_are_laid_over_the_base_profile() -> None:
    base = Profile("tuned", "", {"num_batch": 256, "num_ctx": 4096, "seed": 7})
    configs = expand_grid(small(base_profile="tuned"), base)
    assert configs[0].options == {"num_batch": 256, "num_ctx": 4096, "seed": 7}
    assert configs[1].options == {"num_batch": 256, "num_ctx": 256, "seed": 7, "temperature": 0.6}
    assert configs[1].point == {"num_ctx": 256, "temperature": 0.6}
    assert "over profile 'tuned'" in configs[1].profile.description


def test_config_keys_are_stable_profile_names() -> None:
    assert config_key({}) == "baseline"
    assert (
        config_key({"num_gpu": -1, "top_p": 0.95, "use_mmap": False}) == "num_gpum1_top_p0p95_use_mmapfalse"
    )
    long = config_key({"stop": ["a" * 80, "<b>"], "temperature": 1.5, "repeat_penalty": 1.1})
    assert len(long) <= 64 and NAME_PATTERN.match(long)
    assert long == config_key({"stop": ["a" * 80, "<b>"], "temperature": 1.5, "repeat_penalty": 1.1})


def test_toml_round_trip(tmp_path: Path) -> None:
    defn = small(order="shuffled", seed=42, cooldown_s=0.5, description="two by two", prompt="Hi.")
    path = tmp_path / "s.toml"
    path.write_text(sweep_to_toml(defn))
    assert load_sweep(path) == defn


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('name = "x"\n[grid]\nnum_ctxx = [1]\n', "unknown option 'num_ctxx' (did you mean 'num_ctx'?)"),
        ('name = "x"\n[grid]\nnum_ctx = ["big"]\n', "option 'num_ctx' must be an integer >= 1, got 'big'"),
        ('name = "x"\n[grid]\nnum_ctx = []\n', "'num_ctx' must be a non-empty list"),
        ('name = "x"\n[grid]\nnum_ctx = 512\n', "'num_ctx' must be a non-empty list"),
        ('name = "x"\n[grid]\nnum_ctx = [512, 512]\n', "lists 512 twice"),
        ('name = "x"\nnum_ctx = [512]\n[grid]\ntop_k = [1]\n', "option 'num_ctx' must be under [grid]"),
        ('name = "x"\nrepeats = 3\n[grid]\ntop_k = [1]\n', "unknown key 'repeats'"),
        ('name = "x"\norder = "random"\n[grid]\ntop_k = [1]\n', "'order' must be 'sequential' or"),
        ('name = "x"\nruns = 0\n[grid]\ntop_k = [1]\n', "'runs' must be an integer >= 1"),
        ('name = "x"\nprompt_preset = "nope"\n[grid]\ntop_k = [1]\n', "unknown prompt_preset 'nope'"),
        ('name = "x"\n', "missing required table [grid]"),
        ('name = "x"\n[grid]\n', "[grid] must list at least one option"),
        ("[grid]\ntop_k = [1]\n", "missing required key 'name'"),
        ('name = "x"\n[grid\n', "invalid TOML"),
    ],
)
def test_toml_errors_name_the_file_and_the_key(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SweepError) as info:
        load_sweep(path)
    message = str(info.value)
    assert str(path) in message and fragment in message and "\n" not in message


# -- plans -----------------------------------------------------------------------------------------
def test_sequential_plan_keeps_each_configuration_together() -> None:
    defn = small(warmup=1)
    configs = expand_grid(defn, BASE)
    calls = plan(defn, configs)
    assert len(calls) == 5 * 3 and [c.position for c in calls] == list(range(15))
    assert [c.key for c in calls[:3]] == ["baseline"] * 3
    assert [(c.warmup, c.run) for c in calls[:3]] == [(True, 1), (False, 1), (False, 2)]
    assert [c.key for c in calls[::3]] == [c.key for c in configs]


def test_shuffled_plan_is_reproducible_from_its_seed() -> None:
    configs = expand_grid(small(), BASE)
    orders = {
        seed: [c.key for c in plan(small(order="shuffled", seed=seed), configs)][::2] for seed in range(8)
    }
    assert orders[3] == [c.key for c in plan(small(order="shuffled", seed=3), configs)][::2]
    assert len({tuple(o) for o in orders.values()}) > 1  # seeds shuffle differently
    assert all(sorted(o) == sorted(c.key for c in configs) for o in orders.values())
    calls = plan(small(order="shuffled", seed=3), configs)
    assert all(calls[i].key == calls[i + 1].key for i in range(0, len(calls), 2))  # runs stay together
    with pytest.raises(SweepError, match="needs a seed"):
        plan(small(order="shuffled"), configs)


def test_a_shuffled_sweep_records_the_seed_it_picked(tmp_path: Path) -> None:
    run = SweepRunner(small(order="shuffled"), tmp_path, base=BASE)
    assert isinstance(run.defn.seed, int)
    assert find_sweep("tr111") == default_tr111_sweep()
    with pytest.raises(SweepError, match="unknown sweep 'nope'"):
        find_sweep("nope")


def test_interleaved_plan_visits_every_configuration_each_step() -> None:
    defn = small(order="interleaved", warmup=1, runs=3)
    configs = expand_grid(defn, BASE)
    keys = [c.key for c in configs]
    calls = plan(defn, configs)
    measured = [c for c in calls if not c.warmup]
    assert [c.key for c in measured] == keys * 3
    assert [c.run for c in measured] == [1] * 5 + [2] * 5 + [3] * 5
    warmups = [c for c in calls if c.warmup]
    assert len(warmups) == 5 and all(c.visit == 1 for c in warmups)
    assert calls[0].warmup and calls[1].key == keys[0] and not calls[1].warmup


# -- running against the simulator -----------------------------------------------------------------
@pytest.mark.anyio
async def test_cancel_after_two_configurations_then_resume_runs_only_the_rest(tmp_path: Path) -> None:
    sim = fast_sim()
    events: list[Any] = []

    def cancel_after_two(event: Any) -> None:
        events.append(event)
        if isinstance(event, ConfigFinished) and event.index == 1:
            run.cancel()

    run = SweepRunner(
        small(), tmp_path, "http://sim", "gemma3:latest", cancel_after_two, sim.transport(), timeouts=TIMEOUTS
    )
    record = await run.run()
    assert record.status == "cancelled"
    assert record.counts() == {"pending": 3, "done": 2, "partial": 0, "failed": 0}
    assert len(session_dirs(tmp_path)) == 2
    on_disk = load_sweep_record(record.path)
    assert on_disk.status == "cancelled" and [c.status for c in on_disk.configs].count("done") == 2
    assert (record.path / RECORD_TOML).is_file() and (record.path / RECORD_JSON).is_file()
    kinds = [type(e) for e in events if not isinstance(e, TokenBatch)]
    assert kinds[1] is SweepStarted and kinds[-1] is SweepFinished
    assert kinds.count(ConfigStarted) == 2 and RunStarted in kinds and SessionFinished in kinds
    done_before = {c.key: list(c.session_ids) for c in on_disk.configs if c.status == "done"}

    resumed: list[Any] = []
    final = await resume_sweep(record.path, resumed.append, sim.transport(), timeouts=TIMEOUTS)
    assert final.status == "complete" and final.id == record.id
    assert [e.pending for e in resumed if isinstance(e, SweepStarted)] == [3]
    assert [e.key for e in resumed if isinstance(e, ConfigStarted)] == final.run_order[2:]
    assert len(session_dirs(tmp_path)) == 5
    reloaded = load_sweep_record(record.path)
    assert all(c.status == "done" and len(c.session_ids) == 1 for c in reloaded.configs)
    for key, ids in done_before.items():
        assert reloaded.config(key).session_ids == ids  # nothing ran twice
    with pytest.raises(SweepError, match="already complete"):
        SweepRunner.from_record(record.path)

    sessions, problems = load_sweep_sessions(reloaded)
    assert problems == [] and list(sessions) == reloaded.run_order
    rows = rank(sessions, record=reloaded)
    assert len(rows) == 5 and all(r.n == 2 for r in rows)
    assert next(r for r in rows if r.is_baseline).verdict == "baseline"
    # every session is tagged with its sweep and configuration
    session = sessions["num_ctx512_temperature0p8"]
    manifest = read_manifest(session.path)
    assert manifest.sweep.id == record.id and manifest.sweep.key == "num_ctx512_temperature0p8"
    assert manifest.label == "small · num_ctx512_temperature0p8"
    assert manifest.profile.options == {"num_ctx": 512, "temperature": 0.8}
    assert list_sweeps(tmp_path)[0][0].id == record.id
    assert resolve_sweep(tmp_path, record.id[:17]) == record.path == resolve_sweep(tmp_path, str(record.path))


@pytest.mark.anyio
async def test_reload_time_is_recorded_per_configuration(tmp_path: Path) -> None:
    sim = fast_sim(load_s=0.2)
    record = await runner(small(include_baseline=False), tmp_path, sim).run()
    reload = {c.key: c.reload_load_ms[0] for c in record.configs}
    assert all(v is not None for v in reload.values())
    # num_ctx changes (and the first load) make the simulator reload: its load_s shows
    assert reload["num_ctx256_temperature0p6"] >= 190 and reload["num_ctx512_temperature0p6"] >= 190
    # a temperature change alone does not reload, and the preload absorbed each reload (no call of its
    # own reloaded): the simulator loaded exactly twice, for num_ctx 256 and 512. A count, not a time.
    assert sim.loads == 2
    assert record.config("num_ctx512_temperature0p6").reload_reason == ["num_ctx 256→512"]
    assert record.config("num_ctx256_temperature0p8").reload_reason == []
    assert all(c.first_call_load_ms[0] is not None for c in record.configs)
    rows = rank(load_sweep_sessions(record)[0], baseline_key=None, record=record)
    by_key = {r.key: r for r in rows}
    assert by_key["num_ctx512_temperature0p6"].reload_load_ms == reload["num_ctx512_temperature0p6"]
    assert "no warm-up: first call follows a reload" in by_key["num_ctx512_temperature0p6"].notes
    assert by_key["num_ctx512_temperature0p8"].notes == ()
    assert all(r.verdict == "no baseline" for r in rows)


@pytest.mark.anyio
async def test_cold_sweep_records_the_first_calls_load(tmp_path: Path) -> None:
    sim = fast_sim(load_s=0.2)
    defn = small(cold=True, runs=1, grid={"num_ctx": [256]}, include_baseline=False)
    record = await runner(defn, tmp_path, sim).run()
    (config,) = record.configs
    assert config.reload_load_ms == config.first_call_load_ms and config.reload_load_ms[0] >= 190


@pytest.mark.anyio
async def test_interleaved_sweep_pools_one_session_per_visit(tmp_path: Path) -> None:
    sim = fast_sim()
    events: list[Any] = []
    defn = small(order="interleaved", warmup=1, grid={"num_ctx": [256, 512]})
    record = await runner(defn, tmp_path, sim, events).run()
    assert record.status == "complete"
    keys = ["baseline", "num_ctx256", "num_ctx512"]
    assert [e.key for e in events if isinstance(e, ConfigStarted)] == keys * 2
    assert [(e.visit, e.visits) for e in events if isinstance(e, ConfigStarted)][3] == (2, 2)
    assert len(session_dirs(tmp_path)) == 6
    for c in record.configs:
        assert c.visits_done == 2 and len(c.session_ids) == 2 and len(c.reload_load_ms) == 2
        first, second = (load_session(tmp_path / sid) for sid in c.session_ids)
        assert first.counts["warmup"] == 1 and second.counts["warmup"] == 0
    sessions, _ = load_sweep_sessions(record)
    assert all(len(s.runs) == 3 for s in sessions.values())  # 1 warm-up + 2 measured, pooled
    rows = rank(sessions, record=record)
    assert all(r.n == 2 for r in rows)
    assert "interleaved: every measured call follows a reload" in rows[0].notes


def test_a_stale_running_record_reads_as_incomplete(tmp_path: Path) -> None:
    folder = tmp_path / SWEEPS_DIRNAME / "x"
    folder.mkdir(parents=True)
    record = SweepRecord(
        "x",
        folder,
        small(),
        "http://sim",
        "m",
        "p",
        "custom",
        [ConfigRecord("baseline", {}, True)],
        ["baseline"],
    )
    record.writer = {"pid": 2**22 + 12345, "host": socket.gethostname()}
    record.save()
    assert load_sweep_record(folder).status == "incomplete"
    (folder / RECORD_JSON).write_text("{not json")
    with pytest.raises(SweepError, match=r"corrupt sweep\.json"):
        load_sweep_record(folder)
    good, broken = list_sweeps(tmp_path)
    assert good == [] and broken[0][0] == folder


# -- results math ----------------------------------------------------------------------------------
def fake_session(tmp_path: Path, options: dict[str, Any], rates: list[float], ttfts: list[float]) -> Session:
    runs = [RunRecord(0, True, "ok", "", CallMetrics(server_decode_rate=9999.0, ttft_ms=0.1))]  # warm-up
    runs += [
        RunRecord(i + 1, False, "ok", "", CallMetrics(server_decode_rate=r, ttft_ms=t))
        for i, (r, t) in enumerate(zip(rates, ttfts, strict=True))
    ]
    runs.append(RunRecord(len(runs), False, "failed", "", CallMetrics(server_decode_rate=1.0)))
    manifest = {"id": str(len(rates)), "profile": {"options": options}}
    return Session(tmp_path, manifest, runs, "complete", compute_aggregates(runs))


@pytest.fixture
def ranked(tmp_path: Path) -> list[Any]:
    sessions = {
        "baseline": fake_session(tmp_path, {}, [100, 101, 99, 100], [50, 51, 49, 50]),
        "a": fake_session(tmp_path, {"num_ctx": 256}, [110, 111, 109, 110], [40, 41, 39, 40]),
        "b": fake_session(tmp_path, {"num_ctx": 512}, [100.5, 99.5, 101, 100], [50, 50, 51, 49]),
        "c": fake_session(tmp_path, {"num_ctx": 1024}, [90, 91, 89, 90], [60, 61, 59, 60]),
        "d": fake_session(tmp_path, {"num_ctx": 2048}, [120], [45]),
    }
    return rank(sessions)


def test_ranking_by_hand(ranked: list[Any]) -> None:
    assert [r.key for r in ranked] == ["d", "a", "b", "baseline", "c"]
    assert [r.rank for r in ranked] == [1, 2, 3, 4, 5]
    by = {r.key: r for r in ranked}
    a = by["a"]
    assert a.n == 4 and a.mean == pytest.approx(110.0)  # warm-up and failed runs left out
    assert a.sd == pytest.approx((2 / 3) ** 0.5) and a.cv_pct == pytest.approx((2 / 3) ** 0.5 / 110 * 100)
    assert a.delta_pct == pytest.approx(10.0) and a.ttft_delta_pct == pytest.approx(-20.0)
    assert a.p_value == pytest.approx(2 / 70)  # exact: 2 of the 70 splits are as extreme
    assert (a.verdict, a.ttft_verdict) == ("faster", "faster")
    assert by["b"].verdict == "within noise" and by["b"].delta_pct == pytest.approx(0.25)
    assert (by["c"].verdict, by["c"].ttft_verdict) == ("slower", "slower")
    assert by["d"].verdict == "too few runs" and by["d"].n == 1
    assert by["baseline"].verdict == "baseline" and by["baseline"].delta_pct is None
    assert by["a"].mean_ttft_ms == pytest.approx(40.0)
    assert success_rate(ranked) == (1, 4, 25.0)
    assert success_rate([r for r in ranked if r.is_baseline]) == (0, 0, None)


def test_ranking_by_a_lower_is_better_metric(ranked: list[Any], tmp_path: Path) -> None:
    sessions = {
        "baseline": fake_session(tmp_path, {}, [1, 2], [50, 51]),
        "fast": fake_session(tmp_path, {"num_ctx": 1}, [1, 2], [10, 11]),
    }
    rows = rank(sessions, metric="ttft_ms")
    assert [r.key for r in rows] == ["fast", "baseline"] and rows[0].metric == "ttft_ms"


def test_heatmap_cells(tmp_path: Path) -> None:
    sessions = {}
    for gpu in (60, 80):
        for ctx in (256, 512):
            for temp in (0.6, 0.8):
                if (gpu, ctx, temp) == (80, 512, 0.6):
                    continue  # a configuration that never ran
                rate = gpu + ctx / 256 + (10 if temp == 0.8 else 0)
                key = f"g{gpu}c{ctx}t{temp}"
                options = {"num_gpu": gpu, "num_ctx": ctx, "temperature": temp}
                sessions[key] = fake_session(tmp_path, options, [rate, rate], [1, 1])
    sessions["baseline"] = fake_session(tmp_path, {}, [1.0, 1.0], [1, 1])
    rows = rank(sessions)
    hm = heatmap(rows, "num_gpu", "num_ctx", fixed={"temperature": 0.6})
    assert hm.x_values == [60, 80] and hm.y_values == [256, 512]
    assert hm.cells == [[61.0, 81.0], [62.0, None]]
    assert hm.counts == [[1, 1], [1, 0]]
    everything = heatmap(rows, "num_gpu", "num_ctx")
    assert everything.cells[0][0] == pytest.approx(66.0) and everything.counts[0][0] == 2
    assert everything.cells[1][1] == pytest.approx(92.0) and everything.counts[1][1] == 1
    assert _averaging_note(everything) is not None and _averaging_note(hm) is None
    ttft = heatmap(rows, "num_gpu", "temperature", metric="ttft_ms")
    assert ttft.cells == [[1.0, 1.0], [1.0, 1.0]] and ttft.y_values == [0.6, 0.8]


def test_best_profile_round_trips_through_the_user_store(ranked: list[Any], tmp_path: Path) -> None:
    store = ProfileStore(builtin_dir=tmp_path / "none", user_dir=tmp_path / "user")
    top = best_profile(ranked, "sweep_best")
    assert top.options == {"num_ctx": 2048}  # the top mean, even with one run
    significant = best_profile(ranked, "sweep_best", significant_only=True)
    assert (
        significant.options == {"num_ctx": 256} and "+10.00% vs baseline (faster)" in significant.description
    )
    store.save_user(significant)
    loaded = store.get("sweep_best")
    assert loaded.options == {"num_ctx": 256} and not loaded.builtin
    with pytest.raises(SweepError, match="no configuration significantly faster"):
        best_profile([r for r in ranked if r.verdict != "faster"], "x", significant_only=True)


# -- exports ---------------------------------------------------------------------------------------
HOSTILE = "<script>alert(1)</script>"


def hostile_record(tmp_path: Path) -> tuple[SweepRecord, list[Any]]:
    defn = SweepDefinition(name="evil", grid={"stop": [[HOSTILE], ["=cmd|' /C calc'!A0"]]}, runs=2)
    configs = expand_grid(defn, BASE)
    record = SweepRecord(
        "20250101-000000-evil-abcd",
        tmp_path / SWEEPS_DIRNAME / "x",
        defn,
        "http://sim",
        "gemma3:latest",
        "Say <b>hi</b> | now",
        "custom",
        [ConfigRecord(c.key, c.options, c.is_baseline, c.profile.name, c.point, "done") for c in configs],
        [c.key for c in configs],
        status="complete",
    )
    sessions = {
        configs[0].key: fake_session(tmp_path, {}, [100, 101, 99, 100], [50, 51, 49, 50]),
        configs[1].key: fake_session(tmp_path, configs[1].options, [110, 111, 109, 110], [40, 41, 39, 40]),
        configs[2].key: fake_session(tmp_path, configs[2].options, [100, 101, 99, 100], [50, 51, 49, 50]),
    }
    return record, rank(sessions, record=record)


def test_exports_escape_hostile_option_values(tmp_path: Path) -> None:
    record, rows = hostile_record(tmp_path)
    hm = heatmap(rows, "stop", "stop")
    html = sweep_html(record, rows, [hm])
    assert "<script" not in html.lower() and "&lt;script&gt;" in html
    assert "Content-Security-Policy" in html and "background-color: rgba(46, 160, 67" in html
    md = sweep_markdown(record, rows, [hm])
    assert "<script" not in md and "&lt;script&gt;" in md
    assert "| rank | configuration |" in md and "Success rate: 1 of 2 configurations (50.0%)" in md
    doc = sweep_json(record, rows, [hm])
    text = json.dumps(doc, allow_nan=False)
    assert doc["success_rate"] == {"faster": 1, "total": 2, "pct": 50.0}
    assert doc["ranking"][0]["options"] == {"stop": [HOSTILE]} and "NaN" not in text


def test_csv_columns(tmp_path: Path) -> None:
    _record, rows = hostile_record(tmp_path)
    table = list(csv.reader(io.StringIO(sweep_csv(rows))))
    header = table[0]
    assert header[:3] == list(SWEEP_CSV_COLUMNS[:3]) and header[3] == "option_stop"
    assert header[4:] == list(SWEEP_CSV_COLUMNS[3:])
    assert len(table) == 4
    first = dict(zip(header, table[1], strict=True))
    assert first["rank"] == "1" and first["verdict"] == "faster" and float(first["mean"]) == 110.0
    assert float(first["delta_pct"]) == pytest.approx(10.0)
    assert [row[3] for row in table[1:]] == ['["<script>alert(1)</script>"]', "", "[\"=cmd|' /C calc'!A0\"]"]


@pytest.mark.anyio
async def test_reports_of_a_real_sweep(tmp_path: Path) -> None:
    record = await runner(small(grid={"num_ctx": [256, 512]}), tmp_path, fast_sim()).run()
    rows = rank(load_sweep_sessions(record)[0], record=record)
    md = sweep_markdown(record, rows, [heatmap(rows, "num_ctx", "num_ctx")])
    assert record.id in md and "num\\_ctx256" in md and "reload ms" in md
    assert "mean of up to" not in md
    html = sweep_html(record, rows)
    assert html.startswith("<!DOCTYPE html>") and "num_ctx 256→512" in html


def test_the_package_re_exports_every_public_name() -> None:
    """Callers (the CLI, the sweep screens) import from `chimera_tui.core.run.sweep` itself."""
    import chimera_tui.core.run.sweep as package

    assert [name for name in package.__all__ if not hasattr(package, name)] == []
    assert package.SweepRunner is SweepRunner and package.rank is rank and package.plan is plan
