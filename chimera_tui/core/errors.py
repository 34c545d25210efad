"""Errors the engine raises. Each carries one clear line for the user (`str(err)`)."""

from __future__ import annotations

from chimera_tui.safe_text import sanitize_line

#: the most of a server-supplied text (an error message, model names) that goes into one error line
MAX_SERVER_TEXT = 500


class ChimeraError(Exception):
    """Base class: the message is a complete sentence fit to show a user as is."""

    #: short machine-readable cause, recorded with failed runs
    kind: str = "error"


class EndpointUnreachable(ChimeraError):
    kind = "unreachable"


class NotOllama(ChimeraError):
    """The port answers, but not with the Ollama API."""

    kind = "not_ollama"


class ModelNotFound(ChimeraError):
    kind = "model_not_found"

    def __init__(self, model: str, available: list[str], endpoint: str = "") -> None:
        self.model = model
        self.available = available
        where = f" on {endpoint}" if endpoint else ""
        names = sanitize_line(", ".join(available))[:MAX_SERVER_TEXT] if available else "none"
        model = sanitize_line(model)
        super().__init__(f"model '{model}' not found{where}; available: {names}")


class ServerError(ChimeraError):
    """An HTTP error status with the server's `{"error": ...}` message."""

    kind = "server_error"

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = sanitize_line(message)[:MAX_SERVER_TEXT]
        super().__init__(f"server returned HTTP {status}: {self.message}")


class StreamError(ChimeraError):
    """The stream broke after it started: an error line, a cut, or undecodable data."""

    kind = "stream_error"


class BenchTimeout(ChimeraError):
    """A timeout, named for which one fired (connect, first_byte, idle; ps_wait in the runner)."""

    kind = "timeout"

    #: what the user was waiting for, and the name of the setting, per timeout
    LABELS = {
        "connect": ("connecting to", "connect timeout"),
        "first_byte": ("waiting for the first byte from", "first-byte timeout"),
        "idle": ("waiting for the next line from", "idle timeout"),
    }

    def __init__(self, which: str, seconds: float, endpoint: str = "", doing: str | None = None) -> None:
        self.which = which
        self.seconds = seconds
        label, setting = self.LABELS.get(which, (which, ""))
        text = f"timed out after {seconds:g} s {doing or label} {endpoint}".strip()
        super().__init__(f"{text} ({setting})" if setting else text)


class ProfileError(ChimeraError):
    kind = "invalid_profile"


class SessionError(ChimeraError):
    kind = "session_error"


class Cancelled(ChimeraError):
    kind = "cancelled"


class RemoteModelRefused(ChimeraError):
    """A remote / cloud model: its speed is another machine's, so it is refused unless allowed."""

    kind = "remote_model"

    def __init__(self, model: str, answered: bool = False) -> None:
        how = "the server answered from a remote host (remote_host)" if answered else "it is a cloud model"
        super().__init__(
            f"{model}: {how}, so its figures would not measure this machine; "
            "pass --allow-remote to measure it anyway (its runs are then flagged 'remote model')"
        )
