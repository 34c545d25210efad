"""The capacity runner: one endpoint at increasing load, level by level, until a stopping rule fires.

Closed loop (`loop="closed"`, GuideLLM's "concurrent", vLLM's `--max-concurrency`): at level N, N
streams each send their next request as soon as the previous one ends. Open loop (`loop="open"`,
GuideLLM's "poisson", vLLM's `--request-rate`): requests arrive at λ per second with exponential gaps,
whether or not the server keeps up. Each stream has its own client (its own connection, opened by its
probe before any clock), like MultiRunner's agents. Per level a stated number of requests or a
duration. Nothing is written while a level's streams run: its records go to disk in one atomic write
when it ends, before the next level starts. After each level `stop_rule` decides whether to go on;
the verdict (core/measure/capacity.py) is saved in the manifest's [capacity] table.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import anyio
import httpx

from chimera_tui import __version__
from chimera_tui.core.backends import BenchClient, open_client
from chimera_tui.core.backends.ollama import DEFAULT_URL, CallOutcome, ModelInfo, ServerInfo, Timeouts
from chimera_tui.core.errors import ChimeraError
from chimera_tui.core.measure.capacity import (
    DEFAULT_LEVELS,
    MIN_GAIN_PCT,
    LevelStats,
    Loop,
    ServerHints,
    Slo,
    Verdict,
    level_calls,
    level_stats,
    poisson_gaps,
    stop_rule,
    verdict,
)
from chimera_tui.core.measure.metrics import CallTrace
from chimera_tui.core.run.base import RunnerBase
from chimera_tui.core.run.events import PhaseChanged, RunEvent, SessionFinished, SessionStarted
from chimera_tui.core.run.single import (
    FATAL_ERRORS,
    ThinkValue,
    build_record,
    effective_state,
    endpoint_record,
    find_model,
    request_body,
    resolve_error,
    unique_prompt,
    wait_for_ps,
    workload_record,
)
from chimera_tui.core.store.manifest import (
    CapacityRecord,
    Manifest,
    TimeoutsRecord,
    ToolInfo,
    model_record,
    profile_record,
)
from chimera_tui.core.store.profiles import Profile
from chimera_tui.core.store.sessions import RunRecord, Session, SessionStatus, SessionWriter, now_iso
from chimera_tui.core.system.environment import collect_environment

log = logging.getLogger(__name__)

#: open loop without --requests or --duration: this many arrivals per level
DEFAULT_OPEN_REQUESTS = 16
#: closed loop without --requests or --duration: this many requests per stream
DEFAULT_REQUESTS_PER_STREAM = 4


@dataclass(slots=True)
class CapacitySpec:
    """A capacity run: the endpoint, the workload of each request, the load levels and the rules."""

    model: str
    profile: Profile
    prompt: str
    prompt_label: str = "custom"
    endpoint: str = DEFAULT_URL
    loop: Loop = "closed"
    levels: list[float] = field(default_factory=lambda: [float(n) for n in DEFAULT_LEVELS])
    #: requests per level (None: DEFAULT_REQUESTS_PER_STREAM per stream, or DEFAULT_OPEN_REQUESTS)
    requests: int | None = None
    #: seconds per level (new requests stop after it; those in flight finish)
    duration_s: float | None = None
    warmup: int = 1
    api: Literal["generate", "chat"] = "generate"
    unique_prompt: bool = True
    keep_alive: str | int = "30m"
    num_predict: int | None = None
    think: ThinkValue = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    ps_wait_s: float = 60.0
    backend: str = "auto"
    api_key_env: str | None = None
    slo: Slo = field(default_factory=Slo)
    min_gain_pct: float = MIN_GAIN_PCT
    #: the Poisson arrivals' seed (open loop), recorded so a run can be repeated
    seed: int = 0
    #: warm mode only (the workload record reads it)
    cold: bool = False

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError("a capacity run needs at least one level")
        if self.loop == "closed" and any(n < 1 or n != int(n) for n in self.levels):
            raise ValueError("closed-loop levels are whole numbers of streams, at least 1")
        if any(n <= 0 for n in self.levels):
            raise ValueError("levels must be positive")

    @property
    def runs(self) -> int | None:
        """What the workload record calls runs: the requests per level."""
        return self.requests

    def requests_at(self, load: float) -> int | None:
        """Requests to send at this level (None: run for `duration_s`)."""
        if self.requests is not None:
            return self.requests
        if self.duration_s is not None:
            return None
        return DEFAULT_OPEN_REQUESTS if self.loop == "open" else DEFAULT_REQUESTS_PER_STREAM * int(load)

    def request_options(self) -> dict[str, Any]:
        options = dict(self.profile.options)
        if self.num_predict is not None:
            options["num_predict"] = self.num_predict
        return options


@dataclass(frozen=True, slots=True)
class LevelStarted:
    index: int
    load: float
    loop: str
    total_levels: int


@dataclass(frozen=True, slots=True)
class LevelProgress:
    """A request of the level ended (ok or not)."""

    index: int
    done: int
    failed: int


@dataclass(frozen=True, slots=True)
class LevelFinished:
    stats: LevelStats
    #: the stopping rule that fired after it, None to go on
    rule: str | None


@dataclass(frozen=True, slots=True)
class CapacityFinished:
    verdict: Verdict
    levels: list[LevelStats]


CapacityEvent = RunEvent | LevelStarted | LevelProgress | LevelFinished | CapacityFinished


def server_hints(client: BenchClient, show: dict[str, Any], loaded: list[Any], endpoint: str) -> ServerHints:
    """What the server says about its parallelism: llama.cpp slots, Ollama's loaded models, and
    OLLAMA_NUM_PARALLEL when the server is on this machine and the variable is set here."""
    slots = show.get("total_slots")
    hints = ServerHints(kind=client.backend, slots=slots if isinstance(slots, int) and slots > 0 else None)
    hints.loaded = [m.name for m in loaded]
    hints.context_length = next((m.context_length for m in loaded if m.context_length), None)
    local = urlparse(endpoint).hostname in ("127.0.0.1", "localhost", "::1")
    raw = os.environ.get("OLLAMA_NUM_PARALLEL", "").strip()
    if client.backend == "ollama" and local and raw.isdigit() and int(raw) > 0:
        hints.ollama_num_parallel = int(raw)
    return hints


class CapacityRunner(RunnerBase[CapacityEvent]):
    """Runs one capacity session. `cancel()` may be called from any thread."""

    def __init__(
        self,
        spec: CapacitySpec,
        sessions_root: Path,
        emit: Callable[[CapacityEvent], None] | None = None,
        transport_factory: Callable[[str], httpx.AsyncBaseTransport | None] | None = None,
        nvml_module: Any | None = None,
    ) -> None:
        super().__init__(emit)
        self.spec = spec
        self.sessions_root = sessions_root
        self._factory = transport_factory
        self._nvml_module = nvml_module
        self._next_index = 0
        self._free: list[BenchClient] = []
        self._stack: AsyncExitStack | None = None
        self.levels: list[LevelStats] = []
        self.session_path: Path | None = None
        self.verdict: Verdict | None = None

    # -- clients: one per concurrent stream -----------------------------------------------------
    async def _new_client(self) -> BenchClient:
        spec = self.spec
        transport = self._factory(spec.endpoint) if self._factory else None
        client = await open_client(spec.endpoint, spec.backend, spec.timeouts, transport, spec.api_key_env)
        assert self._stack is not None
        self._stack.push_async_callback(client.aclose)
        await client.probe()  # opens its connection before any clock
        return client

    async def _pool(self, n: int) -> None:
        """At least `n` idle clients, each connected."""
        while len(self._free) < n:
            self._free.append(await self._new_client())

    # -- the session ----------------------------------------------------------------------------
    async def run(self) -> Session:
        spec = self.spec
        async with AsyncExitStack() as stack:
            self._stack = stack
            self._emit(PhaseChanged(f"connecting to {spec.endpoint}"))
            transport = self._factory(spec.endpoint) if self._factory else None
            client = await open_client(
                spec.endpoint, spec.backend, spec.timeouts, transport, spec.api_key_env
            )
            stack.push_async_callback(client.aclose)
            info = await client.probe()
            model = await find_model(client, spec.model)
            show = await client.show(model.name)
            caps = [c for c in show.get("capabilities", []) if isinstance(c, str)]
            think = spec.think if spec.think is not None else spec.profile.think
            if think is None and "thinking" in caps:
                think = True
            writer = SessionWriter(self.sessions_root, self._manifest(client, info, model, caps))
            self.session_path = writer.path
            self._emit(
                SessionStarted(
                    writer.id, writer.path, model.name, spec.profile.name, spec.endpoint, info.version,
                    len(spec.levels), spec.warmup,
                )
            )  # fmt: skip
            self._free.append(client)
            status, error, rule = await self._run_levels(writer, model.name, think)
            loaded = []
            try:
                loaded = await client.ps()
            except ChimeraError as exc:
                log.warning("cannot read /api/ps for the capacity answer: %s", exc)
            hints = server_hints(client, show, loaded, spec.endpoint)
            self.verdict = verdict(self.levels, spec.loop, rule, spec.slo, hints, spec.min_gain_pct)
            record = writer.manifest.capacity
            assert record is not None
            record.server = {k: v for k, v in asdict(hints).items() if v not in (None, [])}
            record.verdict = self.verdict.to_dict()
            writer.manifest.endpoint_list[0].state = await effective_state(client, info, model.name, show)
            session = writer.finish(status, error, self._result(self.verdict))
        self._emit(CapacityFinished(self.verdict, list(self.levels)))
        self._emit(SessionFinished(session))
        return session

    @staticmethod
    def _result(v: Verdict) -> dict[str, Any]:
        return {"capacity_sustained": v.sustained, "capacity_peak_tps": v.peak_tps, "capacity_cause": v.cause}

    async def _run_levels(
        self, writer: SessionWriter, model: str, think: ThinkValue
    ) -> tuple[SessionStatus, str | None, str]:
        spec = self.spec
        status: SessionStatus = "complete"
        error: str | None = None
        rule = "levels_done"
        async with self._watching_cancel():
            try:
                await self._guarded(self._preload(model))
                for k in range(spec.warmup):
                    if self.cancelled:
                        break
                    self._emit(PhaseChanged(f"warm-up {k + 1} of {spec.warmup}"))
                    record, _ = await self._call(self._free[0], model, think, None, 0, warmup=True)
                    writer.add_runs([record])
                for index, load in enumerate(spec.levels):
                    if self.cancelled:
                        break
                    records = await self._level(index, load, model, think)
                    writer.add_runs(records)
                    stats = level_stats(index, load, level_calls(records))
                    self.levels.append(stats)
                    fired = stop_rule(self.levels, spec.slo, spec.min_gain_pct)
                    self._emit(LevelFinished(stats, fired))
                    fatal = [r for r in records if r.error_kind in {c.kind for c in FATAL_ERRORS}]
                    if fatal and len(fatal) == len(records):
                        status, error, rule = "failed", fatal[0].error, "failed"
                        break
                    if fired is not None:
                        rule = fired
                        break
            except ChimeraError as exc:
                self._emit(PhaseChanged(f"stopped: {exc}"))
                status, error, rule = "failed", str(exc), "failed"
        if self.cancelled:
            status, rule = "cancelled", "cancelled"
        return status, error, rule

    async def _preload(self, model: str) -> None:
        spec = self.spec
        client = self._free[0]
        self._emit(PhaseChanged(f"loading {model} with the profile's options (warm mode)"))
        await client.load(spec.api, model, spec.request_options(), spec.keep_alive)
        await wait_for_ps(client, model, True, spec.ps_wait_s)

    # -- one level ------------------------------------------------------------------------------
    async def _level(self, index: int, load: float, model: str, think: ThinkValue) -> list[RunRecord]:
        spec = self.spec
        self._emit(LevelStarted(index, load, spec.loop, len(spec.levels)))
        if spec.loop == "closed":
            await self._pool(int(load))
        else:
            await self._pool(max(1, min(64, int(load * 2))))
        quota = spec.requests_at(load)
        deadline: float | None = None
        records: list[RunRecord] = []
        failed = 0
        t0 = time.perf_counter_ns()
        if spec.duration_s is not None:
            deadline = time.perf_counter() + spec.duration_s
        sent = 0

        def may_send() -> bool:
            if self.cancelled:
                return False
            if quota is not None:
                return sent < quota
            return deadline is not None and time.perf_counter() < deadline

        async def one(client: BenchClient) -> None:
            nonlocal failed
            record, _ = await self._call(client, model, think, index, t0)
            records.append(record)
            failed += record.status != "ok"
            self._emit(LevelProgress(index, len(records), failed))

        with self._cancel_scope():
            async with anyio.create_task_group() as tg:
                if spec.loop == "closed":

                    async def stream(client: BenchClient) -> None:
                        nonlocal sent
                        while may_send():
                            sent += 1
                            await one(client)

                    for client in self._free[: int(load)]:
                        tg.start_soon(stream, client)
                else:
                    rng = random.Random(spec.seed * 1_000_003 + index)
                    next_at = time.perf_counter()
                    while may_send():
                        sent += 1
                        client = self._free.pop() if self._free else await self._new_client()

                        async def arrival(c: BenchClient) -> None:
                            try:
                                await one(c)
                            finally:
                                self._free.append(c)

                        tg.start_soon(arrival, client)
                        next_at += poisson_gaps(load, 1, rng)[0]
                        await anyio.sleep(max(0.0, next_at - time.perf_counter()))
        records.sort(key=lambda r: r.index)
        return records

    def _take_index(self) -> int:
        index = self._next_index
        self._next_index += 1
        return index

    async def _call(
        self,
        client: BenchClient,
        model: str,
        think: ThinkValue,
        level: int | None,
        t0_ns: int,
        warmup: bool = False,
    ) -> tuple[RunRecord, CallOutcome]:
        spec = self.spec
        prompt = unique_prompt(spec.prompt) if spec.unique_prompt else spec.prompt
        index = self._take_index()
        record = RunRecord(index, warmup, "ok", now_iso(), prompt=prompt, level=level)
        body = request_body(spec.api, model, prompt, spec.request_options(), spec.keep_alive, think)
        outcome = CallOutcome(CallTrace(0))
        await self._stream_call(client, spec.api, body, lambda _tokens: None, outcome)
        error = await resolve_error(client, model, outcome.error)
        finished = build_record(record, outcome, error, body, expect_warm=True)
        t_send = outcome.trace.t_send_ns
        finished.t_send_ms = round((t_send - t0_ns) / 1e6, 3) if t_send and level is not None else None
        return finished, outcome

    # -- manifest -------------------------------------------------------------------------------
    def _manifest(
        self, client: BenchClient, info: ServerInfo, model: ModelInfo, capabilities: list[str]
    ) -> Manifest:
        spec = self.spec
        t = spec.timeouts
        return Manifest(
            kind="capacity",
            tool=ToolInfo(name="chimera-tui", version=__version__),
            mode="capacity",
            model=model_record(model, capabilities),
            profile=profile_record(spec.profile),
            endpoints=[endpoint_record(client, info, spec.request_options())],
            workload=workload_record(spec, spec.request_options()),
            capacity=CapacityRecord(
                loop=spec.loop,
                levels=[float(x) for x in spec.levels],
                requests_per_level=spec.requests,
                duration_s=spec.duration_s,
                slo_ttft_p95_ms=spec.slo.ttft_p95_ms,
                min_stream_tps=spec.slo.min_stream_tps,
                max_error_pct=spec.slo.max_error_pct,
                min_gain_pct=spec.min_gain_pct,
                seed=spec.seed if spec.loop == "open" else None,
            ),
            timeouts=TimeoutsRecord(connect_s=t.connect_s, first_byte_s=t.first_byte_s, idle_s=t.idle_s),
            environment=collect_environment(self._nvml_module),
        )


def run_capacity_sync(runner: CapacityRunner) -> Session:
    return anyio.run(runner.run)
