"""The sessions directory: listing from manifests alone (SessionSummary), resolving a reference,
relabelling and deleting (SessionStore). Writing and loading one session live in sessions.py."""

from __future__ import annotations

import re
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from chimera_tui.core.errors import SessionError
from chimera_tui.core.store.labels import clean_label, display_label
from chimera_tui.core.store.manifest import Manifest
from chimera_tui.core.store.sessions import (
    MANIFEST,
    RESERVED_DIRS,
    BrokenSession,
    Session,
    _pid_alive,
    default_sessions_dir,
    load_session,
    read_manifest,
    write_manifest,
)
from chimera_tui.safe_text import sanitize_line

__all__ = ["SessionStore", "SessionSummary"]


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One row of a sessions listing, read from session.toml alone (metrics.json stays unread)."""

    path: Path
    id: str
    created_at: str
    label: str
    model: str
    profile: str
    mode: str
    status: str
    runs_ok: int | None
    runs_failed: int | None
    mean_tok_s: float | None
    mean_ttft_ms: float | None
    cv_tok_s_pct: float | None
    #: the label, else `model · profile · mode` (core/store/labels.py)
    display_label: str = ""

    @classmethod
    def from_manifest(cls, path: Path, manifest: Manifest) -> SessionSummary:
        result = manifest.result
        return cls(
            path=path,
            id=manifest.id or path.name,
            created_at=manifest.created_at or "",
            label=manifest.label or "",
            display_label=display_label(manifest),
            model=(manifest.model.name if manifest.model else None) or "?",
            profile=(manifest.profile.name if manifest.profile else None) or "?",
            mode=manifest.mode or "?",
            status=(result.status or "?") if result else _unfinished_status(manifest),
            runs_ok=result.runs_ok if result else None,
            runs_failed=result.runs_failed if result else None,
            mean_tok_s=result.mean_server_decode_rate if result else None,
            mean_ttft_ms=result.mean_ttft_ms if result else None,
            cv_tok_s_pct=result.cv_server_decode_rate_pct if result else None,
        )


def _unfinished_status(manifest: Manifest) -> str:
    """A manifest without a result: still running (its writer, recorded in the manifest, alive) or
    left incomplete by a crash. Only the manifest is read (a listing never opens metrics.json)."""
    writer = manifest.extra.get("writer")
    if not isinstance(writer, dict):
        return "incomplete"
    alive = (
        writer.get("host") == socket.gethostname()
        and isinstance(writer.get("pid"), int)
        and _pid_alive(writer["pid"])
    )
    return "running" if alive else "incomplete"


#: what a session id (or a prefix of one) can hold: the characters of safe_slug, at most 255
_ID_PREFIX = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}")


class SessionStore:
    """The sessions directory: list, load, relabel and delete sessions."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else default_sessions_dir()

    def load_all(self) -> tuple[list[Session], list[BrokenSession]]:
        """Every session, newest first, and every folder that is not a readable session."""
        good: list[Session] = []
        broken: list[BrokenSession] = []
        if not self.root.is_dir():
            return good, broken
        for entry in sorted(self.root.iterdir()):
            if not entry.is_dir() or entry.name.startswith(".") or entry.name in RESERVED_DIRS:
                continue
            try:
                good.append(load_session(entry))
            except SessionError as exc:
                broken.append(BrokenSession(entry, str(exc)))
        good.sort(key=lambda s: s.manifest.created_at or "", reverse=True)
        return good, broken

    def summaries(self) -> tuple[list[SessionSummary], list[BrokenSession]]:
        """Every session's summary row, newest first, reading only manifests (fast for 1000s)."""
        good: list[SessionSummary] = []
        broken: list[BrokenSession] = []
        if not self.root.is_dir():
            return good, broken
        for entry in self.root.iterdir():
            if not entry.is_dir() or entry.name.startswith(".") or entry.name in RESERVED_DIRS:
                continue
            try:
                good.append(SessionSummary.from_manifest(entry, read_manifest(entry)))
            except SessionError as exc:
                broken.append(BrokenSession(entry, str(exc)))
        good.sort(key=lambda s: s.created_at, reverse=True)
        broken.sort(key=lambda b: b.path.name)
        return good, broken

    def _inside(self, path: Path) -> Path:
        resolved = path.resolve()
        if resolved.parent != self.root.resolve():
            raise SessionError(f"{path} is not a session folder of {self.root}")
        return resolved

    def set_label(self, path: Path, label: str) -> None:
        """Rename a session's label (its folder and id stay: they are its identity)."""
        folder = self._inside(path)
        manifest = read_manifest(folder)
        manifest.label = clean_label(label)
        write_manifest(folder, manifest)

    def delete(self, path: Path) -> None:
        """Delete one session folder (and nothing outside the sessions directory)."""
        folder = self._inside(path)
        try:
            shutil.rmtree(folder)
        except OSError as exc:
            raise SessionError(f"cannot delete {folder}: {exc.strerror or exc}") from None

    def resolve(self, ref: str) -> Path:
        """A session by path, id, or unique id prefix."""
        shown = sanitize_line(ref) if len(ref) <= 80 else sanitize_line(ref[:79]) + "…"
        as_path = Path(ref)
        try:
            if (as_path / MANIFEST).is_file():
                return as_path
        except (OSError, ValueError):  # a name too long for the file system, a NUL byte
            pass
        # an id or an id prefix: plain characters, matched by prefix (never a glob pattern or a path)
        if not _ID_PREFIX.fullmatch(ref):
            raise SessionError(f"no session '{shown}': not a session folder, nor a session id or id prefix")
        try:
            entries = list(self.root.iterdir()) if self.root.is_dir() else []
        except OSError as exc:
            raise SessionError(f"cannot list {self.root}: {exc.strerror or exc}") from None
        candidates = [p for p in entries if p.name.startswith(ref) and p.is_dir()]
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise SessionError(f"no session '{shown}' in {self.root}")
        raise SessionError(f"'{ref}' matches {len(candidates)} sessions; give more of the id")

    def load(self, ref: str) -> Session:
        return load_session(self.resolve(ref))
