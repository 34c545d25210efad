"""What the setup screen hands to the live screen: a complete, validated benchmark choice."""

from __future__ import annotations

from dataclasses import dataclass

from chimera_tui.core.store.profiles import Profile


@dataclass(frozen=True, slots=True)
class AgentChoice:
    """The second agent of a shared or dual session."""

    endpoint: str
    model: str
    profile: Profile


@dataclass(frozen=True, slots=True)
class BenchChoice:
    endpoint: str
    model: str
    profile: Profile
    mode: str
    prompt_label: str
    prompt: str
    runs: int
    warmup: int
    cold: bool
    num_predict: int | None
    second: AgentChoice | None = None
    solo_baseline: bool = True
    #: "prompt" (one prompt per run) or "workflow" (the agent workflow: ingest → analysis → report)
    workload: str = "prompt"
    #: the workflow's data folder
    data_dir: str | None = None
    #: each measured run as a cache-cold / cache-warm pair (bench --cache-cohorts)
    cache_cohorts: bool = False
