"""Compressed response bodies.

The clients ask for `Accept-Encoding: identity`: a proxy that compresses collects tokens into
compression blocks before it sends them, which moves every arrival stamp (TTFT, inter-token times)
by the proxy's buffering, not the server's. A proxy that compresses anyway is still read: the body
is decoded here, chunk by chunk as it arrives (gzip, deflate), each chunk still stamped at its read,
and the run gets a note saying the timings went through a compressing hop. Decoded bytes are bounded
(a small compressed body can expand without limit), and an encoding this cannot decode (br, zstd) is
one clear error instead of "stream line is not valid UTF-8".
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

from chimera_tui.core.errors import StreamError
from chimera_tui.safe_text import sanitize_line

#: the header both clients send
ACCEPT_ENCODING = "identity"
COMPRESSED_NOTE = (
    "the server compressed the stream ({encoding}) although identity was asked for; it was decoded, "
    "and a compressing hop may have delayed token arrivals"
)


def content_encoding(headers: object) -> str | None:
    """The body's content coding, lower case, or None for an identity body."""
    get = getattr(headers, "get", None)
    value = get("content-encoding") if get is not None else None
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    return None if value in ("", "identity") else value


class DecodedChunks:
    """An async iterator of decoded body chunks over the raw ones (one decoded chunk per raw read)."""

    def __init__(self, raw: AsyncIterator[bytes], encoding: str, limit: int) -> None:
        if encoding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._z = zlib.decompressobj()  # zlib-wrapped, as RFC 9110 defines deflate
        else:
            raise StreamError(
                f"the server compressed the stream with '{sanitize_line(encoding)[:40]}', which this "
                "client cannot decode (it asks for identity: is a proxy re-encoding the answer?)"
            )
        self._raw = raw
        self._encoding = encoding
        #: at most this many decoded bytes in all (the caller's byte cap checks the exact count)
        self._left = limit + 1
        self._ended = False

    def __aiter__(self) -> DecodedChunks:
        return self

    async def __anext__(self) -> bytes:
        if self._ended:
            raise StopAsyncIteration
        try:
            data = await self._raw.__anext__()
        except StopAsyncIteration:
            self._ended = True
            tail = self._z.flush()
            if tail:
                return tail
            raise
        try:
            out = self._z.decompress(data, max(self._left, 1))
        except zlib.error as exc:
            raise StreamError(f"the {self._encoding} stream is corrupt: {exc}") from None
        self._left -= len(out)
        return out
