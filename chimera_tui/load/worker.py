"""A Locust worker process: `python -m chimera_tui.load.worker --master-host H --master-port P`.

Imports Locust (which monkey-patches the standard library with gevent): never import this module
from the core, the UI or the CLI process. The master sends the plan (`chimera_plan`); each user then
makes calls (`call.stream_call`), and every finished call's full record goes back to the master in
batches (`chimera_records`). At the end (`chimera_stop`, or this worker's share of `--requests`
used) calls in flight may finish for the plan's grace time; any still streaming then is sent as
`incomplete`, and `chimera_done` says how many calls this worker started.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
import locust.runners
from gevent.pool import Group
from locust import User, constant, task
from locust.env import Environment

from chimera_tui.core.backends.ollama import CallOutcome
from chimera_tui.core.measure.metrics import CallTrace
from chimera_tui.core.run.single import build_record
from chimera_tui.core.store.sessions import RunRecord, now_iso
from chimera_tui.load.call import ConnectionPool, make_body, stream_call
from chimera_tui.load.plan import LoadPlan

#: seconds between two batches of records sent to the master
FLUSH_S = 0.5
#: records per message at most
BATCH = 500
#: benchmarks only (off unless set): write the token stamps of the calls to one endpoint
_TRACE_URL = os.environ.get("CHIMERA_LOAD_TRACE_URL")
_TRACE_PATH = os.environ.get("CHIMERA_LOAD_TRACE")
#: a busy host must not make the master drop a worker mid-run (Locust's defaults are 3 s / 60 s)
locust.runners.HEARTBEAT_LIVENESS = 30


@dataclass(slots=True)
class _Flight:
    record: RunRecord
    outcome: CallOutcome
    body: dict[str, Any]


@dataclass
class WorkerState:
    """This process's share of the run: its plan and quota, the calls in flight, the unsent records."""

    plan: LoadPlan | None = None
    quota: int | None = None
    number: int = 0
    started: int = 0
    sent: int = 0
    stopping: bool = False
    done: bool = False
    flight: dict[int, _Flight] = field(default_factory=dict)
    pending: list[dict[str, Any]] = field(default_factory=list)
    pool: ConnectionPool | None = None
    calls: Group = field(default_factory=Group)
    ids: itertools.count[int] = field(default_factory=itertools.count)
    runner: Any = None
    #: benchmarks only: the absolute token stamps of calls to $CHIMERA_LOAD_TRACE_URL
    traced: list[list[int]] = field(default_factory=list)
    #: benchmarks only: how late a 10 ms sleep of this process's event loop woke up, ms
    lags_ms: list[float] = field(default_factory=list)

    def lag_probe(self) -> None:
        """Benchmarks only: the event loop's lateness (a greenlet blocking it, or no free core)."""
        while not self.done:
            t0 = time.perf_counter_ns()
            gevent.sleep(0.01)
            self.lags_ms.append(round((time.perf_counter_ns() - t0) / 1e6 - 10.0, 3))

    def take(self) -> bool:
        """Whether one more call may start (and count it)."""
        if self.plan is None or self.stopping:
            return False
        if self.quota is not None and self.started >= self.quota:
            if not self.flight:
                self.finish()
            return False
        self.started += 1
        return True

    def call(self, seq: int) -> None:
        """One call, start to finished record (queued for the master)."""
        plan, pool = self.plan, self.pool
        assert plan is not None and pool is not None
        key = next(self.ids)
        body = make_body(plan)
        prompt = body.get("prompt") or body["messages"][0]["content"]
        record = RunRecord(index=0, warmup=False, status="ok", started_at=now_iso(), prompt=prompt)
        outcome = CallOutcome(CallTrace(0))
        self.flight[key] = _Flight(record, outcome, body)
        url = plan.endpoints[seq % len(plan.endpoints)]
        try:
            stream_call(plan, url, body, pool, outcome)
        finally:
            flight = self.flight.pop(key, None)
            if url == _TRACE_URL and outcome.trace.token_times_ns:
                self.traced.append(list(outcome.trace.token_times_ns))
            if flight is not None:  # not settled as incomplete meanwhile
                finished = build_record(record, outcome, outcome.error, body, expect_warm=True)
                self.pending.append(finished.to_dict())
                self._report(finished, url)
        if self.quota is not None and self.started >= self.quota and not self.flight:
            self.finish()

    def _report(self, record: RunRecord, url: str) -> None:
        """Locust's own statistics get the call too (its e2e time), for anyone watching them."""
        if self.runner is None:
            return
        self.runner.environment.events.request.fire(
            request_type="POST",
            name=url,
            response_time=record.metrics.e2e_ms or 0.0,
            response_length=len(record.response),
            exception=RuntimeError(record.error) if record.status != "ok" else None,
            context={},
        )

    def settle(self, grace_s: float) -> None:
        """The end: wait up to `grace_s` for the calls in flight, then record the rest incomplete."""
        self.stopping = True
        deadline = time.monotonic() + grace_s
        while self.flight and time.monotonic() < deadline:
            gevent.sleep(0.05)
        for flight in list(self.flight.values()):
            partial = build_record(flight.record, flight.outcome, None, flight.body, expect_warm=True)
            partial.status = "incomplete"
            partial.error_kind = "incomplete"
            partial.error = f"still streaming when the load run ended ({grace_s:g} s after its end)"
            self.pending.append(partial.to_dict())
        self.flight.clear()
        self.finish()

    def finish(self) -> None:
        if self.done:
            return
        self.done = True
        self.stopping = True
        self.flush()
        if _TRACE_PATH and self.traced:  # benchmarks/load_proof.py compares them to the emit times
            Path(f"{_TRACE_PATH}.{os.getpid()}.json").write_text(json.dumps(self.traced), encoding="utf-8")
        if _TRACE_PATH:
            Path(f"{_TRACE_PATH}.{os.getpid()}.lag").write_text(json.dumps(self.lags_ms), encoding="utf-8")
        if self.runner is not None:
            self.runner.send_message("chimera_done", {"started": self.started, "sent": self.sent})

    def flush(self) -> None:
        while self.pending and self.runner is not None:
            batch, self.pending = self.pending[:BATCH], self.pending[BATCH:]
            self.sent += len(batch)
            data = {"records": batch, "in_flight": len(self.flight), "started": self.started}
            self.runner.send_message("chimera_records", data)

    def flusher(self) -> None:
        while True:
            gevent.sleep(FLUSH_S)
            if self.runner is not None and not self.done:
                if self.pending:
                    self.flush()
                else:  # a heartbeat of the counts, so the live view sees calls in flight
                    data = {"records": [], "in_flight": len(self.flight), "started": self.started}
                    self.runner.send_message("chimera_records", data)


