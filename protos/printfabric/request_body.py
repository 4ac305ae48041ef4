"""An HTTP request body (Starlette) read chunk by chunk with an idle timeout, for every endpoint
that streams one: the IPP printers of the gateway and of `printfabric serve-printer`, the
gateway's uploads and blob URLs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request

# A client that sends nothing for this long in the middle of a request is cut off.
BODY_IDLE_SECONDS = 60.0
# What is left of an answered request's body is read and dropped up to this much; beyond it the
# connection is closed instead (cheaper than reading a document nobody will keep).
DRAIN_LIMIT = 1 << 20


class RequestBody:
    """The request body as an async iterator, with an idle timeout; remembers if it ended.

    A client that goes silent or away raises ClientDisconnect.
    """

    def __init__(self, request: Request, idle_seconds: float = BODY_IDLE_SECONDS) -> None:
        self._stream = request.stream()
        self._idle = idle_seconds
        self.finished = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        while True:
            try:
                chunk = await asyncio.wait_for(anext(self._stream), self._idle)
            except StopAsyncIteration:
                self.finished = True
                raise
            except TimeoutError as exc:
                raise ClientDisconnect() from exc
            if chunk:
                return chunk

    async def drain(self) -> bool:
        """Reads what is left, up to DRAIN_LIMIT; True if the body ended."""
        seen = 0
        try:
            async for chunk in self:
                seen += len(chunk)
                if seen > DRAIN_LIMIT:
                    return False
        except ClientDisconnect:
            return False
        return True


async def prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """rest, with first (if any) in front: a body stream whose start was already read."""
    if first:
        yield first
    async for chunk in rest:
        yield chunk
