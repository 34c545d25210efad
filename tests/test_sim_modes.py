"""The simulator's three concurrency modes on a controlled clock, against the closed-form figures.

A virtual clock replaces the simulator's `perf_counter_ns` and its token sleeps: a sleeper waits
until the driver advances the clock to its deadline, and the driver advances only after letting
every task run as far as it can (a fixed number of zero-length yields, which needs no wall time). The
client's send / first-token / end stamps are read from the same clock. Nothing here depends on how
busy the machine is: the figures are the schedule's own, exact to one token gap.

2 agents, each call alone T = 100 tokens at 100 tok/s = 1 s (prefill negligible):
- fifo (one slot):             capacity 50%, research 75%,  overlap 50%
- shared-compute (two slots, one compute budget): capacity 50%, research 100%, overlap 100%
- independent (two slots at full speed):          capacity 100%, research 100%, overlap 100%
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import anyio
import httpx
import pytest

from chimera_tui.core.measure.concurrency import AgentCall, SoloBaseline, round_metrics
from chimera_tui.core.measure.metrics import CallMetrics
from chimera_tui.sim import OllamaSimulator, SimConfig, app, completion, sim_mode_settings

pytestmark = pytest.mark.anyio
TOKENS = 100
RATE = 100.0  # tok/s: a call alone takes 1 s of virtual time
GAP_PCT = 100.0 / TOKENS  # one token gap, in percent of a call: the schedule's granularity


class VirtualClock:
    """perf_counter_ns and sleep on virtual time; `settle` lets every task run as far as it can."""

    def __init__(self) -> None:
        self.now = 10**12
        self._sleepers: list[tuple[int, int, anyio.Event]] = []
        self._order = itertools.count()
        self._real_sleep = anyio.sleep

    def perf_counter_ns(self) -> int:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await self._real_sleep(0)
            return
        event = anyio.Event()
        heapq.heappush(self._sleepers, (self.now + round(seconds * 1e9), next(self._order), event))
        await event.wait()

    async def settle(self) -> None:
        for _ in range(200):  # in-process HTTP: each chunk takes a few hops between the tasks
            await self._real_sleep(0)

    async def run_until(self, done: Callable[[], bool]) -> None:
        """Advance to each next deadline, waking its sleepers, until `done()`."""
        await self.settle()
        while not done():
            assert self._sleepers, "nothing is sleeping and the calls are not done: a deadlock"
            deadline = self._sleepers[0][0]
            self.now = deadline
            while self._sleepers and self._sleepers[0][0] <= deadline:
                heapq.heappop(self._sleepers)[2].set()
            await self.settle()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    c = VirtualClock()
    fake_time = SimpleNamespace(perf_counter_ns=c.perf_counter_ns)
    monkeypatch.setattr(completion, "time", fake_time)
    monkeypatch.setattr(app, "time", fake_time)
    monkeypatch.setattr(completion, "anyio", SimpleNamespace(sleep=c.sleep))
    return c


async def _call(client: httpx.AsyncClient, clock: VirtualClock, agent: int, out: dict[int, Any]) -> None:
    body = {"model": "gemma3:latest", "prompt": f"agent {agent}", "options": {"num_predict": TOKENS}}
    send = clock.now
    first: int | None = None
    final: dict[str, Any] = {}
    async with client.stream("POST", "/api/generate", json=body) as response:
        async for line in response.aiter_lines():
            if not line:
                continue
            first = clock.now if first is None else first
            final = json.loads(line)
    ns = 1e6
    metrics = CallMetrics(
        eval_count=final["eval_count"],
        queue_gap_ms=(
            final["total_duration"]
            - final.get("load_duration", 0)
            - final.get("prompt_eval_duration", 0)
            - final["eval_duration"]
        )
        / ns,
        ttft_ms=(first - send) / ns if first is not None else None,
        server_decode_rate=final["eval_count"] / (final["eval_duration"] / 1e9),
    )
    out[agent] = AgentCall(agent, True, send, clock.now, metrics, first)


async def _figures(clock: VirtualClock, mode: str) -> dict[str, Any]:
    settings = sim_mode_settings(mode, 2)
    config = SimConfig(tokens_per_s=RATE, prompt_tokens_per_s=1e9, load_s=0.0, jitter=0.0, **settings)  # type: ignore[arg-type]
    sim = OllamaSimulator(config)
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as client:
        solo: dict[int, SoloBaseline] = {}
        for agent in range(2):  # each agent alone, one after the other
            alone: dict[int, Any] = {}
            async with anyio.create_task_group() as tg:
                tg.start_soon(_call, client, clock, agent, alone)
                await clock.run_until(lambda alone=alone: len(alone) == 1)  # type: ignore[misc]
            c = alone[agent]
            solo[agent] = SoloBaseline(
                c.metrics.server_decode_rate, c.metrics.ttft_ms, (c.t_end_ns - c.t_send_ns) / 1e6
            )
        together: dict[int, Any] = {}
        release = clock.now
        async with anyio.create_task_group() as tg:
            for agent in range(2):
                tg.start_soon(_call, client, clock, agent, together)
            await clock.run_until(lambda: len(together) == 2)
    calls = [together[0], together[1]]
    return round_metrics(0, False, calls, solo, release_ns=release).to_dict()


@pytest.mark.parametrize(
    ("mode", "capacity", "research", "overlap"),
    [
        ("fifo", 50.0, 75.0, 50.0),
        ("shared-compute", 50.0, 100.0, 100.0),
        ("independent", 100.0, 100.0, 100.0),
    ],
)
async def test_the_three_modes_give_their_closed_form_figures(
    clock: VirtualClock, mode: str, capacity: float, research: float, overlap: float
) -> None:
    r = await _figures(clock, mode)
    assert r["status"] == "ok"
    assert r["capacity_efficiency_pct"] == pytest.approx(capacity, abs=GAP_PCT)
    assert r["research_efficiency_pct"] == pytest.approx(research, abs=GAP_PCT)
    assert r["overlap_efficiency_pct"] == pytest.approx(overlap, abs=GAP_PCT)
    for a in r["timeline"]:  # the release is the origin; both requests left at once
        assert a["send_ms"] == 0.0 and a["first_token_ms"] <= a["end_ms"]
    if mode == "fifo":
        assert r["cause"] == "waiting for a slot (server queue gap)"
    if mode == "shared-compute":  # each stream at half the solo decode rate
        for a in r["timeline"]:
            assert a["decode_rate"] == pytest.approx(a["solo_decode_rate"] / 2, rel=0.02)
        assert r["cause"] == "slower decoding (decode rate below solo)"
