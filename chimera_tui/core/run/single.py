"""The benchmark runner: warm-up, repeats, warm/cold, cancellation. Emits typed events.

One `BenchRunner` runs one session. It is async (anyio); the CLI runs it with `anyio.run`, the TUI in a
worker thread with its own event loop, so the reader never shares a loop with the UI.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx

from chimera_tui import __version__
from chimera_tui.core.backends import BenchClient, open_client
from chimera_tui.core.backends.ollama import (
    DEFAULT_URL,
    CallOutcome,
    ModelInfo,
    ServerInfo,
    Timeouts,
    same_model,
)
from chimera_tui.core.backends.openai import ColdModeUnsupported
from chimera_tui.core.backends.option_support import ignored_ollama_options, ignored_options_warning
from chimera_tui.core.backends.stream import TokenEvent
from chimera_tui.core.errors import (
    BenchTimeout,
    ChimeraError,
    EndpointUnreachable,
    ModelNotFound,
    NotOllama,
    RemoteModelRefused,
    ServerError,
)
from chimera_tui.core.measure.metrics import (
    FLAG_REMOTE,
    CallTrace,
    compute_call_metrics,
    flag_notes,
    is_cloud_name,
)
from chimera_tui.core.run.base import RunnerBase
from chimera_tui.core.run.events import (
    PhaseChanged,
    RunEvent,
    RunFailed,
    RunFinished,
    RunStarted,
    SessionFinished,
    SessionStarted,
    TokenBatch,
)
from chimera_tui.core.run.gpu import GpuMeter, GpuOptions, apply_energy
from chimera_tui.core.store.manifest import (
    EndpointRecord,
    Manifest,
    TimeoutsRecord,
    ToolInfo,
    Workload,
    model_record,
    profile_record,
)
from chimera_tui.core.store.profiles import Profile
from chimera_tui.core.store.sessions import (
    COHORTS,
    RunRecord,
    RunStatus,
    Session,
    SessionStatus,
    SessionWriter,
    now_iso,
)
from chimera_tui.core.system.environment import collect_environment

log = logging.getLogger(__name__)

#: errors after which further runs cannot succeed: the session stops, recording why
FATAL_ERRORS = (EndpointUnreachable, ModelNotFound, NotOllama)


@dataclass(slots=True)
class BenchSpec:
    """Everything that defines a single-endpoint benchmark session."""

    model: str
    profile: Profile
    prompt: str
    prompt_label: str = "custom"
    endpoint: str = DEFAULT_URL
    runs: int = 3
    warmup: int = 1
    cold: bool = False
    api: Literal["generate", "chat"] = "generate"
    unique_prompt: bool = True
    keep_alive: str | int = "30m"
    num_predict: int | None = None
    think: ThinkValue = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    ps_wait_s: float = 60.0
    """How long to wait for /api/ps to confirm a load or an unload."""
    backend: str = "auto"
    """Server kind: "ollama", "openai" (OpenAI-compatible), or "auto" (ask the server)."""
    api_key_env: str | None = None
    """OpenAI-compatible servers: the environment variable holding the API key (never stored)."""
    allow_remote: bool = False
    """Measure a remote / cloud model (refused by default: it is not this machine's speed)."""
    cache_cohorts: bool = False
    """The prompt-cache workload: each measured run is a cache-cold call (a fresh marker first,
    raw prompt) then the same prompt again, cache-warm (docs/metrics.md "Prompt-cache cohorts")."""

    def __post_init__(self) -> None:
        if self.cache_cohorts and self.cold:
            raise ValueError("--cache-cohorts needs warm mode: unloading the model empties the cache")

    def request_options(self) -> dict[str, Any]:
        """The options sent on every request (preload included): identical load-time options each time."""
        options = dict(self.profile.options)
        if self.num_predict is not None:
            options["num_predict"] = self.num_predict
        return options


#: what `think` may be: off, on, or a level (profiles.THINK_LEVELS; Ollama maps true to "medium")
ThinkValue = bool | str | None


#: how long reading /api/ps for the recorded server state may take
STATE_WAIT_S = 10.0


async def effective_state(
    client: BenchClient, info: ServerInfo, model: str, show: dict[str, Any]
) -> dict[str, Any]:
    """The endpoint's effective state after the runs (docs/metrics.md "Server state"): version,
    /api/show, the model's /api/ps entry (still loaded), llama.cpp /props. Never raises."""
    from chimera_tui.core.measure.server_state import server_state

    entry = None
    try:
        with anyio.fail_after(STATE_WAIT_S):
            entry = next((m for m in await client.ps() if same_model(m.name, model)), None)
    except (ChimeraError, TimeoutError) as exc:
        log.warning("cannot read /api/ps for the server state: %s", exc)
    return server_state(info.version, show, entry, getattr(client, "props", None))


def check_remote(model: str, allow_remote: bool) -> None:
    """A cloud model (`...:cloud`, `...-cloud`) is refused unless remote models are allowed."""
    if not allow_remote and is_cloud_name(model):
        raise RemoteModelRefused(model)


def check_cold_mode(client: BenchClient, cold: bool) -> None:
    """Cold mode needs a server that can unload a model (Ollama); refuse it up front otherwise."""
    if cold and not client.supports_unload:
        raise ColdModeUnsupported(client.url)


def workload_record(
    spec: Any, options_sent: dict[str, Any] | None, allow_remote: bool | None = None
) -> Workload:
    """The manifest's workload table for a bench or multi-agent spec (the fields both share)."""
    return Workload(
        allow_remote=allow_remote,
        prompt_label=spec.prompt_label,
        prompt=spec.prompt,
        api=spec.api,
        runs=spec.runs,
        warmup=spec.warmup,
        cold=spec.cold,
        unique_prompt=spec.unique_prompt,
        keep_alive=spec.keep_alive,
        num_predict=spec.num_predict,
        think=spec.think,
        options_sent=options_sent,
        cache_cohorts=getattr(spec, "cache_cohorts", False) or None,
    )


def timeouts_record(t: Timeouts) -> TimeoutsRecord:
    """The manifest's timeouts table: the three timeouts and the whole-call bounds (budget.py)."""
    from chimera_tui.core.backends.budget import SECONDS_PER_TOKEN

    deadline = "call_s" if t.call_s is not None else f"first_byte_s + idle_s + {SECONDS_PER_TOKEN:g} s x N"
    rule = f"deadline {deadline}; at most 2 x N + 64 tokens (N = num_predict, else num_ctx, else 32768)"
    return TimeoutsRecord(
        connect_s=t.connect_s,
        first_byte_s=t.first_byte_s,
        idle_s=t.idle_s,
        call_s=t.call_s,
        call_rule=rule,
        max_call_mib=t.max_call_bytes / 2**20,
    )


def endpoint_record(client: BenchClient, info: ServerInfo, options: dict[str, Any]) -> EndpointRecord:
    """What a manifest records about an endpoint: kind, flavour, version, and options not applied."""
    record = EndpointRecord(url=client.url, kind=client.backend, server=client.server, version=info.version)
    if client.backend == "openai":
        from chimera_tui.core.backends.openai import map_options

        _, not_applied = map_options(options, client.server)
        record.options_not_applied = not_applied
    else:
        record.options_not_applied = [o.name for o in ignored_ollama_options(options, info.version)]
    return record


def options_warning(client: BenchClient, info: ServerInfo, options: dict[str, Any]) -> str | None:
    """The line said before the run when the server will ignore some of the profile's options."""
    if client.backend == "openai":
        return None  # each call's body notes what an OpenAI-compatible server does not apply
    return ignored_options_warning(ignored_ollama_options(options, info.version), client.url)


def request_body(
    api: str, model: str, prompt: str, options: dict[str, Any], keep_alive: str | int, think: ThinkValue
) -> dict[str, Any]:
    """A generate/chat body with every option and keep_alive explicit (identical on every call)."""
    body: dict[str, Any] = {"model": model}
    if api == "chat":
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    body["options"] = options
    body["keep_alive"] = keep_alive
    if think is not None:
        body["think"] = think
    return body


def cache_marker_place(api: str, backend: str) -> str:
    """Where the cache-cold call's marker sits, so a reader knows what could still be cached."""
    if api == "chat":
        return "after the chat template's leading tokens (chat API: those stay cached in the cold cohort)"
    if backend == "ollama":
        return "first token after BOS (raw prompt, no template)"
    return "first token after BOS (/v1/completions prompt, no template)"


def cache_busting_prompt(prompt: str, avoid_first: str = "") -> str:
    """A cache-cold prompt: a random marker as its very first characters, starting with another
    character than the previous marker's, so its first token differs and no prompt token after
    BOS can come from the cache (`unique_prompt`'s fixed "[run" can)."""
    while True:
        marker = secrets.token_hex(4)
        if marker[0] != avoid_first:
            return f"{marker}: {prompt}"


def unique_prompt(prompt: str) -> str:
    """A random marker in front of the prompt, so no run hits the previous run's prompt cache."""
    return f"[run {secrets.token_hex(4)}] {prompt}"


async def wait_for_ps(client: BenchClient, model: str, present: bool, wait_s: float) -> None:
    """Poll /api/ps until the model is (or is no longer) listed; BenchTimeout after wait_s."""
    with anyio.move_on_after(wait_s):
        while await client.is_loaded(model) != present:
            await anyio.sleep(0.1)
        return
    state = "loaded" if present else "unloaded"
    raise BenchTimeout("ps_wait", wait_s, client.url, f"waiting for /api/ps to show {model} {state} on")


async def find_model(client: BenchClient, name: str) -> ModelInfo:
    """The model as /api/tags lists it, or ModelNotFound naming the ones that exist."""
    models = await client.tags()
    for m in models:
        if same_model(m.name, name):
            return m
    raise ModelNotFound(name, [m.name for m in models], client.url)


async def resolve_error(client: BenchClient, model: str, error: ChimeraError | None) -> ChimeraError | None:
    """A 404 'model not found' from generate/chat becomes ModelNotFound with the list of models."""
    if (
        isinstance(error, ServerError)
        and error.status == 404
        and ("not found" in error.message or "does not exist" in error.message)
    ):
        try:
            return ModelNotFound(model, [m.name for m in await client.tags()], client.url)
        except ChimeraError:
            return ModelNotFound(model, [], client.url)
    return error


def build_record(
    record: RunRecord,
    outcome: CallOutcome,
    error: ChimeraError | None,
    body: dict[str, Any] | None = None,
    expect_warm: bool = False,
) -> RunRecord:
    """The finished record of a call: metrics (and flags) from its trace, its status and cause.

    `body` is the request sent (its `num_predict` decides "stopped early"); `expect_warm` says the
    model should already have been loaded (warm mode; a long load is then flagged "cold")."""
    trace = outcome.trace
    options = body.get("options") if isinstance(body, dict) else None
    limit = options.get("num_predict") if isinstance(options, dict) else None
    num_predict = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    metrics = compute_call_metrics(trace, num_predict=num_predict, expect_warm=expect_warm)
    status: RunStatus
    if outcome.cancelled:
        status, error_kind, message = "cancelled", "cancelled", "cancelled by the user"
    elif error is not None:
        status, error_kind, message = "failed", error.kind, str(error)
    else:
        status, error_kind, message = "ok", None, None
    offsets = [round((t - trace.t_send_ns) / 1e6, 3) for t in trace.token_times_ns] if trace.t_send_ns else []
    return replace(
        record,
        status=status,
        metrics=metrics,
        error_kind=error_kind,
        error=message,
        response=outcome.text,
        thinking=outcome.thinking,
        token_offsets_ms=offsets,
        server_final=trace.final,
        notes=list(record.notes) + outcome.notes + flag_notes(trace),
    )


class BenchRunner(RunnerBase[RunEvent]):
    """Runs one session. `cancel()` may be called from any thread."""

    def __init__(
        self,
        spec: BenchSpec,
        sessions_root: Path,
        emit: Callable[[RunEvent], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        nvml_module: Any | None = None,
        gpu: GpuOptions | None = None,
    ) -> None:
        super().__init__(emit)
        self.spec = spec
        #: GPU energy, clocks and throttling per call (the live screen reads `gpu.live`)
        self.gpu = GpuMeter(gpu or GpuOptions(nvml_module=nvml_module))
        self._gpus: list[int] | None = None
        self._gpu_note: str | None = None
        self.sessions_root = sessions_root
        self._transport = transport
        self._nvml_module = self.gpu.options.nvml_module
        #: notes for the next run (set between runs, e.g. the model had to be reloaded)
        self._notes: list[str] = []
        #: the last cache-cold call's prompt, sent again by the cache-warm call that follows it
        self._cohort_prompt: str | None = None
        #: the first character of the last cache-busting marker (the next one starts differently)
        self._last_marker = ""
        self.session_path: Path | None = None

    # -- the session ----------------------------------------------------------------------------
    async def run(self) -> Session:
        """Probe, check the model, then run warm-up + measured calls, saving each before the next.

        Raises ChimeraError (clear message) when the session cannot start; once it has started,
        failures are recorded in the session instead.
        """
        spec = self.spec
        self._emit(PhaseChanged(f"connecting to {spec.endpoint}"))
        client = await open_client(
            spec.endpoint, spec.backend, spec.timeouts, self._transport, spec.api_key_env
        )
        try:
            check_cold_mode(client, spec.cold)
            info = await client.probe()
            model = await find_model(client, spec.model)
            check_remote(model.name, spec.allow_remote)
            show = await client.show(model.name)
            capabilities = [c for c in show.get("capabilities", []) if isinstance(c, str)]
            self.gpu.open()
            await self._guarded(self.gpu.measure_idle(lambda text: self._emit(PhaseChanged(text))))
            manifest = self._manifest(client, info, model, capabilities)
            warning = options_warning(client, info, spec.request_options())
            if warning:
                log.warning("%s", warning)
                self._emit(PhaseChanged(warning))
            manifest.gpu = self.gpu.session_record("call", self._gpu_note)
            writer = SessionWriter(self.sessions_root, manifest)
            self.session_path = writer.path
            self._emit(
                SessionStarted(
                    writer.id,
                    writer.path,
                    model.name,
                    spec.profile.name,
                    spec.endpoint,
                    info.version,
                    spec.runs,
                    spec.warmup,
                )
            )
            think = spec.think if spec.think is not None else spec.profile.think
            if think is None and "thinking" in capabilities:
                think = True
            status, error = await self._run_calls(client, writer, model.name, think)
            writer.manifest.endpoint_list[0].state = await effective_state(client, info, model.name, show)
            writer.manifest.gpu = self.gpu.session_record("call", self._gpu_note)
            session = writer.finish(status, error)
        finally:
            self.gpu.close()
            await client.aclose()
        self._emit(SessionFinished(session))
        return session

    async def _run_calls(
        self, client: BenchClient, writer: SessionWriter, model: str, think: ThinkValue
    ) -> tuple[SessionStatus, str | None]:
        """Every planned call, in order. Returns the session status and, if it stopped early, why."""
        spec = self.spec
        plan: list[tuple[bool, int, int, str | None]] = [
            (True, k + 1, spec.warmup, None) for k in range(spec.warmup)
        ]
        cohorts: tuple[str | None, ...] = COHORTS if spec.cache_cohorts else (None,)
        plan += [(False, i + 1, spec.runs, c) for i in range(spec.runs) for c in cohorts]
        status: SessionStatus = "complete"
        error: str | None = None
        async with self._watching_cancel():
            try:
                if not spec.cold and not self.cancelled:
                    await self._guarded(self._preload(client, model))
                for index, (warmup, number, total, cohort) in enumerate(plan):
                    if self.cancelled:
                        status = "cancelled"
                        break
                    if spec.cold:
                        await self._guarded(self._unload(client, model))
                        if self.cancelled:
                            status = "cancelled"
                            break
                    elif index > 0:
                        await self._guarded(self._ensure_loaded(client, model))
                    if index > 0:  # the thermal gate of long sessions (--cool-to / --cooldown)
                        await self._guarded(self.gpu.cool_gate(lambda t: self._emit(PhaseChanged(t)), False))
                    record = await self._one_call(
                        client, writer, model, think, (index, warmup, number, total), cohort
                    )
                    if record.status == "cancelled":
                        status = "cancelled"
                        break
                    if record.error_kind in {cls.kind for cls in FATAL_ERRORS}:
                        status, error = "failed", record.error
                        break
                    if FLAG_REMOTE in record.metrics.flags and not spec.allow_remote:
                        status, error = "failed", str(RemoteModelRefused(model, answered=True))
                        break
            except ChimeraError as exc:
                # preload/unload could not be confirmed: nothing measured would be trustworthy
                self._emit(PhaseChanged(f"stopped: {exc}"))
                status, error = "failed", str(exc)
        return status, error

    # -- warm / cold ------------------------------------------------------------------------------
    async def _preload(self, client: BenchClient, model: str) -> None:
        spec = self.spec
        self._emit(PhaseChanged(f"loading {model} with the profile's options (warm mode)"))
        await client.load(spec.api, model, spec.request_options(), spec.keep_alive)
        await wait_for_ps(client, model, True, spec.ps_wait_s)

    async def _ensure_loaded(self, client: BenchClient, model: str) -> None:
        """Warm mode, between runs: a model unloaded since the last run (keep_alive expiry, another
        client, a server restart) is loaded again, and the next run says so in its notes."""
        try:
            loaded = await client.is_loaded(model)
        except ChimeraError as exc:
            log.warning("cannot check /api/ps before the next run: %s", exc)
            return
        if not loaded:
            self._notes.append("the model had been unloaded since the previous run; it was reloaded first")
            await self._preload(client, model)

    async def _unload(self, client: BenchClient, model: str) -> None:
        self._emit(PhaseChanged(f"unloading {model} (cold mode)"))
        await client.load(self.spec.api, model, self.spec.request_options(), 0)
        await wait_for_ps(client, model, False, self.spec.ps_wait_s)

    # -- one call ---------------------------------------------------------------------------------
    async def _one_call(
        self,
        client: BenchClient,
        writer: SessionWriter,
        model: str,
        think: ThinkValue,
        place: tuple[int, bool, int, int],
        cohort: str | None = None,
    ) -> RunRecord:
        """One call: `place` is (index, warm-up?, number, total); `cohort` a prompt-cache cohort."""
        spec = self.spec
        index, warmup, number, total = place
        if cohort == "cache_warm" and self._cohort_prompt is not None:
            prompt = self._cohort_prompt  # the cold call's prompt again: everything but its end cached
        elif cohort == "cache_cold":
            prompt = cache_busting_prompt(spec.prompt, self._last_marker)
            self._last_marker = prompt[0]
        elif spec.unique_prompt:
            prompt = unique_prompt(spec.prompt)
        else:
            prompt = spec.prompt
        self._cohort_prompt = prompt if cohort == "cache_cold" else None
        record = RunRecord(
            index=index, warmup=warmup, status="ok", started_at=now_iso(), prompt=prompt, cohort=cohort
        )
        writer.start_run(record)
        self._emit(RunStarted(index, number, total, warmup))

        outcome = CallOutcome(CallTrace(0), notes=self._notes)
        self._notes = []

        def on_tokens(tokens: list[TokenEvent]) -> None:
            self._emit(TokenBatch(index, tokens, outcome.trace.t_send_ns))

        body = request_body(spec.api, model, prompt, spec.request_options(), spec.keep_alive, think)
        if cohort is not None and spec.api == "generate" and client.backend == "ollama":
            # raw: no template before the marker, so only the BOS token can be cached in the cold call
            body["raw"] = True
            body.pop("think", None)
        if self._gpus is None and self._gpu_note is None:  # after the preload: the server's runner exists
            self._gpus, self._gpu_note = self.gpu.gpus_for(spec.endpoint)
        window = self.gpu.start(f"call {index}", self._gpus)  # energy counter read before the send
        await self._stream_call(client, spec.api, body, on_tokens, outcome)
        energy = self.gpu.stop(window)  # and after the end

        error = await resolve_error(client, model, outcome.error)
        finished = build_record(record, outcome, error, body, expect_warm=not spec.cold)
        finished = apply_energy(finished, energy, "call", window, self.gpu.simulated)
        writer.finish_run(finished)
        self._emit(RunFinished(finished) if finished.status == "ok" else RunFailed(finished))
        return finished

    # -- manifest -----------------------------------------------------------------------------------
    def _manifest(
        self, client: BenchClient, info: ServerInfo, model: ModelInfo, capabilities: list[str]
    ) -> Manifest:
        spec = self.spec
        t = spec.timeouts
        return Manifest(
            tool=ToolInfo(name="chimera-tui", version=__version__),
            mode="single",
            model=model_record(model, capabilities),
            profile=profile_record(spec.profile),
            endpoints=[endpoint_record(client, info, spec.request_options())],
            workload=replace(
                workload_record(spec, spec.request_options(), allow_remote=spec.allow_remote),
                cache_marker=cache_marker_place(spec.api, client.backend) if spec.cache_cohorts else None,
            ),
            timeouts=timeouts_record(t),
            environment=collect_environment(self._nvml_module),
        )


def run_bench_sync(runner: BenchRunner) -> Session:
    """Run a session to completion on a fresh event loop in the calling thread."""
    return anyio.run(runner.run)
