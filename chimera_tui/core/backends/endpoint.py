"""Endpoint addresses: parsed as Ollama parses `OLLAMA_HOST`, and never carrying a secret past here.

`parse_endpoint` follows Ollama's `envconfig.Host()` (and the Python SDK's `_parse_host`): no scheme
means `http` and port 11434; `http://host` means port 80 and `https://host` port 443; `:11435` means
127.0.0.1; an IPv6 address goes in brackets (`[::1]:11434`; a bare one takes the default port). One
difference: where Ollama falls back to the default for a port it cannot read, this refuses with one
line naming the problem (a benchmark against the wrong port measures nothing). The unspecified
addresses a server binds to (`0.0.0.0`, `::`, Ollama's usual `OLLAMA_HOST=0.0.0.0`) mean "this machine"
to a client: they become 127.0.0.1 / ::1.

User-info (`http://alice:secret@host`) is taken out of the URL: the returned URL, which is what is
displayed, stored and logged, has none. The credentials stay in this process's memory, keyed by that
URL, and the clients send them (HTTP basic auth) with each request (`auth_for`). The password is also
registered with `chimera_tui.safe_text.register_secret`, so a server that echoes it back has it
redacted from every message.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import unquote

import httpx

from chimera_tui.core.errors import ChimeraError
from chimera_tui.safe_text import register_secret, sanitize_line

DEFAULT_PORT = 11434
#: longer than any real address; a longer "endpoint" is a mistake, and is refused before it is echoed
MAX_ENDPOINT_CHARS = 2048
_SCHEME_PORTS = {"http": 80, "https": 443}
_UNSPECIFIED = {"0.0.0.0": "127.0.0.1", "::": "::1"}
_BAD_HOST_CHARS = re.compile(r"[\s/?#@\[\]\\%<>\"'`{}|^]")
#: public URL (scheme://host:port) -> (user, password): in memory only, never written
_CREDENTIALS: dict[str, tuple[str, str]] = {}


class InvalidEndpoint(ChimeraError):
    kind = "invalid_endpoint"


def _bad(text: str, why: str) -> InvalidEndpoint:
    shown = sanitize_line(re.sub(r"^([^/]*//)?[^/@]*@", r"\1***@", text))  # never echo user-info
    shown = shown if len(shown) <= 80 else shown[:79] + "…"
    return InvalidEndpoint(f"invalid endpoint '{shown}': {why}")


def parse_endpoint(text: str) -> str:
    """The URL `text` means, as Ollama reads `OLLAMA_HOST`, without user-info (registered in memory).

    Raises InvalidEndpoint (one line naming the problem) for what no server could be at."""
    raw = text.strip()
    if len(raw) > MAX_ENDPOINT_CHARS:
        raise _bad(raw, f"longer than {MAX_ENDPOINT_CHARS} characters")
    if not raw:
        raise _bad(raw, "empty")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in raw):
        raise _bad(raw, "contains spaces or control characters")
    scheme, sep, rest = raw.partition("://")
    if sep:
        scheme = scheme.lower()
        if scheme not in _SCHEME_PORTS:
            raise _bad(raw, f"scheme '{scheme}' is not http or https")
        default_port = _SCHEME_PORTS[scheme]
    else:
        scheme, rest, default_port = "http", raw, DEFAULT_PORT
    if "?" in rest or "#" in rest:
        raise _bad(raw, "a query or fragment ('?', '#') has no place in an endpoint")
    authority, _, path = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    host, port = _split_host_port(raw, hostport if at else authority, default_port)
    host = _UNSPECIFIED.get(host, host)
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    url = f"{scheme}://{netloc}" + (f"/{path}".rstrip("/") if path.strip("/") else "")
    if at:
        user, _, password = userinfo.partition(":")
        user, password = unquote(user), unquote(password)
        _CREDENTIALS[_key(url)] = (user, password)
        register_secret(password)
        register_secret(userinfo)
    return url


def _split_host_port(raw: str, hostport: str, default_port: int) -> tuple[str, int]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise _bad(raw, "'[' without a closing ']' around the IPv6 address")
        host, after = hostport[1:end], hostport[end + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _bad(raw, f"'{sanitize_line(host)[:60]}' in brackets is not an IPv6 address") from None
        if after and not after.startswith(":"):
            raise _bad(raw, "unexpected text after the ']' of the IPv6 address")
        port_text = after[1:] if after else None
    elif hostport.count(":") > 1:
        try:  # a bare IPv6 address: Ollama takes it with the default port
            host = str(ipaddress.IPv6Address(hostport))
        except ValueError:
            raise _bad(raw, "an IPv6 address must be in brackets, e.g. http://[::1]:11434") from None
        port_text = None
    else:
        host, colon, port_text_ = hostport.partition(":")
        port_text = port_text_ if colon else None
        if "]" in host:
            raise _bad(raw, "']' without an opening '['")
        if _BAD_HOST_CHARS.search(host):
            raise _bad(raw, f"'{sanitize_line(host)[:60]}' is not a host name")
    if not host:
        host = "127.0.0.1"
    if not port_text:  # absent, or "host:" (Ollama: the default port)
        return host, default_port
    if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise _bad(raw, f"port '{sanitize_line(port_text)[:20]}' is not a number from 1 to 65535")
    return host, int(port_text)


def _key(url: str) -> str:
    """The credentials' key: scheme://host:port, whatever path follows."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def strip_userinfo(url: str) -> str:
    """`url` without user-info; any found is registered as `parse_endpoint` does (for URLs that
    reached a client without going through it)."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    if not sep or "@" not in authority:
        return url
    userinfo, _, hostport = authority.rpartition("@")
    public = f"{scheme}://{hostport}{slash}{path}"
    user, _, password = userinfo.partition(":")
    _CREDENTIALS[_key(public)] = (unquote(user), unquote(password))
    register_secret(unquote(password))
    register_secret(userinfo)
    return public


def endpoint_as_typed(text: str) -> str:
    """An endpoint typed in the TUI: a URL with a scheme is taken as typed (without its user-info);
    a host-only value (`0.0.0.0`, `gpu-box`, `:11435`, `[::1]`) is read as Ollama reads OLLAMA_HOST.
    InvalidEndpoint (one line) for a host-only value no server could be at."""
    text = text.strip().rstrip("/")
    return strip_userinfo(text) if "://" in text else parse_endpoint(text)


def auth_for(url: str) -> httpx.BasicAuth | None:
    """The basic-auth credentials given with the endpoint `url` in this process, if any."""
    creds = _CREDENTIALS.get(_key(url))
    return httpx.BasicAuth(*creds) if creds else None