STATE = WorkerState()
_user_numbers = itertools.count()


class ChimeraUser(User):
    """Closed loop: one call after another. Open loop: this worker's Poisson arrival generator."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.number = next(_user_numbers)

    @task
    def work(self) -> None:
        state = STATE
        plan = state.plan
        if plan is None or state.stopping:
            gevent.sleep(0.05)
            return
        if plan.open_loop:
            self._arrivals(plan, state)
        elif state.take():  # users numbered across the workers, so repeated endpoints weight them
            state.call(self.number * plan.workers + state.number)
        else:
            gevent.sleep(0.05)

    def _arrivals(self, plan: LoadPlan, state: WorkerState) -> None:
        """Arrivals at exponential gaps (rate / workers each), on an absolute schedule (no drift)."""
        rate = float(plan.rate or 1.0) / max(1, plan.workers)
        seq = itertools.count(state.number)
        t_next = time.monotonic()
        while True:
            t_next += random.expovariate(rate)
            gevent.sleep(max(0.0, t_next - time.monotonic()))
            if not state.take():
                break
            state.calls.spawn(state.call, next(seq))
        while not state.stopping:
            gevent.sleep(0.1)


def _on_plan(environment: Any, msg: Any, **_: Any) -> None:
    data = msg.data
    STATE.plan = plan = LoadPlan.from_dict(data["plan"])
    STATE.quota = data.get("quota")
    STATE.number = int(data.get("number", 0))
    STATE.pool = ConnectionPool(plan.connect_s)
    if STATE.quota == 0:
        STATE.finish()


def _on_stop(environment: Any, msg: Any, **_: Any) -> None:
    if STATE.plan is not None and not STATE.done:
        gevent.spawn(STATE.settle, float((msg.data or {}).get("grace_s", STATE.plan.grace_s)))


def attach(runner: Any) -> None:
    """Make this process a worker of a Chimera master (`chimera-tui load`): the plan comes from the
    master, the full records go back to it. Also used by an exported locustfile (`export-locust`)."""
    STATE.runner = runner
    runner.register_message("chimera_plan", _on_plan)
    runner.register_message("chimera_stop", _on_stop)
    gevent.spawn(STATE.flusher)
    if _TRACE_PATH:
        gevent.spawn(STATE.lag_probe)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chimera_tui.load.worker")
    parser.add_argument("--master-host", default="127.0.0.1")
    parser.add_argument("--master-port", type=int, default=5557)
    args = parser.parse_args(argv)
    # what is loaded so far is never garbage; collections of the young generation stay rare and short
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)
    env = Environment(user_classes=[ChimeraUser], events=locust.events)
    attach(env.create_worker_runner(args.master_host, args.master_port))
    env.runner.greenlet.join()  # type: ignore[union-attr]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
