"""IPP document compression (RFC 8011 compression attribute): none, deflate or gzip, undone as
the document streams in."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

from printfabric.ipp.constants import Status
from printfabric.ipp.server import IppFailure, not_supported

COMPRESSIONS = ("none", "deflate", "gzip")
# Decompressed output comes in steps of at most this size: a small "zip bomb" cannot blow up
# memory.
STEP = 1 << 20


def check_compression(value: str) -> str:
    """value, if it is a compression this server undoes; else the IPP refusal."""
    if value not in COMPRESSIONS:
        raise not_supported(
            "compression", value, status=Status.CLIENT_ERROR_COMPRESSION_NOT_SUPPORTED
        )
    return value


async def decompressed(chunks: AsyncIterator[bytes], compression: str) -> AsyncIterator[bytes]:
    """The document bytes of a body sent with compression none, deflate or gzip."""
    if compression == "none":
        async for chunk in chunks:
            yield chunk
        return
    # IPP "deflate" is raw RFC 1951 data (no zlib header); "gzip" is RFC 1952.
    inflater = zlib.decompressobj(wbits=31 if compression == "gzip" else -15)
    try:
        async for chunk in chunks:
            data = chunk
            while data:
                out = inflater.decompress(data, STEP)
                if out:
                    yield out
                data = inflater.unconsumed_tail
        tail = inflater.flush()
        if tail:
            yield tail
    except zlib.error as exc:
        raise IppFailure(
            Status.CLIENT_ERROR_COMPRESSION_ERROR, f"the {compression} data is corrupt: {exc}"
        ) from exc
    if not inflater.eof:
        raise IppFailure(Status.CLIENT_ERROR_COMPRESSION_ERROR, "the compressed data ends early")
