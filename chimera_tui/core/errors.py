"""Errors the engine raises. Each carries one clear line for the user (`str(err)`)."""

from __future__ import annotations


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
        names = ", ".join(available) if available else "none"
        super().__init__(f"model '{model}' not found{where}; available: {names}")


class ServerError(ChimeraError):
    """An HTTP error status with the server's `{"error": ...}` message."""

    kind = "server_error"

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"server returned HTTP {status}: {message}")


class StreamError(ChimeraError):
    """The stream broke after it started: an error line, a cut, or undecodable data."""

    kind = "stream_error"


class BenchTimeout(ChimeraError):
    """A timeout, named for which one fired (connect, first_byte or idle)."""

    kind = "timeout"

    def __init__(self, which: str, seconds: float, endpoint: str = "") -> None:
        self.which = which
        self.seconds = seconds
        labels = {
            "connect": "connecting to",
            "first_byte": "waiting for the first byte from",
            "idle": "waiting for the next line from",
        }
        super().__init__(f"timed out after {seconds:g} s {labels.get(which, which)} {endpoint}".strip())


class ProfileError(ChimeraError):
    kind = "invalid_profile"


class SessionError(ChimeraError):
    kind = "session_error"


class Cancelled(ChimeraError):
    kind = "cancelled"
