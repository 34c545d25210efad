"""Multi-agent benchmarking: N agents at once against one endpoint (`shared`) or one each (`dual`,
`multi`). Every round starts all agents' requests together behind a barrier; each round's speedup,
parallel efficiency, start skew and contention are computed by core/concurrency.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import anyio
import httpx

from chimera_tui import __version__
from chimera_tui.core.backends import BenchClient, open_client
from chimera_tui.core.backends.ollama import CallOutcome, ModelInfo, ServerInfo, Timeouts
from chimera_tui.core.backends.stream import TokenEvent
from chimera_tui.core.errors import ChimeraError
from chimera_tui.core.measure.concurrency import (
    RATE_DROP_PCT,
    RESEARCH_TTFT_INCREASE_MS,
    TTFT_GROWTH_PCT,
    AgentCall,
    SoloBaseline,
    round_metrics,
    session_result,
)
from chimera_tui.core.measure.metrics import CallTrace
from chimera_tui.core.run.base import RunnerBase
from chimera_tui.core.run.events import (
    PhaseChanged,
    RoundFinished,
    RoundStarted,
    RunEvent,
    RunFailed,
    RunFinished,
    RunStarted,
    SessionFinished,
    SessionStarted,
    TokenBatch,
)
from chimera_tui.core.run.gpu import AgentEnergy, GpuMeter, GpuOptions
from chimera_tui.core.run.single import (
    FATAL_ERRORS,
    build_record,
    check_cold_mode,
    check_remote,
    effective_state,
    endpoint_record,
    find_model,
    options_warning,
    request_body,
    resolve_error,
    timeouts_record,
    unique_prompt,
    wait_for_ps,
    workload_record,
)
from chimera_tui.core.store.manifest import (
    AgentRecord,
    Concurrency,
    Manifest,
    ModelRecord,
    ProfileRecord,
    ToolInfo,
)
from chimera_tui.core.store.profiles import Profile
from chimera_tui.core.store.sessions import RunRecord, Session, SessionStatus, SessionWriter, now_iso
from chimera_tui.core.system.environment import collect_environment
from chimera_tui.core.system.gpu import Nvml

log = logging.getLogger(__name__)

Mode = Literal["shared", "dual", "multi"]
DUAL_DEFAULT_ENDPOINTS = ("http://127.0.0.1:11434", "http://127.0.0.1:11435")
#: resident bytes of a loaded model are roughly its file size plus KV cache and buffers
LOAD_OVERHEAD = 1.2


@dataclass(slots=True)
class AgentSpec:
    endpoint: str
    model: str
    profile: Profile


@dataclass(slots=True)
class MultiSpec:
    """A concurrent benchmark: the agents, the shared workload, and the contention thresholds."""

    mode: Mode
    agents: list[AgentSpec]
    prompt: str
    prompt_label: str = "custom"
    runs: int = 3
    warmup: int = 1
    cold: bool = False
    api: Literal["generate", "chat"] = "generate"
    unique_prompt: bool = True
    keep_alive: str | int = "30m"
    num_predict: int | None = None
    think: bool | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    ps_wait_s: float = 60.0
    #: each agent alone once before every measured round (capacity efficiency, contention)
    solo_baseline: bool = True
    backend: str = "auto"
    api_key_env: str | None = None
    rate_drop_pct: float = RATE_DROP_PCT
    ttft_growth_pct: float = TTFT_GROWTH_PCT
    #: measure remote / cloud models (refused by default, as in single mode)
    allow_remote: bool = False

    def options_for(self, agent: AgentSpec) -> dict[str, Any]:
        options = dict(agent.profile.options)
        if self.num_predict is not None:
            options["num_predict"] = self.num_predict
        return options


@dataclass(slots=True)
class _Lane:
    """One agent's live state: its own client (own connection), model and capabilities."""

    index: int
    spec: AgentSpec
    client: BenchClient
    info: ServerInfo
    model: ModelInfo
    capabilities: list[str]
    think: bool | None
    #: parallel slots the server reports (llama.cpp /props total_slots), None when unknown
    client_slots: int | None = None


