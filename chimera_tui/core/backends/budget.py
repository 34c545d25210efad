"""What one streamed call may cost at most: a total deadline, and caps on the bytes and tokens read.

The three timeouts bound silence; these bound a server that never falls silent (streams forever, or
sends one byte a second). Defaults are derived from the request:

- the deadline is `first_byte_s + idle_s + N × 0.5 s` (a floor of 2 tokens/s on average over the
  whole answer), N being `num_predict` when it is positive, else `num_ctx` when given, else 32,768;
  `Timeouts.call_s` (`--call-timeout`) replaces it;
- the token cap is `2 × N + 64` (thinking tokens count: servers count them toward `num_predict` too);
- the byte cap is `Timeouts.max_call_bytes` (256 MiB; `--max-call-mib`).

Hitting one ends the run as failed: a `BenchTimeout("call")` or a `CallLimitExceeded` (kind
`limit_exceeded`) naming the limit; the tokens received so far are kept in the record.
"""

from __future__ import annotations

from typing import Any

from chimera_tui.core.errors import ChimeraError

#: the slowest average rate a call's deadline allows for (seconds per token)
SECONDS_PER_TOKEN = 0.5
#: N when the request sets neither num_predict nor num_ctx
DEFAULT_TOKENS = 32_768
DEFAULT_MAX_CALL_BYTES = 256 * 1024 * 1024


class CallLimitExceeded(ChimeraError):
    """A streamed call passed its byte or token cap."""

    kind = "limit_exceeded"


def expected_tokens(body: dict[str, Any]) -> int:
    """N: num_predict when positive, else num_ctx when given, else DEFAULT_TOKENS."""
    options = body.get("options")
    options = options if isinstance(options, dict) else {}
    for key in ("num_predict", "num_ctx"):
        value = options.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return DEFAULT_TOKENS


def call_deadline_s(first_byte_s: float, idle_s: float, call_s: float | None, body: dict[str, Any]) -> float:
    """The whole call's deadline in seconds: `call_s` when set, else derived (see the module doc)."""
    if call_s is not None:
        return call_s
    return first_byte_s + idle_s + expected_tokens(body) * SECONDS_PER_TOKEN


def max_tokens(body: dict[str, Any]) -> int:
    return 2 * expected_tokens(body) + 64


def too_many_bytes(received: int, cap: int) -> CallLimitExceeded:
    mib = cap / (1024 * 1024)
    return CallLimitExceeded(
        f"the server sent more than {mib:g} MiB in one call ({received:,} bytes); stopped reading "
        "(byte cap, --max-call-mib)"
    )


def too_many_tokens(count: int, cap: int) -> CallLimitExceeded:
    return CallLimitExceeded(
        f"the server sent {count:,} tokens, more than the cap of {cap:,} for this call "
        "(2 × num_predict + 64); stopped reading (token cap)"
    )
