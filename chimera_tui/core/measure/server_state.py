"""The server's effective state for one endpoint (issue 14), and drift between two sessions' states.

What a server actually ran with is not what was asked for: Ollama's default context is tiered by VRAM,
`num_ctx` is clamped to the trained context, layers can spill to the CPU, versions change engines and
defaults. `server_state` flattens what the server says about itself into one dict of items, recorded
per endpoint in the session manifest (`endpoints[i].state`); `state_drift` lists the items that differ
between two sessions. Pure functions: the runner gathers the inputs (`/api/version`, `/api/ps`,
`/api/show`; llama.cpp `/props`). A missing item is absent, never guessed.
"""

from __future__ import annotations

from typing import Any

#: engine by model format (Ollama 0.30+: GGUF runs in a llama-server subprocess, safetensors in MLX)
_ENGINES = {"gguf": "llama.cpp", "safetensors": "mlx"}

#: items whose difference between sessions is drift, with how a warning names them
DRIFT_ITEMS: tuple[tuple[str, str], ...] = (
    ("version", "server version"),
    ("engine", "engine"),
    ("context_length", "effective context (/api/ps)"),
    ("gpu_share", "share of the model on the GPU"),
    ("n_ctx", "context size (/props)"),
    ("slots", "parallel slots"),
    ("quantization", "quantization"),
    ("parameters", "Modelfile parameters"),
    ("draft_model", "draft model"),
)
#: GPU shares closer than this are the same placement
GPU_SHARE_TOLERANCE = 0.01


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def show_items(show: dict[str, Any] | None) -> dict[str, Any]:
    """From `/api/show`: format and so the engine, family, parameter size, quantization,
    capabilities, the Modelfile's parameters, the trained context and a draft model."""
    if not isinstance(show, dict):
        return {}
    raw_details = show.get("details")
    details: dict[str, Any] = raw_details if isinstance(raw_details, dict) else {}
    out: dict[str, Any] = {
        "format": _str(details.get("format")),
        "family": _str(details.get("family")),
        "parameter_size": _str(details.get("parameter_size")),
        "quantization": _str(details.get("quantization_level")),
    }
    if out["format"]:
        out["engine"] = _ENGINES.get(out["format"].lower(), out["format"])
    caps = show.get("capabilities")
    if isinstance(caps, list) and caps:
        out["capabilities"] = [c for c in caps if isinstance(c, str)]
    params = _str(show.get("parameters"))
    if params:
        out["parameters"] = " ".join(line.strip() for line in params.splitlines() if line.strip())
    info = show.get("model_info")
    if isinstance(info, dict):
        arch = info.get("general.architecture")
        if isinstance(arch, str):
            out["trained_context"] = _int(info.get(f"{arch}.context_length"))
    modelfile = _str(show.get("modelfile"))
    if modelfile:
        drafts = [
            line.split(None, 1)[1] for line in modelfile.splitlines() if line.upper().startswith("DRAFT ")
        ]
        if drafts:
            out["draft_model"] = drafts[0].strip()
    return {k: v for k, v in out.items() if v is not None}


def ps_items(entry: Any) -> dict[str, Any]:
    """From the model's `/api/ps` entry (a LoadedModel): effective context, sizes, GPU share, expiry."""
    if entry is None:
        return {}
    out: dict[str, Any] = {
        "context_length": _int(getattr(entry, "context_length", None)),
        "size": _int(getattr(entry, "size_bytes", None)),
        "size_vram": _int(getattr(entry, "size_vram_bytes", None)),
        "expires_at": _str(getattr(entry, "expires_at", None)),
    }
    if out["size"] and out["size_vram"] is not None:
        out["gpu_share"] = round(out["size_vram"] / out["size"], 4)
    return {k: v for k, v in out.items() if v is not None}


def props_items(props: dict[str, Any] | None) -> dict[str, Any]:
    """From llama.cpp `/props`: context size, slots, model path, build."""
    if not isinstance(props, dict):
        return {}
    settings = props.get("default_generation_settings")
    out = {
        "n_ctx": _int(settings.get("n_ctx")) if isinstance(settings, dict) else None,
        "slots": _int(props.get("total_slots")),
        "model_path": _str(props.get("model_path")),
        "build_info": _str(props.get("build_info")),
    }
    return {k: v for k, v in out.items() if v is not None}


def server_state(
    version: str | None,
    show: dict[str, Any] | None = None,
    ps_entry: Any = None,
    props: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every known item of the endpoint's effective state, flat (absent when unknown)."""
    out: dict[str, Any] = {"version": version} if version else {}
    out |= show_items(show)
    out |= ps_items(ps_entry)
    out |= props_items(props)
    return out


def state_drift(a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[tuple[str, Any, Any]]:
    """(label, a's value, b's value) for each drift item both states have and that differs."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return []
    out = []
    for key, label in DRIFT_ITEMS:
        if key not in a or key not in b:
            continue
        x, y = a[key], b[key]
        if key == "gpu_share" and isinstance(x, int | float) and isinstance(y, int | float):
            if abs(x - y) <= GPU_SHARE_TOLERANCE:
                continue
        elif x == y:
            continue
        out.append((label, x, y))
    return out


#: the items a one-line summary shows, in order, with how each reads
_SUMMARY_ITEMS: tuple[tuple[str, str], ...] = (
    ("engine", "engine {}"),
    ("quantization", "{}"),
    ("parameter_size", "{}"),
    ("context_length", "ctx {} (effective)"),
    ("n_ctx", "ctx {} (/props)"),
    ("trained_context", "trained ctx {}"),
    ("gpu_share", "{:.0%} on GPU"),
    ("slots", "{} slots"),
    ("draft_model", "draft {}"),
)


def state_summary(state: dict[str, Any] | None) -> str:
    """The state on one line for the setup screen and session detail ("" when nothing is known)."""
    if not isinstance(state, dict):
        return ""
    parts = []
    for key, template in _SUMMARY_ITEMS:
        value = state.get(key)
        if value is None:
            continue
        try:
            parts.append(template.format(value))
        except (ValueError, TypeError):  # a hostile server's odd value: show it as text
            parts.append(f"{key} {value}")
    return " · ".join(parts)
