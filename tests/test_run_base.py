"""RunnerBase: the one cancellation mechanism under the four runners, cancelled from another thread.

No test here measures time: a cancel is issued while a call is provably in flight (from inside its
first token batch, the runner's thread waiting until the other thread has called `cancel()`), and the
streams are far too long to end by themselves; timeouts only guard against a hang.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from chimera_tui.core.backends.ollama import Timeouts
from chimera_tui.core.run.base import RunnerBase
from chimera_tui.core.run.events import RunStarted, TokenBatch
from chimera_tui.core.run.multi import AgentSpec, MultiRunner, MultiSpec, run_multi_sync
from chimera_tui.core.run.single import BenchRunner, run_bench_sync
from chimera_tui.core.run.sweep.definition import SweepDefinition
from chimera_tui.core.run.sweep.record import SweepRecord
from chimera_tui.core.run.sweep.runner import SweepRunner, run_sweep_sync
from chimera_tui.core.run.workflow.runner import WorkflowRunner, run_workflow_sync
from chimera_tui.core.store.bundled import sample_data_dir
from chimera_tui.core.store.profiles import Profile
from chimera_tui.core.store.sessions import RunRecord, Session, load_session
from tests.helpers import fast_sim, spec

TIMEOUTS = Timeouts(connect_s=2, first_byte_s=10, idle_s=5)
BASE = Profile("baseline_default", "", {}, None, True)
#: tokens per call at 100 tokens/s: a call that only a cancel can end within the test's time
LONG = 5000


def cancel_in_thread(runner: RunnerBase[Any]) -> None:
    """Call `runner.cancel()` from a thread of its own, and wait until it has."""
    thread = threading.Thread(target=runner.cancel)
    thread.start()
    thread.join()


# -- the base on its own ---------------------------------------------------------------------------
@pytest.mark.anyio
async def test_cancel_from_another_thread_cancels_open_scopes_and_those_opened_after() -> None:
    runner: RunnerBase[Any] = RunnerBase()
    with anyio.fail_after(10):
        async with runner._watching_cancel():
            with runner._cancel_scope() as open_scope:
                cancel_in_thread(runner)
                await anyio.sleep_forever()  # only the watcher can end this
            with runner._cancel_scope() as later:
                await anyio.sleep_forever()  # cancelled as it opened
    assert runner.cancelled
    assert open_scope.cancelled_caught and later.cancelled_caught
    assert runner._scopes == set()


@pytest.mark.anyio
async def test_a_guarded_step_after_cancel_never_runs() -> None:
    runner: RunnerBase[Any] = RunnerBase()
    steps: list[str] = []

    async def step() -> None:
        await anyio.sleep(0)
        steps.append("ran")

    async with runner._watching_cancel():
        await runner._guarded(step())
        cancel_in_thread(runner)
        await runner._guarded(step())
    assert steps == ["ran"]


def test_a_follower_shares_the_cancel_flag_and_emit_defaults_to_nothing() -> None:
    parent: RunnerBase[Any] = RunnerBase()
    child: RunnerBase[Any] = RunnerBase()
    child.follow_cancel(parent)
    child._emit("ignored")  # no callback: events go nowhere
    assert not child.cancelled
    cancel_in_thread(parent)
    assert child.cancelled and parent.cancelled


# -- each runner kind ------------------------------------------------------------------------------
def single(root: Path, emit: Callable[[Any], None]) -> tuple[BenchRunner, Callable[[], Session]]:
    sim = fast_sim(tokens_per_s=100.0)
    runner = BenchRunner(spec(warmup=0, runs=3, num_predict=LONG), root, emit, transport=sim.transport())
    return runner, lambda: run_bench_sync(runner)


def multi(root: Path, emit: Callable[[Any], None]) -> tuple[MultiRunner, Callable[[], Session]]:
    sims = {"http://a": fast_sim(tokens_per_s=100.0), "http://b": fast_sim(tokens_per_s=100.0)}
    agents = [AgentSpec(url, "gemma3:latest", BASE) for url in sims]
    multi_spec = MultiSpec(
        "dual", agents, "Say hi", runs=3, warmup=0, num_predict=LONG, timeouts=TIMEOUTS, ps_wait_s=5.0
    )
    runner = MultiRunner(multi_spec, root, emit, transport_factory=lambda url: sims[url].transport())
    return runner, lambda: run_multi_sync(runner)


def workflow(root: Path, emit: Callable[[Any], None]) -> tuple[WorkflowRunner, Callable[[], Session]]:
    sim = fast_sim(tokens_per_s=100.0)
    runner = WorkflowRunner(
        "http://sim",
        "gemma3:latest",
        BASE,
        sample_data_dir(),
        root,
        2,
        0,
        emit,
        sim.transport(),
        TIMEOUTS,
        LONG,
        ps_wait_s=5.0,
    )
    return runner, lambda: run_workflow_sync(runner)


def sweep(root: Path, emit: Callable[[Any], None]) -> tuple[SweepRunner, Callable[[], SweepRecord]]:
    sim = fast_sim(tokens_per_s=100.0)
    defn = SweepDefinition("small", grid={"num_ctx": [256, 512]}, runs=2, warmup=0, num_predict=LONG)
    runner = SweepRunner(defn, root, "http://sim", "gemma3:latest", emit, sim.transport(), timeouts=TIMEOUTS)
    return runner, lambda: run_sweep_sync(runner)


Kind = Callable[[Path, Callable[[Any], None]], tuple[RunnerBase[Any], Callable[[], Any]]]
KINDS: dict[str, Kind] = {"single": single, "multi": multi, "workflow": workflow, "sweep": sweep}


def run_in_worker(run: Callable[[], Any]) -> Any:
    """Run a runner to completion in a worker thread (as the TUI does) and return its result."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(run())
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "the runner did not stop"
    if errors:
        raise errors[0]
    return result[0]


