"""SweepRunner: one BenchRunner session per configuration (per visit when interleaved), the sweep
record saved after each; resuming a stopped sweep."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import socket
import time
from collections.abc import Callable
from contextlib import aclosing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx
import tomli_w

from chimera_tui.core.backends import BenchClient, open_client
from chimera_tui.core.backends.ollama import DEFAULT_URL, Timeouts
from chimera_tui.core.errors import ChimeraError, ProfileError, SessionError
from chimera_tui.core.run.base import RunnerBase
from chimera_tui.core.run.events import PhaseChanged
from chimera_tui.core.run.gpu import GpuMeter, GpuOptions
from chimera_tui.core.run.prompts import resolve_prompt
from chimera_tui.core.run.single import BenchRunner, BenchSpec, find_model
from chimera_tui.core.run.sweep.definition import SweepDefinition, SweepError, sweep_to_toml
from chimera_tui.core.run.sweep.events import (
    ConfigFinished,
    ConfigStarted,
    SweepEvent,
    SweepFinished,
    SweepStarted,
)
from chimera_tui.core.run.sweep.grid import Step, SweepConfig, execution_order, expand_grid, pending_steps
from chimera_tui.core.run.sweep.record import (
    RECORD_TOML,
    SWEEPS_DIRNAME,
    ConfigRecord,
    SweepRecord,
    load_sweep_record,
)
from chimera_tui.core.store.atomic import atomic_write_text
from chimera_tui.core.store.manifest import SweepTag
from chimera_tui.core.store.profiles import Profile, ProfileStore, reload_reason
from chimera_tui.core.store.sessions import MANIFEST, Session, now_iso, read_manifest, safe_slug


def _new_sweep_id(name: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{safe_slug(name, 40)}-{secrets.token_hex(2)}"


def _first_load_ms(session: Session) -> float | None:
    return session.runs[0].metrics.load_ms if session.runs else None


def _tag_session(path: Path, sweep_id: str, key: str, visit: int, visits: int, label: str) -> None:
    """Mark a finished session as part of a sweep: a label and a ``[sweep]`` table in its manifest."""
    manifest = read_manifest(path)
    manifest.label = " ".join(label.split())[:80]
    manifest.sweep = SweepTag(id=sweep_id, key=key, visit=visit, visits=visits)
    atomic_write_text(path / MANIFEST, tomli_w.dumps(manifest.to_toml_dict()))


class SweepRunner(RunnerBase[SweepEvent]):
    """Runs a sweep (or the rest of one): one BenchRunner session per configuration (per visit when
    interleaved), the record saved after each. ``cancel()`` may be called from any thread.

    Interleaved order cannot append calls to an open session (BenchRunner runs a whole session), so each
    visit is its own one-run session, labelled and tagged with the sweep; the results pool a
    configuration's visits.
    """

    def __init__(
        self,
        defn: SweepDefinition,
        sessions_root: Path,
        endpoint: str = DEFAULT_URL,
        model: str = "",
        emit: Callable[[Any], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        nvml_module: Any | None = None,
        prompt: str | None = None,
        timeouts: Timeouts | None = None,
        *,
        store: ProfileStore | None = None,
        base: Profile | None = None,
        api: Literal["generate", "chat"] = "generate",
        keep_alive: str | int = "30m",
        ps_wait_s: float = 60.0,
        record: SweepRecord | None = None,
        gpu: GpuOptions | None = None,
    ) -> None:
        if defn.order == "shuffled" and defn.seed is None:
            defn = dataclasses.replace(defn, seed=secrets.randbelow(2**31))
        super().__init__(emit)
        self.defn = defn
        self.sessions_root = Path(sessions_root)
        self.endpoint = endpoint
        self.model = model
        self._transport = transport
        self._nvml_module = nvml_module
        #: the thermal gate between configurations and the one idle baseline (core/run/gpu.py)
        self.gpu_options = gpu or GpuOptions(nvml_module=nvml_module)
        self.timeouts = timeouts or Timeouts()
        self.api = api
        self.keep_alive = keep_alive
        self.ps_wait_s = ps_wait_s
        if prompt:
            self.prompt_label, self.prompt = "custom", prompt
        else:
            try:
                self.prompt_label, self.prompt = resolve_prompt(defn.prompt_preset, defn.prompt)
            except KeyError as exc:
                raise SweepError(str(exc.args[0])) from None
        self.record = record
        self._configs: dict[str, SweepConfig] = {}
        if record is None:
            self._configs = {c.key: c for c in expand_grid(defn, base, store)}

    @classmethod
    def from_record(
        cls,
        path: Path,
        emit: Callable[[Any], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        nvml_module: Any | None = None,
        timeouts: Timeouts | None = None,
        endpoint: str | None = None,
    ) -> SweepRunner:
        """A runner that finishes the sweep recorded at ``path`` (its folder or sweep.json): the
        configurations not done yet, with the recorded options, prompt, endpoint and model."""
        record = load_sweep_record(path)
        if record.status == "complete":
            raise SweepError(f"sweep {record.id} is already complete")
        if record.status == "running":  # its writer lives (a dead one's record reads as incomplete)
            pid = record.writer.get("pid")
            raise SweepError(f"sweep {record.id} is running in another process (pid {pid}); wait for its end")
        t, d = record.timeouts, Timeouts()
        recorded = Timeouts(
            t.get("connect_s", d.connect_s),
            t.get("first_byte_s", d.first_byte_s),
            t.get("idle_s", d.idle_s),
            call_s=t.get("call_s"),
            max_call_bytes=int(t.get("max_call_bytes", d.max_call_bytes)),
        )
        runner = cls(
            record.definition,
            record.sessions_root,
            endpoint or record.endpoint,
            record.model,
            emit,
            transport,
            nvml_module,
            record.prompt,
            timeouts or recorded,
            api="chat" if record.api == "chat" else "generate",
            keep_alive=record.keep_alive,
            ps_wait_s=record.ps_wait_s,
            record=record,
        )
        runner.prompt_label = record.prompt_label
        for c in record.configs:
            profile_name = c.profile_name or c.key
            try:
                profile = Profile(profile_name, f"sweep '{record.definition.name}'", c.options)
            except ProfileError as exc:
                raise SweepError(f"{record.path}: configuration {c.key}: {exc}") from None
            runner._configs[c.key] = SweepConfig(
                c.key, dict(profile.options), profile, c.is_baseline, c.point
            )
        return runner

    def _new_record(self) -> SweepRecord:
        defn = self.defn
        configs = list(self._configs.values())
        sweep_id = _new_sweep_id(defn.name)
        t = self.timeouts
        return SweepRecord(
            id=sweep_id,
            path=self.sessions_root / SWEEPS_DIRNAME / sweep_id,
            definition=defn,
            endpoint=self.endpoint,
            model=self.model,
            prompt=self.prompt,
            prompt_label=self.prompt_label,
            configs=[
                ConfigRecord(c.key, dict(c.options), c.is_baseline, c.profile.name, dict(c.point))
                for c in configs
            ],
            run_order=execution_order(defn, configs),
            created_at=now_iso(),
            api=self.api,
            keep_alive=self.keep_alive,
            timeouts={
                "connect_s": t.connect_s,
                "first_byte_s": t.first_byte_s,
                "idle_s": t.idle_s,
                **({"call_s": t.call_s} if t.call_s is not None else {}),
                "max_call_bytes": float(t.max_call_bytes),
            },
            ps_wait_s=self.ps_wait_s,
        )

    async def run(self) -> SweepRecord:
        """Run every configuration not done yet; the record is on disk after each one.

        Raises ChimeraError (one line) when the endpoint or model cannot be reached before anything
        starts; a fatal error later stops the sweep, saved as ``failed`` with the reason, and is raised.
        """
        self._emit(PhaseChanged(f"connecting to {self.endpoint}"))
        client = await open_client(self.endpoint, "auto", self.timeouts, self._transport)
        async with aclosing(client):
            await client.probe()
            model = (await find_model(client, self.model)).name
            if self.record is None:
                self.record = self._new_record()
                self.record.model = model
                try:
                    self.record.path.mkdir(parents=True, exist_ok=False)
                    atomic_write_text(self.record.path / RECORD_TOML, sweep_to_toml(self.defn))
                except OSError as exc:
                    raise SweepError(
                        f"cannot create sweep folder {self.record.path}: {exc.strerror or exc}"
                    ) from None
            record = self.record
            record.status, record.error, record.finished_at = "running", None, None
            record.writer = {"pid": os.getpid(), "host": socket.gethostname()}
            record.save()
            by_key = {c.key: c for c in record.configs}
            steps = pending_steps(self.defn, record.run_order, {c.key: c.visits_done for c in record.configs})
            self._emit(
                SweepStarted(
                    record.id,
                    list(record.run_order),
                    self.defn.runs,
                    record.path,
                    self.defn.order,
                    len({s.key for s in steps}),
                )
            )
            failure: ChimeraError | None = None
            async with self._watching_cancel():
                failure = await self._run_steps(client, model, steps, by_key)
        if failure is not None:
            record.status, record.error = "failed", str(failure)
        elif self.cancelled:
            record.status = "cancelled"
        else:
            record.status = "complete" if all(c.status == "done" for c in record.configs) else "partial"
        record.finished_at = now_iso()
        record.save()
        self._emit(SweepFinished(record))
        if failure is not None:
            raise failure
        return record

    async def _run_steps(
        self, client: BenchClient, model: str, steps: list[Step], by_key: dict[str, ConfigRecord]
    ) -> ChimeraError | None:
        record = self.record
        assert record is not None
        previous: Profile | None = None
        meter = GpuMeter(dataclasses.replace(self.gpu_options, cooldown_s=0.0)).open()
        try:
            await self._guarded(meter.measure_idle(lambda text: self._emit(PhaseChanged(text))))
            return await self._steps(client, model, steps, by_key, previous, meter)
        finally:
            meter.close()

    async def _steps(
        self,
        client: BenchClient,
        model: str,
        steps: list[Step],
        by_key: dict[str, ConfigRecord],
        previous: Profile | None,
        meter: GpuMeter,
    ) -> ChimeraError | None:
        record = self.record
        assert record is not None
        # each configuration's session reuses the sweep's idle baseline; the gate runs here, between them
        bench_gpu = dataclasses.replace(
            self.gpu_options,
            idle_baseline_s=0.0,
            cool_to_c=None,
            cooldown_s=0.0,
            idle_power_w=meter.idle_power_w or None,
        )
        for index, step in enumerate(steps):
            if self.cancelled:
                break
            if index > 0 and self.gpu_options.cool_to_c is not None:
                await self._guarded(meter.cool_gate(lambda text: self._emit(PhaseChanged(text)), True))
                if self.cancelled:
                    break
            if index > 0 and self.defn.cooldown_s > 0:
                self._emit(PhaseChanged(f"cooling down {self.defn.cooldown_s:g} s between configurations"))
                await self._guarded(anyio.sleep(self.defn.cooldown_s))
                if self.cancelled:
                    break
            cfg = self._configs[step.key]
            crec = by_key[step.key]
            self._emit(ConfigStarted(index, len(steps), step.key, dict(cfg.options), step.visit, step.visits))
            spec = self._spec(cfg, model, step)
            reasons = reload_reason(previous, cfg.profile)
            if index == 0 and not reasons:
                reasons = ["first configuration of the run (the options loaded before are unknown)"]
            previous = cfg.profile
            reload_ms = None if self.defn.cold else await self._timed_preload(client, spec)
            if self.cancelled:
                break
            runner = BenchRunner(spec, self.sessions_root, self._emit, self._transport, gpu=bench_gpu)
            runner.follow_cancel(self)  # cancelling the sweep cancels the configuration's session
            try:
                session = await runner.run()
            except ChimeraError as exc:
                crec.status, crec.error = "failed", str(exc)
                record.save()
                self._emit(ConfigFinished(index, step.key, None, crec.status))
                return exc
            first = _first_load_ms(session)
            if session.status == "complete":
                crec.session_ids.append(session.id)
                crec.visits_done += 1
                crec.reload_load_ms.append(first if self.defn.cold else reload_ms)
                crec.first_call_load_ms.append(first)
                if step.visit == 1:
                    crec.reload_reason = reasons
                crec.status = "done" if crec.visits_done >= step.visits else "partial"
                crec.error = None
            else:
                crec.discarded_session_ids.append(session.id)
                if session.status == "failed":
                    crec.status = "failed"
                    crec.error = session.manifest.result_or_empty.error or "the session failed"
                else:
                    crec.status = "partial" if crec.visits_done else "pending"
            visit_text = f" (visit {step.visit}/{step.visits})" if step.visits > 1 else ""
            with contextlib.suppress(SessionError, OSError, ValueError):
                _tag_session(
                    session.path,
                    record.id,
                    step.key,
                    step.visit,
                    step.visits,
                    f"{self.defn.name} · {step.key}{visit_text}",
                )
            record.save()
            self._emit(ConfigFinished(index, step.key, session.id, crec.status, _last_reload(crec)))
        return None

    def _spec(self, cfg: SweepConfig, model: str, step: Step) -> BenchSpec:
        return BenchSpec(
            model=model,
            profile=cfg.profile,
            prompt=self.prompt,
            prompt_label=self.prompt_label,
            endpoint=self.endpoint,
            runs=step.runs,
            warmup=step.warmup,
            cold=self.defn.cold,
            api=self.api,
            keep_alive=self.keep_alive,
            num_predict=self.defn.num_predict,
            timeouts=self.timeouts,
            ps_wait_s=self.ps_wait_s,
        )

    async def _timed_preload(self, client: BenchClient, spec: BenchSpec) -> float | None:
        """Apply the configuration's options with an empty request, timed by the client: the reload
        (Ollama's load reply carries no durations). None when it failed (the session then says why)."""
        self._emit(PhaseChanged(f"loading {spec.model} with {spec.profile.name}'s options"))
        t0 = time.perf_counter_ns()
        try:
            with self._cancel_scope() as scope:
                await client.load(spec.api, spec.model, spec.request_options(), spec.keep_alive)
        except ChimeraError:
            return None
        if scope.cancelled_caught:
            return None
        return round((time.perf_counter_ns() - t0) / 1e6, 3)


def _last_reload(crec: ConfigRecord) -> float | None:
    """The last recorded reload time of a configuration."""
    return crec.reload_load_ms[-1] if crec.reload_load_ms else None


def run_sweep_sync(runner: SweepRunner) -> SweepRecord:
    """Run a sweep to completion on a fresh event loop in the calling thread (the TUI's worker)."""
    return anyio.run(runner.run)


async def resume_sweep(
    record_path: Path,
    emit: Callable[[Any], None] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    nvml_module: Any | None = None,
    timeouts: Timeouts | None = None,
) -> SweepRecord:
    """Finish the sweep recorded at ``record_path``: run the configurations not yet done."""
    runner = SweepRunner.from_record(record_path, emit, transport, nvml_module, timeouts)
    return await runner.run()
