"""An Ollama-API-compatible simulator, so everything runs and is tested where no Ollama exists.

sim = OllamaSimulator(SimConfig(tokens_per_s=500))
httpx.AsyncClient(transport=sim.transport(), base_url="http://sim")   # in process, streaming
with start_background(sim) as running: ollama.Client(host=running.url)  # a real port
"""

from chimera_tui.sim.config import (
    SIM_MODES,
    ComputeBudget,
    SimConfig,
    SimFaults,
    SimModel,
    default_models,
    sim_mode_settings,
)
from chimera_tui.sim.server import RunningSimulator, serve, start_background
from chimera_tui.sim.simulator import OllamaSimulator
from chimera_tui.sim.state import LoadedModel
from chimera_tui.sim.transport import SimTransport

__all__ = [
    "SIM_MODES",
    "ComputeBudget",
    "LoadedModel",
    "OllamaSimulator",
    "RunningSimulator",
    "SimConfig",
    "SimFaults",
    "SimModel",
    "SimTransport",
    "default_models",
    "serve",
    "sim_mode_settings",
    "start_background",
]
