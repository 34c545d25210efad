"""Fixtures of the fault suite: a fake Ollama on a real socket."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.fault_server import FakeOllama, FaultServer


@pytest.fixture
def ollama() -> Iterator[tuple[FakeOllama, FaultServer]]:
    """A FakeOllama served on a free loopback port; script `fake.stream` per test."""
    fake = FakeOllama()
    with FaultServer(fake) as server:
        yield fake, server


# Property-based tests: no example database in the work tree; on CI (CI=true) the examples are
# derandomized so that a run is reproducible. Locally each run explores new examples.
settings.register_profile("dev", database=None, deadline=None)
settings.register_profile("ci", database=None, deadline=None, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
