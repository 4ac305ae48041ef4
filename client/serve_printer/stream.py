"""A document body on its way in (decompressed by printfabric.ipp.compression): typed from its
first bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator

from printfabric.formats import HEAD_SIZE, detect_format, mime_type
from printfabric.v1 import common_pb2


async def sniff(chunks: AsyncIterator[bytes]) -> tuple[bytes, AsyncIterator[bytes]]:
    """(the first HEAD_SIZE bytes or fewer, the whole stream again including them)."""
    head = bytearray()
    ended = False
    while len(head) < HEAD_SIZE:
        try:
            head += await anext(chunks)
        except StopAsyncIteration:
            ended = True
            break
    first = bytes(head)

    async def whole() -> AsyncIterator[bytes]:
        if first:
            yield first
        if not ended:
            async for chunk in chunks:
                yield chunk

    return first, whole()


def detected_mime(head: bytes) -> str | None:
    """The MIME type of a document from its first bytes, or None when they do not tell."""
    fmt = detect_format(head)
    if fmt == common_pb2.DOCUMENT_FORMAT_OCTET_STREAM:
        return None
    return mime_type(fmt)