class MultiRunner(RunnerBase[RunEvent]):
    """Runs one multi-agent session. `cancel()` may be called from any thread."""

    def __init__(
        self,
        spec: MultiSpec,
        sessions_root: Path,
        emit: Callable[[RunEvent], None] | None = None,
        transport_factory: Callable[[str], httpx.AsyncBaseTransport | None] | None = None,
        nvml_module: Any | None = None,
        gpu: GpuOptions | None = None,
    ) -> None:
        if len(spec.agents) < 2:
            raise ValueError("a multi-agent session needs at least two agents")
        super().__init__(emit)
        self.spec = spec
        self.sessions_root = sessions_root
        self._factory = transport_factory
        #: GPU energy: per agent when the agents' servers hold separate GPUs, else per round
        self.gpu = GpuMeter(gpu or GpuOptions(nvml_module=nvml_module))
        self._nvml_module = self.gpu.options.nvml_module
        self._energy = AgentEnergy(self.gpu)
        self._next_index = 0
        self._release_ns: int | None = None
        self.session_path: Path | None = None

    # -- the session --------------------------------------------------------------------------------
    async def run(self) -> Session:
        spec = self.spec
        async with AsyncExitStack() as stack:
            lanes: list[_Lane] = []
            shows: list[dict[str, Any]] = []
            for i, agent in enumerate(spec.agents):
                transport = self._factory(agent.endpoint) if self._factory else None
                self._emit(PhaseChanged(f"agent {i + 1}: connecting to {agent.endpoint}"))
                client = await open_client(
                    agent.endpoint, spec.backend, spec.timeouts, transport, spec.api_key_env
                )
                stack.push_async_callback(client.aclose)
                check_cold_mode(client, spec.cold)
                info = await client.probe()  # opens this agent's own connection before any clock
                model = await find_model(client, agent.model)
                check_remote(model.name, spec.allow_remote)
                show = await client.show(model.name)
                warning = options_warning(client, info, spec.options_for(agent))
                if warning:
                    log.warning("agent %d: %s", i + 1, warning)
                    self._emit(PhaseChanged(f"agent {i + 1}: {warning}"))
                caps = [c for c in show.get("capabilities", []) if isinstance(c, str)]
                think = spec.think if spec.think is not None else (True if "thinking" in caps else None)
                slots = show.get("total_slots")
                lanes.append(
                    _Lane(
                        i, agent, client, info, model, caps, think, slots if isinstance(slots, int) else None
                    )
                )
                shows.append(show)
            self.gpu.open()
            stack.callback(self.gpu.close)
            await self._guarded(self.gpu.measure_idle(lambda text: self._emit(PhaseChanged(text))))
            warnings = await self._preflight(lanes)
            manifest = self._manifest(lanes, warnings)
            manifest.gpu = self.gpu.session_record(None, None)
            writer = SessionWriter(self.sessions_root, manifest)
            self.session_path = writer.path
            self._emit(
                SessionStarted(
                    writer.id,
                    writer.path,
                    " + ".join(dict.fromkeys(lane.model.name for lane in lanes)),
                    " + ".join(dict.fromkeys(lane.spec.profile.name for lane in lanes)),
                    " + ".join(dict.fromkeys(lane.spec.endpoint for lane in lanes)),
                    " / ".join(dict.fromkeys(lane.info.version or "?" for lane in lanes)),
                    spec.runs,
                    spec.warmup,
                )
            )
            status, error = await self._run_rounds(lanes, writer)
            await self._record_states(lanes, shows, writer)
            writer.manifest.gpu = self.gpu.session_record(self._energy.scope, self._energy.note)
            session = writer.finish(status, error, self._result(writer.rounds))
        self._emit(SessionFinished(session))
        return session

    @staticmethod
    async def _record_states(lanes: list[_Lane], shows: list[dict[str, Any]], writer: SessionWriter) -> None:
        """Each endpoint's effective state after the rounds (as in single mode): one per endpoint URL."""
        by_url = {lane.client.url: (lane, show) for lane, show in zip(lanes, shows, strict=True)}
        for record in writer.manifest.endpoint_list:
            found = by_url.get(record.url or "")
            if found is not None:
                lane, show = found
                record.state = await effective_state(lane.client, lane.info, lane.model.name, show)

    @staticmethod
    def _result(rounds: list[dict[str, Any]]) -> dict[str, Any]:
        return session_result(rounds)

    async def _preflight(self, lanes: list[_Lane]) -> list[str]:
        """Before a dual/multi run: what is loaded where, and whether the models likely fit."""
        warnings: list[str] = []
        needed = 0
        #: bytes still to load per set of GPUs, where the endpoint's server is tied to its GPUs
        needed_on: dict[tuple[int, ...], int] = {}
        tied = self._energy.tie([lane.spec.endpoint for lane in lanes])
        warnings += self._slot_warnings(lanes)
        for lane in lanes:
            if not lane.client.supports_unload:
                continue  # OpenAI-compatible servers keep their model loaded: nothing to add
            loaded = await lane.client.ps()
            if any(m.name == lane.model.name for m in loaded):
                continue
            if lane.model.size_bytes:
                need = int(lane.model.size_bytes * LOAD_OVERHEAD)
                if lane.index in tied:
                    key = tuple(tied[lane.index])
                    needed_on[key] = needed_on.get(key, 0) + need
                else:
                    needed += need
            names = ", ".join(m.name for m in loaded)
            if loaded and self.spec.mode != "shared":
                warnings.append(
                    f"{lane.spec.endpoint} already holds {names}; loading {lane.model.name} adds to it"
                )
        local = all(
            urlparse(lane.spec.endpoint).hostname in ("127.0.0.1", "localhost", "::1") for lane in lanes
        )
        nvml, reason = Nvml.open(self._nvml_module)
        if nvml is None:
            if self.spec.mode != "shared":
                warnings.append(f"GPU memory not checked: {reason}")
        else:
            try:
                samples = nvml.sample()
            finally:
                nvml.close()
            free_of = {s.index: (s.mem_total_bytes or 0) - (s.mem_used_bytes or 0) for s in samples}
            free = sum(free_of.values())
            for gpus, need in needed_on.items():
                room = sum(free_of.get(i, 0) for i in gpus)
                if room and need > room:
                    warnings.append(
                        f"the models likely do not fit on GPU {', '.join(map(str, gpus))}: about "
                        f"{need / 2**30:.1f} GiB needed, {room / 2**30:.1f} GiB free there; Ollama may "
                        "spill to CPU"
                    )
            if local and needed and free and needed > free:
                warnings.append(
                    f"the models likely do not fit: about {needed / 2**30:.1f} GiB needed, "
                    f"{free / 2**30:.1f} GiB free on the GPU(s); Ollama may spill to CPU"
                )
        for warning in warnings:
            self._emit(PhaseChanged(f"warning: {warning}"))
        return warnings

    @staticmethod
    def _slot_warnings(lanes: list[_Lane]) -> list[str]:
        """llama.cpp reports its parallel slots: more agents than slots on one server serialize."""
        per_endpoint: dict[str, list[_Lane]] = {}
        for lane in lanes:
            per_endpoint.setdefault(lane.spec.endpoint, []).append(lane)
        out = []
        for url, group in per_endpoint.items():
            slots = group[0].client_slots
            if isinstance(slots, int) and len(group) > slots:
                out.append(f"{url} has {slots} parallel slot(s) for {len(group)} agents: requests will queue")
        return out

    async def _run_rounds(
        self, lanes: list[_Lane], writer: SessionWriter
    ) -> tuple[SessionStatus, str | None]:
        spec = self.spec
        plan = [(True, k + 1, spec.warmup) for k in range(spec.warmup)]
        plan += [(False, i + 1, spec.runs) for i in range(spec.runs)]
        status: SessionStatus = "complete"
        error: str | None = None
        async with self._watching_cancel():
            try:
                if not spec.cold:
                    await self._guarded(self._preload(lanes))
                self._energy.choose([lane.spec.endpoint for lane in lanes])
                if spec.solo_baseline:
                    self._emit(
                        PhaseChanged("solo baseline: each agent runs alone before every measured round")
                    )
                for r, (warmup, number, total) in enumerate(plan):
                    if self.cancelled:
                        status = "cancelled"
                        break
                    if r > 0:  # the thermal gate of long sessions (--cool-to / --cooldown), as in single mode
                        await self._guarded(self.gpu.cool_gate(lambda t: self._emit(PhaseChanged(t)), False))
                    solo: dict[int, SoloBaseline] = {}
                    if spec.solo_baseline and not warmup:
                        solo = await self._solo_pass(lanes, writer, number, total)
                        if self.cancelled:
                            status = "cancelled"
                            break
                    if spec.cold:
                        await self._guarded(self._unload(lanes))
                    self._emit(RoundStarted(r, number, total, warmup))
                    records = await self._round(lanes, writer, r, warmup, number, total)
                    metrics = round_metrics(
                        r,
                        warmup,
                        [self._agent_call(rec, out) for rec, out in records],
                        solo,
                        spec.rate_drop_pct,
                        spec.ttft_growth_pct,
                        release_ns=self._release_ns,
                    )
                    if any(rec.status == "cancelled" for rec, _ in records):
                        metrics.status = "cancelled"
                    writer.finish_round(metrics.to_dict(), [rec for rec, _ in records])
                    self._emit(RoundFinished(r, metrics.to_dict()))
                    if metrics.status == "cancelled":
                        status = "cancelled"
                        break
                    fatal = [rec for rec, _ in records if rec.error_kind in {c.kind for c in FATAL_ERRORS}]
                    if fatal and len(fatal) == len(records):
                        status, error = "failed", fatal[0].error
                        break
            except ChimeraError as exc:
                self._emit(PhaseChanged(f"stopped: {exc}"))
                status, error = "failed", str(exc)
        return status, error

    @staticmethod
    def _agent_call(record: RunRecord, outcome: CallOutcome) -> AgentCall:
        trace = outcome.trace
        return AgentCall(
            agent=record.agent,
            ok=record.status == "ok",
            t_send_ns=trace.t_send_ns or None,
            t_end_ns=trace.t_end_ns,
            metrics=record.metrics,
            t_first_ns=trace.token_times_ns[0] if trace.token_times_ns else None,
        )

    # -- warm / cold / solo ---------------------------------------------------------------------------
    def _distinct(self, lanes: list[_Lane]) -> list[_Lane]:
        """One lane per (endpoint, model): shared mode loads its model once."""
        seen: dict[tuple[str, str], _Lane] = {}
        for lane in lanes:
            seen.setdefault((lane.spec.endpoint, lane.model.name), lane)
        return list(seen.values())

    async def _preload(self, lanes: list[_Lane]) -> None:
        for lane in self._distinct(lanes):  # staggered: two loads at once can race for VRAM
            self._emit(PhaseChanged(f"agent {lane.index + 1}: loading {lane.model.name} (warm mode)"))
            await lane.client.load(
                self.spec.api, lane.model.name, self.spec.options_for(lane.spec), self.spec.keep_alive
            )
            await wait_for_ps(lane.client, lane.model.name, True, self.spec.ps_wait_s)

    async def _unload(self, lanes: list[_Lane]) -> None:
        for lane in self._distinct(lanes):
            self._emit(PhaseChanged(f"agent {lane.index + 1}: unloading {lane.model.name} (cold mode)"))
            await lane.client.load(self.spec.api, lane.model.name, self.spec.options_for(lane.spec), 0)
            await wait_for_ps(lane.client, lane.model.name, False, self.spec.ps_wait_s)

    async def _solo_pass(
        self, lanes: list[_Lane], writer: SessionWriter, number: int, total: int
    ) -> dict[int, SoloBaseline]:
        """Each agent alone, same workload, once, right before measured round `number`: solo and
        concurrent calls are never more than one round apart, so drift (thermal, caches, other load)
        reaches both alike. The calls are recorded with `solo = true` and kept out of the statistics."""
        baselines: dict[int, SoloBaseline] = {}
        for lane in lanes:
            if self.cancelled:
                return baselines
            if self.spec.cold:
                await self._guarded(self._unload(lanes))
            record, _ = await self._call(
                lane, writer, self._take_index(), None, False, number, total, solo=True
            )
            writer.finish_run(record)
            if record.status == "ok":
                m = record.metrics
                baselines[lane.index] = SoloBaseline(m.server_decode_rate, m.ttft_ms, m.e2e_ms)
        return baselines

    # -- one round ------------------------------------------------------------------------------------
    def _take_index(self) -> int:
        index = self._next_index
        self._next_index += 1
        return index

    async def _round(
        self, lanes: list[_Lane], writer: SessionWriter, r: int, warmup: bool, number: int, total: int
    ) -> list[tuple[RunRecord, CallOutcome]]:
        """All agents' calls behind one barrier; records are written together once all have ended."""
        go = anyio.Event()
        results: dict[int, tuple[RunRecord, CallOutcome]] = {}
        indexes = {lane.index: self._take_index() for lane in lanes}

        async def agent_task(lane: _Lane) -> None:
            results[lane.index] = await self._call(
                lane, writer, indexes[lane.index], r, warmup, number, total, go=go
            )

        async with anyio.create_task_group() as tg:
            for lane in lanes:
                tg.start_soon(agent_task, lane)
            await anyio.sleep(0)  # let every task reach the barrier
            while not self._all_waiting(lanes, indexes, writer):
                await anyio.sleep(0)
            self._energy.open_round(r, len(lanes))  # energy counters read before the release
            self._release_ns = time.perf_counter_ns()  # the origin of the round's saved timeline
            go.set()
        out = [results[lane.index] for lane in lanes]
        with_energy = self._energy.close_round([rec for rec, _ in out])  # per round: kept with each call
        return [(rec, outcome) for rec, (_, outcome) in zip(with_energy, out, strict=True)]

    @staticmethod
    def _all_waiting(lanes: list[_Lane], indexes: dict[int, int], writer: SessionWriter) -> bool:
        started = {run.index for run in writer.runs}
        return all(indexes[lane.index] in started for lane in lanes)

    async def _call(
        self,
        lane: _Lane,
        writer: SessionWriter,
        index: int,
        round_index: int | None,
        warmup: bool,
        number: int,
        total: int,
        solo: bool = False,
        go: anyio.Event | None = None,
    ) -> tuple[RunRecord, CallOutcome]:
        spec = self.spec
        prompt = unique_prompt(spec.prompt) if spec.unique_prompt else spec.prompt
        record = RunRecord(
            index, warmup, "ok", now_iso(), prompt=prompt, agent=lane.index, round=round_index, solo=solo
        )
        body = request_body(
            spec.api, lane.model.name, prompt, spec.options_for(lane.spec), spec.keep_alive, lane.think
        )
        writer.start_run(record)  # before the barrier: no disk write while another agent streams
        outcome = CallOutcome(CallTrace(0))

        def on_tokens(tokens: list[TokenEvent]) -> None:
            self._emit(TokenBatch(index, tokens, outcome.trace.t_send_ns, lane.index))

        if go is not None:
            await go.wait()
        self._emit(RunStarted(index, number, total, warmup, agent=lane.index, solo=solo))
        await self._stream_call(lane.client, spec.api, body, on_tokens, outcome)
        error = await resolve_error(lane.client, lane.model.name, outcome.error)
        finished = build_record(record, outcome, error, body, expect_warm=not spec.cold)
        if go is not None:  # a round's call: its own energy when the agents' GPUs are separate
            finished = await self._energy.agent_done(finished)
        self._emit(RunFinished(finished) if finished.status == "ok" else RunFailed(finished))
        return finished, outcome

    # -- manifest -------------------------------------------------------------------------------------
    def _manifest(self, lanes: list[_Lane], warnings: list[str]) -> Manifest:
        spec = self.spec
        t = spec.timeouts
        agents = [
            AgentRecord(
                index=lane.index,
                endpoint=lane.spec.endpoint,
                server_version=lane.info.version,
                model=ModelRecord(
                    name=lane.model.name,
                    digest=lane.model.digest,
                    parameter_size=lane.model.parameter_size,
                    quantization=lane.model.quantization,
                    size_bytes=lane.model.size_bytes,
                    capabilities=lane.capabilities,
                ),
                profile=ProfileRecord(
                    name=lane.spec.profile.name,
                    description=lane.spec.profile.description,
                    options=dict(lane.spec.profile.options),
                ),
                options_sent=spec.options_for(lane.spec),
            )
            for lane in lanes
        ]
        endpoints = list(
            {
                lane.spec.endpoint: endpoint_record(lane.client, lane.info, spec.options_for(lane.spec))
                for lane in lanes
            }.values()
        )
        first = agents[0]
        assert first.model is not None and first.profile is not None
        return Manifest(
            tool=ToolInfo(name="chimera-tui", version=__version__),
            mode=spec.mode,
            # model/profile of the first agent, named for every agent: what listings and reports show
            model=replace(first.model, name=" + ".join(dict.fromkeys(lane.model.name for lane in lanes))),
            profile=replace(
                first.profile, name=" + ".join(dict.fromkeys(lane.spec.profile.name for lane in lanes))
            ),
            agents=agents,
            endpoints=endpoints,
            workload=workload_record(spec, first.options_sent, allow_remote=spec.allow_remote),
            concurrency=Concurrency(
                agents=len(lanes),
                solo_baseline=spec.solo_baseline,
                solo_schedule=(
                    "each agent alone once before every measured round" if spec.solo_baseline else None
                ),
                research_ttft_increase_threshold_ms=RESEARCH_TTFT_INCREASE_MS,
                rate_drop_threshold_pct=spec.rate_drop_pct,
                ttft_growth_threshold_pct=spec.ttft_growth_pct,
                preflight_warnings=warnings,
            ),
            timeouts=timeouts_record(t),
            environment=collect_environment(self._nvml_module),
        )


def run_multi_sync(runner: MultiRunner) -> Session:
    return anyio.run(runner.run)
