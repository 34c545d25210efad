"""Issue 14 (drift): profile options Ollama ignores are flagged before the run, by the server's
version; multi-agent sessions refuse remote models and record each endpoint's effective state."""

from __future__ import annotations

from pathlib import Path

import pytest

from chimera_tui.core.backends.ollama import Timeouts
from chimera_tui.core.backends.option_support import (
    ignored_ollama_options,
    ignored_options_warning,
    parse_version,
)
from chimera_tui.core.errors import RemoteModelRefused
from chimera_tui.core.reports._common import session_notes
from chimera_tui.core.run.events import PhaseChanged, RunEvent, RunStarted
from chimera_tui.core.run.multi import AgentSpec, MultiRunner, MultiSpec
from chimera_tui.core.run.single import BenchRunner
from chimera_tui.core.store.profiles import Profile, ProfileError, validate_options
from chimera_tui.core.store.sessions import load_session
from chimera_tui.sim import SimModel
from tests.helpers import fast_sim, spec

pytestmark = pytest.mark.anyio
MIRO = Profile("miro", "", {"temperature": 0.5, "mirostat": 2, "tfs_z": 1.0}, None, False)


def test_versions_parse_loosely() -> None:
    assert parse_version("0.12.3") == (0, 12, 3)
    assert parse_version("v0.30.1-rc0") == (0, 30, 1)
    assert parse_version("0.7") == (0, 7, 0)
    assert parse_version("unknown") is None and parse_version(None) is None


def test_removed_options_validate_but_typos_do_not() -> None:
    assert validate_options({"mirostat": 2, "penalize_newline": True}, "p") == {
        "mirostat": 2,
        "penalize_newline": True,
    }
    with pytest.raises(ProfileError, match="mirostat"):
        validate_options({"mirostat": 5}, "p")  # still range-checked
    with pytest.raises(ProfileError, match="unknown option"):
        validate_options({"mirostatt": 1}, "p")


def test_ignored_by_version() -> None:
    options = {"numa": True, "tfs_z": 1.0, "mirostat": 1, "temperature": 0.2}
    assert [o.name for o in ignored_ollama_options(options, "0.33.0")] == ["numa", "tfs_z", "mirostat"]
    assert all(o.certain for o in ignored_ollama_options(options, "0.33.0"))
    # 0.5.2 dropped tfs_z but not yet mirostat (0.7.0); numa went in 0.3.4
    assert [o.name for o in ignored_ollama_options(options, "0.5.2")] == ["numa", "tfs_z"]
    assert ignored_ollama_options(options, "0.3.0") == []
    unknown = ignored_ollama_options(options, None)
    assert [o.name for o in unknown] == ["numa", "tfs_z", "mirostat"] and not any(o.certain for o in unknown)
    assert "may be ignored" in (ignored_options_warning(unknown, "http://x") or "")
    assert ignored_options_warning([], "http://x") is None


async def test_bench_warns_before_the_run_and_records_the_options(tmp_path: Path) -> None:
    events: list[RunEvent] = []
    sim = fast_sim()
    runner = BenchRunner(
        spec(profile=MIRO, runs=1, warmup=0), tmp_path, emit=events.append, transport=sim.transport()
    )
    session = await runner.run()
    phases = [e.message for e in events if isinstance(e, PhaseChanged)]
    warning = next(p for p in phases if p.startswith("warning:"))
    assert "mirostat (ignored: removed in Ollama 0.7.0)" in warning and "tfs_z" in warning
    said = next(i for i, e in enumerate(events) if isinstance(e, PhaseChanged) and e.message == warning)
    assert said < next(i for i, e in enumerate(events) if isinstance(e, RunStarted))  # before the run
    saved = load_session(session.path)
    assert saved.manifest.endpoint_list[0].options_not_applied == ["mirostat", "tfs_z"]
    assert any(
        line.startswith("options not applied by") and "mirostat" in line for line in session_notes(saved)
    )


async def test_no_warning_for_a_clean_profile(tmp_path: Path) -> None:
    events: list[RunEvent] = []
    session = await BenchRunner(
        spec(runs=1, warmup=0), tmp_path, emit=events.append, transport=fast_sim().transport()
    ).run()
    assert not any(isinstance(e, PhaseChanged) and e.message.startswith("warning:") for e in events)
    assert load_session(session.path).manifest.endpoint_list[0].options_not_applied == []


def _multi(urls: list[str], model: str = "gemma3:latest", **kw: object) -> MultiSpec:
    agents = [AgentSpec(u, model, MIRO) for u in urls]
    args: dict = {"runs": 1, "warmup": 0, "num_predict": 10, "timeouts": Timeouts(2, 10, 5), "ps_wait_s": 5.0}
    args.update(kw)
    return MultiSpec("dual", agents, "Say hi", solo_baseline=False, **args)  # type: ignore[arg-type]


async def test_multi_records_state_and_ignored_options_per_endpoint(tmp_path: Path) -> None:
    sims = {"http://a": fast_sim(), "http://b": fast_sim(version="0.5.3")}
    events: list[RunEvent] = []
    runner = MultiRunner(
        _multi(list(sims)), tmp_path, events.append, transport_factory=lambda u: sims[u].transport()
    )
    session = await runner.run()
    saved = load_session(session.path)
    a, b = saved.manifest.endpoint_list
    assert a.options_not_applied == ["mirostat", "tfs_z"] and b.options_not_applied == ["tfs_z"]
    assert a.state and a.state["version"] == "0.33.0" and a.state["engine"] == "llama.cpp"
    assert b.state and b.state["version"] == "0.5.3"
    warnings = [e.message for e in events if isinstance(e, PhaseChanged) and "does not apply" in e.message]
    assert len(warnings) == 2 and warnings[0].startswith("agent 1:")


async def test_multi_refuses_a_cloud_model_unless_allowed(tmp_path: Path) -> None:
    cloud = "gpt-oss:120b-cloud"
    sims = {"http://a": fast_sim(), "http://b": fast_sim()}
    for sim in sims.values():
        sim.config.models.append(SimModel(cloud, remote_host="https://ollama.com:443"))

    def factory(url: str):  # type: ignore[no-untyped-def]
        return sims[url].transport()

    with pytest.raises(RemoteModelRefused, match="--allow-remote"):
        await MultiRunner(_multi(list(sims), cloud), tmp_path, None, transport_factory=factory).run()
    session = await MultiRunner(
        _multi(list(sims), cloud, allow_remote=True), tmp_path, None, transport_factory=factory
    ).run()
    assert session.manifest.workload.allow_remote is True
