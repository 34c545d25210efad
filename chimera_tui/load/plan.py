"""What a load run does, as plain data: the CLI builds it, the master reads it from a file and sends
it to every worker in a Locust message. No Locust here (the CLI imports this module)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

#: after the end (duration reached or quota used), how long calls in flight may still finish
DEFAULT_GRACE_S = 30.0


@dataclass(slots=True)
class LoadPlan:
    """The workload (the request every user sends) and the schedule (closed or open loop)."""

    endpoints: list[str]
    backend: str  # "ollama" or "openai": the kind the CLI detected
    server: str  # the flavour (ollama, llama.cpp, vllm, openai ...): OpenAI option names depend on it
    model: str
    prompt: str
    api: str = "generate"
    unique_prompt: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    keep_alive: str | int = "30m"
    think: bool | str | None = None
    api_key_env: str | None = None
    # timeouts (core/backends/ollama.Timeouts, as numbers)
    connect_s: float = 5.0
    first_byte_s: float = 300.0
    idle_s: float = 60.0
    call_s: float | None = None
    max_call_bytes: int = 256 * 1024 * 1024
    # schedule: closed loop (users, spawn_rate) or open loop (rate: arrivals per second, Poisson)
    users: int | None = None
    spawn_rate: float | None = None
    rate: float | None = None
    duration_s: float | None = None
    requests: int | None = None
    grace_s: float = DEFAULT_GRACE_S
    #: worker processes the master waits for before it starts
    workers: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadPlan:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def open_loop(self) -> bool:
        return self.rate is not None

    def locust_users(self) -> int:
        """Locust users to start: closed loop, `users`; open loop, one arrival generator per worker."""
        return self.workers if self.open_loop else int(self.users or 1)

    def describe(self) -> str:
        """One line: `256 users (spawn 64/s), 30 s` or `open loop 40 req/s, 1000 requests`."""
        if self.open_loop:
            head = f"open loop {self.rate:g} req/s (Poisson)"
        else:
            head = f"{self.users} users (spawn {self.spawn_rate:g}/s)"
        ends = [f"{self.duration_s:g} s"] if self.duration_s is not None else []
        if self.requests is not None:
            ends.append(f"{self.requests} requests")
        return f"{head}, {' or '.join(ends)}, {self.workers} worker process(es)"


def quotas(requests: int | None, workers: int) -> list[int | None]:
    """`--requests N` split over the workers (the first ones take the remainder)."""
    if requests is None:
        return [None] * workers
    base, extra = divmod(requests, workers)
    return [base + (1 if i < extra else 0) for i in range(workers)]


@dataclass(slots=True)
class MasterConfig:
    """What the CLI hands the master process (a JSON file): the plan, where the session goes, the
    manifest the CLI prepared from its probe, where to listen, and where to send snapshots."""

    plan: LoadPlan
    sessions_root: str
    manifest: dict[str, Any]
    bind_host: str = "127.0.0.1"
    bind_port: int = 5557
    #: how long to wait for the workers to connect
    connect_wait_s: float = 60.0
    #: a Unix socket to send the snapshots to as well (the TUI's), or None
    snapshot_socket: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_dict(),
            "sessions_root": self.sessions_root,
            "manifest": self.manifest,
            "bind_host": self.bind_host,
            "bind_port": self.bind_port,
            "connect_wait_s": self.connect_wait_s,
            "snapshot_socket": self.snapshot_socket,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MasterConfig:
        return cls(
            plan=LoadPlan.from_dict(data["plan"]),
            sessions_root=str(data["sessions_root"]),
            manifest=dict(data["manifest"]),
            bind_host=str(data.get("bind_host", "127.0.0.1")),
            bind_port=int(data.get("bind_port", 5557)),
            connect_wait_s=float(data.get("connect_wait_s", 60.0)),
            snapshot_socket=data.get("snapshot_socket")
            if isinstance(data.get("snapshot_socket"), str)
            else None,
        )
