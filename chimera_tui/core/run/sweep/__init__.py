"""Parameter sweeps (TR111): a grid of Ollama options, one session per configuration, ranked vs a baseline.

A sweep file (``sweeps/tr111.toml``)::

    name = "tr111"
    base_profile = "baseline_default"    # the grid's options are laid over this profile's options
    include_baseline = true              # also run the base profile itself: the "baseline" configuration
    runs = 3                             # measured calls per configuration
    warmup = 1                           # warm-up calls per configuration (absorb the reload)
    order = "sequential"                 # or "shuffled" (with `seed`) or "interleaved"
    prompt_preset = "tr_report"
    [grid]
    num_gpu = [60, 80, 120]
    num_ctx = [256, 512, 1024]
    temperature = [0.6, 0.8]

Running it writes ordinary sessions (one per configuration; one per visit in interleaved order) into the
sessions directory, and a **sweep record** in ``<sessions>/sweeps/<sweep-id>/``: ``sweep.toml`` (the
definition, loadable again with :func:`load_sweep`) and ``sweep.json`` (endpoint, model, prompt and,
per configuration, its status, sessions and reload times), rewritten atomically after every
configuration, so a sweep stopped half-way keeps what it measured and :func:`resume_sweep` finishes it.

Ranking, success rate, heat maps and the best profile are pure functions over loaded sessions.

Modules: ``definition`` (SweepDefinition, TOML, built-in sweeps), ``grid`` (expansion and ordering),
``events``, ``record`` (the resumable sweep record), ``runner`` (SweepRunner, resume), ``ranking``
(ranking, success rate), ``heatmap``, ``best`` (the best configuration as a profile). The names below
are re-exported for callers.
"""

from __future__ import annotations

from chimera_tui.core.run.sweep.best import best_profile
from chimera_tui.core.run.sweep.definition import (
    BASELINE_KEY,
    ORDERS,
    SweepDefinition,
    SweepError,
    builtin_sweeps_dir,
    default_tr111_sweep,
    find_sweep,
    load_sweep,
    sweep_from_dict,
    sweep_to_dict,
    sweep_to_toml,
)
from chimera_tui.core.run.sweep.events import ConfigFinished, ConfigStarted, SweepFinished, SweepStarted
from chimera_tui.core.run.sweep.grid import (
    PlannedRun,
    SweepConfig,
    config_key,
    execution_order,
    expand_grid,
    plan,
)
from chimera_tui.core.run.sweep.heatmap import HeatMap, heatmap, heatmaps_by
from chimera_tui.core.run.sweep.ranking import RankRow, rank, smallest_p_value, success_rate
from chimera_tui.core.run.sweep.record import (
    RECORD_JSON,
    RECORD_TOML,
    SWEEPS_DIRNAME,
    ConfigRecord,
    SweepRecord,
    list_sweeps,
    load_sweep_record,
    load_sweep_sessions,
    pool_sessions,
    resolve_sweep,
)
from chimera_tui.core.run.sweep.runner import SweepRunner, resume_sweep, run_sweep_sync

__all__ = [
    "BASELINE_KEY",
    "ORDERS",
    "RECORD_JSON",
    "RECORD_TOML",
    "SWEEPS_DIRNAME",
    "ConfigFinished",
    "ConfigRecord",
    "ConfigStarted",
    "HeatMap",
    "PlannedRun",
    "RankRow",
    "SweepConfig",
    "SweepDefinition",
    "SweepError",
    "SweepFinished",
    "SweepRecord",
    "SweepRunner",
    "SweepStarted",
    "best_profile",
    "builtin_sweeps_dir",
    "config_key",
    "default_tr111_sweep",
    "execution_order",
    "expand_grid",
    "find_sweep",
    "heatmap",
    "heatmaps_by",
    "list_sweeps",
    "load_sweep",
    "load_sweep_record",
    "load_sweep_sessions",
    "plan",
    "pool_sessions",
    "rank",
    "resolve_sweep",
    "resume_sweep",
    "run_sweep_sync",
    "smallest_p_value",
    "success_rate",
    "sweep_from_dict",
    "sweep_to_dict",
    "sweep_to_toml",
]
