"""Reading request bodies safely: size cap, gzip inflated in a stream under the same cap.

A body larger than the limit, or one that inflates past it (a decompression
bomb), is refused with :class:`BodyTooLarge` (413) as soon as the limit is
crossed: neither the compressed nor the inflated bytes are ever held beyond it.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
SUPPORTED_ENCODINGS = ("identity", "gzip")


class BodyTooLarge(ValueError):
    """The body, compressed or inflated, exceeds the limit (answered with 413)."""


class UnsupportedEncoding(ValueError):
    """``Content-Encoding`` other than gzip or identity (answered with 415)."""


class CorruptEncoding(ValueError):
    """The gzip stream is damaged or truncated (answered with 400)."""


class _Inflater:
    """Inflates a (possibly multi-member) gzip stream, refusing output beyond ``limit``."""

    def __init__(self, limit_bytes: int) -> None:
        self._limit = limit_bytes
        self._out = bytearray()
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._member_open = False  # the current member has been fed and not yet ended

    def feed(self, data: bytes) -> None:
        try:
            while data:
                self._member_open = True
                room = self._limit - len(self._out) + 1
                self._out += self._inflater.decompress(data, room)
                if len(self._out) > self._limit:
                    raise BodyTooLarge(f"inflated body exceeds {self._limit} bytes")
                data = self._inflater.unconsumed_tail
                if self._inflater.eof:
                    rest = self._inflater.unused_data
                    self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    self._member_open = False
                    data = rest
        except zlib.error as exc:
            raise CorruptEncoding(f"invalid gzip body: {exc}") from exc

    def finish(self) -> bytes:
        try:
            self._out += self._inflater.flush()
        except zlib.error as exc:
            raise CorruptEncoding(f"invalid gzip body: {exc}") from exc
        if len(self._out) > self._limit:
            raise BodyTooLarge(f"inflated body exceeds {self._limit} bytes")
        if self._member_open and not self._inflater.eof:
            raise CorruptEncoding("truncated gzip body")
        return bytes(self._out)


async def read_body(
    chunks: AsyncIterator[bytes],
    *,
    content_length: str | None,
    content_encoding: str | None,
    max_body_bytes: int,
) -> bytes:
    """Read a whole body from ``chunks`` under ``max_body_bytes`` (before and after inflating)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding not in SUPPORTED_ENCODINGS:
        raise UnsupportedEncoding(f"unsupported Content-Encoding {encoding!r} (use gzip)")
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            declared = 0
        if declared > max_body_bytes:
            raise BodyTooLarge(f"body of {declared} bytes exceeds {max_body_bytes} bytes")
    inflater = _Inflater(max_body_bytes) if encoding == "gzip" else None
    received = 0
    parts: list[bytes] = []
    async for chunk in chunks:
        received += len(chunk)
        if received > max_body_bytes:
            raise BodyTooLarge(f"body exceeds {max_body_bytes} bytes")
        if inflater is not None:
            inflater.feed(chunk)
        else:
            parts.append(chunk)
    if inflater is not None:
        return inflater.finish()
    return b"".join(parts)
