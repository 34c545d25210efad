"""What the TUI remembers between starts: the theme and the last setup choices, in
``<user config>/preferences.json`` (``$CHIMERA_TUI_PREFERENCES`` overrides the file). A missing,
unreadable or malformed file reads as no preferences; unknown or mistyped fields are ignored."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from chimera_tui.core.store.atomic import atomic_write_text
from chimera_tui.core.store.safe_read import read_text
from chimera_tui.places import user_config_dir

FILE_NAME = "preferences.json"
MAX_BYTES = 64 * 1024
log = logging.getLogger(__name__)


def preferences_path() -> Path:
    """``$CHIMERA_TUI_PREFERENCES``, else ``<user config>/preferences.json``."""
    explicit = os.environ.get("CHIMERA_TUI_PREFERENCES")
    return Path(explicit).expanduser() if explicit else user_config_dir() / FILE_NAME


@dataclass(slots=True)
class SetupChoices:
    """The setup screen's last choices (None: not remembered, the screen's default applies)."""

    endpoint: str | None = None
    endpoint_b: str | None = None
    model: str | None = None
    profile: str | None = None
    mode: str | None = None
    workload: str | None = None
    preset: str | None = None
    runs: str | None = None
    warmup: str | None = None
    num_predict: str | None = None
    cold: bool | None = None


@dataclass(slots=True)
class Preferences:
    theme: str | None = None
    setup: SetupChoices = field(default_factory=SetupChoices)


def _typed(cls: type[Any], data: Any) -> dict[str, Any]:
    """The fields of `cls` present in `data` with the type they should have (others dropped)."""
    if not isinstance(data, dict):
        return {}
    kept: dict[str, Any] = {}
    for f in fields(cls):
        value = data.get(f.name)
        if "bool" in str(f.type):
            if isinstance(value, bool):
                kept[f.name] = value
        elif isinstance(value, str) and len(value) <= 4096:
            kept[f.name] = value
    return kept


def load_preferences(path: Path | None = None) -> Preferences:
    path = path or preferences_path()
    try:
        data = json.loads(read_text(path, MAX_BYTES))
    except FileNotFoundError:
        return Preferences()
    except (OSError, ValueError) as exc:
        log.warning("preferences %s not read: %s", path, exc)
        return Preferences()
    if not isinstance(data, dict):
        return Preferences()
    theme = data.get("theme")
    return Preferences(
        theme=theme if isinstance(theme, str) else None,
        setup=SetupChoices(**_typed(SetupChoices, data.get("setup"))),
    )


def save_preferences(prefs: Preferences, path: Path | None = None) -> None:
    """Write `prefs` atomically; a failure is logged, never raised (remembering is a comfort)."""
    path = path or preferences_path()
    try:
        atomic_write_text(path, json.dumps(asdict(prefs), indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        log.warning("preferences %s not written: %s", path, exc)