def runs_of(result: Session | SweepRecord) -> list[RunRecord]:
    """The calls a runner made: its session's, or those of every session a sweep ran."""
    if isinstance(result, Session):
        return result.runs
    ids = [sid for c in result.configs for sid in c.session_ids + c.discarded_session_ids]
    return [run for sid in ids for run in load_session(result.sessions_root / sid).runs]


@pytest.mark.parametrize("kind", list(KINDS))
def test_cancel_from_another_thread_mid_stream_is_seen_by_every_runner(kind: str, tmp_path: Path) -> None:
    """The TUI's case: the runner in a worker thread, `cancel()` from another thread while a call
    streams. The call in flight is kept, partial and cancelled; nothing starts after it."""
    started: list[RunStarted] = []

    def emit(event: Any) -> None:
        if isinstance(event, RunStarted):
            started.append(event)
        if isinstance(event, TokenBatch) and not runner.cancelled:
            cancel_in_thread(runner)  # the call is in flight: this is its first token batch

    runner, run = KINDS[kind](tmp_path, emit)
    result = run_in_worker(run)
    assert result.status == "cancelled"
    calls = runs_of(result)
    assert calls and {r.status for r in calls} == {"cancelled"}
    assert len(calls) == len(started)  # one call (one per agent): nothing started after the cancel
    assert all(0 < (r.metrics.token_count or 0) < LONG for r in calls if r.metrics.ttft_ms is not None)
    assert any(r.metrics.ttft_ms is not None for r in calls)  # partial tokens were recorded
    if isinstance(result, SweepRecord):
        assert [c.status for c in result.configs] == ["pending"] * len(result.configs)


@pytest.mark.parametrize("kind", list(KINDS))
def test_cancel_before_the_run_starts_makes_no_call(kind: str, tmp_path: Path) -> None:
    events: list[Any] = []
    runner, run = KINDS[kind](tmp_path, events.append)
    cancel_in_thread(runner)
    result = run_in_worker(run)
    assert result.status == "cancelled"
    assert runs_of(result) == []
    assert not any(isinstance(e, RunStarted | TokenBatch) for e in events)
