"""The event bus interface: wake-up events on topics, and presence keys with a time to live."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class Subscription(Protocol):
    """Events of the subscribed topics, as topic names.

    Events are wake-ups, not data: a subscriber re-reads the database when woken, so several
    events may be folded into one and a slow subscriber loses nothing that matters.
    """

    def __aiter__(self) -> AsyncIterator[str]: ...


class Bus(Protocol):
    async def publish(self, topic: str) -> None: ...

    def subscribe(self, *topics: str) -> AbstractAsyncContextManager[Subscription]: ...

    async def set_presence(self, key: str, value: str, ttl_seconds: float) -> None: ...

    async def get_presence(self, key: str) -> str | None: ...

    async def clear_presence(self, key: str, value: str) -> None:
        """Removes the key if it still holds value (another replica may own it by now)."""
        ...

    async def close(self) -> None: ...
