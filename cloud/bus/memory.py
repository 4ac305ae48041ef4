"""The in-process bus of the embedded run (one cloud process)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator


class _Subscription:
    def __init__(self) -> None:
        # Bounded: events fold into a wake-up, so one pending event per topic is enough.
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=64)

    def offer(self, topic: str) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(topic)

    async def __aiter__(self) -> AsyncIterator[str]:
        while True:
            yield await self.queue.get()


class InProcessBus:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[_Subscription]] = defaultdict(set)
        self._presence: dict[str, tuple[str, float]] = {}

    async def publish(self, topic: str) -> None:
        for sub in list(self._subscribers.get(topic, ())):
            sub.offer(topic)

    @contextlib.asynccontextmanager
    async def subscribe(self, *topics: str) -> AsyncIterator[_Subscription]:
        sub = _Subscription()
        for topic in topics:
            self._subscribers[topic].add(sub)
        try:
            yield sub
        finally:
            for topic in topics:
                self._subscribers[topic].discard(sub)
                if not self._subscribers[topic]:
                    del self._subscribers[topic]

    async def set_presence(self, key: str, value: str, ttl_seconds: float) -> None:
        self._presence[key] = (value, time.monotonic() + ttl_seconds)

    async def get_presence(self, key: str) -> str | None:
        entry = self._presence.get(key)
        if entry is None or entry[1] < time.monotonic():
            self._presence.pop(key, None)
            return None
        return entry[0]

    async def clear_presence(self, key: str, value: str) -> None:
        if self._presence.get(key, ("", 0.0))[0] == value:
            del self._presence[key]

    async def close(self) -> None:
        self._subscribers.clear()
